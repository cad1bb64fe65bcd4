"""Greedy generation with a KV cache: HF ``generate`` vs attnlab's ``generate``.

The same GPT-2-shaped model as the training benchmark (context table 1024
positions, as in GPT-2, so that 32 + 256 tokens fit), converted with
:func:`attnlab.interop.from_hf`. Batch 1, a 32-token prompt, 256 new tokens,
greedy; both must produce the same tokens (the "max abs Δ" column counts the
tokens that differ).

The row "matvec floor" times only the model's matrix-vector products (the
q/k/v/out and feed-forward projections of every layer and the LM head, 25
``F.linear`` calls on a ``(1, 1, E)`` input, the same weights) once per new token:
the most a decoder that calls MKL once per product could show. The compiled step
can pass it (its products are generated loops, fused with their neighbours and
with no per-call cost); what no float32 decoder passes is the memory floor, the
weights' bytes per token ÷ the measured copy bandwidth.

The attnlab rows: "attnlab eager" is ``DecoderLM.generate`` as it runs by default (the
lean eager step of :mod:`attnlab.models.lean`), "attnlab compiled" the same with
``compile=True`` (:mod:`attnlab.models.compiled`). The compile happens in the case's setup,
once, and its time is a note beside the table, not part of any row. Both must give HF's
tokens; the memory floor is a note too. Measured figures: docs/benchmarks.md, generation.
"""

import importlib.util

import torch

from .harness import Case, Contender, Setup
from .smollm2 import attnlab_runs, floor_note
from .train import gpt2_shape, hf_gpt2

DESCRIPTION = ("greedy cached generation tokens/s: HF generate vs attnlab (eager and compiled), "
               "and the matvec floor")
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

        run_eager, run_compiled, compile_s, check = attnlab_runs(ours, ids, new, run_hf)

        target = TARGET if profile != "tiny" else None
        return Setup([Contender("HF generate", run_hf, "DynamicCache, SDPA"),
                      Contender("attnlab eager", run_eager, "lean step: fused QKV, KVCache"),
                      Contender("attnlab compiled", run_compiled,
                                "lean step under torch.compile, static cache", target),
                      Contender("matvec floor", _matvecs(ours, new),
                                "the weights' F.linear calls only (an upper bound)")],
                     check=check, tolerance=0.0,
                     notes=[f"compile of the decode step (once per model): "
                            f"{compile_s:.1f} s, not in the rows",
                            floor_note(ours, copy_mib=16 if profile == "tiny" else 256)])
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
