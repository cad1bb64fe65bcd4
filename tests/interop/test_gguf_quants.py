"""attnlab's torch dequantisation against the gguf package's NumPy reference."""

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from attnlab.interop.gguf_quants import BLOCKS, dequantize  # noqa: E402


def random_blocks(kind: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` rows of ``cols`` weights stored as ``kind``: the raw bytes, (rows, bytes)."""
    block, size = BLOCKS[kind]
    n = rows * cols // block
    if kind == "F32":
        return rng.standard_normal((rows, cols)).astype(np.float32).view(np.uint8)
    if kind == "F16":
        return rng.standard_normal((rows, cols)).astype(np.float16).view(np.uint8)
    if kind == "BF16":  # the top half of float32s
        return (rng.standard_normal((rows, cols)).astype(np.float32).view(np.uint32)
                >> 16).astype(np.uint16).view(np.uint8)
    raw = rng.integers(0, 256, (n, size), dtype=np.uint8)
    scales = (rng.standard_normal((n, 2)) * 0.05).astype(np.float16)  # finite d (and m)
    raw[:, :2] = scales[:, :1].view(np.uint8)
    if kind == "Q4_1":
        raw[:, 2:4] = scales[:, 1:].view(np.uint8)
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("kind", list(BLOCKS))
@pytest.mark.parametrize(("rows", "cols"), [(1, 32), (3, 96), (7, 160)])
def test_dequantize_equals_gguf_reference(kind, rows, cols):
    rng = np.random.default_rng(hash((kind, rows, cols)) % 2**32)
    raw = random_blocks(kind, rows, cols, rng)
    ref = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[kind])  # (rows, cols) float32
    assert ref.shape == (rows, cols)
    ours = dequantize(raw, kind, (rows, cols))
    assert ours.dtype == torch.float32
    assert torch.equal(ours, torch.from_numpy(ref.copy()))
    ours64 = dequantize(raw, kind, (rows, cols), dtype=torch.float64)
    assert torch.equal(ours64, torch.from_numpy(ref.astype(np.float64)))


def test_q4_1_by_hand():
    # one block: d = 0.5, m = -1, bytes 0x21 -> weight j = 1 (low nibble), weight j+16 = 2
    raw = np.zeros(20, dtype=np.uint8)
    raw[:2] = np.array([0.5], dtype=np.float16).view(np.uint8)
    raw[2:4] = np.array([-1.0], dtype=np.float16).view(np.uint8)
    raw[4:] = 0x21
    w = dequantize(raw, "Q4_1", (32,))
    assert torch.equal(w, torch.tensor([-0.5] * 16 + [0.0] * 16))


def test_plain_values_as_the_reader_gives_them():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert torch.equal(dequantize(values, "F32", (2, 3)), torch.from_numpy(values.copy()))


def test_bad_input():
    with pytest.raises(ValueError, match="Q5_K is not supported"):
        dequantize(np.zeros(10, np.uint8), "Q5_K", (32,))
    with pytest.raises(ValueError, match="needs 20 bytes, the file holds 19"):
        dequantize(np.zeros(19, np.uint8), "Q4_1", (32,))
    with pytest.raises(ValueError, match="needs"):
        dequantize(np.zeros(34, np.uint8), "Q8_0", (31,))
