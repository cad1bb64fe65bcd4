"""Normalisation layers over the last dimension: LayerNorm and RMSNorm.

Shape letters: E normalised (model) dimension; ``*`` any leading dims.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._validate import check_float, check_int, check_last_dim, check_tensor


class LayerNorm(nn.Module):
    r"""Layer normalisation with an optional bias (Ba, Kiros & Hinton, 2016).

    .. math::
        y = \frac{x - \mathrm{mean}(x)}{\sqrt{\mathrm{var}(x) + \epsilon}} \odot w + b

    with the biased variance over the last dimension. Same function and parameter names
    (``weight``, ``bias``) as ``torch.nn.LayerNorm``, GPT-2's ``ln_*`` and BERT's
    ``LayerNorm``; ``bias=False`` gives the bias-free variant (nanoGPT, OLMo).

    Args:
        dim: Size E of the normalised last dimension.
        eps: Added to the variance for stability.
        bias: Whether to learn an additive ``bias``.

    Shape:
        - x: ``(*, E)``.
        - output: same as ``x``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``dim`` < 1 or ``eps`` < 0.

    Example:
        >>> norm = LayerNorm(5)
        >>> y = norm(torch.arange(10.0).view(2, 5))
        >>> y.shape, round(y[0].mean().item(), 6)
        (torch.Size([2, 5]), 0.0)
    """

    def __init__(self, dim: int, *, eps: float | int = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.eps = check_float("eps", eps, minimum=0.0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__} {bias!r}")
        self.weight = nn.Parameter(torch.ones(dim))  # (E,)
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None  # (E,) | None

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` over its last dimension.

        Args:
            x: Input of shape ``(*, E)``.

        Returns:
            Tensor of the same shape and dtype as ``x``.

        Raises:
            TypeError: If ``x`` is not a floating tensor.
            ValueError: If the last dim of ``x`` is not ``dim``.
        """
        check_tensor("x", x, min_ndim=1)
        check_last_dim("x", x, self.dim, "dim")
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(nn.Module):
    r"""Root-mean-square normalisation (Zhang & Sennrich, 2019), as in Llama.

    .. math::
        y = \frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}} \odot w

    No centring and no bias. Computed in float32 (float64 for float64 inputs), cast
    back to the input dtype, then multiplied by ``weight`` -- the order of Hugging
    Face's ``LlamaRMSNorm``, so ``weight`` loads from its ``weight`` unchanged (Gemma's
    ``1 + weight`` convention is not this one).

    Args:
        dim: Size E of the normalised last dimension.
        eps: Added to the mean square for stability.

    Shape:
        - x: ``(*, E)``.
        - output: same as ``x``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``dim`` < 1 or ``eps`` < 0.

    Example:
        >>> norm = RMSNorm(4)
        >>> y = norm(torch.tensor([[3.0, -3.0, 6.0, 0.0]]))
        >>> y.shape, round(y.pow(2).mean().item(), 4)
        (torch.Size([1, 4]), 1.0)
    """

    def __init__(self, dim: int, *, eps: float | int = 1e-6) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.eps = check_float("eps", eps, minimum=0.0)
        self.weight = nn.Parameter(torch.ones(dim))  # (E,)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` by its root mean square over the last dimension.

        Args:
            x: Input of shape ``(*, E)``.

        Returns:
            Tensor of the same shape as ``x``.

        Raises:
            TypeError: If ``x`` is not a floating tensor.
            ValueError: If the last dim of ``x`` is not ``dim``.
        """
        check_tensor("x", x, min_ndim=1)
        check_last_dim("x", x, self.dim, "dim")
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = x.to(compute)
        y = y * torch.rsqrt(y.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (*, E)
        return self.weight * y.to(x.dtype)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"{self.dim}, eps={self.eps}"


class OffsetRMSNorm(RMSNorm):
    r"""RMSNorm whose gain is ``1 + weight``: Gemma's norm (Gemma Team, 2024).

    .. math::
        y = \frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}} \odot (1 + w)

    ``weight`` starts at zero, so a fresh norm is the plain RMS normalisation.
    Unlike :class:`RMSNorm`, the gain is applied before casting back to the
    input dtype, in the order of Hugging Face's ``GemmaRMSNorm``, whose
    ``weight`` loads unchanged.

    Args:
        dim: Size E of the normalised last dimension.
        eps: Added to the mean square for stability.

    Shape:
        - x: ``(*, E)``.
        - output: same as ``x``.

    Example:
        >>> norm = OffsetRMSNorm(4)
        >>> norm(torch.tensor([[3.0, -3.0, 6.0, 0.0]])).pow(2).mean().item()
        1.0
    """

    def __init__(self, dim: int, *, eps: float | int = 1e-6) -> None:
        super().__init__(dim, eps=eps)
        nn.init.zeros_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` over its last dimension and scale by ``1 + weight``."""
        check_tensor("x", x, min_ndim=1)
        check_last_dim("x", x, self.dim, "dim")
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = x.to(compute)
        y = y * torch.rsqrt(y.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (*, E)
        return (y * (1.0 + self.weight.to(compute))).to(x.dtype)
