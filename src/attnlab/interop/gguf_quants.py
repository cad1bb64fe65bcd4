"""GGML's block formats, dequantised with torch.

A GGUF tensor is stored in rows of blocks. The formats attnlab reads
(ggml's ``ggml-quants.c`` defines them; the ``gguf`` package's
``gguf.quants.dequantize`` is the NumPy reference the tests compare with):

========  =====  ==============================================================
type      bytes  one block of 32 weights
========  =====  ==============================================================
``Q4_0``  18     scale ``d`` (f16), 16 bytes of 4-bit ``q``: ``w = d * (q - 8)``
``Q4_1``  20     scale ``d`` and minimum ``m`` (f16), 16 bytes: ``w = d * q + m``
``Q8_0``  34     scale ``d`` (f16), 32 signed bytes ``q``: ``w = d * q``
========  =====  ==============================================================

In a 4-bit block the low nibble of byte ``j`` is weight ``j`` and the high
nibble is weight ``j + 16``. ``F32``, ``F16`` and ``BF16`` are plain arrays.

Arithmetic is float32 (as in ggml and ``gguf``), then the result is cast to
the dtype asked for, so every dtype holds the same numbers the file means.
"""

import numpy as np
import torch
from torch import Tensor

#: Supported ggml type name -> (weights per block, bytes per block).
BLOCKS = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q8_0": (32, 34),
}


def dequantize(raw: np.ndarray | Tensor, kind: str, shape: tuple[int, ...], *,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Decode one stored tensor into a dense ``shape`` tensor of ``dtype``.

    Args:
        raw: The tensor's bytes (any shape; ``uint8``), or its values for the
            plain float types (as the ``gguf`` reader gives them).
        kind: The ggml type name, a key of :data:`BLOCKS`.
        shape: The logical shape, row-major (``gguf``'s reversed ``ne``): for a
            weight matrix ``(out_features, in_features)``.
        dtype: The floating dtype of the result.

    Returns:
        A new ``shape`` tensor of ``dtype``.

    Raises:
        ValueError: If ``kind`` is not supported or the byte count does not fit
            ``shape`` (a truncated or corrupt tensor).
    """
    if kind not in BLOCKS:
        raise ValueError(f"ggml tensor type {kind} is not supported; "
                         f"supported: {', '.join(BLOCKS)}")
    block, size = BLOCKS[kind]
    count = int(np.prod(shape, dtype=np.int64))
    # a copy: the reader's arrays are read-only views of the mapped file
    data = torch.from_numpy(np.array(raw, copy=True)).reshape(-1)
    if data.dtype in (torch.float32, torch.float16) and kind in ("F32", "F16"):
        return data.reshape(shape).to(dtype)
    data = data.view(torch.uint8)
    if count % block or data.numel() != count // block * size:
        raise ValueError(f"a {kind} tensor of shape {shape} needs {count // block * size} "
                         f"bytes, the file holds {data.numel()}")
    if kind in ("F32", "F16", "BF16"):
        plain = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[kind]
        return data.view(plain).reshape(shape).to(dtype)
    blocks = data.reshape(-1, size)  # (N, bytes per block)
    d = blocks[:, :2].contiguous().view(torch.float16).float()  # (N, 1)
    if kind == "Q8_0":
        q = blocks[:, 2:].contiguous().view(torch.int8).float()  # (N, 32)
        return q.mul_(d).reshape(shape).to(dtype)
    packed = blocks[:, 4:] if kind == "Q4_1" else blocks[:, 2:]  # (N, 16)
    w = torch.empty(blocks.shape[0], 32)  # (N, 32) float32, filled in place
    w[:, :16].copy_(packed & 0x0F)
    w[:, 16:].copy_(packed >> 4)
    if kind == "Q4_0":
        return w.sub_(8.0).mul_(d).reshape(shape).to(dtype)
    m = blocks[:, 2:4].contiguous().view(torch.float16).float()  # (N, 1)
    return w.mul_(d).add_(m).reshape(shape).to(dtype)
