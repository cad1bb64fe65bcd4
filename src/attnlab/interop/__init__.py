"""Weights and conventions from other libraries: PyTorch, Hugging Face, GGUF files."""

from .gguf_model import GGUFModel, load_gguf
from .hf import from_hf
from .sentence import SentenceEncoder, load_sentence_encoder
from .state_dict import CopyReport, copy_weights, split_fused
from .torch_encoder import TorchEncoderLayer, from_torch_encoder_layer
from .torch_mha import from_torch, to_torch

__all__ = [
    "CopyReport",
    "GGUFModel",
    "SentenceEncoder",
    "TorchEncoderLayer",
    "copy_weights",
    "from_hf",
    "from_torch",
    "from_torch_encoder_layer",
    "load_gguf",
    "load_sentence_encoder",
    "split_fused",
    "to_torch",
]
