"""What each ``attnlab train --model NAME`` trains, for each kind of task.

A task decides the architecture: a source and a target (``seq2seq``) train an
encoder–decoder; plain text (``lm``) trains a decoder-only language model. The
``--model`` name decides the attention inside it.

Every registered attention mechanism is a ``--model`` choice, derived from its
capabilities (:class:`~attnlab.attention.mechanisms.Mechanism`): a mechanism
that cannot cross-attend keeps multi-head cross-attention in an
encoder–decoder, one that always looks back only trains language models, and
``--num_heads`` matters only when some attention of the model has heads.
:data:`RECIPES` adds the few choices that are not one mechanism (``cross``).
Pairings that cannot work get a clear message.
"""

from dataclasses import dataclass

from .. import attention, tasks  # noqa: F401  (fill the attention and task registries)
from ..config import ModelConfig
from ..registry import ATTENTION, TASKS

#: Cross-attention of an encoder–decoder whose mechanism cannot cross-attend.
FALLBACK_CROSS = "multihead"


@dataclass(frozen=True)
class Choice:
    """What one ``--model`` name means."""

    help: str
    self_attention: str
    cross_attention: str = FALLBACK_CROSS
    tasks: tuple[str, ...] = ("seq2seq", "lm")
    #: False when no attention of the model has heads (``--num_heads`` is then 1).
    heads: bool = True


#: ``--model`` choices that are not one mechanism everywhere.
RECIPES: dict[str, Choice] = {
    "cross": Choice("an encoder-decoder whose target reads the source through one "
                    "cross-attention head (self-attention stays multi-head)",
                    "multihead", "selfhead", tasks=("seq2seq",)),
}


def _from_mechanism(name: str, help: str) -> Choice:
    """The ``--model`` choice of the mechanism registered as ``name``."""
    m = ATTENTION.get(name)
    cross = name if m.cross else FALLBACK_CROSS
    if not m.cross:
        help = f"{help}; cross-attention stays {FALLBACK_CROSS}"
    kinds = ("lm",) if m.always_causal else ("seq2seq", "lm")
    heads = m.heads or (ATTENTION.get(cross).heads and "seq2seq" in kinds)
    return Choice(help, name, cross, kinds, heads)


def choices() -> dict[str, Choice]:
    """Every ``--model`` choice: the registered mechanisms, then :data:`RECIPES`."""
    made = {entry.name: _from_mechanism(entry.name, entry.help) for entry in ATTENTION.entries()}
    return made | RECIPES

DEFAULT_POSITIONS = {"seq2seq": "sinusoidal", "lm": "learned"}


def check_fits(model: str, task_kind: str, task: str | None = None) -> None:
    """Check that ``--model`` can train on a task of ``task_kind`` (named ``task``).

    Raises:
        ValueError: Naming the model, the task, the tasks the model needs, and the
            models that fit this task.
    """
    choice = choices()[model]
    if task_kind in choice.tasks:
        return
    needed = [name for name in TASKS.names() if TASKS.get(name).kind in choice.tasks]
    need = f"the {needed[0]} task" if len(needed) == 1 else \
        f"a {' or '.join(choice.tasks)} task ({', '.join(needed)})"
    fits = [name for name, c in choices().items() if task_kind in c.tasks]
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
    choice = choices()[model]
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
