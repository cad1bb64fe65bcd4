"""Transformer building blocks: normalisation layers and feed-forward networks."""

from attnlab.blocks.feedforward import MLP, SwiGLU
from attnlab.blocks.norms import LayerNorm, RMSNorm
from attnlab.registry import FFNS, NORMS

__all__ = ["MLP", "LayerNorm", "RMSNorm", "SwiGLU"]

NORMS.register("layernorm", LayerNorm, help="layer norm with optional bias (Ba et al.)")
NORMS.register("rmsnorm", RMSNorm, help="root-mean-square norm, no centring (Llama)")
FFNS.register("mlp", MLP, help="up -> activation -> down (GPT-2, BERT)")
FFNS.register("swiglu", SwiGLU, help="down(silu(gate(x)) * up(x)) (Llama)")
