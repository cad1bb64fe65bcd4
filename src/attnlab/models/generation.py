"""Generation: greedy, temperature and top-k sampling, with or without a KV cache.

With the cache the prompt is run once ("prefill"), then each step feeds only
the newest token: a step costs ``O(current length)``. Without it every step
re-runs the whole sequence. Both give the same tokens.
"""

import math
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from .._validate import check_bool, check_float, check_int

# step(ids, cache) -> logits (B, T, V); cache is None when not caching
Step = Callable[[Tensor, object], Tensor]


def check_generation_args(max_new_tokens: object, temperature: object, top_k: object,
                          use_cache: object = True) -> None:
    """Validate the sampling arguments (before any work)."""
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_float("temperature", temperature, minimum=0.0)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
    check_bool("use_cache", use_cache)


def decode_threads(requested: int | str = "auto") -> tuple[int, str]:
    """The thread count for decoding on this machine now, and why, in words.

    A decode step is a few hundred small products: with the cores busy
    elsewhere, every extra thread waits for a core at each of them. Measured
    on 2 cores with one other busy process, 2 threads decoded 2–4× slower
    than 1 (HF, llama.cpp and attnlab alike), while on an idle machine 2 were
    faster. ``"auto"`` therefore takes the cores the 1-minute load average
    leaves free (rounded, at least 1, at most ``torch.get_num_threads()``);
    an int is taken as given. Read it before loading a model, whose own work
    raises the load.

    Returns:
        ``(threads, reason)``, e.g. ``(1, "auto: 2 cores, load average 1.2")``.
    """
    if requested != "auto":
        return check_int("threads", requested, minimum=1), "as asked"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = math.floor((cores or 1) - load + 0.5)
    threads = max(1, min(free, torch.get_num_threads()))
    return threads, f"auto: {cores} cores, load average {load:.1f}"


