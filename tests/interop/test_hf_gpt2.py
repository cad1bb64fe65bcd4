import pytest
import torch
from torch import nn

from interop_helpers import batch, rel_error

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.interop.hf_gpt2 import gpt2_config  # noqa: E402
from attnlab.models.decoder import DecoderLM  # noqa: E402

SIZES = dict(vocab_size=99, n_positions=64, n_embd=36, n_layer=2, n_head=3, n_inner=37,
             bos_token_id=None, eos_token_id=None, pad_token_id=0, initializer_range=0.2)


def make_gpt2(seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**{**SIZES, **overrides})
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-6)])
@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "relu"])
def test_logits_equal_transformers(dtype, tol, activation):
    hf = make_gpt2(activation_function=activation).to(dtype)
    lm = from_hf(hf)
    assert isinstance(lm, DecoderLM)
    ids, mask = batch()
    with torch.no_grad():
        ref = hf(ids).logits
        ref_padded = hf(ids, attention_mask=mask).logits
        ours, ours_padded = lm(ids), lm(ids, mask)
    assert ours.dtype == dtype
    assert rel_error(ours, ref) <= tol
    real = mask.bool()
    assert rel_error(ours_padded[real], ref_padded[real]) <= tol


def test_untied_head():
    hf = make_gpt2(tie_word_embeddings=False)
    assert hf.lm_head.weight is not hf.transformer.wte.weight
    with torch.no_grad():
        hf.lm_head.weight.normal_()
    lm = from_hf(hf)
    assert lm.lm_head.weight is not lm.embed.tokens.weight
    ids, _ = batch()
    with torch.no_grad():
        assert rel_error(lm(ids), hf(ids).logits) <= 1e-4


def test_tied_head_is_shared():
    lm = from_hf(make_gpt2())
    assert lm.lm_head.weight is lm.embed.tokens.weight


def test_dtype_device_and_mode_follow_source():
    hf = make_gpt2().double().train()
    lm = from_hf(hf)
    assert lm.training
    assert {p.dtype for p in lm.parameters()} == {torch.float64}
    assert (lm.config.dropout, lm.config.max_len, lm.config.ffn_dim) == (0.1, 64, 37)
    assert not from_hf(make_gpt2()).training


def test_greedy_generation_equals_transformers():
    hf = make_gpt2()
    lm = from_hf(hf)
    ids = torch.randint(1, 99, (2, 5), generator=torch.Generator().manual_seed(3))
    ref = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                      max_new_tokens=8)
    ours = lm.generate(ids, 8, temperature=0.0)
    assert len(set(ref[:, 5:].flatten().tolist())) > 2  # a test that could tell tokens apart
    assert torch.equal(ours, ref)
    assert torch.equal(lm.generate(ids, 8, temperature=0.0, use_cache=False), ref)


def test_one_token_at_a_time_with_cache_equals_full_forward():
    lm = from_hf(make_gpt2())
    ids, _ = batch()
    cache = lm.new_cache()
    with torch.no_grad():
        full = lm(ids)
        steps = torch.cat([lm(ids[:, t : t + 1], cache=cache) for t in range(ids.shape[1])], 1)
    assert rel_error(steps, full) <= 1e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
        ({"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn=True"),
        ({"add_cross_attention": True}, "add_cross_attention=True"),
        ({"scale_attn_weights": False}, "scale_attn_weights=False"),
        ({"activation_function": "tanh"}, "activation_function='tanh' is not supported"),
        ({"attn_pdrop": 0.0}, "one dropout rate"),
    ],
)
def test_unsupported_options_raise(overrides, message):
    config = transformers.GPT2Config(**{**SIZES, **overrides})
    with pytest.raises(ValueError, match=message):
        gpt2_config(config)


def test_unsupported_model_class_lists_supported():
    head = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(**SIZES))
    with pytest.raises(TypeError, match=r"BertModel, .*GPT2LMHeadModel, GPT2Model, .*"
                                        r"LlamaForCausalLM.*got .*GPT2ForSequenceClassification; "
                                        r"it wraps a supported GPT2Model"):
        from_hf(head)
    with pytest.raises(TypeError, match="got torch.nn.modules.linear.Linear"):
        from_hf(nn.Linear(2, 2))
