"""Position-wise feed-forward blocks: MLP (GPT-2 / BERT), SwiGLU (Llama), GeGLU (Gemma, T5 v1.1).

Shape letters: E model dimension, F hidden dimension; ``*`` any leading dims.
"""

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._validate import check_choice, check_float, check_int, check_last_dim, check_tensor

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact, with erf (BERT)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's gelu_new
    "silu": F.silu,
}


def _check_sizes(embed_dim: object, hidden_dim: object, dropout: object, bias: object) -> None:
    check_int("embed_dim", embed_dim, minimum=1)
    check_int("hidden_dim", hidden_dim, minimum=1)
    check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")


class FeedForward(nn.Module):
    """What every block here shares: check the input, ``down(hidden(x))``, dropout.

    A subclass builds ``down_proj`` (F -> E) and ``dropout`` and defines
    :meth:`hidden`, ``(*, E) -> (*, F)``.
    """

    embed_dim: int
    down_proj: nn.Linear
    dropout: nn.Dropout

    def hidden(self, x: Tensor) -> Tensor:
        """``(*, E)`` -> ``(*, F)``, the block's own part."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to every position of ``x``.

        Args:
            x: Input of shape ``(*, E)``.

        Returns:
            Tensor of shape ``(*, E)``.

        Raises:
            TypeError: If ``x`` is not a floating tensor.
            ValueError: If the last dim of ``x`` is not ``embed_dim``.
        """
        check_tensor("x", x, min_ndim=1)
        check_last_dim("x", x, self.embed_dim, "embed_dim")
        return self.dropout(self.down_proj(self.hidden(x)))  # (*, E)


class MLP(FeedForward):
    r"""Two-layer feed-forward block: :math:`\mathrm{down}(\phi(\mathrm{up}(x)))`.

    ``up_proj`` maps E -> F, the activation :math:`\phi` is applied elementwise,
    ``down_proj`` maps F -> E, and dropout (training only) is applied to the output, as
    in GPT-2's ``resid_pdrop``. GPT-2 (``c_fc``/``c_proj``, Conv1D: transpose the
    weights) and BERT (``intermediate.dense``/``output.dense``) map onto
    ``up_proj``/``down_proj``.

    Reference: Vaswani et al., "Attention Is All You Need", 2017, section 3.3;
    Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", 2016.

    Args:
        embed_dim: Model dimension E.
        hidden_dim: Hidden dimension F (usually 4E).
        activation: One of ``"relu"``, ``"gelu"`` (exact erf), ``"gelu_tanh"`` (the
            tanh approximation, GPT-2's ``gelu_new``) or ``"silu"``.
        bias: Whether the two linear layers have biases.
        dropout: Dropout probability on the output, in [0, 1).

    Shape:
        - x: ``(*, E)``.
        - output: ``(*, E)``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If a size is < 1, ``dropout`` is outside [0, 1) or ``activation``
            is unknown.

    Example:
        >>> import torch
        >>> mlp = MLP(6, 10, activation="gelu_tanh")
        >>> mlp(torch.zeros(2, 3, 6)).shape
        torch.Size([2, 3, 6])
    """

    def __init__(self, embed_dim: int, hidden_dim: int, *, activation: str = "gelu",
                 bias: bool = True, dropout: float | int = 0.0) -> None:
        super().__init__()
        _check_sizes(embed_dim, hidden_dim, dropout, bias)
        check_choice("activation", activation, list(ACTIVATIONS))
        self.embed_dim, self.hidden_dim, self.activation = embed_dim, hidden_dim, activation
        self.up_proj = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.down_proj = nn.Linear(hidden_dim, embed_dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def hidden(self, x: Tensor) -> Tensor:
        """``(*, E)`` -> ``(*, F)``: the activation of the up-projection."""
        return ACTIVATIONS[self.activation](self.up_proj(x))

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"activation={self.activation!r}"


class SwiGLU(FeedForward):
    r"""Gated feed-forward block (SwiGLU), as in Llama.

    .. math::
        y = \mathrm{down}(\mathrm{silu}(\mathrm{gate}(x)) \odot \mathrm{up}(x))

    Names follow Hugging Face Llama (``gate_proj``, ``up_proj``, ``down_proj``), so its
    ``mlp.*`` weights load unchanged; Meta's ``w1``/``w3``/``w2`` are gate/up/down.
    Dropout (training only) is applied to the output.

    Reference: Shazeer, "GLU Variants Improve Transformer", 2020.

    Args:
        embed_dim: Model dimension E.
        hidden_dim: Hidden dimension F (Llama uses about 8E/3).
        bias: Whether the three linear layers have biases (Llama: no).
        dropout: Dropout probability on the output, in [0, 1).

    Shape:
        - x: ``(*, E)``.
        - output: ``(*, E)``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If a size is < 1 or ``dropout`` is outside [0, 1).

    Example:
        >>> import torch
        >>> ffn = SwiGLU(6, 16)
        >>> ffn(torch.zeros(2, 3, 6)).shape
        torch.Size([2, 3, 6])
    """

    gate_activation = "silu"

    def __init__(self, embed_dim: int, hidden_dim: int, *, bias: bool = False,
                 dropout: float | int = 0.0) -> None:
        super().__init__()
        _check_sizes(embed_dim, hidden_dim, dropout, bias)
        self.embed_dim, self.hidden_dim = embed_dim, hidden_dim
        self.gate_proj = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.up_proj = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.down_proj = nn.Linear(hidden_dim, embed_dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def hidden(self, x: Tensor) -> Tensor:
        """``(*, E)`` -> ``(*, F)``: the activated gate times the up-projection."""
        return ACTIVATIONS[self.gate_activation](self.gate_proj(x)) * self.up_proj(x)


class GeGLU(SwiGLU):
    r"""Gated feed-forward block with a GELU (tanh approximation) gate: GeGLU.

    .. math::
        y = \mathrm{down}(\mathrm{gelu_{tanh}}(\mathrm{gate}(x)) \odot \mathrm{up}(x))

    Gemma's MLP (``gelu_pytorch_tanh``) and T5 v1.1's ``gated-gelu`` (``gelu_new``,
    with ``wi_0`` = gate, ``wi_1`` = up, ``wo`` = down). Same parameters as
    :class:`SwiGLU`.

    Reference: Shazeer, "GLU Variants Improve Transformer", 2020.

    Example:
        >>> import torch
        >>> GeGLU(6, 16)(torch.zeros(2, 3, 6)).shape
        torch.Size([2, 3, 6])
    """

    gate_activation = "gelu_tanh"
