"""Hugging Face GPT-NeoX / Pythia (``GPTNeoXForCausalLM``, ``GPTNeoXModel``) -> attnlab.

GPT-NeoX (Black et al. 2022; the Pythia suite) differs from GPT-2 and Llama in
two attention-related ways, both attnlab parts:

* **partial rotary**: only the first ``partial_rotary_factor`` (Pythia: 25%) of
  each head's features are rotated (``ModelConfig.rotary_dim``); the rest carry
  no position at all;
* **parallel residual**: attention and MLP read the same input,
  ``x + attn(ln1(x)) + mlp(ln2(x))`` (``residual="parallel"``), unless
  ``use_parallel_residual=False``.

Its ``query_key_value`` projection is fused **per head**: output rows are laid
out ``(H, 3, D)`` (each head's q, k, v together), unlike GPT-2's ``(3, H, D)``;
:func:`split_neox_qkv` takes it apart.
"""

from typing import Any

from torch import Tensor, nn

from ..config import ModelConfig
from .hf import activation, as_dict, base_state, build_decoder, one_dropout
from .hf_llama import rope_settings

N, L = "gpt_neox.layers.{i}.", "decoder.layers.{i}."

TABLE = [
    ("embed.tokens.weight", "gpt_neox.embed_in.weight"),
    *((f"{L}self_attn.{p}_proj.{t}", f"{N}attention.query_key_value.{t}:{p}")
      for p in "qkv" for t in ("weight", "bias")),
    *((f"{L}{ours}.{t}", f"{N}{theirs}.{t}") for t in ("weight", "bias")
      for ours, theirs in (("self_attn.out_proj", "attention.dense"),
                           ("self_norm", "input_layernorm"),
                           ("ffn_norm", "post_attention_layernorm"),
                           ("ffn.up_proj", "mlp.dense_h_to_4h"),
                           ("ffn.down_proj", "mlp.dense_4h_to_h"))),
    ("decoder.final_norm.weight", "gpt_neox.final_layer_norm.weight"),
    ("decoder.final_norm.bias", "gpt_neox.final_layer_norm.bias"),
]


def neox_config(hf_config: Any) -> ModelConfig:
    """Translate a ``GPTNeoXConfig`` (or its dict).

    Raises:
        ValueError: For RoPE scaling, ``attention_bias=False``, an unknown
            activation, or dropout rates that differ.
    """
    c = as_dict(hf_config)
    if not c.get("attention_bias", True):
        raise ValueError("attention_bias=False is not supported (attnlab has one bias "
                         "setting and GPT-NeoX's MLP has biases)")
    E, H = c["hidden_size"], c["num_attention_heads"]
    theta, rotary_dim = rope_settings(c, E // H)
    return ModelConfig(
        arch="decoder", vocab_size=c["vocab_size"], embed_dim=E,
        num_layers=c["num_hidden_layers"], num_heads=H, ffn_dim=c["intermediate_size"],
        positions="rotary", rope_theta=theta, rotary_dim=rotary_dim,
        max_len=c["max_position_embeddings"], norm="layernorm", norm_eps=c["layer_norm_eps"],
        prenorm=True, residual="parallel" if c.get("use_parallel_residual", True) else
        "sequential", ffn="mlp", activation=activation(c["hidden_act"], "hidden_act"),
        bias=True, dropout=one_dropout(c, "attention_dropout", "hidden_dropout"),
        final_norm=True, tie_embeddings=bool(c.get("tie_word_embeddings", False)),
    )


def split_neox_qkv(state: dict[str, Tensor], num_heads: int) -> dict[str, Tensor]:
    """Split ``query_key_value`` (rows ``(H, 3, D)``) into ``...:q``, ``:k``, ``:v`` (``(H·D)``)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".attention.query_key_value." not in key:
            out[key] = value
            continue
        per_head = value.unflatten(0, (num_heads, 3, -1))  # (H, 3, D, ...)
        for index, part in enumerate("qkv"):
            out[f"{key}:{part}"] = per_head[:, index].flatten(0, 1)  # (H·D, ...)
    return out


def from_neox(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a GPT-NeoX LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`neox_config`).
    """
    config = neox_config(model.config)
    source = split_neox_qkv(base_state(model, head, "gpt_neox."), config.num_heads)
    ignored = ["gpt_neox.layers.*.attention.rotary_emb.*", "gpt_neox.rotary_emb.*"]
    return build_decoder(model, head, config, source, TABLE, ignore_source=ignored)
