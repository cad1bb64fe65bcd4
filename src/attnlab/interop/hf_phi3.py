"""Hugging Face Phi-3 (``Phi3ForCausalLM``, ``Phi3Model``) -> attnlab.

Phi-3 (Abdin et al. 2024) is Llama's architecture with **fused projections**:
``qkv_proj`` stacks the query (H·D rows), key (G·D) and value (G·D)
projections, and ``gate_up_proj`` stacks the SwiGLU gate and up projections.
They are split on loading into attnlab's separate ``q_proj``/``k_proj``/
``v_proj`` and ``gate_proj``/``up_proj`` — the same function, one matmul more.
Its ``sliding_window`` (if set) maps to attnlab's ``window``; ``longrope``
scaling (the 128k models) is refused.
"""

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .hf import as_dict, base_state, build_decoder, reject
from .hf_llama import llama_config, llama_table, rope_settings

M = "model.layers.{i}."


def phi3_config(hf_config: Any) -> ModelConfig:
    """Translate a ``Phi3Config`` (or its dict).

    Raises:
        ValueError: For the options :func:`~attnlab.interop.hf_llama.llama_config`
            refuses, or nonzero ``resid_pdrop``/``embd_pdrop``.
    """
    c = as_dict(hf_config)
    reject(c, resid_pdrop=0.0, embd_pdrop=0.0)
    params = dict(c.get("rope_parameters") or {})
    full = {**c, "rope_parameters": {k: v for k, v in params.items()
                                     if k != "partial_rotary_factor"}}
    base = llama_config({k: v for k, v in full.items() if k != "partial_rotary_factor"})
    _, rotary_dim = rope_settings(c, base.resolved_head_dim)
    return dataclasses.replace(base, window=c.get("sliding_window"), rotary_dim=rotary_dim)


def split_phi3(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Split every layer's ``qkv_proj`` and ``gate_up_proj`` into Llama's names."""
    H, G, D = config.num_heads, config.num_kv_heads or config.num_heads, config.resolved_head_dim
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith("self_attn.qkv_proj.weight"):
            stem = key[: -len("qkv_proj.weight")]
            q, k, v = torch.split(value, [H * D, G * D, G * D], dim=0)
            out |= {f"{stem}q_proj.weight": q, f"{stem}k_proj.weight": k,
                    f"{stem}v_proj.weight": v}
        elif key.endswith("mlp.gate_up_proj.weight"):
            stem = key[: -len("gate_up_proj.weight")]
            gate, up = value.chunk(2, dim=0)
            out |= {f"{stem}gate_proj.weight": gate, f"{stem}up_proj.weight": up}
        else:
            out[key] = value
    return out


def from_phi3(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Phi-3 LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`phi3_config`).
    """
    config = phi3_config(model.config)
    source = split_phi3(base_state(model, head, "model."), config)
    return build_decoder(model, head, config, source, llama_table(bias=False))
