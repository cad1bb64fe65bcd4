"""``scaled_dot_product_attention`` against PyTorch's, forward, at several lengths.

attnlab validates its arguments and picks a path (:func:`attnlab.functional.plan`)
before calling the same fused kernel, so the target is parity: at least 0.95×
PyTorch's speed. Bottom-right causal attention with ``L != S`` is compared with
PyTorch given the equivalent explicit mask (its ``is_causal`` is top-left).

Shape: B=2 batch, H=8 heads, D=64 head width; N queries and keys.
"""

import torch
import torch.nn.functional as F

from ..functional import causal_mask, plan, scaled_dot_product_attention
from .harness import Case, Contender, Setup

DESCRIPTION = "functional attention vs torch SDPA (plain, causal, bottom-right causal)"
TARGET, TARGET_N = 0.95, 1024  # the issue: parity at N=1024


def _sizes(profile: str) -> tuple[tuple[int, int, int], list[int]]:
    if profile == "tiny":
        return (1, 2, 8), [16, 32]
    if profile == "quick":
        return (2, 8, 64), [512, 1024]
    return (2, 8, 64), [256, 512, 1024, 2048]


#: Interleaved rounds per case (at least): each call takes milliseconds, and with another
#: process on the cores a call either runs undisturbed or loses a scheduler time slice, so
#: its times are bimodal; a few rounds give a median from whichever mode came up (torch's
#: kernel against itself ranged 0.70-1.08x over 15 rounds).
ROUNDS = 15


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """Plain and causal at every size; bottom-right causal (L = N/2) at the largest two."""
    (B, H, D), lengths = _sizes(profile.name)
    repeats = max(ROUNDS, profile.repeats)
    out = []
    for kind in ("plain", "causal"):
        for N in lengths:
            flops = 4 * B * H * N * N * D / (2 if kind == "causal" else 1)
            out.append(Case("sdpa", f"{kind} fwd", _make(B, H, N, N, D, kind == "causal"),
                            peer="torch SDPA", n=N, flops=flops, repeats=repeats))
    for N in lengths[-2:]:
        L = N // 2
        flops = 4 * B * H * (L * N - L * L / 2) * D
        out.append(Case("sdpa", "causal L=N/2 fwd", _make(B, H, L, N, D, True),
                        peer="torch SDPA", n=N, flops=flops, repeats=repeats))
    return out


def _make(B: int, H: int, L: int, S: int, D: int, causal: bool):  # noqa: ANN202
    def make() -> Setup:
        generator = torch.Generator().manual_seed(0)
        q = torch.randn(B, H, L, D, generator=generator)
        k, v = (torch.randn(B, H, S, D, generator=generator) for _ in range(2))
        mask = causal_mask(L, S) if causal and L != S else None  # bottom-right, for torch

        def peer() -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                  is_causal=causal and L == S)

        def ours() -> torch.Tensor:
            return scaled_dot_product_attention(q, k, v, causal=causal)

        path = plan(L, S, None, causal=causal, window=None).path
        peer_path = "fused, bool mask" if mask is not None else "fused"
        target = TARGET if S == TARGET_N else None
        return Setup(
            [Contender("torch SDPA", peer, peer_path), Contender("attnlab", ours, path, target)],
            check=lambda: float((ours() - peer()).abs().max()), tolerance=1e-5,
        )
    return make
