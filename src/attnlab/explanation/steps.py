"""The steps of one attention computation, as data: :class:`Step` and :class:`Explanation`.

An :class:`Explanation` is an ordered list of steps, from the input the
attention module reads to the output it returns (and, inside a Transformer
layer, the residual sum). Every step holds the real numbers, in float64, for
one batch item and (where the step is per head) one head.

Axis letters used in :attr:`Step.axes`: L queries, S keys, E model width,
D head width, A hidden width of an additive scoring network, H heads.
"""

from dataclasses import dataclass, field, replace

from torch import Tensor


@dataclass(frozen=True)
class Step:
    """One step of the computation.

    Attributes:
        name: Short key (``"q"``, ``"scores"``, ``"weights"``, ...).
        title: What the step is, in a few words.
        formula: The step as a formula (plain Unicode).
        text: What the step does, in one or two plain sentences.
        value: The numbers, float64, detached; a scalar tensor for ``scale``.
        axes: One letter per dim of ``value`` (e.g. ``("L", "S")``).
    """

    name: str
    title: str
    formula: str
    text: str
    value: Tensor
    axes: tuple[str, ...]

    @property
    def shape(self) -> str:
        """The shape with its letters, e.g. ``"(L, S) = (3, 3)"``; ``"scalar"`` for a number."""
        if not self.axes:
            return "scalar"
        return f"({', '.join(self.axes)}) = {tuple(self.value.shape)}"


@dataclass(frozen=True)
class Explanation:
    """The steps of one head of one attention module on one input.

    Attributes:
        module: Qualified name of the attention module (``model.named_modules()``).
        kind: The mechanism: ``"multi-head"``, ``"single-head"``, ``"weightless"`` or
            ``"additive"``.
        layer: Index of the module among the model's attention modules.
        head: The explained query head.
        kv_head: The key/value head it reads (differs from ``head`` with GQA/MQA).
        num_heads: Query heads H of the module.
        num_kv_heads: Key/value heads G.
        batch: The explained batch item.
        steps: The steps, in computation order.
        output: The module's own output for this batch item ``(L, E)`` (float64).
        error: Largest relative difference between the recomposed steps and the
            model's own numbers (output, and residual when there is one).
        causal: Whether the module hides future keys.
        window: Its sliding window, or None.
        query_tokens: Labels of the L queries (filled by callers that know them).
        key_tokens: Labels of the S keys.
    """

    module: str
    kind: str
    layer: int
    head: int
    kv_head: int
    num_heads: int
    num_kv_heads: int
    batch: int
    steps: list[Step]
    output: Tensor
    error: float
    causal: bool = False
    window: int | None = None
    query_tokens: list[str] = field(default_factory=list)
    key_tokens: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Tensor:
        """The value of the step called ``name`` (``KeyError`` lists the names)."""
        return self.step(name).value

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; steps: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        """The step names, in order."""
        return [step.name for step in self.steps]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def with_tokens(self, queries: list[str], keys: list[str] | None = None) -> "Explanation":
        """A copy whose axes are labelled with ``queries`` (L) and ``keys`` (S, default queries).

        Raises:
            ValueError: If a list's length is not L or S.
        """
        keys = list(queries) if keys is None else list(keys)
        L, S = self["weights"].shape
        if len(queries) != L or len(keys) != S:
            raise ValueError(f"tokens must have L={L} query and S={S} key labels, got "
                             f"{len(queries)} and {len(keys)}")
        return replace(self, query_tokens=list(queries), key_tokens=keys)
