"""Training throughput of a GPT-2-shaped model: Hugging Face vs attnlab (``interop.from_hf``).

The model (vocab 256, 4 layers, 4 heads, width 256, context 256; dropout 0 so
both do the same arithmetic) is a random ``GPT2LMHeadModel``; attnlab's copy is
built from it by :func:`attnlab.interop.from_hf`, so both start from the same
weights and the first losses agree. One step = zero grads, forward, next-token
cross-entropy, backward, AdamW. Batch 8 × 256 tokens.

Contenders: HF (the peer, its default SDPA attention), attnlab, and attnlab
through ``torch.compile`` (full profile; compilation happens during warm-up and
is not timed). A bf16 case runs both under ``torch.autocast("cpu", torch.bfloat16)``
(an option compared at equal precision; HF gains as much from it). A further case
times attnlab against x-transformers (the ``peers`` dependency group; skipped with a
note when not installed): a ``TransformerWrapper`` with a 4-layer ``Decoder`` of the
same width, heads, feed-forward and tied head, flash (SDPA) attention. It cannot load GPT-2's
weights, so that case has no accuracy check; its matmul shapes are the same
(its q/k/v/out projections have no bias), so the FLOP count is shared.
Model FLOPs per token: ``6·P + 12·layers·T·E`` (P = matmul weights).

Where a step goes (``torch.profiler``, five steps, 2 threads, 2026-11-22): attnlab
spends ~65% in ``mm``/``addmm`` and ~15% in the fused attention kernel (forward +
backward); x-transformers ~67% and ~14% in the same kernels on the same shapes; HF the
same matmuls plus ~40% of its profiled time in ``mul``/``pow``/``tanh`` (its Python
tanh-GELU and the backward). So attnlab runs level with x-transformers (1.00× and 1.01×
in two recorded runs; both ~77% of the measured ceiling) and ahead of HF by about HF's
GELU (1.12–1.20× in recorded runs, 1.34× once); beyond that the matmuls themselves would
have to get faster. Tried: one fused QKV matmul (weights concatenated per call; no
measurable gain on 2048×512 inputs), the banded kernel for causal ``T=256`` (~3 ms
less per layer, ~2% of a step), ``torch.compile`` (no gain).
"""

import importlib.util

import torch
import torch.nn.functional as F
from torch import nn

from .harness import Case, Contender, Setup

DESCRIPTION = ("GPT-2-shaped LM training tokens/s: HF vs attnlab (+ torch.compile), "
               "attnlab vs x-transformers")
TARGET = 1.3
TARGET_X = 1.1  # against x-transformers


