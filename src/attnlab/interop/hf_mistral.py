"""Hugging Face Mistral (``MistralForCausalLM``, ``MistralModel``) -> attnlab.

Mistral 7B (Jiang et al. 2023) is Llama's architecture plus **sliding-window
attention**: each token sees only the ``sliding_window`` most recent tokens,
itself included — attnlab's ``window`` with ``causal=True``, so a long input
takes the banded ``windowed`` path and the keys outside the band are never
scored. Weights have Llama's names.
"""

import dataclasses
from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import as_dict, base_state, build_decoder
from .hf_llama import llama_config, llama_table


def mistral_config(hf_config: Any) -> ModelConfig:
    """Translate a ``MistralConfig`` (or its dict): Llama's plus ``window=sliding_window``.

    Raises:
        ValueError: For the options :func:`~attnlab.interop.hf_llama.llama_config` refuses,
            or ``layer_types`` that mix full and sliding layers.
    """
    c = as_dict(hf_config)
    kinds = set(c.get("layer_types") or ())
    if len(kinds) > 1:
        raise ValueError(f"layer_types mixing {sorted(kinds)} is not supported "
                         "(attnlab layers share one window)")
    window = c.get("sliding_window")
    if kinds == {"full_attention"}:
        window = None
    return dataclasses.replace(llama_config(c), window=window)


def from_mistral(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Mistral LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`mistral_config`).
    """
    config = mistral_config(model.config)
    return build_decoder(model, head, config, base_state(model, head, "model."),
                         llama_table(bias=config.bias))
