"""explain on models from_hf loads: the steps recompose, and the weights are the ones the
library that defines the model computes (transformers' output_attentions, eager path)."""

import pytest
import torch

import attnlab as al

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402


def _hf_weights(hf, ids):
    with torch.no_grad():
        return hf(ids, output_attentions=True).attentions  # per layer (B, H, L, S)


def test_gpt2_every_head_of_every_layer():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=4, vocab_size=50,
                                     n_positions=32, attn_implementation="eager")
    hf = transformers.GPT2LMHeadModel(config).double().eval()
    model = from_hf(hf).double()
    ids = torch.randint(0, 50, (1, 7))
    reference = _hf_weights(hf, ids)
    for layer in range(2):
        for head in range(4):
            ex = al.explain(model, ids, layer=layer, head=head)
            assert ex.error <= 1e-10
            torch.testing.assert_close(ex["weights"], reference[layer][0, head], rtol=0,
                                       atol=1e-12)


def test_llama_gqa_with_rotary():
    torch.manual_seed(1)
    config = transformers.LlamaConfig(vocab_size=40, hidden_size=24, num_hidden_layers=1,
                                      num_attention_heads=6, num_key_value_heads=2,
                                      intermediate_size=20, max_position_embeddings=32,
                                      attn_implementation="eager")
    hf = transformers.LlamaForCausalLM(config).double().eval()
    model = from_hf(hf).double()
    ids = torch.randint(0, 40, (1, 6))
    reference = _hf_weights(hf, ids)
    for head in range(6):
        ex = al.explain(model, ids, layer=0, head=head)
        assert ex.error <= 1e-10
        assert ex.kv_head == head // 3
        assert "q_raw" in ex
        # HF builds its rotary tables in float32 even for a float64 model (~1e-7)
        torch.testing.assert_close(ex["weights"], reference[0][0, head], rtol=0, atol=1e-6)
