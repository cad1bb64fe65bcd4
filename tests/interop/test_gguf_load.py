"""load_gguf on small GGUF files written here: weights, config, checks before work.

A random Hugging Face Llama is written the way llama.cpp's converter writes it
(q/k rows permuted for ggml's rotary), then loaded back: the logits must be the
Hugging Face model's. Real weights (SmolLM2) are compared in test_gguf_smollm2.py.
"""

import pytest
import torch

from gguf_files import TOKENS, hf_llama, permute, q8_0, write_gguf
from interop_helpers import batch, rel_error

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

from attnlab.interop import GGUFModel, load_gguf  # noqa: E402
from attnlab.interop import gguf_model as gguf_model_module  # noqa: E402
from attnlab.interop.gguf_model import unpermute  # noqa: E402


@pytest.mark.parametrize(("kv_heads", "tied"), [(2, True), (1, False), (4, True)])
def test_logits_equal_the_model_written(tmp_path, kv_heads, tied):
    hf = hf_llama(kv_heads, tied)
    loaded = load_gguf(write_gguf(tmp_path / "tiny.gguf", hf))
    assert isinstance(loaded, GGUFModel)
    cfg = loaded.model.config
    assert (cfg.num_layers, cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads) == (2, 64, 4, kv_heads)
    assert (cfg.rope_theta, cfg.max_len, cfg.tie_embeddings) == (1000.0, 40, tied)
    ids, mask = batch()
    left = mask.flip(1)  # row 1 left-padded
    with torch.no_grad():
        assert rel_error(loaded.model(ids), hf(ids).logits) <= 1e-5
        for m in (mask, left):
            ref, ours = hf(ids, attention_mask=m).logits, loaded.model(ids, m)
            assert rel_error(ours[m.bool()], ref[m.bool()]) <= 1e-5


def test_float64_and_quantised_tensors(tmp_path):
    hf = hf_llama()
    kinds = {"blk.0.attn_q.weight": "Q8_0", "blk.1.ffn_up.weight": "F16"}
    path = write_gguf(tmp_path / "mixed.gguf", hf, tensor_kinds=kinds)
    loaded = load_gguf(path, dtype=torch.float64)
    q = loaded.model.decoder.layers[0].self_attn.q_proj.weight
    assert q.dtype == torch.float64
    expected = torch.from_numpy(gguf.quants.dequantize(
        q8_0(permute(hf.model.layers[0].self_attn.q_proj.weight.detach(), 4).numpy()),
        gguf.GGMLQuantizationType.Q8_0).copy())
    assert torch.equal(q, unpermute(expected, 4).double())
    up = loaded.model.decoder.layers[1].ffn.up_proj.weight
    assert torch.equal(up, hf.model.layers[1].mlp.up_proj.weight.detach().half().double())


def test_unpermute_inverts_llama_cpp_permutation():
    w = torch.randn(3 * 10, 7)
    assert torch.equal(unpermute(permute(w, 3), 3), w)
    assert not torch.equal(permute(w, 3), w)


def test_tokenizer_and_template_from_metadata(tmp_path):
    loaded = load_gguf(write_gguf(tmp_path / "tiny.gguf", hf_llama()))
    tok = loaded.tokenizer
    ids = tok.encode("the<|im_end|> then")
    assert ids[-2:] == [TOKENS.index("Ġthe"), TOKENS.index("n")]
    assert TOKENS.index("<|im_end|>") in ids  # a special token stays whole
    assert tok.decode(ids) == "the<|im_end|> then"
    assert (tok.bos_id, tok.eos_id) == (1, 2)
    text = loaded.render([{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert loaded.encode_chat([{"role": "user", "content": "hi"}]).shape[0] == 1


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_gguf(tmp_path / "absent.gguf")


def test_wrong_magic(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGML" + bytes(100))
    with pytest.raises(ValueError, match="not a GGUF file"):
        load_gguf(path)


def test_truncated_file(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", hf_llama())
    data = path.read_bytes()
    for cut in (len(data) - 100, 40):  # inside the tensor data; inside the metadata
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated"):
            load_gguf(tmp_path / "cut.gguf")


@pytest.fixture
def no_decoding(monkeypatch):
    """Make decoding a tensor fail: the errors below must come before any."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a tensor was decoded before the check")
    monkeypatch.setattr(gguf_model_module, "dequantize", forbidden)


def test_unsupported_architecture(tmp_path, no_decoding):
    path = write_gguf(tmp_path / "m.gguf", hf_llama(), arch="qwen2")
    with pytest.raises(ValueError, match="architecture 'qwen2' is not supported"):
        load_gguf(path)


def test_unsupported_tensor_type(tmp_path, no_decoding):
    path = write_gguf(tmp_path / "m.gguf", hf_llama(),
                      tensor_kinds={"blk.1.ffn_gate.weight": "Q5_0"})
    with pytest.raises(ValueError, match=r"blk\.1\.ffn_gate\.weight \(Q5_0\)"):
        load_gguf(path)


def test_missing_key(tmp_path, no_decoding):
    path = write_gguf(tmp_path / "m.gguf", hf_llama(), drop=("attention.layer_norm_rms_epsilon",))
    with pytest.raises(ValueError, match="llama.attention.layer_norm_rms_epsilon"):
        load_gguf(path)


def test_bad_dtype(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        load_gguf(tmp_path / "x.gguf", dtype=torch.int64)
