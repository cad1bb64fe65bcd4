"""The decoder-only LM: every positional scheme x mechanism, caching, generation, errors."""

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.models import DecoderLM, build_model
from attnlab.registry import ATTENTION

SCHEMES = ["sinusoidal", "learned", "rotary", "alibi", "none"]
MECHANISMS = ATTENTION.names()


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def pairs():
    for scheme in SCHEMES:
        for mechanism in MECHANISMS:
            if not ATTENTION.get(mechanism).dot_product and scheme in ("rotary", "alibi"):
                continue
            yield scheme, mechanism


def lm(scheme, mechanism, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=13, embed_dim=24, num_heads=6, num_layers=2, positions=scheme,
                      attention=mechanism, max_len=40, **kw)
    return DecoderLM(cfg).double().eval()


@pytest.mark.parametrize(("scheme", "mechanism"), list(pairs()))
def test_cached_decoding_equals_full_forward(scheme, mechanism):
    model = lm(scheme, mechanism)
    ids = torch.randint(0, 13, (2, 9))
    full = model(ids)  # (B, L, V)
    cache = model.new_cache(20)
    steps = [model(ids[:, :4], cache=cache)]  # prefill, then one token at a time
    steps += [model(ids[:, i:i + 1], cache=cache) for i in range(4, 9)]
    assert rel_err(torch.cat(steps, dim=1), full) < 1e-10


@pytest.mark.parametrize(("scheme", "mechanism"), list(pairs()))
def test_cached_and_uncached_generation_agree(scheme, mechanism):
    model = lm(scheme, mechanism)
    prompt = torch.randint(0, 13, (3, 4))
    cached = model.generate(prompt, 8, temperature=0)
    uncached = model.generate(prompt, 8, temperature=0, use_cache=False)
    assert cached.shape == (3, 12)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :4], prompt)


def test_greedy_is_the_argmax_of_the_forward():
    model = lm("rotary", "multihead")
    out = model.generate(torch.tensor([[1, 2, 3]]), 5, temperature=0)
    for t in range(3, 8):
        assert out[0, t] == model(out[:, :t])[0, -1].argmax()


def test_causality_future_tokens_never_change_past_logits():
    model = lm("learned", "multihead")
    ids = torch.randint(0, 13, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 13
    assert torch.allclose(model(ids)[:, :6], model(changed)[:, :6], atol=1e-12)
    assert not torch.allclose(model(ids)[:, 6:], model(changed)[:, 6:])


def test_sampling_is_seeded_and_top_k_restricts():
    model = lm("learned", "multihead")
    prompt = torch.tensor([[1, 2]])
    a = model.generate(prompt, 10, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 10, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    top1 = model.generate(prompt, 10, temperature=0.7, top_k=1,
                          generator=torch.Generator().manual_seed(4))
    assert torch.equal(top1, model.generate(prompt, 10, temperature=0))


def test_generation_stops_at_eos():
    model = lm("learned", "multihead")
    first = model.generate(torch.tensor([[1, 2]]), 1, temperature=0)[0, -1].item()
    out = model.generate(torch.tensor([[1, 2]]), 10, temperature=0, eos_id=first)
    assert out.shape == (1, 3)


def test_padding_mask_right_padding_matches_unpadded():
    model = lm("rotary", "gqa")
    ids = torch.randint(0, 13, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    assert rel_err(model(padded, mask)[:, :5], model(ids)) < 1e-10


def test_tied_and_untied_heads():
    tied = build_model(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2))
    assert tied.lm_head.weight is tied.embed.tokens.weight
    untied = build_model(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2,
                                     tie_embeddings=False))
    assert untied.lm_head.weight is not untied.embed.tokens.weight


def test_fresh_model_starts_near_uniform_loss():
    model = build_model(ModelConfig(vocab_size=50, embed_dim=32, num_heads=4))
    ids = torch.randint(0, 50, (4, 16))
    loss = torch.nn.functional.cross_entropy(model(ids)[:, :-1].reshape(-1, 50),
                                             ids[:, 1:].reshape(-1))
    assert abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 0.5


def test_prompt_longer_than_context_is_refused_before_work():
    model = build_model(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2, max_len=10))
    with pytest.raises(ValueError, match="exceed the model's context max_len=10"):
        model(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match=r"prompt of 6 tokens \+ max_new_tokens=5 exceeds"):
        model.generate(torch.zeros(1, 6, dtype=torch.long), 5)


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        (torch.zeros(1, 3), TypeError, "input_ids must be an integer tensor"),
        (torch.tensor([[1, 7]]), ValueError, r"input_ids must lie in \[0, 7\), got values from"),
        (torch.zeros(3, dtype=torch.long), ValueError, r"shape \(B, L\)"),
    ],
)
def test_bad_ids(ids, error, match):
    model = build_model(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2))
    with pytest.raises(error, match=match):
        model(ids)


def test_bad_generation_args():
    model = build_model(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2))
    prompt = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(prompt, 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        model.generate(prompt, 3, top_k=0)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, S\) = \(1, 2\)"):
        model(prompt, torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="attention_mask must be a bool or 0/1 integer tensor"):
        model(prompt, torch.ones(1, 2))
