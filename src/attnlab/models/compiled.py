"""The lean decode step under ``torch.compile``: static caches, a position tensor, one graph.

:class:`~attnlab.models.lean.LeanDecoder` runs each new token through Python:
a few dozen small PyTorch calls per layer, each with its dispatch overhead, and
every batch-1 matrix product through MKL. With ``compile=True`` the same step
(the same fused, transposed weights, the layers' own norms and activations)
runs as one graph that inductor turns into a handful of generated loops:

* **shapes never change**: each layer's keys and values live in ONE static
  buffer ``(B, G, T, D)`` (the :class:`~attnlab.attention.cache.KVCache`
  storage the prefill filled), written in place with ``index_copy_`` at a
  position *tensor*; attention runs over all T positions with the positions not
  yet written (and, with a window, those too far back) masked out. So the step
  compiles once per model, batch, dtype and thread count, and never again
  while a chat goes on. The T axes are compiled as a symbol, so one
  compiled step serves every cache size; T is the total rounded up to a power of
  two (at least 64, at most the model's context), so that a buffer's size comes
  from a handful of values.
* **each batch-1 product is a broadcast multiply and sum**,
  ``(x[..., None, :] * W).sum(-1)`` over the ``(N, K)`` weight rows: inductor
  generates one vectorised reduction for it, fused with what comes before and
  after, instead of calling MKL's matrix–vector product once per weight.

Nothing is checked inside the step: :meth:`DecoderLM.generate` checks the
prompt and arguments once, before the prefill. Weights are graph *inputs*, not
constants baked into the graph, so training or ``load_state_dict`` between two
calls is seen by the next call, and no recompile follows.

Shape letters: B batch, H query heads, G key/value heads, D head width,
T static cache positions, E width, V vocabulary.
"""

import logging
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .lean import Weight, joint, rotate, run_layer
from .quantized import Int8Rows

#: Fewest static cache positions (shorter totals round up to it).
MIN_POSITIONS = 64


def static_positions(total: int, max_len: int) -> int:
    """The static cache size for ``total`` positions: the next power of two, in [64, max_len]."""
    size = MIN_POSITIONS
    while size < total:
        size *= 2
    return max(total, min(size, max_len))


def compile_available() -> bool:
    """Whether ``torch.compile`` can run here at all (dynamo supports this Python)."""
    try:
        import torch._dynamo  # noqa: F401
    except Exception:  # noqa: BLE001 (any import failure means: not here)
        return False
    return hasattr(torch, "compile") and torch._dynamo.is_dynamo_supported()


# model -> {(B, dtype, device, threads, quantize): compiled step}; weak, so a dropped model frees it
_COMPILED: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_WARNED: list[str] = []


def compiled_step(lm: nn.Module, key: tuple) -> Callable:
    """The compiled step of ``lm`` for ``key`` (made on first use, then reused).

    ``key`` is (batch, dtype, device, threads, quantize): inductor's kernels fix their
    thread count when they are generated. Each one compiles a fresh copy of
    :func:`_step`'s code, so that dynamo keeps its compiled graph and guards
    apart from other models' and keys' (they would otherwise share one code
    object's cache and its recompile limit).
    """
    table = _COMPILED.setdefault(lm, {})
    if key not in table:
        fresh = types.FunctionType(_step.__code__.replace(), _step.__globals__, "_step")
        table[key] = torch.compile(fresh, fullgraph=True)
    return table[key]


def mark_positions_dynamic(sized: list[tuple[Tensor | None, tuple[int, ...]]]) -> None:
    """Compile the T (cache positions) axes of these tensors as a symbol, not a number.

    Then one compiled step serves every cache size, and a chat whose turns grow
    from 512 to 1024 positions does not compile again (without it dynamo
    compiles once for the first size and once more, generalised, for the second).
    """
    for tensor, dims in sized:
        if tensor is not None:
            torch._dynamo.mark_dynamic(tensor, dims)


#: Loggers that inductor's first compile writes to stderr (e.g. "No CUDA runtime is found"
#: from a CPU-only machine's C++ build): in a chat that line lands inside the answer.
QUIET_DURING_COMPILE = ("torch.utils.cpp_extension",)


