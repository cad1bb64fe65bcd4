"""Hugging Face T5 (``T5ForConditionalGeneration``) -> attnlab ``Seq2SeqLM``.

T5 (Raffel et al. 2020) is a pre-norm encoder–decoder with RMSNorm, no biases
and no absolute positions: every self-attention adds a **learned bias per head
and bucketed relative distance** to its scores (attnlab's ``t5`` positional
scheme; bidirectional buckets in the encoder, causal ones in the decoder,
each side with its own table, which HF keeps in the first block). Two more
conventions are folded into the weights on loading, exactly:

* T5 does **not** scale the scores by 1/sqrt(D) (its initialisation absorbs
  it); attnlab does, so every query projection is multiplied by sqrt(D);
* with ``scale_decoder_outputs`` (tied heads) the decoder output is multiplied
  by E^-1/2 before the head; that factor goes into the decoder's final norm.

The feed-forward is ReLU (``"relu"``) or GeGLU (``"gated-gelu"``, T5 v1.1 / Flan-T5).
"""

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models.seq2seq_lm import Seq2SeqLM
from .hf import as_dict, build_loaded, reject

E, D = "encoder.block.{i}.layer.", "decoder.block.{i}.layer."
OURS_E, OURS_D = "encoder.encoder.layers.{i}.", "decoder.layers.{i}."
FFN = {"relu": ("mlp", "relu"), "gated-gelu": ("geglu", "gelu_tanh")}
NO_LOGITS_BIAS = "(T5 has no logits bias)"


def t5_config(hf_config: Any) -> ModelConfig:
    """Translate a ``T5Config`` (or its dict).

    Raises:
        ValueError: For ``num_decoder_layers != num_layers``, bucket settings other
            than 32 buckets up to distance 128 (the ``t5`` scheme's), a
            ``feed_forward_proj`` other than ``relu``/``gated-gelu``.
    """
    c = as_dict(hf_config)
    reject(c, num_decoder_layers=c["num_layers"], relative_attention_num_buckets=32,
           relative_attention_max_distance=128, is_decoder=False)
    proj = c.get("feed_forward_proj", "relu")
    if proj not in FFN:
        raise ValueError(f"feed_forward_proj={proj!r} is not supported; choose from {sorted(FFN)}")
    ffn, act = FFN[proj]
    return ModelConfig(
        arch="encoder-decoder", vocab_size=c["vocab_size"], embed_dim=c["d_model"],
        num_layers=c["num_layers"], num_heads=c["num_heads"], head_dim=c["d_kv"],
        ffn_dim=c["d_ff"], positions="t5", max_len=c.get("n_positions") or 2048,
        norm="rmsnorm", norm_eps=c["layer_norm_epsilon"], prenorm=True, ffn=ffn, activation=act,
        bias=False, dropout=float(c.get("dropout_rate") or 0.0), final_norm=True,
        tie_embeddings=bool(c.get("tie_word_embeddings", True)),
    )


def t5_table(config: ModelConfig) -> list[tuple[str, str]]:
    """The attnlab <- T5 key table."""
    table = [
        ("encoder.embed.tokens.weight", "shared.weight"),
        ("encoder.embed.score_bias.embedding.weight",
         "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        ("decoder_embed.score_bias.embedding.weight",
         "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        ("encoder.encoder.final_norm.weight", "encoder.final_layer_norm.weight"),
        ("decoder.final_norm.weight", "decoder.final_layer_norm.weight"),
        ("logits_bias", NO_LOGITS_BIAS),
    ]
    attn = (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o"))
    ffn = (("gate_proj", "wi_0"), ("up_proj", "wi_1"), ("down_proj", "wo")) \
        if config.ffn == "geglu" else (("up_proj", "wi"), ("down_proj", "wo"))
    for ours, theirs, n_ffn in ((OURS_E, E, 1), (OURS_D, D, 2)):
        table += [(f"{ours}self_attn.{a}.weight", f"{theirs}0.SelfAttention.{b}.weight")
                  for a, b in attn]
        table += [(f"{ours}self_norm.weight", f"{theirs}0.layer_norm.weight"),
                  (f"{ours}ffn_norm.weight", f"{theirs}{n_ffn}.layer_norm.weight")]
        table += [(f"{ours}ffn.{a}.weight", f"{theirs}{n_ffn}.DenseReluDense.{b}.weight")
                  for a, b in ffn]
    table += [(f"{OURS_D}cross_attn.{a}.weight", f"{D}1.EncDecAttention.{b}.weight")
              for a, b in attn]
    table.append((f"{OURS_D}cross_norm.weight", f"{D}1.layer_norm.weight"))
    if not config.tie_embeddings:
        table.append(("lm_head.weight", "lm_head.weight"))
    return table


def fold_scales(state: dict[str, Tensor], config: ModelConfig, scale_output: bool
                ) -> dict[str, Tensor]:
    """T5's unscaled scores and output scale, folded into q projections and the final norm."""
    out = dict(state)
    root = math.sqrt(config.resolved_head_dim)
    for key, value in state.items():
        if key.endswith(("SelfAttention.q.weight", "EncDecAttention.q.weight")):
            out[key] = value * root
    if scale_output:
        key = "decoder.final_layer_norm.weight"
        out[key] = state[key] * config.embed_dim ** -0.5
    return out


def from_t5(model: nn.Module, head: str = "seq2seq") -> Seq2SeqLM:
    """Build the ``Seq2SeqLM`` equal to a Hugging Face ``T5ForConditionalGeneration``.

    Raises:
        ValueError: For unsupported options (see :func:`t5_config`).
    """
    c = as_dict(model.config)
    config = t5_config(c)
    scale_output = bool(c.get("scale_decoder_outputs", c.get("tie_word_embeddings", True)))
    source = fold_scales(dict(model.state_dict()), config, scale_output)
    source[NO_LOGITS_BIAS] = torch.zeros(config.vocab_size)
    ignored = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
    if config.tie_embeddings:
        ignored.append("lm_head.weight")
    start = c.get("decoder_start_token_id")
    start = c["pad_token_id"] if start is None else start
    lm = build_loaded(Seq2SeqLM, config, model, source, t5_table(config), ignore_source=ignored,
                      decoder_start_id=start)
    assert isinstance(lm, Seq2SeqLM)
    return lm
