"""Models under hostile use (issue 11): empty batches, caches, tiny temperatures, bool options."""

import pytest
import torch

import attnlab as al
from attnlab.config import ModelConfig
from attnlab.models import DecoderLM, EncoderDecoder
from attnlab.models.generation import sample_next


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return DecoderLM(ModelConfig(vocab_size=11, embed_dim=8, num_heads=2, num_layers=2,
                                 max_len=32)).eval()


@pytest.fixture(scope="module")
def seq2seq():
    torch.manual_seed(0)
    return EncoderDecoder(ModelConfig(arch="encoder-decoder", vocab_size=11, embed_dim=8,
                                      num_heads=2, num_layers=2)).eval()


@pytest.mark.parametrize("positions", ["sinusoidal", "alibi", "rotary"])
def test_an_empty_batch_gives_empty_outputs(positions):
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(vocab_size=11, embed_dim=8, num_heads=2, num_layers=2,
                                  positions=positions))
    none = torch.zeros(0, 3, dtype=torch.long)
    assert model(none).shape == (0, 3, 11)
    for kw in ({}, {"temperature": 0}, {"use_cache": False}, {"eos_id": 2}):
        assert model.generate(none, 4, **kw).shape == (0, 7)


def test_an_empty_batch_in_the_encoder_decoder(seq2seq):
    src = torch.zeros(0, 4, dtype=torch.long)
    assert seq2seq(src, torch.zeros(0, 2, dtype=torch.long)).shape == (0, 2, 11)
    assert seq2seq.generate(src, 3, bos_id=1, eos_id=2, temperature=0).shape == (0, 4)


def test_ids_on_the_meta_device_are_refused(lm):
    with pytest.raises(ValueError, match=r"input_ids is on the meta device"):
        lm(torch.zeros(1, 3, dtype=torch.long, device="meta"))


@pytest.mark.parametrize(("cache", "error", "message"), [
    (lambda m: m.new_cache()[:1], ValueError,
     r"cache must hold one KVCache per layer \(2\), got 1"),
    (lambda m: [], ValueError, r"one KVCache per layer \(2\), got 0"),
    (lambda m: m.new_cache() + [al.KVCache()], ValueError, r"per layer \(2\), got 3"),
    (lambda m: al.KVCache(), TypeError, r"cache must be a list of 2 KVCache .*got KVCache"),
    (lambda m: [{}, {}], TypeError, r"got a list of dict"),
    (lambda m: {}, TypeError, r"got dict"),
])
def test_a_wrong_cache_list_is_refused(lm, cache, error, message):
    with pytest.raises(error, match=message):
        lm(torch.tensor([[1, 2]]), cache=cache(lm))


def test_a_wrong_cache_list_in_the_encoder_decoder(seq2seq):
    memory = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match=r"cache must hold one KVCache per layer \(2\), got 1"):
        seq2seq.decode(torch.tensor([[1]]), memory, cache=[al.KVCache()])
    with pytest.raises(ValueError, match=r"cross_cache must hold one KVCache per layer"):
        seq2seq.decode(torch.tensor([[1]]), memory, cache=[al.KVCache(), al.KVCache()],
                       cross_cache=[al.KVCache()])


@pytest.mark.parametrize("temperature", [1e-45, 1e-320, 5e-324, 1e-30])
@pytest.mark.parametrize("top_k", [None, 3])
def test_a_tiny_temperature_samples_the_maximum(lm, temperature, top_k):
    """As the temperature goes to 0 sampling becomes greedy: no multinomial error, same tokens."""
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    greedy = lm.generate(ids, 8, temperature=0)
    gen = torch.Generator().manual_seed(0)
    tiny = lm.generate(ids, 8, temperature=temperature, top_k=top_k, generator=gen)
    assert torch.equal(tiny, greedy)


def test_sample_next_with_ties_and_huge_temperatures():
    logits = torch.tensor([[0.0, 5.0, 5.0, -1.0]] * 2000)
    picks = sample_next(logits, 1e-320, None, torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {1, 2}  # the tied maxima share the mass
    picks = sample_next(logits, 1e300, None, torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {0, 1, 2, 3}  # uniform in the limit


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_sampling_from_non_finite_logits_is_refused(bad):
    logits = torch.zeros(2, 5)
    logits[1, 3] = bad
    with pytest.raises(ValueError, match=r"cannot sample: the model's logits hold NaN or inf"):
        sample_next(logits, 0.7, None)


@pytest.mark.parametrize("value", ["False", "no", None, 1])
def test_bool_options_of_models_must_be_bools(lm, value):
    with pytest.raises(TypeError, match=r"use_cache must be True or False, got"):
        lm.generate(torch.tensor([[1, 2]]), 2, use_cache=value)
    for option in ("prenorm", "bias", "tie_embeddings", "embed_norm", "final_norm", "embed_scale"):
        with pytest.raises(TypeError, match=rf"{option} must be True or False, got"):
            ModelConfig(**{option: value})


@pytest.mark.parametrize("bad", ["False", None, 1])
def test_both_encoder_decoders_check_use_cache_alike(bad):
    """One generation routine serves EncoderDecoder and Seq2SeqLM: the same checks."""
    from attnlab.models.seq2seq_lm import Seq2SeqLM

    cfg = ModelConfig(arch="encoder-decoder", vocab_size=11, embed_dim=8, num_heads=2)
    src = torch.tensor([[3, 4, 5]])
    with pytest.raises(TypeError, match="use_cache"):
        Seq2SeqLM(cfg, decoder_start_id=0).generate(src, 3, temperature=0.0, use_cache=bad)
    with pytest.raises(TypeError, match="use_cache"):
        EncoderDecoder(cfg).generate(src, 3, bos_id=1, temperature=0.0, use_cache=bad)
    model = Seq2SeqLM(cfg, decoder_start_id=0)
    assert torch.equal(model.generate(src, 4, temperature=0.0),
                       model.generate(src, 4, temperature=0.0, use_cache=False))