@contextmanager
def quiet_compile() -> Iterator[None]:
    """Silence the compile's own warnings (:data:`QUIET_DURING_COMPILE`) for the block."""
    loggers = [logging.getLogger(name) for name in QUIET_DURING_COMPILE]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def warn_once(message: str) -> None:
    """Warn about the compiled step once per process (the eager step takes over)."""
    if message not in _WARNED:
        _WARNED.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _mv(x: Tensor, wt: Weight, b: Tensor | None) -> Tensor:
    """``(B, 1, K) @ (K, N) (+ b)`` as a broadcast multiply and sum: inductor generates it.

    ``wt`` is the transposed view of a contiguous ``(N, K)`` weight, so each output
    is a dot product along one contiguous row (measured on one core: 5.9 ms for
    the 49152 × 576 head of SmolLM2, against 8.3 through MKL's ``x @ Wᵀ`` and 26
    for the sum over a contiguous ``(K, N)``). Int8 rows (``quantize="int8"``):
    the same sum over the int8 row, widened in registers, times the row's scale.
    """
    if isinstance(wt, Int8Rows):
        out = (x.unsqueeze(-2) * wt.q).sum(-1) * wt.scale  # int8 rows read; no float copy made
    else:
        out = (x.unsqueeze(-2) * wt.t()).sum(-1)  # (B, 1, N, K) summed over K, never made
    return out if b is None else out + b


def _attend_one(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """One query per head over the whole static cache: softmax(q·kᵀ/√D + mask) v.

    Written out (grouped heads as a reshape, products as multiply and sum)
    because the library kernel's dispatch checks data (rows with no visible
    key) that a graph cannot branch on; here every row sees at least its own
    position, so the check has nothing to find.

    Shape:
        q ``(B, H, 1, D)``, k/v ``(B, G, T, D)``, mask ``(H or 1, 1, T)`` -> ``(B, H, D)``.
    """
    B, H, _, D = q.shape
    G, T = k.shape[1], k.shape[2]
    q = q.reshape(B, G, H // G, 1, D)  # query heads g·H/G ... share key/value head g
    scores = (q * k[:, :, None]).sum(-1) * D**-0.5  # (B, G, H/G, T)
    scores = scores + mask.reshape(-1, H // G, T) if mask.shape[0] > 1 else scores + mask
    weights = scores.softmax(dim=-1)  # (B, G, H/G, T)
    out = (weights.unsqueeze(-1) * v[:, :, None]).sum(-2)  # (B, G, H/G, D)
    return out.reshape(B, H, D)


def _step(lm: nn.Module, lean, ids: Tensor, pos: Tensor) -> Tensor:  # noqa: ANN001
    """One token per row at position ``pos`` ``(1,)``: ``(B, 1)`` ids -> ``(B, 1, V)`` logits.

    ``lean`` is the :class:`~attnlab.models.lean.LeanDecoder` holding the fused
    weights, the tables indexed by ``pos`` and the static caches.
    """
    embed = lm.embed
    x = embed.tokens(ids) * embed.scale  # (B, 1, E)
    if lean.pos_table is not None:
        x = x + lean.pos_table.index_select(0, pos)  # (1, E)
    if embed.token_types is not None:
        x = x + embed.token_types.weight[0]
    if embed.norm is not None:
        x = embed.norm(x)
    keys = lean.key_positions  # (T,)
    visible = keys <= pos
    if lean.window is not None:
        visible = visible & (keys > pos - lean.window)
    mask = torch.zeros(visible.shape, dtype=x.dtype, device=x.device).masked_fill(
        ~visible, float("-inf"))  # (T,): 0 where the query may look, -inf elsewhere
    if lean.bias_table is not None:  # (H, T, T): row p is the query at position p
        mask = lean.bias_table.index_select(1, pos) + mask  # (H, 1, T)
    else:
        mask = mask[None, None]  # (1, 1, T)
    cos = sin = None
    if lean.cos is not None:
        cos, sin = lean.cos.index_select(0, pos)[0], lean.sin.index_select(0, pos)[0]  # (R,)
    for layer, attn, ffn, (k_buf, v_buf) in zip(lm.decoder.layers, lean.attn, lean.ffn,
                                                lean.buffers, strict=True):
        def attend(h: Tensor, a=attn, k_buf=k_buf, v_buf=v_buf) -> Tensor:  # noqa: ANN001
            B, H, G, D = h.shape[0], a.H, a.G, a.D
            qkv = joint(h, a.qkv, _mv).view(B, H + 2 * G, 1, D)
            qk, v = qkv[:, : H + G], qkv[:, H + G:]  # (B, H + G, 1, D), (B, G, 1, D)
            if cos is not None:
                qk = rotate(qk, cos, sin)
            k_buf.index_copy_(2, pos, qk[:, H:])  # in place: (B, G, T, D)
            v_buf.index_copy_(2, pos, v)
            out = _attend_one(qk[:, :H], k_buf, v_buf, mask)  # (B, H, D)
            return _mv(out.reshape(B, 1, H * D), a.w_out, a.b_out)  # (B, 1, E)

        x = run_layer(layer, x, attend, lambda h, f=ffn: f(h, _mv))
    norm = lm.decoder.final_norm
    if norm is not None:
        x = norm(x)
    return _mv(x, lean.w_head, lean.b_head)  # (B, 1, V)
