"""Time and peak memory against N for every attention path (attnlab only).

* ``fused`` causal self-attention (PyTorch's flash kernel on CPU): memory
  ``O(N)``, time ``O(N²)``;
* ``windowed`` (causal, w=257): memory and time ``O(N)``, forward and
  forward+backward;
* ``offset-causal`` (``L = N/2`` queries over ``N`` keys): blocks of queries,
  memory ``O(N)``;
* ``math`` (the weights are materialised, as ``attention_weights`` or
  ``capture_attention`` need): memory ``O(N²)``.

The issue's target is N=65536 (B=1, H=8, D=64) for causal and windowed. The
windowed path gets there in seconds; full causal attention at 65536 is
``O(N²)`` ≈ 4.4 TFLOP (with the causal half skipped), about a minute or more on
two cores, so lengths from 16384 on get one call each, timed and measured at once.
"""

import torch

from ..functional import attention_weights, scaled_dot_product_attention
from .harness import Case, Contender, Setup

DESCRIPTION = "time and memory vs N for the fused, windowed, offset-causal and math paths"


def _sizes(profile: str) -> dict[str, list[int]]:
    if profile == "tiny":
        return {"causal": [16, 32], "windowed": [16, 32], "windowed+bwd": [32], "offset": [32],
                "math": [32]}
    if profile == "quick":
        return {"causal": [1024, 4096], "windowed": [4096, 16384],
                "windowed+bwd": [4096, 16384], "offset": [1024, 4096], "math": [512, 1024]}
    return {"causal": [1024, 4096, 16384, 32768, 65536], "windowed": [1024, 4096, 16384, 65536],
            "windowed+bwd": [1024, 4096, 16384, 65536], "offset": [1024, 4096, 16384],
            "math": [512, 1024, 2048, 4096]}


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """One case per (path, N), each measuring time and peak memory."""
    H, D = (2, 8) if profile.name == "tiny" else (8, 64)
    w = 5 if profile.name == "tiny" else 257
    sizes = _sizes(profile.name)
    out = []
    for N in sizes["causal"]:
        out.append(Case("long", "causal fwd", _make(H, N, N, D, causal=True), n=N,
                        flops=2 * H * N * N * D, memory=True, repeats=1 if N > 8192 else None))
    for N in sizes["windowed"]:
        out.append(Case("long", f"windowed w={w} fwd", _make(H, N, N, D, causal=True, window=w),
                        n=N, flops=4 * H * N * w * D, memory=True))
    for N in sizes["windowed+bwd"]:
        out.append(Case("long", f"windowed w={w} fwd+bwd",
                        _make(H, N, N, D, causal=True, window=w, backward=True), n=N,
                        flops=12 * H * N * w * D, memory=True))
    for N in sizes["offset"]:
        L = N // 2
        out.append(Case("long", "offset-causal L=N/2 fwd", _make(H, L, N, D, causal=True), n=N,
                        flops=4 * H * (L * N - L * L / 2) * D, memory=True))
    for N in sizes["math"]:
        out.append(Case("long", "math (weights) causal fwd",
                        _make(H, N, N, D, causal=True, weights=True), n=N,
                        flops=4 * H * N * N * D, memory=True))
    return out


def _make(H: int, L: int, S: int, D: int, *, causal: bool, window: int | None = None,  # noqa: ANN202
          backward: bool = False, weights: bool = False):
    def make() -> Setup:
        generator = torch.Generator().manual_seed(0)
        q = torch.randn(1, H, L, D, generator=generator).requires_grad_(backward)
        k, v = (torch.randn(1, H, S, D, generator=generator).requires_grad_(backward)
                for _ in range(2))

        def forward() -> torch.Tensor:
            with torch.no_grad():
                if weights:
                    w = attention_weights(q, k, causal=causal)
                    return w @ v  # (1, H, L, S) @ (1, H, S, D): the math path's two halves
                return scaled_dot_product_attention(q, k, v, causal=causal, window=window)

        def step() -> None:
            for t in (q, k, v):
                t.grad = None
            scaled_dot_product_attention(q, k, v, causal=causal, window=window).sum().backward()

        if weights:
            path = "math"
        elif window is not None:
            path = "windowed"
        else:
            path = "fused" if L == S else "offset-causal"
        return Setup([Contender("attnlab", step if backward else forward, path)])
    return make
