"""Hugging Face RoBERTa (``RobertaModel``) -> attnlab ``TransformerEncoder``.

RoBERTa (Liu et al. 2019) is BERT's architecture with different training; the
one architectural difference is where positions start: RoBERTa numbers real
tokens from ``pad_token_id + 1`` (rows before that in its position table are
never used by real tokens), so the table loads with those rows dropped.

RoBERTa derives positions from ``input_ids != pad_token_id``; attnlab counts
them from the first column. They agree for unpadded and right-padded input
(the tested cases) but not for left padding.
"""

from typing import Any

from torch import nn

from ..config import ModelConfig
from ..models.encoder import TransformerEncoder
from .hf import as_dict, build_loaded
from .hf_bert import IGNORED, bert_config, bert_table

POSITIONS = "embeddings.position_embeddings.weight"


def roberta_config(hf_config: Any) -> ModelConfig:
    """Translate a ``RobertaConfig`` (or its dict): BERT's, minus the offset position rows.

    Raises:
        ValueError: For the options :func:`~attnlab.interop.hf_bert.bert_config` refuses.
    """
    c = as_dict(hf_config)
    offset = c["pad_token_id"] + 1
    return bert_config({**c, "model_type": "bert",
                        "max_position_embeddings": c["max_position_embeddings"] - offset})


def from_roberta(model: nn.Module, head: str = "base") -> TransformerEncoder:
    """Build the ``TransformerEncoder`` equal to a Hugging Face ``RobertaModel``.

    Raises:
        ValueError: For unsupported options (see :func:`roberta_config`).
    """
    config = roberta_config(model.config)
    source = dict(model.state_dict())
    source[POSITIONS] = source[POSITIONS][model.config.pad_token_id + 1:]
    table = bert_table(token_types=config.type_vocab_size > 0)
    encoder = build_loaded(TransformerEncoder, config, model, source, table,
                           ignore_source=IGNORED)
    assert isinstance(encoder, TransformerEncoder)
    return encoder
