"""Hugging Face OPT (``OPTForCausalLM``, ``OPTModel``) -> attnlab.

OPT (Zhang et al. 2022) is a GPT-2-like decoder with separate q/k/v
projections, a ReLU MLP, and **learned positions with an offset of 2**: its
table has two extra leading rows (a fairseq legacy), so position ``p`` uses row
``p + 2``; the table loads with those rows dropped. The 350M model is post-norm
(``do_layer_norm_before=False``), the others pre-norm.

OPT numbers positions over the real tokens of ``attention_mask``
(``cumsum(mask) - 1``), so a left-padded row starts at position 0 at its first
real token: attnlab's ``learned_real`` positional scheme does the same.
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import activation, as_dict, base_state, build_decoder, one_dropout, reject

D, L = "model.decoder.layers.{i}.", "decoder.layers.{i}."
OFFSET = 2  # rows of the position table before position 0

TABLE = [
    ("embed.tokens.weight", "model.decoder.embed_tokens.weight"),
    ("embed.positions.embedding.weight", "model.decoder.embed_positions.weight"),
    *((f"{L}{ours}.{t}", f"{D}{theirs}.{t}") for t in ("weight", "bias")
      for ours, theirs in (("self_attn.q_proj", "self_attn.q_proj"),
                           ("self_attn.k_proj", "self_attn.k_proj"),
                           ("self_attn.v_proj", "self_attn.v_proj"),
                           ("self_attn.out_proj", "self_attn.out_proj"),
                           ("ffn.up_proj", "fc1"), ("ffn.down_proj", "fc2"))),
    *((f"{L}{ours}.{t}", f"{D}{theirs}.{t}") for t in ("weight", "bias")
      for ours, theirs in (("self_norm", "self_attn_layer_norm"),
                           ("ffn_norm", "final_layer_norm"))),
]
FINAL_NORM = [("decoder.final_norm.weight", "model.decoder.final_layer_norm.weight"),
              ("decoder.final_norm.bias", "model.decoder.final_layer_norm.bias")]


def opt_config(hf_config: Any) -> ModelConfig:
    """Translate an ``OPTConfig`` (or its dict).

    Raises:
        ValueError: For ``word_embed_proj_dim != hidden_size`` (the projections of
            OPT-350M), ``_remove_final_layer_norm``, ``layer_norm_elementwise_affine=False``,
            ``enable_bias=False`` mixed with norms that have biases, an unknown
            activation, or dropout rates that differ.
    """
    c = as_dict(hf_config)
    E = c["hidden_size"]
    reject(c, word_embed_proj_dim=E, _remove_final_layer_norm=False,
           layer_norm_elementwise_affine=True, enable_bias=True, layerdrop=0.0)
    return ModelConfig(
        arch="decoder", vocab_size=c["vocab_size"], embed_dim=E,
        num_layers=c["num_hidden_layers"], num_heads=c["num_attention_heads"],
        ffn_dim=c["ffn_dim"], positions="learned_real", max_len=c["max_position_embeddings"],
        norm="layernorm", norm_eps=1e-5, prenorm=bool(c.get("do_layer_norm_before", True)),
        ffn="mlp", activation=activation(c["activation_function"], "activation_function"),
        bias=True, dropout=one_dropout(c, "dropout", "attention_dropout"), final_norm=True,
        tie_embeddings=bool(c.get("tie_word_embeddings", True)),
    )


def from_opt(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to an OPT LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`opt_config`).
    """
    config = opt_config(model.config)
    source = base_state(model, head, "model.")
    key = "model.decoder.embed_positions.weight"
    source[key] = source[key][OFFSET:]
    table = TABLE + (FINAL_NORM if config.prenorm else [])
    return build_decoder(model, head, config, source, table)
