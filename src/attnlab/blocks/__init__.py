"""Transformer building blocks: norms, feed-forward networks, and the layer that wires them."""

from attnlab.blocks.feedforward import MLP, GeGLU, SwiGLU
from attnlab.blocks.layers import TransformerLayer
from attnlab.blocks.norms import LayerNorm, OffsetRMSNorm, RMSNorm
from attnlab.registry import FFNS, NORMS

__all__ = ["MLP", "GeGLU", "LayerNorm", "OffsetRMSNorm", "RMSNorm", "SwiGLU", "TransformerLayer"]

NORMS.register("layernorm", LayerNorm, help="layer norm with optional bias (Ba et al.)")
NORMS.register("rmsnorm", RMSNorm, help="root-mean-square norm, no centring (Llama)")
FFNS.register("mlp", MLP, help="up -> activation -> down (GPT-2, BERT)")
FFNS.register("swiglu", SwiGLU, help="down(silu(gate(x)) * up(x)) (Llama)")
NORMS.register("rmsnorm_offset", OffsetRMSNorm, help="RMS norm with gain 1 + weight (Gemma)")
FFNS.register("geglu", GeGLU, help="down(gelu_tanh(gate(x)) * up(x)) (Gemma, T5 v1.1)")
