"""Small GGUF files for tests: a random Hugging Face Llama written as llama.cpp writes it.

``write_gguf(path, hf_llama())`` permutes the q/k rows for ggml's rotary (as
llama.cpp's ``convert_hf_to_gguf.py`` does), stores a byte-level BPE vocabulary
of 262 tokens with three control tokens and a ChatML template.
"""

import numpy as np
import torch

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
    import transformers

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
    import gguf

    return gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)


def write_gguf(path, hf, *, arch="llama", drop=(), tensor_kinds=None, max_len=40):
    """Write ``hf`` (a LlamaForCausalLM) as a GGUF file; returns the path."""
    import gguf

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
