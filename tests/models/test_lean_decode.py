"""The lean decode step (models/lean.py) against the model's own forward pass."""

import copy

import pytest
import torch

import attnlab.models.decoder as decoder_module
from attnlab.config import ModelConfig
from attnlab.models.decoder import DecoderLM
from attnlab.models.lean import LeanDecoder, lean_supported

KINDS = {
    "learned": {},
    "sinusoidal": {"positions": "sinusoidal"},
    "rotary-gqa-llama": {"positions": "rotary", "num_kv_heads": 2, "norm": "rmsnorm",
                         "ffn": "swiglu", "bias": False, "tie_embeddings": False},
    "alibi": {"positions": "alibi"},
    "t5": {"positions": "t5"},
    "mqa-window-partial-parallel": {"attention": "mqa", "window": 3, "positions": "rotary",
                                    "rotary_dim": 2, "residual": "parallel"},
    "postnorm": {"prenorm": False},
    "qkv-bias": {"attention": "qkv_bias", "tie_embeddings": False},
    "head-dim": {"head_dim": 10, "positions": "rotary", "ffn": "geglu"},
}
DTYPES = [torch.float32, torch.float64]


def tiny(seed: int = 0, dtype: torch.dtype = torch.float32, **kw) -> DecoderLM:
    torch.manual_seed(seed)
    # embed_std=1 gives logits with clear winners: greedy tokens that mean something
    cfg = ModelConfig(vocab_size=37, embed_dim=24, num_heads=4, num_layers=2, max_len=64,
                      embed_std=1.0, **kw)
    return DecoderLM(cfg).to(dtype).eval()


def plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``generate`` use the model's cached forward, as before the lean step."""
    monkeypatch.setattr(decoder_module, "lean_supported", lambda lm: False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_step_logits_match_the_full_forward(kind: str, dtype: torch.dtype) -> None:
    lm = tiny(1, dtype, **KINDS[kind])
    assert lean_supported(lm)
    ids = torch.randint(0, 37, (3, 5))
    steps = torch.randint(0, 37, (3, 7))
    reference = copy.deepcopy(lm).double()
    lean = LeanDecoder(lm, ids.shape[1] + steps.shape[1])
    with torch.no_grad():
        lean(ids)  # the prefill
        for t in range(steps.shape[1]):
            got = lean(steps[:, t : t + 1])[:, -1]  # (B, V)
            full = torch.cat([ids, steps[:, : t + 1]], dim=1)
            want = reference(full)[:, -1]
            err = (got.double() - want).abs().max() / want.abs().max()
            assert err <= (1e-6 if dtype == torch.float64 else 1e-5), (t, float(err))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_greedy_tokens_equal_the_uncached_path(kind: str, dtype: torch.dtype) -> None:
    lm = tiny(2, dtype, **KINDS[kind])
    made = []
    for B, T in ((3, 5), (1, 1), (2, 11)):
        ids = torch.randint(0, 37, (B, T))
        lean = lm.generate(ids, 24, temperature=0)
        assert torch.equal(lean, lm.generate(ids, 24, temperature=0, use_cache=False))
        made.append(lean[:, T:].flatten())
    assert torch.cat(made).unique().numel() > 3  # not one token repeated: a test that can fail


def test_sampling_with_a_seeded_generator_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny(3, **KINDS["rotary-gqa-llama"])
    ids = torch.randint(0, 37, (4, 6))

    def sample() -> torch.Tensor:
        g = torch.Generator().manual_seed(7)
        return lm.generate(ids, 30, temperature=0.9, top_k=10, generator=g)

    lean = sample()
    plain_path(monkeypatch)
    assert torch.equal(lean, sample())


def test_eos_stops_rows_and_the_loop() -> None:
    lm = tiny(4)
    ids = torch.randint(0, 37, (3, 4))
    free = lm.generate(ids, 16, temperature=0, use_cache=False)
    eos = int(free[0, 6])  # row 0 makes it by its third new token
    got = lm.generate(ids, 16, temperature=0, eos_id=eos)
    want = lm.generate(ids, 16, temperature=0, eos_id=eos, use_cache=False)
    assert torch.equal(got, want)
    for row in got[:, 4:]:
        hits = (row == eos).nonzero()
        if hits.numel():
            assert (row[int(hits[0]):] == eos).all()
    first = int((free[0, 4:] == eos).nonzero()[0])  # where row 0 first makes it (<= 2)
    one = lm.generate(ids[:1], 16, temperature=0, eos_id=eos)
    assert torch.equal(one, free[:1, : 4 + first + 1])  # stopped right after its eos


def test_fresh_weights_after_training_or_loading_are_used() -> None:
    lm = tiny(5, **KINDS["rotary-gqa-llama"])
    ids = torch.randint(0, 37, (2, 5))
    before = lm.generate(ids, 12, temperature=0)
    lm.load_state_dict(tiny(9, **KINDS["rotary-gqa-llama"]).state_dict())  # copies in place
    loaded = lm.generate(ids, 12, temperature=0)
    assert torch.equal(loaded, lm.generate(ids, 12, temperature=0, use_cache=False))
    assert not torch.equal(loaded, before)
    lm.train()
    opt = torch.optim.SGD(lm.parameters(), lr=20.0)
    torch.nn.functional.cross_entropy(lm(ids)[:, -1], loaded[:, 5] * 0 + 3).backward()
    opt.step()
    lm.eval()
    trained = lm.generate(ids, 12, temperature=0)
    assert torch.equal(trained, lm.generate(ids, 12, temperature=0, use_cache=False))
    assert not torch.equal(trained, loaded)


def test_generate_keeps_the_training_mode_and_falls_back_when_unsupported() -> None:
    lm = tiny(6, attention="additive", positions="sinusoidal")
    assert not lean_supported(lm)
    ids = torch.randint(0, 37, (2, 3))
    assert torch.equal(lm.generate(ids, 8, temperature=0),
                       lm.generate(ids, 8, temperature=0, use_cache=False))
    lm.train()
    lm.generate(ids, 2, temperature=0)
    assert lm.training


def test_stream_yields_what_generate_returns() -> None:
    lm = tiny(7, **KINDS["alibi"])
    ids = torch.randint(0, 37, (2, 5))
    tokens = torch.stack(list(lm.stream(ids, 10, temperature=0)), dim=1)  # (B, 10)
    assert torch.equal(tokens, lm.generate(ids, 10, temperature=0)[:, 5:])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    sampled = torch.stack(list(lm.stream(ids, 10, temperature=1.0, top_p=0.9, generator=g1)), 1)
    again = torch.stack(list(lm.stream(ids, 10, temperature=1.0, top_p=0.9, generator=g2)), 1)
    assert torch.equal(sampled, again)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"top_p": 0.0}, ValueError, "top_p"),
    ({"top_p": 1.5}, ValueError, "top_p"),
    ({"max_new_tokens": -1}, ValueError, "max_new_tokens"),
    ({"input_ids": torch.tensor([[1, 99]])}, ValueError, "input_ids"),
    ({"input_ids": torch.tensor([[1.0]])}, TypeError, "input_ids"),
    ({"max_new_tokens": 70}, ValueError, "max_len"),
])
def test_stream_checks_its_arguments_before_any_work(kwargs: dict, error: type,
                                                     match: str) -> None:
    lm = tiny(8)
    args = {"input_ids": torch.tensor([[1, 2]]), "max_new_tokens": 4, **kwargs}
    with pytest.raises(error, match=match):
        lm.stream(args.pop("input_ids"), args.pop("max_new_tokens"), **args)


def test_capturing_attention_keeps_the_plain_path() -> None:
    from attnlab.visualize.capture import capture_attention

    lm = tiny(10)
    ids = torch.randint(0, 37, (1, 4))
    want = lm.generate(ids, 6, temperature=0, use_cache=False)
    with capture_attention(lm):
        assert not lean_supported(lm)
        assert torch.equal(lm.generate(ids, 6, temperature=0), want)
    assert lean_supported(lm)
