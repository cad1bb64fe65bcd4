"""from_hf for the encoders: BERT (and the base of its task heads), RoBERTa, DistilBERT."""

import pytest
import torch

from hf_parity import attention_maps_equal, ids_and_masks, max_errors, randomize

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.models.encoder import TransformerEncoder  # noqa: E402

V = 61
BERT = dict(vocab_size=V, hidden_size=30, num_hidden_layers=2, num_attention_heads=3,
            intermediate_size=37, max_position_embeddings=40, pad_token_id=1,
            initializer_range=0.2)
FAMILIES = {
    "bert": ("BertConfig", "BertModel", BERT),
    "roberta": ("RobertaConfig", "RobertaModel", BERT),
    "distilbert": ("DistilBertConfig", "DistilBertModel",
                   dict(vocab_size=V, dim=30, n_layers=2, n_heads=3, hidden_dim=37,
                        max_position_embeddings=40, pad_token_id=1, initializer_range=0.2)),
}


def make(name: str, seed: int = 0, **overrides):
    config_cls, model_cls, kwargs = FAMILIES[name]
    torch.manual_seed(seed)
    config = getattr(transformers, config_cls)(**{**kwargs, **overrides})
    extra = {"add_pooling_layer": False} if name != "distilbert" else {}
    return randomize(getattr(transformers, model_cls)(config, **extra).eval(), seed)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_hidden_states_equal_transformers(name, dtype, tol):
    hf = make(name).to(dtype)
    encoder = from_hf(hf)
    assert isinstance(encoder, TransformerEncoder)
    # ids avoid the padding id 1 (RoBERTa numbers positions after non-pad tokens)
    ids, masks = ids_and_masks(V)
    errors = max_errors(hf, encoder, ids, masks)
    assert max(errors.values()) <= tol, errors


@pytest.mark.parametrize("name", FAMILIES)
def test_attention_maps_equal_transformers_eager(name):
    hf = make(name)
    encoder = from_hf(hf)
    ids, masks = ids_and_masks(V)
    names = [f"encoder.layers.{i}.self_attn" for i in range(2)]
    assert attention_maps_equal(hf, encoder, ids, masks["left"], names) == 2


def test_roberta_positions_start_after_the_padding_id():
    hf = make("roberta")
    encoder = from_hf(hf)
    table = hf.embeddings.position_embeddings.weight
    assert torch.equal(encoder.embed.positions.embedding.weight, table[2:])
    assert encoder.config.max_len == 38


@pytest.mark.parametrize("head", ["RobertaForMaskedLM", "DistilBertForSequenceClassification"])
def test_task_heads_name_their_base(head):
    name = "roberta" if head.startswith("Roberta") else "distilbert"
    config_cls, _, kwargs = FAMILIES[name]
    model = getattr(transformers, head)(getattr(transformers, config_cls)(**kwargs))
    prefix = model.base_model_prefix
    with pytest.raises(TypeError, match=rf"got .*{head}; it wraps a supported .*"
                                        rf"from_hf\(model\.{prefix}\)"):
        from_hf(model)
    assert isinstance(from_hf(getattr(model, prefix)), TransformerEncoder)
