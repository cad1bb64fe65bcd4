"""from_hf for the encoder–decoders: T5 (plain and gated), BART, Marian."""

import pytest
import torch

from hf_parity import (
    attention_maps_equal,
    float64_throughout,
    ids_and_masks,
    max_errors,
    randomize,
)

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.models.seq2seq_lm import Seq2SeqLM  # noqa: E402

V = 61
T5 = dict(vocab_size=V, d_model=30, d_kv=7, d_ff=37, num_layers=2, num_heads=3, dropout_rate=0.0,
          decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
BART = dict(vocab_size=V, d_model=30, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=3, decoder_attention_heads=3, encoder_ffn_dim=37,
            decoder_ffn_dim=37, max_position_embeddings=64, dropout=0.0, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, init_std=0.2)
MARIAN = {**BART, "pad_token_id": 60, "decoder_start_token_id": 60, "eos_token_id": 0,
          "bos_token_id": None, "scale_embedding": True, "activation_function": "swish"}

# name -> (config class, model class, kwargs)
FAMILIES = {
    "t5": ("T5Config", "T5ForConditionalGeneration", T5),
    "t5_gated_untied": ("T5Config", "T5ForConditionalGeneration",
                        {**T5, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}),
    "bart": ("BartConfig", "BartForConditionalGeneration", BART),
    "bart_scaled": ("BartConfig", "BartForConditionalGeneration",
                    {**BART, "scale_embedding": True, "activation_function": "relu"}),
    "marian": ("MarianConfig", "MarianMTModel", MARIAN),
}
# T5's RMSNorm takes the mean square in float32 even in a float64 model (measured ~1e-7)
F64_TOL = {"t5": 1e-6, "t5_gated_untied": 1e-6}
# seeds (and T5 weight scales) whose greedy targets are not one repeated token
GREEDY = {"t5": dict(seed=2, scale=1.5), "t5_gated_untied": dict(scale=1.5),
          "bart_scaled": dict(seed=3)}


def make(name: str, seed: int = 0, scale: float = 1.0, **overrides):
    config_cls, model_cls, kwargs = FAMILIES[name]
    torch.manual_seed(seed)
    config = getattr(transformers, config_cls)(**{**kwargs, **overrides})
    model = randomize(getattr(transformers, model_cls)(config).eval(), seed)
    with torch.no_grad():  # T5 initialises with std 1/sqrt(d): widen for varied greedy tokens
        for p in model.parameters():
            p.mul_(scale)
    generation = model.generation_config  # plain greedy: no forced or stopping tokens
    generation.eos_token_id = generation.forced_eos_token_id = None
    generation.forced_bos_token_id = None
    return model


def target(L: int = 7, seed: int = 5) -> torch.Tensor:
    return torch.randint(3, V - 1, (3, L), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_equal_transformers(name, dtype):
    hf = make(name).to(dtype)
    model = from_hf(hf)
    assert isinstance(model, Seq2SeqLM)
    ids, masks = ids_and_masks(V - 1)
    tol = 1e-5 if dtype == torch.float32 else F64_TOL.get(name, 1e-10)
    errors = max_errors(hf, model, ids, masks, decoder_input_ids=target())
    assert max(errors.values()) <= tol, errors


@pytest.mark.parametrize("name", ["t5", "t5_gated_untied"])
def test_t5_float64_exact_once_its_norm_runs_in_float64(name):
    hf = float64_throughout(make(name).double())
    model = from_hf(hf)
    ids, masks = ids_and_masks(V - 1)
    errors = max_errors(hf, model, ids, masks, decoder_input_ids=target())
    assert max(errors.values()) <= 1e-10, errors


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_generation_equals_transformers(name):
    hf = make(name, **GREEDY.get(name, {}))
    model = from_hf(hf)
    ids, masks = ids_and_masks(V - 1)
    ref = hf.generate(ids, attention_mask=masks["right"], do_sample=False, max_new_tokens=9,
                      min_new_tokens=9)
    assert len(set(ref[:, 1:].flatten().tolist())) > 2, ref
    for cached in (True, False):
        ours = model.generate(ids, 9, attention_mask=masks["right"], temperature=0.0,
                              use_cache=cached)
        assert torch.equal(ours, ref), (cached, ours, ref)


def test_sampling_cached_equals_uncached():
    model = from_hf(make("bart"))
    ids, masks = ids_and_masks(V - 1)
    runs = [model.generate(ids, 10, attention_mask=masks["left"], temperature=0.8, top_k=30,
                           use_cache=cached, generator=torch.Generator().manual_seed(2))
            for cached in (True, False)]
    assert torch.equal(runs[0], runs[1])
    assert runs[0].shape == (3, 11)
    assert (runs[0][:, 0] == 2).all()  # every target starts with decoder_start_token_id


@pytest.mark.parametrize("name", ["t5", "bart", "marian"])
def test_attention_maps_equal_transformers_eager(name):
    hf = make(name)
    model = from_hf(hf)
    ids, masks = ids_and_masks(V - 1)
    names = [*(f"encoder.encoder.layers.{i}.self_attn" for i in range(2)),
             *(f"decoder.layers.{i}.self_attn" for i in range(2)),
             *(f"decoder.layers.{i}.cross_attn" for i in range(2))]
    assert attention_maps_equal(hf, model, ids, masks["right"], names,
                                decoder_input_ids=target()) == 6


def test_t5_bias_is_a_registered_scheme_per_side():
    model = from_hf(make("t5"))
    assert model.config.positions == "t5"
    enc, dec = model.encoder.embed.score_bias, model.decoder_embed.score_bias
    assert (enc.causal, dec.causal) == (False, True)
    assert enc.embedding.weight.data_ptr() != dec.embedding.weight.data_ptr()


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("t5", {"num_decoder_layers": 3}, "num_decoder_layers=3"),
        ("t5", {"relative_attention_num_buckets": 16}, "relative_attention_num_buckets=16"),
        ("t5", {"feed_forward_proj": "gated-silu"}, "feed_forward_proj='gated-silu'"),
        ("bart", {"decoder_layers": 3}, "decoder_layers=3"),
        ("bart", {"attention_dropout": 0.1}, "one dropout rate"),
        ("marian", {"share_encoder_decoder_embeddings": False},
         "share_encoder_decoder_embeddings=False"),
    ],
)
def test_unsupported_options_are_refused_by_name(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        from_hf(make(name, **overrides))
