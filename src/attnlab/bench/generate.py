"""Greedy generation with a KV cache: HF ``generate`` vs attnlab's ``generate``.

The same GPT-2-shaped model as the training benchmark (context table 1024
positions, as in GPT-2, so that 32 + 256 tokens fit), converted with
:func:`attnlab.interop.from_hf`. Batch 1, a 32-token prompt, 256 new tokens,
greedy; both must produce the same tokens (the "max abs Δ" column counts the
tokens that differ).

Where a token goes (measured 2026-11-22 on the 2-core machine, idle, one thread,
256 greedy tokens after a 32-token prompt): HF ``generate`` 1.41 ms per token
(1.7–1.9 ms in later runs), attnlab's ``generate`` 1.42 ms (1.00×; the benchmark's
own run under load gave 1.47×); the weights' matrix-vector products alone (17 of
them with q/k/v fused, 12.8 MB of weights streamed once per token) 0.29 ms, so a
decoder with no overhead at all would stop near 4.9×. The rest is dispatch: ~60
module calls and ~150 small tensor ops per token. A hand-written step with the same
weights (fused q/k/v, no module calls, no checks, same tokens) made 0.66 ms (2.15×);
``torch.compile`` of a static-shape version of that step (inductor; default,
``freezing``, ``freezing`` + ``cpp_wrapper``) was slower, 2.5–3.2 ms per step against
0.7–0.9 ms eager. So 4× needs a step whose overhead is below ~0.06 ms: not reachable
with eager PyTorch ops on this CPU, and the compiled route did not get there either.
"""

import importlib.util

import torch

from .harness import Case, Contender, Setup
from .train import gpt2_shape, hf_gpt2

DESCRIPTION = "greedy cached generation tokens/s: HF generate vs attnlab"
TARGET = 4.0


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """One case: 32-token prompt, 256 new tokens (tiny: 4 and 8)."""
    prompt, new = (4, 8) if profile.name == "tiny" else (32, 256)
    return [Case("generate", f"greedy prompt={prompt} new={new}", _make(profile.name, prompt, new),
                 peer="HF generate", tokens=new, repeats=11 if profile.name == "full" else None)]


def _make(profile: str, prompt: int, new: int):  # noqa: ANN202
    def make() -> Setup:
        if importlib.util.find_spec("transformers") is None:
            return Setup([], notes=["transformers not installed: skipped"])
        from ..interop import from_hf

        shape = dict(gpt2_shape(profile), n_positions=max(prompt + new, 32 if profile == "tiny"
                                                          else 1024))
        hf = hf_gpt2(shape).eval()
        ours = from_hf(hf).eval()
        ids = torch.randint(0, shape["vocab_size"], (1, prompt),
                            generator=torch.Generator().manual_seed(2))

        @torch.inference_mode()
        def run_hf() -> torch.Tensor:
            return hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                               min_new_tokens=new, do_sample=False, use_cache=True,
                               pad_token_id=0)

        @torch.inference_mode()
        def run_ours() -> torch.Tensor:
            return ours.generate(ids, new, temperature=0.0)

        def check() -> float:
            a, b = run_hf(), run_ours()
            return float((a != b).sum()) if a.shape == b.shape else float(max(a.numel(),
                                                                              b.numel()))

        return Setup([Contender("HF generate", run_hf, "DynamicCache, SDPA"),
                      Contender("attnlab", run_ours, "KVCache, fused",
                                TARGET if profile != "tiny" else None)],
                     check=check, tolerance=0.0,
                     notes=["torch.compile not used: the cache grows every step"])
    return make
