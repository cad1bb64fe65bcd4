"""Shared sample attention maps for the visualisation tests: a self- and a cross-attention.

Maps ``{module name: (B, H, L, L) or (B, H, L, S)}`` of random row-stochastic weights
with German target and English source tokens (so the axes of every plot can be checked).
"""

import torch

B, H, L, S = 2, 3, 7, 11
TGT = ["der", "schnelle", "braune", "Fuchs", "springt", "heute", "."]
SRC = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "today", "!"]
SELF, CROSS = "decoder.layers.0.self_attn", "decoder.layers.1.cross_attn"
TOKENS = {SELF: TGT, CROSS: (TGT, SRC)}


def make_maps() -> dict[str, torch.Tensor]:
    """Fresh maps from a fixed seed (the same values on every call)."""
    g = torch.Generator().manual_seed(0)
    return {
        SELF: torch.softmax(3 * torch.randn(B, H, L, L, generator=g), dim=-1),
        CROSS: torch.softmax(3 * torch.randn(B, H, L, S, generator=g), dim=-1),
    }
