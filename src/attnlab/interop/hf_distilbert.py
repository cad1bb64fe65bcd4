"""Hugging Face DistilBERT (``DistilBertModel``) -> attnlab ``TransformerEncoder``.

DistilBERT (Sanh et al. 2019) is a 6-layer BERT without token types or a
pooler: word + learned position embeddings, a LayerNorm, then post-norm layers.
With ``sinusoidal_pos_embds=True`` its position table is filled with fixed
sinusoids once, which the learned table holds just as well (loaded unchanged).
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from ..models.encoder import TransformerEncoder
from .hf import activation, as_dict, build_loaded, one_dropout

T, A = "transformer.layer.{i}.", "encoder.layers.{i}."

TABLE = [
    ("embed.tokens.weight", "embeddings.word_embeddings.weight"),
    ("embed.positions.embedding.weight", "embeddings.position_embeddings.weight"),
    ("embed.norm.weight", "embeddings.LayerNorm.weight"),
    ("embed.norm.bias", "embeddings.LayerNorm.bias"),
    *((f"{A}{ours}.{t}", f"{T}{theirs}.{t}") for t in ("weight", "bias")
      for ours, theirs in (("self_attn.q_proj", "attention.q_lin"),
                           ("self_attn.k_proj", "attention.k_lin"),
                           ("self_attn.v_proj", "attention.v_lin"),
                           ("self_attn.out_proj", "attention.out_lin"),
                           ("self_norm", "sa_layer_norm"), ("ffn.up_proj", "ffn.lin1"),
                           ("ffn.down_proj", "ffn.lin2"), ("ffn_norm", "output_layer_norm"))),
]


def distilbert_config(hf_config: Any) -> ModelConfig:
    """Translate a ``DistilBertConfig`` (or its dict).

    Raises:
        ValueError: For an unknown activation or dropout rates that differ.
    """
    c = as_dict(hf_config)
    return ModelConfig(
        arch="encoder", vocab_size=c["vocab_size"], embed_dim=c["dim"],
        num_layers=c["n_layers"], num_heads=c["n_heads"], ffn_dim=c["hidden_dim"],
        positions="learned", max_len=c["max_position_embeddings"], norm="layernorm",
        norm_eps=1e-12, prenorm=False, ffn="mlp",
        activation=activation(c.get("activation", "gelu"), "activation"), bias=True,
        dropout=one_dropout(c, "dropout", "attention_dropout"), embed_norm=True,
        final_norm=False, type_vocab_size=0, tie_embeddings=False,
    )


def from_distilbert(model: nn.Module, head: str = "base") -> TransformerEncoder:
    """Build the ``TransformerEncoder`` equal to a Hugging Face ``DistilBertModel``.

    Raises:
        ValueError: For unsupported options (see :func:`distilbert_config`).
    """
    config = distilbert_config(model.config)
    encoder = build_loaded(TransformerEncoder, config, model, model.state_dict(), TABLE,
                           ignore_source=["embeddings.position_ids"])
    assert isinstance(encoder, TransformerEncoder)
    return encoder
