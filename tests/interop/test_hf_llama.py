import pytest
import torch
from torch import nn

from interop_helpers import batch, rel_error

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.interop.hf_llama import llama_config  # noqa: E402
from attnlab.models.decoder import DecoderLM  # noqa: E402

SIZES = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=64, rope_theta=500000.0,
             bos_token_id=None, eos_token_id=None, pad_token_id=0, initializer_range=0.2)

# (num_key_value_heads, head_dim, tied, bias): GQA, MQA, MHA; head_dim != 32/4; biases
VARIANTS = [(2, None, False, False), (1, None, True, False), (2, 12, True, False),
            (4, 6, False, True)]


def make_llama(kv_heads: int = 2, head_dim: int | None = None, tied: bool = False,
               bias: bool = False, seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(**{
        **SIZES, "num_key_value_heads": kv_heads, "head_dim": head_dim,
        "tie_word_embeddings": tied, "attention_bias": bias, "mlp_bias": bias, **overrides})
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms start at 1: make their weights matter
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.normal_(1.0 if "norm" in name else 0.0, 0.3)
    return model


# HF computes the rotary tables in float32 even for a float64 model, so the
# float64 comparison is limited by float32 angles (measured ~1e-7).
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-6)])
@pytest.mark.parametrize(("kv_heads", "head_dim", "tied", "bias"), VARIANTS)
def test_logits_equal_transformers(dtype, tol, kv_heads, head_dim, tied, bias):
    hf = make_llama(kv_heads, head_dim, tied, bias).to(dtype)
    lm = from_hf(hf)
    assert isinstance(lm, DecoderLM)
    cfg = lm.config
    assert (cfg.num_kv_heads, cfg.resolved_head_dim, cfg.tie_embeddings, cfg.bias) == (
        kv_heads, head_dim or 8, tied, bias)
    assert cfg.rope_theta == 500000.0
    assert (lm.lm_head.weight is lm.embed.tokens.weight) == tied
    ids, mask = batch()
    with torch.no_grad():
        ref, ref_padded = hf(ids).logits, hf(ids, attention_mask=mask).logits
        ours, ours_padded = lm(ids), lm(ids, mask)
    assert ours.dtype == dtype
    assert rel_error(ours, ref) <= tol
    real = mask.bool()
    assert rel_error(ours_padded[real], ref_padded[real]) <= tol


def test_rope_theta_matters():
    ids, _ = batch()
    hf = make_llama()
    lm = from_hf(hf)
    hf.config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
    other = from_hf(hf)
    with torch.no_grad():
        assert rel_error(other(ids), lm(ids)) > 1e-3


@pytest.mark.parametrize(("kv_heads", "head_dim", "tied", "bias"), VARIANTS[:3])
def test_greedy_generation_equals_transformers(kv_heads, head_dim, tied, bias):
    hf = make_llama(kv_heads, head_dim, tied, bias)
    lm = from_hf(hf)
    ids = torch.randint(1, 99, (2, 5), generator=torch.Generator().manual_seed(3))
    ref = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                      max_new_tokens=8)
    assert len(set(ref[:, 5:].flatten().tolist())) > 2  # a test that could tell tokens apart
    assert torch.equal(lm.generate(ids, 8, temperature=0.0), ref)
    assert torch.equal(lm.generate(ids, 8, temperature=0.0, use_cache=False), ref)


def test_one_token_at_a_time_with_cache_equals_full_forward():
    lm = from_hf(make_llama(kv_heads=1, head_dim=12))
    ids, _ = batch()
    cache = lm.new_cache()
    with torch.no_grad():
        full = lm(ids)
        prefix = lm(ids[:, :4], cache=cache)
        steps = [lm(ids[:, t : t + 1], cache=cache) for t in range(4, ids.shape[1])]
    assert rel_error(torch.cat([prefix, *steps], dim=1), full) <= 1e-5


def test_dtype_and_mode_follow_source():
    lm = from_hf(make_llama().double().train())
    assert lm.training
    assert {p.dtype for p in lm.parameters()} == {torch.float64}
    assert (lm.config.max_len, lm.config.norm) == (64, "rmsnorm")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}},
         "rope type 'linear' is not supported"),
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}},
         "rope type 'dynamic' is not supported"),
        ({"attention_bias": True, "mlp_bias": False}, "attention_bias=True and mlp_bias=False"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({"attention_dropout": 0.1}, "attention_dropout=0.1"),
    ],
)
def test_unsupported_options_raise(overrides, message):
    config = transformers.LlamaConfig(**{**SIZES, **overrides})
    with pytest.raises(ValueError, match=message):
        llama_config(config)


def test_partial_rotary_factor_raises():
    config = transformers.LlamaConfig(**SIZES).to_dict()
    config["rope_parameters"] = {**config["rope_parameters"], "partial_rotary_factor": 0.5}
    with pytest.raises(ValueError, match="partial_rotary_factor=0.5"):
        llama_config(config)
