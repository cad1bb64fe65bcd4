"""Linear layers that keep a GGUF's blocks: the opt-in quantised decode path.

``load_gguf(path, keep_quantized=True)`` replaces each projection stored as
``Q4_1`` or ``Q8_0`` (SmolLM2: every layer's seven projections in Q4_1, the
tied output head in Q8_0) by a :class:`BlockLinear` holding the file's own
blocks: 4-bit codes with a float16 scale ``d`` and minimum ``m`` per 32
weights (``w = d * q + m``), or 8-bit codes with a scale (``w = d * q``).
Nothing is re-quantised: :meth:`BlockLinear.to_bytes` gives back the file's
bytes bit for bit, and the weights it means are exactly the float32 weights
of the ordinary load. Per token the layers read ~96 MB instead of ~540 MB.

**The product.** For one token (``x`` of ``K`` numbers) each output is, per
block ``b`` of 32 inputs, ``d[n, b] * Σ_j q[n, b, j] x[b, j] + m[n, b] *
Σ_j x[b, j]``. It is written as broadcast products and one sum, then
compiled (``torch.compile``, inductor; once per matrix shape, seconds each,
needs a C++ compiler): inductor turns it into a loop that unpacks the
nibbles in registers and never writes a float32 weight to memory. Eager
PyTorch would materialise every intermediate and be slower than float32.
More than one token (a prompt) takes the plain path: the blocks are
dequantised (:func:`~.gguf_quants.dequantize`) and multiplied by ``F.linear``.

It is the same weights' product taken in another order (``d * (q . x) +
m * Σx`` per block instead of ``Σ (d * q + m) * x``), so it rounds
differently from the float32 path: ~1e-7 relative per product.
"""

import functools

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from .gguf_file import StoredTensor
from .gguf_quants import BLOCKS, dequantize

KINDS = ("Q4_1", "Q8_0")


