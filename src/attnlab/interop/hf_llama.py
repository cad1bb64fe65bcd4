"""Hugging Face Llama (``LlamaForCausalLM``, ``LlamaModel``) -> ``DecoderLM``/``DecoderModel``.

Llama (Touvron et al. 2023) is a pre-norm decoder with RMSNorm, rotary
positions (the "rotate half" layout, which attnlab's ``RotaryEmbedding``
shares, so q/k weights load unpermuted), a SwiGLU feed-forward, no biases by
default, grouped-query attention (``num_key_value_heads``) and a head width
``head_dim`` that may differ from ``hidden_size / num_attention_heads``.
Parameter names already match attnlab's almost one to one.
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import as_dict, base_state, build_decoder, reject

M = "model.layers.{i}."
L = "decoder.layers.{i}."


def llama_table(*, bias: bool) -> list[tuple[str, str]]:
    """The attnlab <- Llama key table (without the output head).

    Args:
        bias: Whether the projections have biases (``attention_bias``/``mlp_bias``).

    Returns:
        ``(attnlab key, Llama key)`` pairs with ``{i}`` layer templates.
    """
    kinds = ("weight", "bias") if bias else ("weight",)
    table = [("embed.tokens.weight", "model.embed_tokens.weight")]
    for ours, theirs in (("q_proj", "q_proj"), ("k_proj", "k_proj"), ("v_proj", "v_proj"),
                         ("out_proj", "o_proj")):
        table += [(f"{L}self_attn.{ours}.{t}", f"{M}self_attn.{theirs}.{t}") for t in kinds]
    for proj in ("gate_proj", "up_proj", "down_proj"):
        table += [(f"{L}ffn.{proj}.{t}", f"{M}mlp.{proj}.{t}") for t in kinds]
    table += [
        (f"{L}self_norm.weight", f"{M}input_layernorm.weight"),
        (f"{L}ffn_norm.weight", f"{M}post_attention_layernorm.weight"),
        ("decoder.final_norm.weight", "model.norm.weight"),
    ]
    return table


def rope_settings(c: dict[str, Any], head_dim: int) -> tuple[float, int | None]:
    """The rotary base and rotated width from ``rope_parameters`` (transformers 5) or 4.x keys.

    Args:
        c: The config as a dict.
        head_dim: The head width D.

    Returns:
        ``(theta, rotary_dim)``: ``rotary_dim`` is None when the whole head
        rotates, else ``int(D * partial_rotary_factor)`` (as Hugging Face rounds).

    Raises:
        ValueError: If the RoPE type is not ``"default"`` (linear, dynamic, YaRN,
            Llama-3, longrope scaling...).
    """
    params = dict(c.get("rope_parameters") or c.get("rope_scaling") or {})
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        raise ValueError(f"rope type {kind!r} is not supported (only 'default' RoPE); "
                         f"got rope parameters {params}")
    factor = params.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0))
    theta = float(params.get("rope_theta", c.get("rope_theta", 10000.0)))
    return theta, None if factor == 1.0 else int(head_dim * factor)


def rope_theta(c: dict[str, Any]) -> float:
    """The rotary base of a model that rotates whole heads (Llama and kin).

    Args:
        c: The config as a dict.

    Returns:
        ``theta``, the base of the rotary frequencies.

    Raises:
        ValueError: If the RoPE type is not ``"default"`` or only part of each
            head is rotated (``partial_rotary_factor``).
    """
    theta, rotary_dim = rope_settings(c, 2)
    if rotary_dim is not None:
        factor = dict(c.get("rope_parameters") or {}).get(
            "partial_rotary_factor", c.get("partial_rotary_factor"))
        raise ValueError(f"partial_rotary_factor={factor} is not supported (only 1.0)")
    return theta


def llama_config(hf_config: Any, *, hidden_act: str = "silu") -> ModelConfig:
    """Translate a ``LlamaConfig`` (or its dict) into a :class:`ModelConfig`.

    Mistral, Qwen2, Gemma and Phi-3 start from this translation and change what
    differs (their modules say what).

    Args:
        hf_config: ``transformers.LlamaConfig`` or ``config.to_dict()``.
        hidden_act: The feed-forward activation the family must have.

    Returns:
        A decoder ``ModelConfig``: rotary, RMSNorm, SwiGLU, pre-norm.

    Raises:
        ValueError: For options attnlab does not reproduce: RoPE scaling,
            ``hidden_act`` other than the family's, ``attention_bias != mlp_bias``
            (attnlab has one ``bias`` switch), ``attention_dropout != 0`` (attnlab's
            one dropout rate would also drop residuals).
    """
    c = as_dict(hf_config)
    # HF drops attention weights only; attnlab's one rate also drops residuals
    reject(c, hidden_act=hidden_act, attention_dropout=0.0)
    bias = bool(c.get("attention_bias", False))
    if bool(c.get("mlp_bias", False)) != bias:
        raise ValueError(f"attention_bias={c.get('attention_bias')} and mlp_bias="
                         f"{c.get('mlp_bias')} differ; attnlab models have one bias setting")
    E, H = c["hidden_size"], c["num_attention_heads"]
    return ModelConfig(
        arch="decoder", vocab_size=c["vocab_size"], embed_dim=E,
        num_layers=c["num_hidden_layers"], num_heads=H,
        num_kv_heads=c.get("num_key_value_heads") or H,
        head_dim=c.get("head_dim") or E // H, ffn_dim=c["intermediate_size"],
        positions="rotary", rope_theta=rope_theta(c), max_len=c["max_position_embeddings"],
        norm="rmsnorm", norm_eps=c["rms_norm_eps"], prenorm=True, ffn="swiglu", bias=bias,
        dropout=0.0, final_norm=True,
        tie_embeddings=bool(c.get("tie_word_embeddings", False)),
    )


def from_llama(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Hugging Face ``LlamaForCausalLM`` or ``LlamaModel``.

    Args:
        model: The ``LlamaForCausalLM`` (``head="lm"``) or ``LlamaModel`` (``head="base"``).
        head: What to return: logits (``DecoderLM``) or hidden states (``DecoderModel``).

    Returns:
        The attnlab model, in ``model``'s dtype, device and train/eval mode.

    Raises:
        ValueError: For unsupported options (see :func:`llama_config`) or weights
            that do not fit the table.
    """
    config = llama_config(model.config)
    return build_decoder(model, head, config, base_state(model, head, "model."),
                         llama_table(bias=config.bias))
