"""``MultiHeadAttention`` against ``nn.MultiheadAttention`` (same weights, self-attention).

Training: forward and backward (input and parameter gradients). Inference:
``eval()`` under ``torch.inference_mode()``, where PyTorch takes its "fast path"
(``_native_multi_head_attention``) whenever it can; that path builds the full
``L×S`` weights even with ``need_weights=False``, so its peak memory grows as
``N²``; attnlab's stays on the fused kernel (``O(N)``).

Shape: B=1, E=512, H=8 (D=64), N tokens; torch with ``batch_first=True``,
``need_weights=False``.
"""

import torch
from torch import nn

from ..attention.multihead import MultiHeadAttention
from ..interop import to_torch
from .harness import Case, Contender, Setup

DESCRIPTION = "MultiHeadAttention vs nn.MultiheadAttention (train fwd+bwd, inference)"
TRAIN_TARGET, INFER_TARGET, TARGET_N = 1.0, 1.5, 2048  # targets hold at N=2048


def _sizes(profile: str) -> tuple[int, int, list[int], int]:
    """(E, H, inference lengths, training length)."""
    if profile == "tiny":
        return 16, 2, [8, 16], 16
    if profile == "quick":
        return 512, 8, [2048], 2048
    return 512, 8, [1024, 2048, 4096], 2048


def _flops(E: int, N: int, backward: bool) -> float:
    forward = 4 * 2 * N * E * E + 4 * N * N * E  # four projections + QKᵀ and PV
    return 3 * forward if backward else forward


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """Training at one length; inference (with memory) at several."""
    E, H, lengths, train_n = _sizes(profile.name)
    out = [Case("mha", "train fwd+bwd", _make(E, H, train_n, train=True), peer="torch MHA",
                n=train_n, flops=_flops(E, train_n, True))]
    out += [Case("mha", "inference fwd", _make(E, H, N, train=False), peer="torch MHA", n=N,
                 flops=_flops(E, N, False), memory=True) for N in lengths]
    return out


def _make(E: int, H: int, N: int, *, train: bool):  # noqa: ANN202
    def make() -> Setup:
        torch.manual_seed(0)
        ours = MultiHeadAttention(E, H)
        peer: nn.MultiheadAttention = to_torch(ours)
        x = torch.randn(1, N, E, requires_grad=train)
        if train:
            return Setup([
                Contender("torch MHA", lambda: _step(peer, lambda: peer(x, x, x,
                          need_weights=False)[0], x), "in_proj + SDPA (need_weights=False)"),
                Contender("attnlab", lambda: _step(ours, lambda: ours(x), x), "fused",
                          TRAIN_TARGET if N == TARGET_N else None),
            ], check=lambda: _diff(ours, peer, x), tolerance=1e-4)
        ours.eval()
        peer.eval()

        @torch.inference_mode()
        def run_peer() -> torch.Tensor:
            return peer(x, x, x, need_weights=False)[0]

        @torch.inference_mode()
        def run_ours() -> torch.Tensor:
            return ours(x)

        return Setup([
            Contender("torch MHA", run_peer, "native fast path"),
            Contender("attnlab", run_ours, "fused", INFER_TARGET if N == TARGET_N else None),
        ], check=lambda: float((run_ours() - run_peer()).abs().max()), tolerance=1e-4)
    return make


def _step(module: nn.Module, forward, x: torch.Tensor) -> None:  # noqa: ANN001
    module.zero_grad(set_to_none=True)
    x.grad = None
    forward().sum().backward()


@torch.no_grad()
def _diff(ours: nn.Module, peer: nn.MultiheadAttention, x: torch.Tensor) -> float:
    return float((ours(x) - peer(x, x, x, need_weights=False)[0]).abs().max())