class BlockLinear(nn.Module):
    """``y = x Wᵀ`` (no bias) with ``W`` (out, in) kept in ggml blocks.

    Buffers (``N`` outputs, ``K`` inputs, ``K / 32`` blocks per row):

    * ``codes``: ``Q4_1``: ``(N, K / 2)`` uint8, each block's 16 bytes as
      stored (low nibble: weight ``j``, high nibble: weight ``j + 16``);
      ``Q8_0``: ``(N, K)`` int8.
    * ``scale``: ``(N, K / 32)`` float16, each block's ``d`` (its bits as stored).
    * ``minimum``: ``(N, K / 32)`` float16, ``m`` (``Q4_1``; zeros for ``Q8_0``).

    So a Q4_1 matrix takes the file's 20 bytes per 32 weights, NaN payloads included.

    Args:
        kind: ``"Q4_1"`` or ``"Q8_0"``.
        codes, scale, minimum: As above.
    """

    def __init__(self, kind: str, codes: Tensor, scale: Tensor, minimum: Tensor) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        rows, blocks = scale.shape
        self.kind, self.out_features, self.in_features = kind, rows, blocks * 32
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale)
        self.register_buffer("minimum", minimum)

    @classmethod
    def from_stored(cls, stored: StoredTensor, rows: Tensor | None = None) -> "BlockLinear":
        """The blocks of a stored ``(N, K)`` matrix; ``rows`` reorders its rows (``W[rows]``)."""
        if stored.kind not in KINDS or len(stored.shape) != 2:
            raise ValueError(f"{stored.name}: a BlockLinear needs a 2-D Q4_1 or Q8_0 tensor, "
                             f"got {stored.kind} {stored.shape}")
        n, k = stored.shape
        size = BLOCKS[stored.kind][1]
        blocks = torch.from_numpy(np.array(stored.data, copy=True)).view(torch.uint8)
        blocks = blocks.reshape(n, k // 32, size)
        if rows is not None:
            blocks = blocks[rows]
        scale = _half(blocks[..., :2])
        if stored.kind == "Q4_1":
            minimum = _half(blocks[..., 2:4])
            codes = blocks[..., 4:].reshape(n, k // 2).contiguous()
        else:
            minimum = torch.zeros_like(scale)
            codes = blocks[..., 2:].contiguous().view(torch.int8).reshape(n, k)
        return cls(stored.kind, codes, scale, minimum)

    def to_bytes(self) -> np.ndarray:
        """The blocks in ggml's layout: ``(N, K / 32 * block bytes)`` uint8, as in the file."""
        n, nb = self.scale.shape
        parts = [_bytes(self.scale)]
        if self.kind == "Q4_1":
            parts.append(_bytes(self.minimum))
        parts.append(self.codes.view(torch.uint8).reshape(n, nb, -1))
        return torch.cat(parts, -1).reshape(n, -1).numpy()

    def dequantized(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The dense ``(N, K)`` weight, exactly the ordinary load's."""
        return dequantize(self.to_bytes(), self.kind, (self.out_features, self.in_features),
                          dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., K) -> (..., N)``; one float32 token takes the compiled block product."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must end in {self.in_features} features, got {tuple(x.shape)}")
        if x.numel() == self.in_features and x.dtype == torch.float32 and not (
                torch.is_grad_enabled() and x.requires_grad):
            product = _compiled(self.kind)
            y = product(x.reshape(-1), self.codes, self.scale, self.minimum)  # (N,)
            return y.reshape(*x.shape[:-1], self.out_features)
        return F.linear(x, self.dequantized(x.dtype))

    def extra_repr(self) -> str:
        """``Q4_1, in_features=K, out_features=N``."""
        return f"{self.kind}, in_features={self.in_features}, out_features={self.out_features}"


def _bytes(halves: Tensor) -> Tensor:
    """``(N, nb)`` float16 -> ``(N, nb, 2)`` bytes, the bits unchanged."""
    return halves.reshape(*halves.shape, 1).contiguous().view(torch.uint8)


def _half(pairs: Tensor) -> Tensor:
    """``(N, nb, 2)`` bytes -> ``(N, nb)`` float16 with those bits (in a fresh, dense tensor)."""
    dense = torch.empty(pairs.shape, dtype=torch.uint8).copy_(pairs)
    return dense.view(torch.float16).reshape(pairs.shape[:-1])


def q4_1_product(x: Tensor, codes: Tensor, scale: Tensor, minimum: Tensor) -> Tensor:
    """``W x`` for one token, ``W`` in Q4_1 blocks: ``x`` (K,), codes (N, K/2) -> (N,)."""
    n, nb = scale.shape
    xb = x.view(nb, 2, 16)  # per block: the inputs of the low nibbles, then the high
    q = codes.view(n, nb, 16)
    d = scale.float().unsqueeze(-1)  # (N, nb, 1)
    dots = ((q & 15).float() * xb[:, 0] + (q >> 4).float() * xb[:, 1]) * d  # (N, nb, 16)
    return dots.sum((1, 2)) + (minimum.float() * xb.sum((1, 2))).sum(-1)


def q8_0_product(x: Tensor, codes: Tensor, scale: Tensor, minimum: Tensor) -> Tensor:
    """``W x`` for one token, ``W`` in Q8_0 blocks: ``x`` (K,), codes (N, K) -> (N,)."""
    n, nb = scale.shape
    dots = codes.view(n, nb, 32).float() * x.view(nb, 32) * scale.float().unsqueeze(-1)
    return dots.sum((1, 2))


@functools.cache
def _compiled(kind: str):  # noqa: ANN202
    """The compiled product of ``kind`` (made on first use: importing the compiler costs)."""
    eager = q4_1_product if kind == "Q4_1" else q8_0_product
    return torch.compile(eager, dynamic=False, fullgraph=True)


def keep_blocks(model: nn.Module, stored: dict[str, StoredTensor],
                table: list[tuple[str, str, Tensor | None]]) -> list[str]:
    """Replace ``model``'s linear layers by :class:`BlockLinear` s of the stored tensors.

    Args:
        model: The loaded model (its projections are ``nn.Linear``).
        stored: The file's tensors by GGUF name.
        table: ``(module path, GGUF name, row order or None)`` for each candidate;
            tensors not stored as Q4_1/Q8_0 keep their dense layer.

    Returns:
        The module paths replaced.
    """
    replaced = []
    for path, name, rows in table:
        tensor = stored[name]
        if tensor.kind not in KINDS:
            continue
        parent_path, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        old = getattr(parent, attr)
        if not isinstance(old, nn.Linear) or old.bias is not None:
            raise ValueError(f"{path} is {type(old).__name__}, not a bias-free nn.Linear")
        block = BlockLinear.from_stored(tensor, rows)
        if (block.out_features, block.in_features) != (old.out_features, old.in_features):
            raise ValueError(f"{name} is {tensor.shape}, {path} is "
                             f"({old.out_features}, {old.in_features})")
        setattr(parent, attr, block)
        replaced.append(path)
    return replaced
