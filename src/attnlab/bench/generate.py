"""Greedy generation with a KV cache: HF ``generate`` vs attnlab's ``generate``.

The same GPT-2-shaped model as the training benchmark (context table 1024
positions, as in GPT-2, so that 32 + 256 tokens fit), converted with
:func:`attnlab.interop.from_hf`. Batch 1, a 32-token prompt, 256 new tokens,
greedy; both must produce the same tokens (the "max abs Δ" column counts the
tokens that differ).

Where a token goes (``cProfile``, one thread, ~1.5 ms): about half in the 25
matrix-vector products (4 layers × q/k/v/out/up/down, plus the head), which
stream all 13 MB of weights once per token and are bound by memory bandwidth
(~20 µs for a 1 MB weight); the rest is Python: ~60 module calls per token,
the cache append, argmax. HF ``generate`` here makes ~1.4–2 ms per token, so
even a decoder with zero Python overhead would stop near 3× — 4× needs the
weights read less often (batching, smaller dtypes) rather than less dispatch.
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
