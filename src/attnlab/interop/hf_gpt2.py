"""Hugging Face GPT-2 (``GPT2LMHeadModel``, ``GPT2Model``) -> ``DecoderLM``/``DecoderModel``.

GPT-2 (Radford et al. 2019) is a pre-norm decoder with learned absolute
positions, LayerNorm, a GELU (tanh approximation) MLP, biases everywhere, a
final LayerNorm ``ln_f`` and an output head tied to the token embedding.

Two storage conventions need care:

* ``Conv1D`` layers keep weights ``(in, out)``, the transpose of ``nn.Linear``:
  listed in :data:`TRANSPOSED`.
* ``attn.c_attn`` packs q, k and v along its output dimension: split with
  :func:`~attnlab.interop.state_dict.split_fused` into ``c_attn.weight:q`` etc.
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import activation, as_dict, base_state, build_decoder, one_dropout, reject
from .state_dict import split_fused

H = "transformer.h.{i}."
L = "decoder.layers.{i}."

TABLE = [
    ("embed.tokens.weight", "transformer.wte.weight"),
    ("embed.positions.embedding.weight", "transformer.wpe.weight"),
    *((f"{L}self_attn.{p}_proj.{t}", f"{H}attn.c_attn.{t}:{p}")
      for p in ("q", "k", "v") for t in ("weight", "bias")),
    (f"{L}self_attn.out_proj.weight", f"{H}attn.c_proj.weight"),
    (f"{L}self_attn.out_proj.bias", f"{H}attn.c_proj.bias"),
    (f"{L}self_norm.weight", f"{H}ln_1.weight"),
    (f"{L}self_norm.bias", f"{H}ln_1.bias"),
    (f"{L}ffn.up_proj.weight", f"{H}mlp.c_fc.weight"),
    (f"{L}ffn.up_proj.bias", f"{H}mlp.c_fc.bias"),
    (f"{L}ffn.down_proj.weight", f"{H}mlp.c_proj.weight"),
    (f"{L}ffn.down_proj.bias", f"{H}mlp.c_proj.bias"),
    (f"{L}ffn_norm.weight", f"{H}ln_2.weight"),
    (f"{L}ffn_norm.bias", f"{H}ln_2.bias"),
    ("decoder.final_norm.weight", "transformer.ln_f.weight"),
    ("decoder.final_norm.bias", "transformer.ln_f.bias"),
]

# Conv1D weights, stored (in, out)
TRANSPOSED = {f"{H}attn.c_attn.weight:{p}" for p in ("q", "k", "v")} | {
    f"{H}attn.c_proj.weight", f"{H}mlp.c_fc.weight", f"{H}mlp.c_proj.weight"}

# causal-mask buffers of older checkpoints (from_gpt2 adds lm_head.weight when tied to wte)
IGNORED = ["transformer.h.*.attn.bias", "transformer.h.*.attn.masked_bias"]


def gpt2_config(hf_config: Any) -> ModelConfig:
    """Translate a ``GPT2Config`` (or its dict) into a :class:`ModelConfig`.

    Args:
        hf_config: ``transformers.GPT2Config`` or ``config.to_dict()``.

    Returns:
        A decoder ``ModelConfig`` with learned positions, pre-norm LayerNorm,
        an MLP and biases.

    Raises:
        ValueError: For options attnlab does not reproduce
            (``scale_attn_by_inverse_layer_idx``, ``reorder_and_upcast_attn``,
            ``add_cross_attention``, ``scale_attn_weights=False``, an unknown
            activation, dropout rates that differ).
    """
    c = as_dict(hf_config)
    reject(c, scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
           add_cross_attention=False, scale_attn_weights=True)
    E = c["n_embd"]
    return ModelConfig(
        arch="decoder", vocab_size=c["vocab_size"], embed_dim=E, num_layers=c["n_layer"],
        num_heads=c["n_head"], ffn_dim=c.get("n_inner") or 4 * E, positions="learned",
        max_len=c["n_positions"], norm="layernorm", norm_eps=c["layer_norm_epsilon"],
        prenorm=True, ffn="mlp",
        activation=activation(c["activation_function"], "activation_function"), bias=True,
        dropout=one_dropout(c, "resid_pdrop", "embd_pdrop", "attn_pdrop"),
        tie_embeddings=bool(c.get("tie_word_embeddings", True)), final_norm=True,
    )


def from_gpt2(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Hugging Face ``GPT2LMHeadModel`` or ``GPT2Model``.

    Args:
        model: The ``GPT2LMHeadModel`` (``head="lm"``) or ``GPT2Model`` (``head="base"``).
        head: What to return: logits (``DecoderLM``) or hidden states (``DecoderModel``).

    Returns:
        The attnlab model, in ``model``'s dtype, device and train/eval mode.

    Raises:
        ValueError: For unsupported options (see :func:`gpt2_config`) or weights
            that do not fit the table.
    """
    config = gpt2_config(model.config)
    source = base_state(model, head, "transformer.")
    source = split_fused(source, f"{H}attn.c_attn.weight", ("q", "k", "v"), dim=1)
    source = split_fused(source, f"{H}attn.c_attn.bias", ("q", "k", "v"))
    return build_decoder(model, head, config, source, TABLE, transpose=TRANSPOSED,
                         ignore_source=IGNORED)
