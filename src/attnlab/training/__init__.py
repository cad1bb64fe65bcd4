"""Training attention models on tasks that need attention."""

from .config import TrainConfig
from .run import Interrupted, evaluate, generate, load_run, train

__all__ = ["Interrupted", "TrainConfig", "evaluate", "generate", "load_run", "train"]
