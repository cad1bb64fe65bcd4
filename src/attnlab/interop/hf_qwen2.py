"""Hugging Face Qwen2 (``Qwen2ForCausalLM``, ``Qwen2Model``) -> attnlab.

Qwen2 (Yang et al. 2024) is Llama's architecture with **biases on the query,
key and value projections only** (none on the output projection or the MLP):
attnlab's ``qkv_bias`` attention mechanism. Its optional sliding window
(``use_sliding_window`` with ``max_window_layers``) windows only some layers,
which attnlab's one-window stack cannot express: refused.
"""

import dataclasses
from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import as_dict, base_state, build_decoder, reject
from .hf_llama import llama_config, llama_table

M, L = "model.layers.{i}.", "decoder.layers.{i}."


def qwen2_config(hf_config: Any) -> ModelConfig:
    """Translate a ``Qwen2Config`` (or its dict): Llama's with ``attention="qkv_bias"``.

    Raises:
        ValueError: For the options :func:`~attnlab.interop.hf_llama.llama_config`
            refuses, ``use_sliding_window=True``, or sliding ``layer_types``.
    """
    c = as_dict(hf_config)
    reject(c, use_sliding_window=False)
    sliding = [i for i, kind in enumerate(c.get("layer_types") or ()) if kind != "full_attention"]
    if sliding:
        raise ValueError(f"layer_types with sliding layers {sliding} are not supported")
    return dataclasses.replace(llama_config(c), attention="qkv_bias", bias=False)


def from_qwen2(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Qwen2 LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`qwen2_config`).
    """
    config = qwen2_config(model.config)
    table = llama_table(bias=False) + [
        (f"{L}self_attn.{p}_proj.bias", f"{M}self_attn.{p}_proj.bias") for p in "qkv"]
    return build_decoder(model, head, config, base_state(model, head, "model."), table)
