"""Sliding-window attention against dense SDPA with a band mask.

The dense way, ``F.scaled_dot_product_attention(q, k, v, attn_mask=band)``,
does all ``N²`` work and keeps ``N·w`` of it; attnlab's windowed path computes
only the band (:mod:`attnlab.functional.windowed`). Both forward and
forward+backward, since the point is that it trains. Outputs (and, for
forward+backward, the gradients) must agree within 1e-5. Optional peers
(lucidrains' ``local-attention``, compiled FlexAttention) run when installed /
compilable and are otherwise skipped with a note.

Shape: B=1, H=8, D=64, causal, window 257 (256 keys back + the query itself).
"""

import importlib.util

import torch
import torch.nn.functional as F

from ..functional import causal_mask, scaled_dot_product_attention
from .harness import Case, Contender, Setup

DESCRIPTION = "sliding window (causal, w=257) vs dense SDPA with a band mask"
WINDOW = 257
FWD_TARGET, BWD_TARGET, TARGET_N = 12.0, 10.0, 8192  # targets hold at N=8192


def _sizes(profile: str) -> tuple[int, int, int, list[int]]:
    """(H, D, window, lengths)."""
    if profile == "tiny":
        return 2, 8, 5, [32, 64]
    if profile == "quick":
        return 8, 64, WINDOW, [2048, 8192]
    return 8, 64, WINDOW, [1024, 2048, 4096, 8192]


#: Interleaved rounds per case (at least): with another process on the cores one quick run's
#: 3 rounds put the N=8192 forward at 14.25x (10.70-17.20) and the next at 11.46x (8.86-18.41).
ROUNDS = 7


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """Forward at every length; forward+backward at every length."""
    H, D, w, lengths = _sizes(profile.name)
    repeats = max(ROUNDS, profile.repeats)
    out = []
    for backward in (False, True):
        name = f"causal w={w} fwd" + ("+bwd" if backward else "")
        for N in lengths:
            flops = 4 * H * N * min(w, N) * D * (3 if backward else 1)  # the band's work
            out.append(Case("window", name, _make(H, N, D, w, backward, profile.name),
                            peer="dense SDPA + band mask", n=N, flops=flops,
                            memory=N == lengths[-1], repeats=repeats))
    return out


def _make(H: int, N: int, D: int, w: int, backward: bool, profile: str):  # noqa: ANN202
    def make() -> Setup:
        generator = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, H, N, D, generator=generator).requires_grad_(backward)
                   for _ in range(3))
        band = causal_mask(N, window=w)  # (N, N) bool

        def dense() -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=band)

        def ours() -> torch.Tensor:
            return scaled_dot_product_attention(q, k, v, causal=True, window=w)

        notes = []
        outputs = {"attnlab": ours}  # contender -> its output, checked against dense()
        contenders = [Contender("dense SDPA + band mask", _run(dense, backward, q, k, v),
                                "fused kernel, (N, N) bool mask"),
                      Contender("attnlab", _run(ours, backward, q, k, v), "windowed",
                                None if N != TARGET_N else BWD_TARGET if backward else FWD_TARGET)]
        if importlib.util.find_spec("local_attention") is None:
            notes.append("lucidrains local-attention not installed: skipped")
        else:
            outputs["local-attention"] = _local_attention(q, k, v, w)
            contenders.append(Contender("local-attention",
                                        _run(outputs["local-attention"], backward, q, k, v),
                                        "blocks of w-1 keys, one block back, exact window"))
        if backward or profile != "full":
            notes.append("FlexAttention: no backward on CPU / compiled only in the full profile"
                         if backward else "FlexAttention: full profile only")
        else:
            flex, note = _flex(q, k, v, w)
            if flex is None:
                notes.append(note)
            else:
                outputs["FlexAttention (compiled)"] = flex
                contenders.append(Contender("FlexAttention (compiled)", _run(flex, False),
                                            "block mask, forward only"))

        def check() -> dict[str, float]:
            """Largest difference from dense in the output and, with backward, the gradients."""
            reference = _results(dense, backward, q, k, v)
            return {name: max(float((a - b).abs().max()) for a, b in
                              zip(_results(fn, backward, q, k, v), reference, strict=True))
                    for name, fn in outputs.items()}

        return Setup(contenders, check=check, tolerance=1e-5, notes=notes)
    return make


def _results(fn, backward: bool, *inputs: torch.Tensor) -> list[torch.Tensor]:  # noqa: ANN001
    """``[output]``, and with ``backward`` also the inputs' gradients of ``output.sum()``."""
    if not backward:
        with torch.no_grad():
            return [fn()]
    for t in inputs:
        t.grad = None
    out = fn()
    out.sum().backward()
    return [out.detach(), *(t.grad.clone() for t in inputs)]


def _run(fn, backward: bool, *inputs: torch.Tensor):  # noqa: ANN001, ANN202
    if not backward:
        def forward() -> None:
            with torch.no_grad():
                fn()
        return forward

    def step() -> None:
        for t in inputs:
            t.grad = None
        fn().sum().backward()
    return step


def _local_attention(q, k, v, w: int):  # noqa: ANN001, ANN202
    """Lucidrains' ``LocalAttention`` over the same band: a call returning its output."""
    from local_attention import LocalAttention  # type: ignore[import-not-found]

    # exact_windowsize: mask to 256 keys back + itself, not everything in the previous block
    attn = LocalAttention(window_size=w - 1, causal=True, look_backward=1, look_forward=0,
                          autopad=True, exact_windowsize=True)
    return lambda: attn(q, k, v)


def _flex(q, k, v, w: int):  # noqa: ANN001, ANN202
    """Compiled FlexAttention over a block mask: ``(output fn, "")`` or ``(None, why not)``."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def band(b, h, i, j):  # noqa: ANN001, ANN202
            return (j <= i) & (i - j < w)

        N = q.shape[-2]
        block = create_block_mask(band, None, None, N, N, device="cpu")
        compiled = torch.compile(flex_attention)

        def run() -> torch.Tensor:
            return compiled(q, k, v, block_mask=block)
        with torch.no_grad():
            run()  # compile now, so a failure is a note and not a crash mid-timing
    except Exception as exc:  # noqa: BLE001 (any compile failure is reported, not raised)
        return None, f"FlexAttention skipped: {type(exc).__name__}: {str(exc)[:80]}"
    return run, ""
