"""BlockLinear: a GGUF's Q4_1/Q8_0 blocks kept bit for bit, and the products that read them.

The block product for one token is compiled (inductor, once per shape: seconds),
so these tests use one small shape per type.
"""

import numpy as np
import pytest
import torch

from gguf_files import hf_llama, write_gguf

pytest.importorskip("gguf")

from attnlab.interop import load_gguf  # noqa: E402
from attnlab.interop.gguf_file import StoredTensor  # noqa: E402
from attnlab.interop.gguf_model import unpermute  # noqa: E402
from attnlab.interop.gguf_qlinear import BlockLinear, q4_1_product, q8_0_product  # noqa: E402
from attnlab.interop.gguf_quants import BLOCKS, dequantize  # noqa: E402

SHAPES = {"Q4_1": (7, 96), "Q8_0": (5, 64)}  # N outputs, K inputs: 3 and 2 blocks a row


def stored(kind: str, rows: int, cols: int, rng: np.random.Generator, *,
           any_bits: bool = False) -> StoredTensor:
    """Random blocks; ``any_bits``: every byte random, NaN and infinite scales included."""
    size = BLOCKS[kind][1]
    raw = rng.integers(0, 256, (rows, cols // 32, size), dtype=np.uint8)
    if not any_bits:  # finite, small scales and minima
        fields = 2 if kind == "Q4_1" else 1
        raw[..., : 2 * fields] = (rng.standard_normal((rows, cols // 32, fields)) * 0.05
                                  ).astype(np.float16).view(np.uint8)
    return StoredTensor("w", kind, (rows, cols), raw.reshape(rows, -1))


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
def test_repacking_gives_the_file_bytes(kind):
    rng = np.random.default_rng(len(kind))
    for rows, cols in [(1, 32), (6, 160)]:
        raw = stored(kind, rows, cols, rng, any_bits=True)  # signalling NaNs too
        block = BlockLinear.from_stored(raw)
        assert block.to_bytes().tobytes() == raw.data.tobytes()
        ref = dequantize(raw.data, kind, (rows, cols))
        assert torch.equal(block.dequantized().isnan(), ref.isnan())
        assert torch.equal(block.dequantized().nan_to_num(), ref.nan_to_num())


def test_row_order_keeps_the_blocks_whole():
    rng = np.random.default_rng(7)
    raw = stored("Q4_1", 3 * 4, 64, rng)  # 3 heads of width 4, permuted by llama.cpp
    rows = unpermute(torch.arange(12), 3)
    block = BlockLinear.from_stored(raw, rows)
    dense = dequantize(raw.data, "Q4_1", (12, 64))
    assert torch.equal(block.dequantized(), unpermute(dense, 3))
    back = np.empty_like(block.to_bytes())
    back[rows.numpy()] = block.to_bytes()  # undo the order: the file's bytes again
    assert back.tobytes() == raw.data.tobytes()


@pytest.mark.parametrize("kind", ["Q4_1", "Q8_0"])
def test_the_block_products_equal_a_float64_product(kind):
    rng = np.random.default_rng(3)
    n, k = SHAPES[kind]
    block = BlockLinear.from_stored(stored(kind, n, k, rng))
    w64 = dequantize(block.to_bytes(), kind, (n, k), dtype=torch.float64)
    eager = q4_1_product if kind == "Q4_1" else q8_0_product
    for _ in range(2):
        x = torch.randn(k)
        ref = w64 @ x.double()
        with torch.no_grad():
            for y in (eager(x, block.codes, block.scale, block.minimum),  # as written
                      block(x.view(1, 1, k))[0, 0]):                      # compiled
                assert y.shape == (n,)
                assert y.dtype == torch.float32
                assert ((y.double() - ref).abs().max() / ref.abs().max()).item() <= 1e-5
    xs = torch.randn(2, 3, k)  # more than one token: the dense path, the same weights
    assert torch.equal(block(xs), torch.nn.functional.linear(xs, w64.float()))
    with pytest.raises(ValueError, match=f"x must end in {k} features, got \\(2, 5\\)"):
        block(torch.randn(2, 5))


def test_keep_quantized_on_a_small_file(tmp_path):
    pytest.importorskip("transformers")
    kinds = {f"blk.{i}.{name}.weight": "Q8_0" for i in (0, 1)
             for name in ("attn_q", "attn_k", "ffn_up")}
    path = write_gguf(tmp_path / "q.gguf", hf_llama(kv_heads=2), tensor_kinds=kinds)
    dense = load_gguf(path, cache=False)
    kept = load_gguf(path, cache=False, keep_quantized=True)
    attn = kept.model.decoder.layers[1].self_attn
    assert isinstance(attn.q_proj, BlockLinear)
    assert isinstance(attn.k_proj, BlockLinear)
    assert isinstance(kept.model.decoder.layers[0].ffn.up_proj, BlockLinear)
    assert isinstance(attn.v_proj, torch.nn.Linear)  # stored as F32: left dense
    assert torch.equal(attn.q_proj.dequantized(),
                       dense.model.decoder.layers[1].self_attn.q_proj.weight)
    ids = torch.tensor([[5, 9, 31, 2, 77, 4]])
    with torch.no_grad():
        assert torch.equal(kept.model(ids), dense.model(ids))  # the prompt: dense weights
    with pytest.raises(ValueError, match="dtype must be torch.float32"):
        load_gguf(path, dtype=torch.float64, keep_quantized=True)
    with pytest.raises(TypeError, match="keep_quantized must be True or False"):
        load_gguf(path, keep_quantized=1)
