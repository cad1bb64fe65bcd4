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


# ---- against a float64 reference written from the format's definition ----------------

EDGE_F16 = np.array([0.0, -0.0, 6.1e-5, 6e-8, -6e-8, 65504.0, -65504.0, 1.0, -2.5, 0.0999],
                    dtype=np.float16)  # zeros, smallest normal, subnormals, largest, plain


def reference(raw: np.ndarray, kind: str, count: int) -> np.ndarray:
    """``count`` weights from ``raw`` bytes, block by block, in float64 (ggml-quants.c)."""
    raw = raw.reshape(-1)
    if kind in ("F32", "F16"):
        return raw.view(np.float32 if kind == "F32" else np.float16).astype(np.float64)
    if kind == "BF16":  # bfloat16 is the top half of a float32
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    block, size = BLOCKS[kind]
    out = np.empty(count)
    for b in range(count // block):
        blk = raw[b * size:(b + 1) * size]
        d = float(blk[:2].view(np.float16)[0])
        for j in range(block):
            if kind == "Q8_0":
                w = d * int(blk[2 + j].view(np.int8))
            else:
                byte = int(blk[(4 if kind == "Q4_1" else 2) + j % 16])
                q = byte & 0x0F if j < 16 else byte >> 4
                w = d * q + float(blk[2:4].view(np.float16)[0]) if kind == "Q4_1" else d * (q - 8)
            out[b * block + j] = w
    return out


def edge_blocks(kind: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random blocks whose scales, minima and quants include the edge values."""
    raw = random_blocks(kind, rows, cols, rng).reshape(-1)
    if kind in ("F16", "BF16", "F32"):
        dtype = {"F16": np.float16, "BF16": np.uint16, "F32": np.float32}[kind]
        values = raw.view(dtype)
        edges = (EDGE_F16.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16) \
            if kind == "BF16" else EDGE_F16.astype(dtype)
        values[: len(edges)] = edges
        if kind == "F32":
            values[len(edges):len(edges) + 3] = [1e-45, 3.4e38, -1.2e-38]  # subnormal, max
        return raw
    block, size = BLOCKS[kind]
    blocks = raw.reshape(-1, size)
    n = blocks.shape[0]
    blocks[:, :2] = rng.choice(EDGE_F16, n).reshape(n, 1).view(np.uint8)
    if kind == "Q4_1":
        blocks[:, 2:4] = rng.choice(EDGE_F16, n).reshape(n, 1).view(np.uint8)
    quants = blocks[:, 4:] if kind == "Q4_1" else blocks[:, 2:]
    quants[0, :4] = [0x00, 0xFF, 0x0F, 0xF0]  # nibbles 0 and 15 / int8 0, -1, 15, -16
    if kind == "Q8_0":
        quants[0, 4:6] = [0x7F, 0x80]  # int8 127 and -128
    return raw


@pytest.mark.parametrize("kind", list(BLOCKS))
@pytest.mark.parametrize(("rows", "cols"), [(1, 32), (5, 96), (3, 224)])
def test_dequantize_equals_float64_reference(kind, rows, cols):
    rng = np.random.default_rng([rows, cols, list(BLOCKS).index(kind)])
    raw = edge_blocks(kind, rows, cols, rng)
    ref = torch.from_numpy(reference(raw, kind, rows * cols)).reshape(rows, cols)
    ours = dequantize(raw, kind, (rows, cols))  # float32 arithmetic, as in ggml
    assert ours.shape == (rows, cols)
    assert ours.dtype == torch.float32
    if kind == "Q4_1":  # d * q is exact in float32; adding m rounds once
        blocks = torch.from_numpy(raw.reshape(-1, 20)[:, :4].copy()).view(torch.float16)
        scale = blocks.double().abs().sum(1).repeat_interleave(32).reshape(rows, cols) * 15
        assert ((ours.double() - ref).abs() <= scale * 2.0 ** -24).all()
    else:  # every product of a float16 and a small integer is a float32: exact
        assert torch.equal(ours.double(), ref)
    assert torch.equal(dequantize(raw, kind, (rows, cols), dtype=torch.float64), ours.double())


def test_the_reference_can_tell():
    """The reference reads nibble order and signs: swapping them changes it."""
    raw = np.zeros(20, np.uint8)
    raw[:2] = np.array([1.0], np.float16).view(np.uint8)
    raw[4] = 0x21
    ref = reference(raw, "Q4_1", 32)
    assert (ref[0], ref[16], ref[1]) == (1.0, 2.0, 0.0)
    raw8 = np.zeros(34, np.uint8)
    raw8[:2] = np.array([0.5], np.float16).view(np.uint8)
    raw8[2] = 0x80
    assert reference(raw8, "Q8_0", 32)[0] == -64.0
