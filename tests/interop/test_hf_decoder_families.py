"""from_hf for the decoder LM families: GPT-2, Llama, Mistral, Qwen2, Gemma, Phi-3, GPT-NeoX, OPT.

Each family is built from a tiny random config with odd sizes (and grouped-query
heads where the family has them); norm gains and biases are drawn away from
1 and 0 so that loading them matters.
"""

import logging

import pytest
import torch

from hf_parity import (
    attention_maps_equal,
    float64_throughout,
    greedy_equal,
    ids_and_masks,
    max_errors,
    randomize,
)

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.models.decoder import DecoderLM, DecoderModel  # noqa: E402

V = 61
LLAMA_LIKE = dict(vocab_size=V, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=64, pad_token_id=0,
                  bos_token_id=1, eos_token_id=2, initializer_range=0.2)
OPT = dict(vocab_size=V, hidden_size=30, num_hidden_layers=2, ffn_dim=37, num_attention_heads=3,
           max_position_embeddings=64, dropout=0.0, pad_token_id=1, bos_token_id=2,
           eos_token_id=2, word_embed_proj_dim=30, init_std=0.2)

# name -> (config class, LM class, base class, config kwargs)
FAMILIES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "GPT2Model",
             dict(vocab_size=V, n_positions=64, n_embd=36, n_layer=2, n_head=3, n_inner=37,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.2)),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "LlamaModel",
              {**LLAMA_LIKE, "num_key_value_heads": 2, "head_dim": 10}),
    "mistral": ("MistralConfig", "MistralForCausalLM", "MistralModel",
                {**LLAMA_LIKE, "num_key_value_heads": 2, "sliding_window": 4}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "Qwen2Model",
              {**LLAMA_LIKE, "num_key_value_heads": 2}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", "GemmaModel",
              {**LLAMA_LIKE, "num_key_value_heads": 1, "head_dim": 10}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "Phi3Model",
             {**LLAMA_LIKE, "num_key_value_heads": 2, "sliding_window": 5}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", "GPTNeoXModel",
                 {**LLAMA_LIKE, "hidden_size": 36, "num_attention_heads": 3,
                  "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                      "partial_rotary_factor": 0.5}}),
    "gpt_neox_sequential": ("GPTNeoXConfig", "GPTNeoXForCausalLM", "GPTNeoXModel",
                            {**LLAMA_LIKE, "hidden_size": 32, "num_attention_heads": 2,
                             "use_parallel_residual": False}),
    "opt": ("OPTConfig", "OPTForCausalLM", "OPTModel", OPT),
    "opt_postnorm": ("OPTConfig", "OPTForCausalLM", "OPTModel",
                     {**OPT, "do_layer_norm_before": False}),
}
# HF computes rotary angles in float32 even for float64 models (measured ~1e-7);
# GPT-2 and OPT (no rotary) are float64 throughout.
F64_TOL = {"gpt2": 1e-10, "opt": 1e-10, "opt_postnorm": 1e-10}


def make(name: str, base: bool = False, seed: int = 0, **overrides):
    config_cls, lm_cls, base_cls, kwargs = FAMILIES[name]
    torch.manual_seed(seed)
    config = getattr(transformers, config_cls)(**{**kwargs, **overrides})
    model = getattr(transformers, base_cls if base else lm_cls)(config)
    return randomize(model.eval(), seed)


def masks_for(name: str) -> tuple[torch.Tensor, dict]:
    ids, masks = ids_and_masks(V)
    return ids, masks


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_equal_transformers(name, dtype):
    hf = make(name).to(dtype)
    lm = from_hf(hf)
    assert isinstance(lm, DecoderLM)
    assert next(lm.parameters()).dtype == dtype
    ids, masks = masks_for(name)
    tol = 1e-5 if dtype == torch.float32 else F64_TOL.get(name, 1e-6)
    errors = max_errors(hf, lm, ids, masks)
    assert max(errors.values()) <= tol, errors


@pytest.mark.parametrize("name", ["llama", "mistral", "qwen2", "gemma", "phi3", "gpt_neox"])
def test_float64_exact_once_transformers_float32_steps_run_in_float64(name):
    hf = float64_throughout(make(name).double())
    lm = from_hf(hf)
    ids, masks = masks_for(name)
    errors = max_errors(hf, lm, ids, masks)
    assert max(errors.values()) <= 1e-10, errors


@pytest.mark.parametrize("name", ["gpt2", "llama", "mistral", "gemma", "gpt_neox", "opt"])
def test_base_model_returns_hidden_states(name):
    hf = make(name, base=True)
    body = from_hf(hf)
    assert isinstance(body, DecoderModel)
    ids, masks = masks_for(name)
    errors = max_errors(hf, body, ids, masks)
    assert max(errors.values()) <= 1e-5, errors


@pytest.mark.parametrize("name", ["mistral", "qwen2", "gemma", "phi3", "gpt_neox", "opt"])
def test_greedy_generation_equals_transformers(name):
    # seed 0: OPT repeats one token; Gemma's tied, sqrt(E)-scaled embeddings need wide
    # weights for varied greedy tokens
    wide = {"initializer_range": 1.0} if name == "gemma" else {}
    hf = make(name, seed=1 if name == "opt" else 0, **wide)
    lm = from_hf(hf)
    ids = torch.randint(3, V, (2, 6), generator=torch.Generator().manual_seed(3))
    greedy_equal(hf, lm, ids, n=10)  # 16 tokens: past Mistral's and Phi-3's windows


@pytest.mark.parametrize(
    "name", ["gpt2", "llama", "mistral", "qwen2", "gemma", "phi3", "gpt_neox", "opt"])
def test_attention_maps_equal_transformers_eager(name):
    hf = make(name)
    lm = from_hf(hf)
    ids, masks = masks_for(name)
    names = [f"decoder.layers.{i}.self_attn" for i in range(2)]
    assert attention_maps_equal(hf, lm, ids, masks["right"], names) == 2


def test_sampling_cached_equals_uncached():
    lm = from_hf(make("qwen2"))
    ids = torch.randint(3, V, (2, 4), generator=torch.Generator().manual_seed(4))
    runs = [lm.generate(ids, 12, temperature=1.3, top_k=20, use_cache=cached,
                        generator=torch.Generator().manual_seed(9)) for cached in (True, False)]
    assert torch.equal(runs[0], runs[1])
    assert runs[0].shape == (2, 16)
    assert int(runs[0].max()) < V


def test_mistral_window_longer_input_takes_the_windowed_path(caplog):
    hf = make("mistral")
    lm = from_hf(hf)
    assert lm.config.window == 4
    ids, masks = ids_and_masks(V, L=13)  # 13 tokens > window 4
    errors = max_errors(hf, lm, ids, {k: masks[k] for k in ("none", "right")})
    assert max(errors.values()) <= 1e-5, errors
    with caplog.at_level(logging.DEBUG, logger="attnlab"), torch.no_grad():
        lm(ids)
        lm(ids, masks["right"])
    paths = [r.getMessage() for r in caplog.records if r.getMessage().startswith("attention L=")]
    assert len(paths) == 4, paths  # 2 layers x 2 calls
    assert all(": windowed (" in p for p in paths), paths
    # the window is what makes it equal: without it the outputs differ
    full = from_hf(make("mistral", sliding_window=None))
    with torch.no_grad():
        assert (full(ids) - lm(ids)).abs().max() > 1e-3


def test_partial_rotary_and_parallel_residual_are_attnlab_parts():
    lm = from_hf(make("gpt_neox"))
    assert (lm.config.rotary_dim, lm.config.resolved_head_dim) == (6, 12)
    assert lm.config.residual == "parallel"
    assert lm.embed.rotary.rotary_dim == 6
    assert from_hf(make("gpt_neox_sequential")).config.residual == "sequential"


def test_family_parts():
    gemma = from_hf(make("gemma")).config
    assert (gemma.norm, gemma.ffn, gemma.embed_scale, gemma.num_kv_heads) == (
        "rmsnorm_offset", "geglu", True, 1)
    qwen = from_hf(make("qwen2"))
    attn = qwen.decoder.layers[0].self_attn
    assert attn.q_proj.bias is not None
    assert attn.out_proj.bias is None
    assert qwen.decoder.layers[0].ffn.up_proj.bias is None


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("mistral", {"layer_types": ["full_attention", "sliding_attention"]},
         "layer_types mixing"),
        ("qwen2", {"use_sliding_window": True, "sliding_window": 4},
         "use_sliding_window=True"),
        ("gemma", {"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
        ("phi3", {"rope_parameters": {"rope_type": "longrope", "rope_theta": 1e4,
                                      "short_factor": [1.0] * 3, "long_factor": [1.0] * 3,
                                      "original_max_position_embeddings": 32}},
         "rope type 'longrope' is not supported"),
        ("phi3", {"resid_pdrop": 0.1}, "resid_pdrop=0.1"),
        ("gpt_neox", {"attention_bias": False}, "attention_bias=False"),
        ("opt", {"word_embed_proj_dim": 16}, "word_embed_proj_dim=16"),
        ("opt", {"attention_dropout": 0.1}, "one dropout rate"),
    ],
)
def test_unsupported_options_are_refused_by_name(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        from_hf(make(name, **overrides))


def test_opt_left_padding_with_a_cache_counts_real_tokens():
    hf = make("opt")
    lm = from_hf(hf)
    assert lm.config.positions == "learned_real"
    ids, masks = ids_and_masks(V)
    mask = masks["left"]
    cache = lm.new_cache()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask).logits
        steps = [lm(ids[:, :6], mask[:, :6], cache=cache)]
        steps += [lm(ids[:, t:t + 1], mask[:, :t + 1], cache=cache) for t in range(6, 11)]
    ours = torch.cat(steps, dim=1)
    real = mask.bool()
    assert (ours[real] - ref[real]).abs().max() <= 1e-5 * ref[real].abs().max()
