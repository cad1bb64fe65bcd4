"""Weights and conventions from other libraries: PyTorch, Hugging Face, sentence-transformers."""

from .torch_mha import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
