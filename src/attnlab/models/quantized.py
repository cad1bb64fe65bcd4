"""Int8 weights for the decode step: opt-in, approximate, a quarter of the bytes per token.

At batch 1 a decode step reads every weight matrix once per token and does two
flops per weight read, so its speed is the speed of reading the weights: 538 MB
of float32 for SmolLM2-135M. ``DecoderLM.generate(..., quantize="int8")`` (and
``attnlab generate/chat --quantize int8``) reads each weight as **int8, one
float scale per output row** instead::

    scale[n] = max_k |W[n, k]| / 127        q[n, k] = round(W[n, k] / scale[n])  in [-127, 127]
    (x @ Wᵀ)[n] ≈ scale[n] · Σ_k x[k] · q[n, k]

Only the weights change: activations, norms, the softmax, the keys and values
in the cache stay in the model's dtype, and the prompt (the prefill) runs
through the model's own float forward, so the first new token is the float
model's. Each later token is approximate: how often its top-1 token and its
distribution agree with the float model (teacher-forced along the float
model's own greedy answer) is measured by ``attnlab bench --only smollm2`` and
written in docs/benchmarks.md. The speed comes with ``compile=True`` (the
generated loops read int8 and widen it in registers); the eager step runs the
same arithmetic through ``torch._weight_int8pack_mm`` and is slower than
float32 (SmolLM2, 2 threads: 50 against 38 ms/token), so the command line's
``--quantize`` turns ``--compile`` on.

Quantized copies are cached per weight tensor (weakly: a dropped model frees
them) and remade when the weight changes (training, ``load_state_dict``), so a
chat quantizes once, not once per answer.

Shape letters: N output features, K input features.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

#: Largest |q|: symmetric, so that -q is representable too.
QMAX = 127


@dataclass(frozen=True)
class Int8Rows:
    """A weight ``(N, K)`` as ``scale[:, None] * q``: ``q`` int8 ``(N, K)``, ``scale`` ``(N,)``."""

    q: Tensor
    scale: Tensor

    def dequantized(self) -> Tensor:
        """The ``(N, K)`` weight these int8 rows stand for, in the scale's dtype."""
        return self.q.to(self.scale.dtype) * self.scale[:, None]

    def matmul(self, x: Tensor) -> Tensor:
        """``(..., K)`` -> ``(..., N)``: ``x @ dequantized()ᵀ``, without making it.

        float32/bf16/fp16 on the CPU go through ``torch._weight_int8pack_mm``;
        anything else (float64) through the dequantized weight.
        """
        packed = getattr(torch, "_weight_int8pack_mm", None)
        if packed is not None and x.device.type == "cpu" and x.dtype in (
                torch.float32, torch.bfloat16, torch.float16) and x.dtype == self.scale.dtype:
            flat = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K)
            return packed(flat, self.q, self.scale).reshape(*x.shape[:-1], -1)
        return x @ self.dequantized().t()


def quantize_rows(weight: Tensor) -> Int8Rows:
    """Symmetric per-row int8 of a float ``(N, K)`` weight (module docstring); no caching.

    A row of zeros gets scale 1 (its q are zeros), never a division by zero.
    """
    w = weight.detach()
    amax = w.abs().amax(dim=1)  # (N,)
    scale = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return Int8Rows(q.contiguous(), scale.contiguous())


_CACHE: WeakIdKeyDictionary = WeakIdKeyDictionary()


def int8_rows(weight: Tensor) -> Int8Rows:
    """:func:`quantize_rows` of ``weight``, cached until the weight changes.

    The cache key is the tensor itself (weakly) and the entry remembers the
    weight's version counter, storage and shape: an in-place update (an
    optimizer step, ``load_state_dict``, ``copy_``) or a ``.data`` swap makes it
    stale, and it is quantized again.
    """
    stamp = (weight._version, weight.data_ptr(), tuple(weight.shape), weight.dtype,
             weight.device)
    hit = _CACHE.get(weight)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with torch.no_grad():
        rows = quantize_rows(weight)
    _CACHE[weight] = (stamp, rows)
    return rows


#: ``quantize=`` names -> how a ``(N, K)`` weight is stored for the decode step.
QUANTIZATIONS: dict[str, Callable[[Tensor], Int8Rows]] = {"int8": int8_rows}
