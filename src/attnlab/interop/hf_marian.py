"""Hugging Face Marian (``MarianMTModel``) -> attnlab ``Seq2SeqLM``.

Marian (Junczys-Dowmunt et al. 2018; the OPUS-MT translation models) has
BART's layout (:mod:`.hf_bart`) with **fixed sinusoidal positions** (sines in
the first half of the features, cosines in the second, positions from 0),
embeddings scaled by sqrt(E) and no embedding LayerNorm. Hugging Face stores
the sinusoid table with the weights, so it loads into attnlab's learned
position table unchanged (the same numbers; trainable there).
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from ..models.seq2seq_lm import Seq2SeqLM
from .hf import as_dict, reject
from .hf_bart import bart_config, bart_table, build_seq2seq, seq2seq_source


def marian_config(hf_config: Any) -> ModelConfig:
    """Translate a ``MarianConfig`` (or its dict).

    Raises:
        ValueError: For separate source/target vocabularies
            (``share_encoder_decoder_embeddings=False`` or ``decoder_vocab_size``
            different), and what :func:`~attnlab.interop.hf_bart.bart_config` refuses.
    """
    c = as_dict(hf_config)
    c["decoder_vocab_size"] = c.get("decoder_vocab_size") or c["vocab_size"]
    reject(c, share_encoder_decoder_embeddings=True, decoder_vocab_size=c["vocab_size"])
    return bart_config(c, embed_norm=False)


def from_marian(model: nn.Module, head: str = "seq2seq") -> Seq2SeqLM:
    """Build the ``Seq2SeqLM`` equal to a Hugging Face ``MarianMTModel``.

    Raises:
        ValueError: For unsupported options (see :func:`marian_config`).
    """
    config = marian_config(model.config)
    return build_seq2seq(model, config, seq2seq_source(model, 0), bart_table(config))