def sample_next(logits: Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None = None, *, top_p: float | None = None) -> Tensor:
    """Pick the next token from ``(B, V)`` logits: argmax at temperature 0, else sample.

    Sampling divides ``logits - max`` (all ``<= 0``) by the temperature, so any
    positive temperature works: a tiny one (``1e-45``, or ``1e-320``, which is 0
    in float32) makes every non-maximal logit ``-inf`` and samples among the
    maxima, the limit of sampling as the temperature goes to 0 — greedy decoding
    unless logits tie. A huge one gives the uniform distribution.

    ``top_k`` keeps the k most likely tokens; ``top_p`` (nucleus sampling,
    Holtzman et al. 2020) keeps the fewest most likely tokens whose probabilities
    add up to at least ``top_p`` (the most likely one always stays).

    Raises:
        ValueError: If a row's largest logit is not finite (NaN or ``inf``: the
            model's output cannot be sampled from).
    """
    if logits.shape[0] == 0:  # an empty batch: nothing to pick
        return logits.new_empty(0, dtype=torch.long)
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    logits = logits.float()
    top = logits.amax(dim=-1, keepdim=True)  # (B, 1)
    if not bool(torch.isfinite(top).all()):
        raise ValueError("cannot sample: the model's logits hold NaN or inf (largest logit per "
                         f"row: {top.squeeze(-1).tolist()[:8]})")
    shifted = logits - top  # (B, V), <= 0, exactly 0 at the maxima
    logits = torch.where(shifted == 0, shifted, shifted / temperature)  # 0 / (1e-320 -> 0) = NaN
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ranked, order = logits.sort(dim=-1, descending=True)  # (B, V)
        p = ranked.softmax(dim=-1)
        drop_ranked = p.cumsum(dim=-1) - p >= top_p  # (B, V): the better ones already hold top_p
        drop = torch.empty_like(drop_ranked).scatter_(-1, order, drop_ranked)  # vocab order
        logits = logits.masked_fill(drop, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


def decode_stream(step: Step, ids: Tensor, max_new_tokens: int, *, cache: object | None,
                  temperature: float, top_k: int | None, top_p: float | None = None,
                  eos_id: int | None = None, generator: torch.Generator | None = None
                  ) -> Iterator[Tensor]:
    """Yield the next ``(B,)`` tokens after ``ids`` ``(B, T)``, up to ``max_new_tokens`` times.

    With a cache the first ``step`` call gets the whole prompt (the prefill) and
    every later one the newest ``(B, 1)`` tokens; without one every call gets all
    ids so far. A row that produced ``eos_id`` keeps producing ``eos_id``; the
    stream ends early when every row has. Stopping the iteration early (a chat
    answer that hit a stop token) costs nothing more.
    """
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    fed = ids
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = step(fed, cache)[:, -1]  # (B, V)
            token = sample_next(logits, temperature, top_k, generator, top_p=top_p)  # (B,)
        if eos_id is not None:
            token = torch.where(done, torch.full_like(token, eos_id), token)
            done |= token == eos_id
        yield token
        if cache is not None:
            fed = token[:, None]  # (B, 1)
        else:
            ids = torch.cat([ids, token[:, None]], dim=1)  # (B, T + 1)
            fed = ids
        if eos_id is not None and ids.shape[0] > 0 and bool(done.all()):  # B = 0: run on
            return


@torch.no_grad()
def decode_loop(step: Step, ids: Tensor, max_new_tokens: int, *, cache: object | None,
                temperature: float, top_k: int | None, eos_id: int | None,
                generator: torch.Generator | None = None) -> Tensor:
    """Extend ``ids`` ``(B, T)`` by up to ``max_new_tokens``; returns ``(B, T + new)``.

    A sequence that produced ``eos_id`` keeps producing ``eos_id``; the loop ends
    early when every sequence has (see :func:`decode_stream`).
    """
    tokens = list(decode_stream(step, ids, max_new_tokens, cache=cache, temperature=temperature,
                                top_k=top_k, eos_id=eos_id, generator=generator))
    return torch.cat([ids, *(t[:, None] for t in tokens)], dim=1)  # (B, T + new)


def write_target(model: torch.nn.Module, src_ids: Tensor, src_mask: Tensor | None,
                 start_id: int, max_new_tokens: int, *, temperature: float, top_k: int | None,
                 use_cache: bool, eos_id: int | None,
                 generator: torch.Generator | None) -> Tensor:
    """An encoder–decoder's generation: encode once, then decode from ``start_id``.

    ``model`` has ``encode(src_ids, src_mask) -> (B, S, E)`` and
    ``decode(ids, memory, src_mask, *, cache=None, cross_cache=None) -> (B, L, V)``
    and a ``config`` (``num_layers``, ``max_len``). With the cache, the decoder's
    self-attention keys grow one position a step and the cross-attention keys
    (the encoded source) are computed once. Returns ``(B, 1 + new)`` ids.
    """
    from .stack import new_caches

    check_generation_args(max_new_tokens, temperature, top_k, use_cache)
    if 1 + max_new_tokens > model.config.max_len:
        raise ValueError(f"max_new_tokens={max_new_tokens} exceeds the model's context "
                         f"max_len={model.config.max_len}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            memory = model.encode(src_ids, src_mask)  # (B, S, E)
        start = torch.full((src_ids.shape[0], 1), start_id, dtype=torch.long,
                           device=src_ids.device)
        n = model.config.num_layers
        caches = (new_caches(n, 1 + max_new_tokens), new_caches(n, None)) if use_cache else None

        def step(ids: Tensor, c: object) -> Tensor:
            if caches is None:
                return model.decode(ids, memory, src_mask)
            return model.decode(ids, memory, src_mask, cache=caches[0], cross_cache=caches[1])

        return decode_loop(step, start, max_new_tokens, cache=caches, temperature=temperature,
                           top_k=top_k, eos_id=eos_id, generator=generator)
    finally:
        model.train(was_training)