def gpt2_shape(profile: str) -> dict[str, int]:
    """The GPT2Config fields of the benchmark model (tiny: a toy for tests)."""
    if profile == "tiny":
        return {"vocab_size": 32, "n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16}
    return {"vocab_size": 256, "n_layer": 4, "n_head": 4, "n_embd": 256, "n_positions": 256}


def hf_gpt2(shape: dict[str, int], seed: int = 0) -> nn.Module:
    """A random ``GPT2LMHeadModel`` of ``shape`` without dropout."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(**shape, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=None)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def cases(profile) -> list[Case]:  # noqa: ANN001 (a runner.Profile)
    """Two cases: a training step at batch 8 × context against HF, then against x-transformers."""
    shape = gpt2_shape(profile.name)
    B, T = (2, shape["n_positions"]) if profile.name == "tiny" else (8, shape["n_positions"])
    E, layers, V = shape["n_embd"], shape["n_layer"], shape["vocab_size"]
    params = layers * 12 * E * E + V * E
    flops = (6 * params + 12 * layers * T * E) * B * T
    repeats = 11 if profile.name == "full" else None
    name = f"GPT-2 shape step B={B} T={T}"
    return [Case("train", name, _make(shape, B, T, profile.name), peer="HF GPT-2",
                 flops=flops, tokens=B * T, repeats=repeats),
            Case("train", f"{name} bf16 autocast", _make_bf16(shape, B, T), peer="HF GPT-2 bf16",
                 flops=flops, tokens=B * T, repeats=repeats),
            Case("train", f"{name} vs x-transformers", _make_x(shape, B, T, profile.name),
                 peer="x-transformers", flops=flops, tokens=B * T, repeats=repeats)]


def _make(shape: dict[str, int], B: int, T: int, profile: str):  # noqa: ANN202
    def make() -> Setup:
        if importlib.util.find_spec("transformers") is None:
            return Setup([], notes=["transformers not installed: skipped"])
        from ..interop import from_hf

        hf, ours, ids = _pair(shape, B, T)
        notes = ["dropout 0 in both"]

        def hf_loss() -> torch.Tensor:
            return hf(ids, labels=ids).loss

        def our_loss() -> torch.Tensor:
            return _lm_loss(ours, ids)

        contenders = [Contender("HF GPT-2", _stepper(hf, hf_loss), "HF SDPA attention"),
                      Contender("attnlab", _stepper(ours, our_loss), "fused",
                                TARGET if profile != "tiny" else None)]
        if profile == "full":
            compiled = torch.compile(from_hf(hf).train())
            contenders.append(Contender("attnlab + torch.compile",
                                        _stepper(compiled, lambda: _lm_loss(compiled, ids)),
                                        "inductor (C++)"))
        else:
            notes.append("torch.compile: full profile only")

        @torch.no_grad()
        def check() -> float:
            return abs(float(hf_loss()) - float(our_loss()))  # before either trains

        first = check()
        return Setup(contenders, check=lambda: first, tolerance=1e-4, notes=notes)
    return make


def _make_bf16(shape: dict[str, int], B: int, T: int):  # noqa: ANN202
    """Both steps under ``torch.autocast("cpu", torch.bfloat16)``.

    An option compared at equal precision (HF gains as much from it as attnlab
    does), never the float32 lead.
    """
    def make() -> Setup:
        if importlib.util.find_spec("transformers") is None:
            return Setup([], notes=["transformers not installed: skipped"])
        hf, ours, ids = _pair(shape, B, T)

        def autocast(loss_fn):  # noqa: ANN001, ANN202
            def run() -> torch.Tensor:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return loss_fn()
            return run

        hf_loss = autocast(lambda: hf(ids, labels=ids).loss)
        our_loss = autocast(lambda: _lm_loss(ours, ids))
        with torch.no_grad():
            first = abs(float(hf_loss()) - float(our_loss()))  # before either trains
        return Setup([Contender("HF GPT-2 bf16", _stepper(hf, hf_loss), "HF SDPA, autocast"),
                      Contender("attnlab bf16", _stepper(ours, our_loss), "fused, autocast")],
                     check=lambda: first, tolerance=5e-2,
                     notes=["bf16 autocast in both (weights and optimizer float32)"])
    return make


def _make_x(shape: dict[str, int], B: int, T: int, profile: str):  # noqa: ANN202
    def make() -> Setup:
        missing = [package for module, package in (("transformers", "transformers"),
                                                    ("x_transformers", "x-transformers"))
                   if importlib.util.find_spec(module) is None]
        if missing:
            return Setup([], notes=[f"{' and '.join(missing)} not installed: skipped"])
        from x_transformers import Decoder, TransformerWrapper

        from ..interop import from_hf

        torch.manual_seed(0)
        heads = shape["n_head"]
        peer = TransformerWrapper(
            num_tokens=shape["vocab_size"], max_seq_len=shape["n_positions"], tie_embedding=True,
            attn_layers=Decoder(dim=shape["n_embd"], depth=shape["n_layer"], heads=heads,
                                attn_dim_head=shape["n_embd"] // heads, attn_flash=True)).train()
        ours = from_hf(hf_gpt2(shape)).train()
        ids = _ids(shape, B, T)
        return Setup([Contender("x-transformers", _stepper(peer, lambda: _lm_loss(peer, ids)),
                                "Decoder, flash (SDPA) attention"),
                      Contender("attnlab", _stepper(ours, lambda: _lm_loss(ours, ids)), "fused",
                                TARGET_X if profile != "tiny" else None)],
                     notes=["different random weights (x-transformers cannot load GPT-2's): "
                            "same matmul shapes, no accuracy check"])
    return make


def _pair(shape: dict[str, int], B: int, T: int) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """A random HF GPT-2 and attnlab's copy of it (``from_hf``), in train mode, and the batch."""
    from ..interop import from_hf

    hf = hf_gpt2(shape).train()
    return hf, from_hf(hf).train(), _ids(shape, B, T)


def _ids(shape: dict[str, int], B: int, T: int) -> torch.Tensor:
    """The benchmark batch: ``(B, T)`` random token ids, the same in every case."""
    return torch.randint(0, shape["vocab_size"], (B, T),
                         generator=torch.Generator().manual_seed(1))


def _lm_loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a model that maps ``(B, T)`` ids to ``(B, T, V)`` logits."""
    logits = model(ids)  # (B, T, V)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def _stepper(model: nn.Module, loss_fn):  # noqa: ANN001, ANN202
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()
    return step
