"""Hugging Face Gemma (``GemmaForCausalLM``, ``GemmaModel``) -> attnlab.

Gemma (Gemma Team 2024) is Llama's layout with three changes, each a
registered part of attnlab: token embeddings **scaled by sqrt(E)**
(``embed_scale``), RMSNorm with gain **1 + weight** (``rmsnorm_offset``), and a
**GeGLU** feed-forward (GELU-tanh gate, ``geglu``); heads are often wider than
E / H and the 2B model has one key/value head (multi-query). The output head is
the token embedding. Gemma 2's logit soft-capping and alternating windows are
a different ``model_type`` (``gemma2``), not converted.
"""

import dataclasses
from typing import Any

from torch import nn

from ..config import ModelConfig
from .hf import as_dict, base_state, build_decoder, reject
from .hf_llama import llama_config, llama_table


def gemma_config(hf_config: Any) -> ModelConfig:
    """Translate a ``GemmaConfig`` (or its dict).

    Raises:
        ValueError: For the options :func:`~attnlab.interop.hf_llama.llama_config`
            refuses (the activation must be ``gelu_pytorch_tanh``), or
            ``use_bidirectional_attention``.
    """
    c = as_dict(hf_config)
    reject(c, use_bidirectional_attention=None)
    c.setdefault("hidden_act", c.get("hidden_activation") or "gelu_pytorch_tanh")
    base = llama_config(c, hidden_act="gelu_pytorch_tanh")
    return dataclasses.replace(base, norm="rmsnorm_offset", ffn="geglu", embed_scale=True,
                               tie_embeddings=bool(c.get("tie_word_embeddings", True)))


def from_gemma(model: nn.Module, head: str = "lm") -> nn.Module:
    """Build the attnlab model equal to a Gemma LM (``head="lm"``) or base model.

    Raises:
        ValueError: For unsupported options (see :func:`gemma_config`).
    """
    config = gemma_config(model.config)
    return build_decoder(model, head, config, base_state(model, head, "model."),
                         llama_table(bias=config.bias))
