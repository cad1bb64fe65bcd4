"""Hugging Face BART (``BartForConditionalGeneration``) -> attnlab ``Seq2SeqLM``.

BART (Lewis et al. 2020) is a post-norm encoder–decoder: token embeddings
(optionally scaled by sqrt(E)) plus **learned positions, one table per side,
with an offset of 2** (two leading rows never used, dropped on loading), a
LayerNorm on the embeddings, GELU MLPs, biases everywhere, a head tied to the
shared token table and a fixed ``final_logits_bias``. Marian
(:mod:`.hf_marian`) shares this layout.
"""

from typing import Any

from torch import Tensor, nn

from ..config import ModelConfig
from ..models.seq2seq_lm import Seq2SeqLM
from .hf import activation, as_dict, build_loaded, one_dropout, reject

M = "model."
EL, DL = "model.encoder.layers.{i}.", "model.decoder.layers.{i}."
OURS_E, OURS_D = "encoder.encoder.layers.{i}.", "decoder.layers.{i}."
OFFSET = 2


def bart_config(hf_config: Any, *, embed_norm: bool = True) -> ModelConfig:
    """Translate a ``BartConfig`` (or a Marian one, or its dict).

    Raises:
        ValueError: For encoder and decoder of different shapes (attnlab's
            encoder–decoder has one layer count, head count and MLP width),
            layer drop, an unknown activation, or dropout rates that differ.
    """
    c = as_dict(hf_config)
    reject(c, decoder_layers=c["encoder_layers"],
           decoder_attention_heads=c["encoder_attention_heads"],
           decoder_ffn_dim=c["encoder_ffn_dim"], encoder_layerdrop=0.0, decoder_layerdrop=0.0,
           is_decoder=False)
    return ModelConfig(
        arch="encoder-decoder", vocab_size=c["vocab_size"], embed_dim=c["d_model"],
        num_layers=c["encoder_layers"], num_heads=c["encoder_attention_heads"],
        ffn_dim=c["encoder_ffn_dim"], positions="learned",
        max_len=c["max_position_embeddings"], norm="layernorm", norm_eps=1e-5,
        prenorm=False, ffn="mlp",
        activation=activation(c["activation_function"], "activation_function"), bias=True,
        dropout=one_dropout(c, "dropout", "attention_dropout", "activation_dropout"),
        embed_norm=embed_norm, final_norm=False, embed_scale=bool(c.get("scale_embedding")),
        tie_embeddings=bool(c.get("tie_word_embeddings", True)),
    )


def bart_table(config: ModelConfig) -> list[tuple[str, str]]:
    """The attnlab <- BART key table (Marian's too, without the embedding norms)."""
    table = [
        ("encoder.embed.tokens.weight", f"{M}shared.weight"),
        ("encoder.embed.positions.embedding.weight", f"{M}encoder.embed_positions.weight"),
        ("decoder_embed.positions.embedding.weight", f"{M}decoder.embed_positions.weight"),
        ("logits_bias", "final_logits_bias"),
    ]
    if config.embed_norm:
        table += [(f"{ours}.norm.{t}", f"{M}{side}.layernorm_embedding.{t}")
                  for ours, side in (("encoder.embed", "encoder"), ("decoder_embed", "decoder"))
                  for t in ("weight", "bias")]
    parts = [("self_attn.q_proj", "self_attn.q_proj"), ("self_attn.k_proj", "self_attn.k_proj"),
             ("self_attn.v_proj", "self_attn.v_proj"),
             ("self_attn.out_proj", "self_attn.out_proj"), ("self_norm", "self_attn_layer_norm"),
             ("ffn.up_proj", "fc1"), ("ffn.down_proj", "fc2"), ("ffn_norm", "final_layer_norm")]
    cross = [(f"cross_attn.{p}", f"encoder_attn.{p}")
             for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
    cross.append(("cross_norm", "encoder_attn_layer_norm"))
    for ours, theirs, names in ((OURS_E, EL, parts), (OURS_D, DL, parts + cross)):
        table += [(f"{ours}{a}.{t}", f"{theirs}{b}.{t}") for a, b in names
                  for t in ("weight", "bias")]
    if not config.tie_embeddings:
        table.append(("lm_head.weight", "lm_head.weight"))
    return table


def seq2seq_source(model: nn.Module, offset: int) -> dict[str, Tensor]:
    """The state dict with position rows before position 0 dropped and the logits bias flat."""
    source = dict(model.state_dict())
    for side in ("encoder", "decoder"):
        key = f"{M}{side}.embed_positions.weight"
        source[key] = source[key][offset:]
    source["final_logits_bias"] = source["final_logits_bias"].reshape(-1)
    return source


def build_seq2seq(model: nn.Module, config: ModelConfig, source: dict[str, Tensor],
                  table: list[tuple[str, str]]) -> Seq2SeqLM:
    """Load a BART-layout model (tied copies of the token table ignored)."""
    c = as_dict(model.config)
    ignored = [f"{M}encoder.embed_tokens.weight", f"{M}decoder.embed_tokens.weight"]
    if config.tie_embeddings:
        ignored.append("lm_head.weight")
    lm = build_loaded(Seq2SeqLM, config, model, source, table, ignore_source=ignored,
                      decoder_start_id=c["decoder_start_token_id"])
    assert isinstance(lm, Seq2SeqLM)
    return lm


def from_bart(model: nn.Module, head: str = "seq2seq") -> Seq2SeqLM:
    """Build the ``Seq2SeqLM`` equal to a Hugging Face ``BartForConditionalGeneration``.

    Raises:
        ValueError: For unsupported options (see :func:`bart_config`).
    """
    config = bart_config(model.config)
    return build_seq2seq(model, config, seq2seq_source(model, OFFSET), bart_table(config))
