"""Rotary position embedding, RoPE (Su et al., 2021), in the Hugging Face / Llama layout.

Shape letters: B batch, H heads, L positions (sequence length), D head dimension.
"""

import torch
from torch import Tensor, nn

from attnlab._validate import check_float, check_int, check_last_dim, check_tensor


def _rotate_half(x: Tensor) -> Tensor:
    """Map ``[x1, x2]`` (the two halves of the last dim) to ``[-x2, x1]``."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)  # (..., D)


class RotaryEmbedding(nn.Module):
    r"""Rotate queries or keys by an angle proportional to their position.

    Feature ``k`` (``k < D/2``) is paired with feature ``k + D/2`` and the pair is
    rotated by the angle :math:`m \theta_k` at position :math:`m`, with
    :math:`\theta_k = \mathrm{theta}^{-2k/D}`:

    .. math::
        y_k = x_k \cos(m\theta_k) - x_{k+D/2} \sin(m\theta_k), \quad
        y_{k+D/2} = x_{k+D/2} \cos(m\theta_k) + x_k \sin(m\theta_k)

    so that :math:`\langle R_m q, R_n k \rangle` depends on :math:`m - n` only.
    Angles are computed in float32 (float64 for float64 inputs) and the result is cast
    back to the input's dtype. The cos/sin tables for positions ``0 .. max_len - 1`` are
    cached per device and dtype, and grown on demand: any length works.

    Conventions vs other libraries: this is the "rotate half" layout of Hugging Face
    (``apply_rotary_pos_emb``) and torchtune's Llama-3 export; Meta's original Llama
    code and GPT-J pair adjacent features ``(2k, 2k + 1)`` instead, which equals this
    layout after a permutation of the q/k projection rows.

    Reference: Su et al., "RoFormer: Enhanced Transformer with Rotary Position
    Embedding", 2021.

    Args:
        head_dim: Per-head dimension D.
        theta: Base of the angle frequencies (10000 in the paper; 500000 in Llama 3).
        max_len: Number of positions whose cos/sin are precomputed on first use.
        rotary_dim: Rotate only the first R features of each head (even; default D),
            with frequencies ``theta^(-2k/R)``; the other D - R pass unchanged. This is
            GPT-NeoX's (Pythia's) and Phi's "partial rotary" (``rotary_pct``,
            ``partial_rotary_factor``): part of each head is position-free.

    Shape:
        - x: ``(B, H, L, D)`` (any leading dims when ``positions`` is 1-D or omitted).
        - positions: ``(L,)`` or ``(B, L)``.
        - output: same as ``x``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If the rotated width is odd or < 2, ``rotary_dim > head_dim``,
            ``theta`` <= 0 or ``max_len`` < 1.

    Example:
        >>> rope = RotaryEmbedding(head_dim=6)
        >>> q = torch.ones(2, 3, 5, 6)
        >>> rope(q, offset=4).shape
        torch.Size([2, 3, 5, 6])
        >>> rope(q)[0, 0, 0].tolist()  # position 0 is not rotated
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """

    kind = "rotary"

    def __init__(self, head_dim: int, *, theta: float | int = 10000.0, max_len: int = 4096,
                 rotary_dim: int | None = None) -> None:
        super().__init__()
        self.head_dim = check_int("head_dim", head_dim, minimum=2)
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        self.rotary_dim = check_int("rotary_dim", rotary_dim, minimum=2)
        if self.rotary_dim > head_dim:
            raise ValueError(f"rotary_dim={rotary_dim} exceeds head_dim={head_dim}")
        if self.rotary_dim % 2 != 0:
            what = "head_dim" if self.rotary_dim == head_dim else "rotary_dim"
            raise ValueError(f"{what} must be even for rotary embeddings, got {self.rotary_dim}")
        self.theta = check_float("theta", theta, minimum=0.0, min_inclusive=False)
        self.max_len = check_int("max_len", max_len, minimum=1)
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def inv_freq(self, dtype: torch.dtype = torch.float32, device: torch.device | None = None
                 ) -> Tensor:
        """Return the D/2 angle frequencies ``theta^(-2k/D)``, computed as HF does."""
        even = torch.arange(0, self.rotary_dim, 2, device=device).to(dtype)  # (R/2,)
        return 1.0 / (self.theta ** (even / self.rotary_dim))

    def _cos_sin(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Return cos and sin of the angles at ``positions``: ``(*positions.shape, D)``."""
        freqs = positions[..., None].to(dtype) * self.inv_freq(dtype, positions.device)
        angles = torch.cat((freqs, freqs), dim=-1)  # (..., D)
        return angles.cos(), angles.sin()

    def _cached(self, length: int, device: torch.device, dtype: torch.dtype
                ) -> tuple[Tensor, Tensor]:
        """Cos/sin tables ``(>= length, D)`` for positions ``0, 1, ...``; grown lazily."""
        key = (device, dtype)
        cached = self._cache.get(key)
        if cached is None or cached[0].shape[0] < length:
            size = max(length, self.max_len, 2 * cached[0].shape[0] if cached else 0)
            # Ordinary tensors even under inference_mode, so a later training step can use them.
            with torch.inference_mode(False), torch.no_grad():
                cached = self._cos_sin(torch.arange(size, device=device), dtype)
            self._cache[key] = cached
        return cached

    def forward(self, x: Tensor, offset: int = 0, positions: Tensor | None = None) -> Tensor:
        """Rotate ``x`` at positions ``offset .. offset + L - 1`` (or at ``positions``).

        Args:
            x: Queries or keys of shape ``(B, H, L, D)``.
            offset: Position of the first row (e.g. the KV-cache length).
            positions: Integer positions instead of ``offset``: ``(L,)`` shared by the
                batch, or ``(B, L)`` per sequence (then ``x`` must be 4-D).

        Returns:
            Tensor of the same shape and dtype as ``x``.

        Raises:
            TypeError: If ``x`` is not floating, ``offset`` not an int or ``positions``
                not an integer tensor.
            ValueError: If the last dim of ``x`` is not ``head_dim``, ``offset`` < 0,
                both ``offset`` and ``positions`` are given, or ``positions`` has the
                wrong shape.
        """
        check_tensor("x", x, min_ndim=2)
        check_last_dim("x", x, self.head_dim, "head_dim")
        length = x.shape[-2]
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        if positions is None:
            check_int("offset", offset, minimum=0)
            cos, sin = self._cached(offset + length, x.device, compute)
            cos, sin = cos[offset : offset + length], sin[offset : offset + length]  # (L, D)
        else:
            self._check_positions(x, offset, positions)
            cos, sin = self._cos_sin(positions.to(x.device), compute)  # (L, D) | (B, L, D)
            if positions.dim() == 2:
                cos, sin = cos[:, None], sin[:, None]  # (B, 1, L, D)
        y = x.to(compute)
        if self.rotary_dim < self.head_dim:  # partial rotary: the last D - R features pass
            R = self.rotary_dim
            turned = y[..., :R] * cos + _rotate_half(y[..., :R]) * sin  # (B, H, L, R)
            return torch.cat((turned, y[..., R:]), dim=-1).to(x.dtype)  # (B, H, L, D)
        return (y * cos + _rotate_half(y) * sin).to(x.dtype)  # (B, H, L, D)

    @staticmethod
    def _check_positions(x: Tensor, offset: object, positions: Tensor) -> None:
        if offset != 0:
            raise ValueError(f"pass either offset or positions, not both; got offset={offset}")
        check_tensor("positions", positions, floating=False)
        if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
            raise TypeError(f"positions must be an integer tensor, got dtype {positions.dtype}")
        length = x.shape[-2]
        shape = tuple(positions.shape)
        ok_1d = positions.dim() == 1 and shape == (length,)
        ok_2d = (positions.dim() == 2 and x.dim() == 4 and shape[1] == length
                 and shape[0] in (1, x.shape[0]))
        if not (ok_1d or ok_2d):
            raise ValueError(
                f"positions must have shape (L,) = ({length},) or (B, L) = "
                f"({x.shape[0]}, {length}) with a 4-D x, got {shape} for x of shape "
                f"{tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        partial = "" if self.rotary_dim == self.head_dim else f", rotary_dim={self.rotary_dim}"
        return f"head_dim={self.head_dim}{partial}, theta={self.theta}, max_len={self.max_len}"
