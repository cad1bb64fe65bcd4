"""load_gguf on small GGUF files written here: weights, config, checks before work.

A random Hugging Face Llama is written the way llama.cpp's converter writes it
(q/k rows permuted for ggml's rotary), then loaded back: the logits must be the
Hugging Face model's. Real weights (SmolLM2) are compared in test_gguf_smollm2.py.
"""

import numpy as np
import pytest
import torch

from interop_helpers import batch, rel_error

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

from attnlab.interop import GGUFModel, load_gguf  # noqa: E402
from attnlab.interop import gguf_model as gguf_model_module  # noqa: E402
from attnlab.interop.gguf_model import unpermute  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def byte_alphabet() -> list[str]:
    """GPT-2's printable spelling of the 256 bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


TOKENS = SPECIALS + byte_alphabet() + ["Ġt", "he", "Ġthe"]
MERGES = ["Ġ t", "h e", "Ġt he"]


def hf_llama(kv_heads=2, tied=True, seed=0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(TOKENS), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=kv_heads, intermediate_size=37, max_position_embeddings=40,
        rope_theta=1000.0, rms_norm_eps=1e-6, tie_word_embeddings=tied,
        bos_token_id=None, eos_token_id=None, pad_token_id=0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.3)
    return model


def permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's convert_hf_to_gguf.py permutation of q/k rows."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).transpose(1, 2) \
        .reshape(w.shape)


def q8_0(w: np.ndarray) -> np.ndarray:
    return gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)


def write_gguf(path, hf, *, arch="llama", drop=(), tensor_kinds=None, max_len=40):
    """Write ``hf`` (a LlamaForCausalLM) as a GGUF file; returns the path."""
    c = hf.config
    writer = gguf.GGUFWriter(str(path), arch)
    meta = {
        "block_count": c.num_hidden_layers, "context_length": max_len,
        "embedding_length": c.hidden_size, "feed_forward_length": c.intermediate_size,
        "attention.head_count": c.num_attention_heads,
        "attention.head_count_kv": c.num_key_value_heads,
    }
    for key, value in meta.items():
        if key not in drop:
            writer.add_uint32(f"{arch}.{key}", value)
    if "rope.freq_base" not in drop:
        writer.add_float32(f"{arch}.rope.freq_base", 1000.0)
    if "attention.layer_norm_rms_epsilon" not in drop:
        writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3] * len(SPECIALS) + [1] * (len(TOKENS) - len(SPECIALS)))
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(TEMPLATE)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
             "output_norm.weight", "lm_head.weight": "output.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    kinds = tensor_kinds or {}
    for key, value in hf.state_dict().items():
        if key == "lm_head.weight" and c.tie_word_embeddings:
            continue
        if key in names:
            name = names[key]
        else:
            layer, rest = key.split(".")[2], ".".join(key.split(".")[3:-1])
            name = f"blk.{layer}.{parts[rest]}.weight"
        w = value.detach().float()
        if name.endswith("attn_q.weight"):
            w = permute(w, c.num_attention_heads)
        if name.endswith("attn_k.weight"):
            w = permute(w, c.num_key_value_heads)
        array = w.numpy()
        kind = kinds.get(name, "F32")
        if kind == "F32":
            writer.add_tensor(name, array)
        elif kind == "F16":
            writer.add_tensor(name, array.astype(np.float16))
        elif kind == "Q8_0":
            writer.add_tensor(name, q8_0(array), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:  # bytes of the right size in a type attnlab does not decode
            qtype = gguf.GGMLQuantizationType[kind]
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = np.zeros((array.shape[0], array.shape[1] // block * size), np.uint8)
            writer.add_tensor(name, raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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
