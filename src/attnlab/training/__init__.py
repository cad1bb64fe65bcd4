"""Training attention models on tasks that need attention."""

from .run import Interrupted, evaluate, generate, load_run, train
from .train_config import TrainConfig

__all__ = ["Interrupted", "TrainConfig", "evaluate", "generate", "load_run", "train"]
