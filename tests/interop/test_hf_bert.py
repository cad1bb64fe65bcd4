import pytest
import torch
from torch import nn

from interop_helpers import batch, rel_error

transformers = pytest.importorskip("transformers")

from attnlab.interop import from_hf  # noqa: E402
from attnlab.interop.hf_bert import bert_config  # noqa: E402
from attnlab.models.encoder import TransformerEncoder  # noqa: E402

SIZES = dict(vocab_size=99, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
             intermediate_size=37, max_position_embeddings=64, type_vocab_size=3,
             initializer_range=0.2)


def make_bert(seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    return transformers.BertModel(transformers.BertConfig(**{**SIZES, **overrides})).eval()


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(3, 13) ids, token types and a mask right-padding rows 1 and 2."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 99, (3, 13), generator=g)
    types = torch.randint(0, 3, (3, 13), generator=g)
    mask = torch.ones(3, 13, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 1:] = 0
    return ids, types, mask


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-6)])
@pytest.mark.parametrize("activation", ["gelu", "gelu_new", "relu"])
def test_hidden_states_equal_transformers(dtype, tol, activation):
    hf = make_bert(hidden_act=activation).to(dtype)
    encoder = from_hf(hf)
    assert isinstance(encoder, TransformerEncoder)
    ids, types, mask = inputs()
    real = mask.bool()
    with torch.no_grad():
        ref = hf(ids).last_hidden_state
        ref_full = hf(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        ours, ours_full = encoder(ids), encoder(ids, mask, token_type_ids=types)
    assert ours.dtype == dtype
    assert rel_error(ours, ref) <= tol
    assert rel_error(ours_full[real], ref_full[real]) <= tol


def test_token_types_matter():
    encoder = from_hf(make_bert())
    ids, types, _ = inputs()
    with torch.no_grad():
        assert rel_error(encoder(ids, token_type_ids=types), encoder(ids)) > 1e-2


def test_pooler_is_ignored_and_mode_dtype_follow_source():
    hf = make_bert(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2).double().train()
    encoder = from_hf(hf)
    assert encoder.training
    assert {p.dtype for p in encoder.parameters()} == {torch.float64}
    assert encoder.config.dropout == 0.2
    assert not any("pool" in name for name in encoder.state_dict())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"is_decoder": True}, "is_decoder=True"),
        ({"add_cross_attention": True}, "add_cross_attention=True"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'"),
        ({"hidden_act": "tanh"}, "hidden_act='tanh' is not supported"),
        ({"attention_probs_dropout_prob": 0.0}, "one dropout rate"),
        ({"model_type": "roberta"}, "model_type='roberta'"),
    ],
)
def test_unsupported_options_raise(overrides, message):
    config = transformers.BertConfig(**SIZES).to_dict()
    with pytest.raises(ValueError, match=message):
        bert_config({**config, **overrides})


def test_unsupported_bert_head_names_its_supported_base():
    masked_lm = transformers.BertForMaskedLM(transformers.BertConfig(**SIZES)).eval()
    with pytest.raises(TypeError, match=r"from_hf supports .*BertModel.*got .*BertForMaskedLM; "
                                        r"it wraps a supported BertModel: from_hf\(model.bert\)"):
        from_hf(masked_lm)
    encoder = from_hf(masked_lm.bert)  # the advice works
    ids, mask = batch()
    with torch.no_grad():
        ref = masked_lm.bert(ids, attention_mask=mask).last_hidden_state
        assert rel_error(encoder(ids, mask)[mask.bool()], ref[mask.bool()]) <= 1e-5
