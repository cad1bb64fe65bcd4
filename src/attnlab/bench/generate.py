"""Greedy generation with a KV cache: HF ``generate`` vs attnlab's ``generate``.

The same GPT-2-shaped model as the training benchmark (context table 1024
positions, as in GPT-2, so that 32 + 256 tokens fit), converted with
:func:`attnlab.interop.from_hf`. Batch 1, a 32-token prompt, 256 new tokens,
greedy; both must produce the same tokens (the "max abs Δ" column counts the
tokens that differ).

A third row, "matvec floor", times only the model's matrix-vector products
(the q/k/v/out and feed-forward projections of every layer and the LM head, 25
``F.linear`` calls on a ``(1, 1, E)`` input, the same weights) once per new token.
No decoder can beat it without reading fewer weight bytes, so its speed-up over HF
is the most any cached greedy decoder of this model could show on the machine.

What was measured (2026-11-22, this 2-core machine, three harness runs, before the lean
decode step): HF ``generate`` made 238–469 tokens/s, attnlab 1.17–1.45× that, the matvec
floor 4.5–6×. Then ~1.3–1.5 ms per token went to ~60 module calls and ~150 small ops.
Since 2026-11-30 ``DecoderLM.generate`` runs :mod:`attnlab.models.lean`: checks once at
the prefill, fused q/k/v, an in-place static cache and transposed weights; measured
1.87× HF (``--quick``, load 1.1) with the same tokens. ``torch.compile`` of the step is
not used yet: the cache views change shape every step (see docs/benchmarks.md).
"""

import importlib.util

import torch

from .harness import Case, Contender, Setup
from .train import gpt2_shape, hf_gpt2

DESCRIPTION = "greedy cached generation tokens/s: HF generate vs attnlab, and the matvec floor"
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
                                TARGET if profile != "tiny" else None),
                      Contender("matvec floor", _matvecs(ours, new),
                                "the weights' F.linear calls only (an upper bound)")],
                     check=lambda: {"attnlab": check()}, tolerance=0.0,
                     notes=["torch.compile not used: the cache grows every step"])
    return make


def _matvecs(model: torch.nn.Module, new: int):  # noqa: ANN202
    """Only the matrix-vector products of ``new`` decode steps, on a dummy ``(1, 1, E)`` row."""
    weights = [(m.weight, m.bias) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    rows = {w.shape[1]: torch.randn(1, 1, w.shape[1]) for w, _ in weights}

    @torch.inference_mode()
    def run() -> None:
        for _ in range(new):
            for weight, bias in weights:
                torch.nn.functional.linear(rows[weight.shape[1]], weight, bias)
    return run
