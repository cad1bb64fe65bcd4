"""Which model each ``--model`` name trains, for each kind of task.

A task decides the architecture: a source and a target (``seq2seq``) train an
encoder–decoder; plain text (``lm``) trains a decoder-only language model. The
``--model`` name decides the attention inside it. Pairings that cannot work get
a clear message.
"""

from dataclasses import dataclass

from .. import tasks  # noqa: F401  (fills the task registry)
from ..config import ModelConfig
from ..registry import TASKS


@dataclass(frozen=True)
class Choice:
    """What one ``--model`` name means."""

    help: str
    self_attention: str
    cross_attention: str = "multihead"
    tasks: tuple[str, ...] = ("seq2seq", "lm")
    #: False when no attention of the model has heads (``--num_heads`` is then 1).
    heads: bool = True


MODELS: dict[str, Choice] = {
    "multihead": Choice("multi-head attention everywhere", "multihead", "multihead"),
    "gqa": Choice("grouped-query attention (H/4 key/value heads)", "gqa", "gqa"),
    "mqa": Choice("multi-query attention (one key/value head)", "mqa", "mqa"),
    "local": Choice("sliding-window self-attention (window 8); full cross-attention",
                    "local", "multihead"),
    "selfhead": Choice("single-head attention with Q/K/V projections everywhere", "selfhead",
                       "selfhead", heads=False),
    "additive": Choice("additive (Bahdanau) attention everywhere (no heads)", "additive",
                       "additive", heads=False),
    "simple": Choice("weightless self-attention; cross-attention stays multi-head",
                     "simple", "multihead"),
    "causal": Choice("causal multi-head self-attention: a decoder-only language model",
                     "causal", tasks=("lm",)),
    "cross": Choice("an encoder-decoder whose target reads the source through one "
                    "cross-attention head (self-attention stays multi-head)",
                    "multihead", "selfhead", tasks=("seq2seq",)),
}

DEFAULT_POSITIONS = {"seq2seq": "sinusoidal", "lm": "learned"}


def check_fits(model: str, task_kind: str, task: str | None = None) -> None:
    """Check that ``--model`` can train on a task of ``task_kind`` (named ``task``).

    Raises:
        ValueError: Naming the model, the task, the tasks the model needs, and the
            models that fit this task.
    """
    choice = MODELS[model]
    if task_kind in choice.tasks:
        return
    needed = [name for name in TASKS.names() if TASKS.get(name).kind in choice.tasks]
    need = f"the {needed[0]} task" if len(needed) == 1 else \
        f"a {' or '.join(choice.tasks)} task ({', '.join(needed)})"
    fits = [name for name, c in MODELS.items() if task_kind in c.tasks]
    what = f"--task {task} (a {task_kind} task)" if task else f"a {task_kind} task"
    raise ValueError(f"--model {model} does not fit {what}: it needs {need}; for this task "
                     f"choose from: {', '.join(fits)}")


def model_config(model: str, task_kind: str, *, vocab_size: int, max_len: int, embed_dim: int,
                 num_heads: int, num_layers: int, dropout: float,
                 positions: str | None, task_defaults: dict[str, object] | None = None,
                 ) -> ModelConfig:
    """The :class:`ModelConfig` that ``--model`` gives on a task of ``task_kind``.

    The task's ``task_defaults`` (``Task.model_defaults``: positions and the
    embedding init that go together) apply unless ``positions`` (``--positions``)
    is given, which replaces them all; then the defaults of ``task_kind`` apply.

    Raises:
        ValueError: For an impossible pairing, naming both and what would work.
    """
    check_fits(model, task_kind)
    choice = MODELS[model]
    defaults = {} if positions else dict(task_defaults or {})
    positions = positions or str(defaults.pop("positions", DEFAULT_POSITIONS[task_kind]))
    return ModelConfig(
        arch="encoder-decoder" if task_kind == "seq2seq" else "decoder",
        vocab_size=vocab_size, embed_dim=embed_dim, num_layers=num_layers, num_heads=num_heads,
        ffn_dim=2 * embed_dim, attention=choice.self_attention,
        cross_attention=choice.cross_attention,
        positions=positions, max_len=max_len, dropout=dropout,
        embed_scale=positions == "sinusoidal", **defaults,
    )
