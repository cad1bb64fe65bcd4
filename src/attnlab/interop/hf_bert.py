"""Hugging Face BERT (``BertModel``) -> attnlab ``TransformerEncoder``.

BERT (Devlin et al. 2019) is a post-norm encoder: word + learned position +
token-type embeddings, a LayerNorm on their sum, then layers computing
``x = norm(x + attn(x))`` and ``x = norm(x + mlp(x))`` with exact (erf) GELU.
No final norm. The pooler (``tanh(W h_[CLS])``) is not part of the hidden
states and is ignored.

:func:`bert_config` and :func:`bert_table` work on plain dicts too, so
:mod:`attnlab.interop.sentence` loads sentence-transformers checkpoints
without ``transformers``.
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from ..models.encoder import TransformerEncoder
from .hf import activation, as_dict, build_loaded, one_dropout, reject

# position/type id buffers of some checkpoints; the pooler (not in the hidden states)
IGNORED = ["embeddings.position_ids", "embeddings.token_type_ids", "pooler.*"]


def bert_table(prefix: str = "", *, token_types: bool = True) -> list[tuple[str, str]]:
    """The attnlab <- BERT key table; ``prefix`` is e.g. ``"bert."`` for task models.

    Args:
        prefix: Prepended to every BERT key.
        token_types: Whether the model has token-type embeddings (``type_vocab_size > 0``).

    Returns:
        ``(attnlab key, BERT key)`` pairs with ``{i}`` layer templates.
    """
    P, A = prefix, "encoder.layers.{i}."
    B = f"{prefix}encoder.layer.{{i}}."
    table = [
        ("embed.tokens.weight", f"{P}embeddings.word_embeddings.weight"),
        ("embed.positions.embedding.weight", f"{P}embeddings.position_embeddings.weight"),
        ("embed.norm.weight", f"{P}embeddings.LayerNorm.weight"),
        ("embed.norm.bias", f"{P}embeddings.LayerNorm.bias"),
    ]
    if token_types:
        table.append(("embed.token_types.weight", f"{P}embeddings.token_type_embeddings.weight"))
    for ours, theirs in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")):
        table += [(f"{A}self_attn.{ours}.{t}", f"{B}attention.self.{theirs}.{t}")
                  for t in ("weight", "bias")]
    for ours, theirs in (("self_attn.out_proj", "attention.output.dense"),
                         ("self_norm", "attention.output.LayerNorm"),
                         ("ffn.up_proj", "intermediate.dense"),
                         ("ffn.down_proj", "output.dense"),
                         ("ffn_norm", "output.LayerNorm")):
        table += [(f"{A}{ours}.{t}", f"{B}{theirs}.{t}") for t in ("weight", "bias")]
    return table


def bert_config(hf_config: Any) -> ModelConfig:
    """Translate a ``BertConfig`` (or its ``config.json`` dict) into a :class:`ModelConfig`.

    Args:
        hf_config: ``transformers.BertConfig`` or a mapping with its keys.

    Returns:
        An encoder ``ModelConfig``: post-norm, embedding norm, learned positions.

    Raises:
        ValueError: For options attnlab does not reproduce (``is_decoder``,
            ``add_cross_attention``, a ``position_embedding_type`` other than
            ``"absolute"``, ``model_type`` not ``"bert"``, an unknown activation,
            dropout rates that differ).
    """
    c = as_dict(hf_config)
    reject(c, model_type="bert", is_decoder=False, add_cross_attention=False,
           position_embedding_type="absolute")
    return ModelConfig(
        arch="encoder", vocab_size=c["vocab_size"], embed_dim=c["hidden_size"],
        num_layers=c["num_hidden_layers"], num_heads=c["num_attention_heads"],
        ffn_dim=c["intermediate_size"], positions="learned",
        max_len=c["max_position_embeddings"], norm="layernorm",
        norm_eps=c.get("layer_norm_eps", 1e-12), prenorm=False, ffn="mlp",
        activation=activation(c.get("hidden_act", "gelu"), "hidden_act"), bias=True,
        dropout=one_dropout(c, "hidden_dropout_prob", "attention_probs_dropout_prob"),
        embed_norm=True, final_norm=False, type_vocab_size=c.get("type_vocab_size", 2),
        tie_embeddings=False,
    )


def from_bert(model: nn.Module, head: str = "base") -> TransformerEncoder:
    """Build the ``TransformerEncoder`` equal to a Hugging Face ``BertModel``.

    Its ``forward(input_ids, attention_mask=None, *, token_type_ids=None)``
    returns BERT's ``last_hidden_state``. For a task model (``BertForMaskedLM``...)
    convert its base, ``model.bert``.

    Args:
        model: The ``BertModel``.
        head: ``"base"`` (the only head converted).

    Returns:
        The attnlab encoder, in ``model``'s dtype, device and train/eval mode.

    Raises:
        ValueError: For unsupported options (see :func:`bert_config`) or weights
            that do not fit the table.
    """
    if head != "base":
        raise ValueError(f"BERT converts as a base model (hidden states), got head={head!r}")
    config = bert_config(model.config)
    table = bert_table(token_types=config.type_vocab_size > 0)
    encoder = build_loaded(TransformerEncoder, config, model, model.state_dict(), table,
                           ignore_source=IGNORED)
    assert isinstance(encoder, TransformerEncoder)
    return encoder
