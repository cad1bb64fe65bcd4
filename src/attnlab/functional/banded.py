"""The default banded kernel: all query blocks of a sliding window at once.

See :mod:`attnlab.functional.windowed` for the block structure and the dispatch.
Shape letters: N flattened batch, L queries, S keys, D head width, Dv value
width, n blocks, nb blocks in a chunk, Q queries per block, K keys per block.
"""

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .fused import fused_attention
from .masks import blocked_rows


def kernel_block_size(window: int, causal: bool, backward: bool = False) -> int:
    """Queries per block of :class:`BandedAttention` (before capping at ``L``).

    Every block meets ``K = Q + w - 1`` keys (``Q + 2w - 2`` without causality), of
    which each row keeps ``w`` (``2w - 1``): small blocks waste little work outside
    the band, large ones make bigger matrix products. The forward takes 32 rows for
    wide windows, down to 16 for narrow ones (32 against 48 and 64, medians of 7
    interleaved runs, 2 threads: 41.6/43.4/44.0 ms causal w=257 N=8192, 71.6/75.9/75.9
    non-causal, 17.4/18.9/20.3 causal w=65; 78.1/79.5/79.0 at w=1025 N=4096). The
    backward, which recomputes the weights with its own blocks, takes up to 128: its
    key and value gradients are products that sum over a block's ``Q`` rows (small
    ``Q`` makes them inefficient) and are added one ``Q``-wide strip of ``K`` at a
    time, so ``K / Q`` calls each.
    (``causal`` is part of the signature for callers that pick per direction; both
    directions use the same size today.)
    """
    del causal
    return max(16, min(128 if backward else 32, window))


class BandedAttention(torch.autograd.Function):
    """All query blocks at once: a handful of batched products over strided block views.

    ``apply(query, key, value, key_bias, window, causal, scale)``: query ``(N, L, D)``,
    key ``(N, S, D)``, value ``(N, S, Dv)``, key_bias ``(N or 1, S)`` additive or
    None -> ``(N, L, Dv)``. Rows that see no key are zero, with zero gradients.

    The forward is one fused-kernel call over all blocks (:meth:`_Band.flash`)
    where it can be; otherwise, and in the backward, the blocks are taken a
    *chunk* at a time (see :meth:`_Band.chunks`). Per chunk the chunked forward is
    one product that also scales and adds the band's mask (``baddbmm``), one
    softmax written over the scores, and one product with the values written
    straight into the output. The backward recomputes the weights
    and adds four products: ``∂W = G Vᵀ``, ``∂Q = scale · ∂S K``, and the key and
    value gradients, which are accumulated straight into the keys' rows by one
    ``baddbmm_`` per ``Q``-wide column strip of the key blocks (strip ``t`` of
    block ``b`` is key rows ``b·Q + t ...``, so each strip is a plain strided
    matrix of the padded gradient). So the thread pool wakes a few dozen times per
    call whatever the length (a loop per block woke it thousands of times, and
    under another process's load each wake-up can cost a scheduler time slice);
    scores and weights live in two scratch buffers of about :data:`CHUNK_BYTES`
    reused by every chunk, small enough to stay in the last-level cache.
    Memory beyond inputs and outputs: ``O(CHUNK_BYTES)``.
    """

    @staticmethod
    def forward(ctx, query, key, value, key_bias, window, causal, scale):  # noqa: D102
        band = _Band(query, key, window, causal, key_bias)
        q_blocks = band.queries(query)  # (N, n, Q, D)
        k_blocks, v_blocks = band.keys(key), band.keys(value)  # (N, n, K, D), (N, n, K, Dv)
        out = band.flash(q_blocks, k_blocks, v_blocks, scale)  # (N, n, Q, Dv) or None
        if out is None:
            out = query.new_empty(query.shape[0], band.n, band.Q, value.shape[-1])
            scores = band.scratch()
            for chunk in band.chunks():  # (rows of N, blocks): out[chunk] is contiguous
                weights = band.weights(q_blocks[chunk], k_blocks[chunk], chunk, scale, scores)
                torch.bmm(weights, _flat(v_blocks[chunk]), out=_flat(out[chunk]))
        ctx.save_for_backward(query, key, value, key_bias)
        ctx.band = window, causal, scale
        return band.rows(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        query, key, value, key_bias = ctx.saved_tensors
        window, causal, scale = ctx.band
        band = _Band(query, key, window, causal, key_bias, backward=True)
        q_blocks = band.queries(query)  # (N, n, Q, D)
        k_blocks, v_blocks = band.keys(key), band.keys(value)  # (N, n, K, D), (N, n, K, Dv)
        grad = band.queries(grad_out.contiguous())  # (N, n, Q, Dv); sum()'s grad has stride 0
        grad_q = torch.empty_like(q_blocks)  # (N, n, Q, D)
        grad_k, grad_v = band.padded_keys(key), band.padded_keys(value)  # zeros, padded
        scores, grad_scores = band.scratch(), band.scratch()
        for chunk in band.chunks():
            q, k, v, g = (_flat(t[chunk]) for t in (q_blocks, k_blocks, v_blocks, grad))
            weights = band.weights(q_blocks[chunk], k_blocks[chunk], chunk, scale, scores)
            band.accumulate(weights, g, grad_v, chunk, 1.0)  # ∂V += Wᵀ G
            grad_w = torch.bmm(g, v.transpose(-2, -1), out=grad_scores[:len(g)])  # (B, Q, K)
            # softmax's own backward kernel, written over ∂W (each row is read whole before
            # it is written): W ⊙ (∂W - rowsum(∂W ⊙ W)). Private but stable (torch >= 1.11
            # with this signature); the gradient tests and gradcheck cover it.
            grad_s = torch._softmax_backward_data(grad_w, weights, -1, weights.dtype,
                                                  grad_input=grad_w)
            rows = _flat(grad_q[chunk])  # (B, Q, D), a view: written in place
            torch.baddbmm(rows, grad_s, k, beta=0.0, alpha=scale, out=rows)
            band.accumulate(grad_s, q, grad_k, chunk, scale)  # ∂K += scale · ∂Sᵀ Q
        return (band.rows(grad_q), band.unpad(grad_k), band.unpad(grad_v),
                None, None, None, None)


def _flat(x: Tensor) -> Tensor:
    """``(Nc, nb, R, C)`` -> ``(Nc·nb, R, C)``: a view, thanks to :class:`_Band`'s layout."""
    return x.reshape(-1, *x.shape[-2:])


CHUNK_BYTES = 24 * 2**20
"""At most about this many bytes of scores are computed at once (:class:`BandedAttention`).

The chunked forward keeps one scratch buffer of this size and the backward two, reused by every
chunk of a call: together they stay within a 32 MiB last-level cache, so the softmax and
the products read scores that are still cached (measured: softmax over 10 MiB chunks took
a sixth of the time of one pass over the 80 MiB band)."""


class _Band:
    """Block geometry of one banded call and the strided views it is computed on.

    Query ``i`` sits at ``p = i + S - L`` and sees keys ``p - back ... p + ahead``.
    Queries are cut into blocks of ``Q`` rows; block ``b`` meets the
    ``K = Q + back + ahead`` keys starting at key index ``first + b·Q`` with
    ``first = S - L - back``.

    Every batch row is laid out in ``R = n·Q`` rows of one flat buffer: queries
    (and outputs, gradients) at rows ``e·R ... e·R + L - 1``, keys (values) at
    ``e·R + pad_left ...``, zeros elsewhere. ``R`` is a multiple of ``Q`` large enough
    that every real block's keys lie inside its own row's part, so block ``b`` of row
    ``e`` is block ``m = e·n + b`` of *one* strided ``(N·n, K, C)`` view of the keys
    (batch stride ``Q`` rows): a chunk of several batch rows is a plain batch of
    matrices for ``bmm``, with no copies. The ``n - ceil(L / Q)`` blocks after a row's
    last query are filler (zero queries that see their whole block; their results are
    dropped, and whatever they read lands only in the row it was read from); keys
    outside ``0 ... S - 1`` are zeros hidden by the mask.
    """

    def __init__(self, query: Tensor, key: Tensor, window: int, causal: bool,
                 key_bias: Tensor | None, backward: bool = False) -> None:
        (N, L, _), S = query.shape, key.shape[1]
        self.L, self.S, self.key_bias = L, S, key_bias
        back, ahead = window - 1, (0 if causal else window - 1)
        self.Q = Q = min(kernel_block_size(window, causal, backward), L)
        self.K = K = Q + back + ahead
        first = S - L - back
        self.pad_left = max(0, -first)
        self.start = first + self.pad_left  # where block 0's keys begin in a row's part
        real = -(-L // Q)  # blocks holding queries
        need = max(self.start + (real - 1) * Q + K, self.pad_left + S)  # rows a row's part uses
        self.n = n = -(-need // Q)  # blocks per batch row, filler included
        self.R = n * Q
        self.tail = self.start + K  # the last row's filler blocks read past N·R
        geometry = _geometry.__wrapped__ if torch.compiler.is_compiling() else _geometry
        self.geometry, self.blind, self.blind_spans = geometry(  # the cache is eager-only
            L, S, back, ahead, Q, n, query.dtype, query.device)
        self.N, self.per_block = N, Q * K * query.element_size()  # bytes of scores
        self.dtype, self.device = query.dtype, query.device
        if key_bias is not None:  # (N|1, S) -> (N|1, n, 1, K); padding keys add 0
            self.key_blocks = self.keys(key_bias[..., None]).squeeze(-1)[:, :, None, :]

    def flash(self, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor | None:
        """The whole band's output ``(N, n, Q, Dv)`` in ONE call of PyTorch's fused kernel.

        The blocks are its batch and head axes: queries ``(N, n, Q, D)``, the strided
        key and value block views ``(N, n, K, ·)`` as they are (no copy), and the
        band's own mask ``(1, n, Q, K)`` as its additive mask
        (:func:`~attnlab.functional.fused.fused_attention`, which takes the CPU flash
        kernel here: it never writes the scores out). One parallel region per call
        instead of three per chunk, which matters most when other work shares the
        cores (N=8192, w=257, causal, 2 threads, medians of 7 interleaved runs: 37.3
        against 40.9 ms alone, 64-96 against 110-136 ms with another process busy).

        None (the caller computes the chunks itself) off the CPU, for a value width
        other than the query's (the flash kernel's condition; another kernel would
        make the ``(N, n, Q, K)`` scores), with a per-key mask, or when some rows see
        no key (``L > S``).
        """
        if (q.device.type != "cpu" or self.key_bias is not None or self.blind_spans
                or v.shape[-1] != q.shape[-1]):
            return None
        # filler rows see their whole block, real rows at least themselves: no row is blind
        return fused_attention(q, k, v, self.geometry, scale=scale, rows_see_keys=True)

    def chunks(self) -> list[tuple[slice, slice]]:
        """``(batch rows, blocks)`` index pairs, each within about :data:`CHUNK_BYTES` of scores.

        A run of whole batch rows, or, where one row's band is larger than that, a run
        of one row's blocks. Either way the chunk's blocks are consecutive in the flat
        layout, so its queries, keys and outputs are strided ``(B, ·, ·)`` views.
        """
        row = self.n * self.per_block  # bytes of one batch row's scores
        if row > CHUNK_BYTES:
            parts = -(-row // CHUNK_BYTES)
            step = -(-self.n // parts)  # balanced runs of blocks
            return [(slice(e, e + 1), slice(b, min(self.n, b + step)))
                    for e in range(self.N) for b in range(0, self.n, step)]
        rows = max(1, CHUNK_BYTES // row)
        rows = -(-self.N // -(-self.N // rows))  # balanced runs of rows
        return [(slice(e, min(self.N, e + rows)), slice(None)) for e in range(0, self.N, rows)]

    def scratch(self) -> Tensor:
        """An uninitialised ``(B, Q, K)`` buffer for the largest chunk's scores (B = Nc·nb)."""
        most = max(len(range(self.N)[rows]) * len(range(self.n)[blocks])
                   for rows, blocks in self.chunks())
        return torch.empty(most, self.Q, self.K, dtype=self.dtype, device=self.device)

    def weights(self, q: Tensor, k: Tensor, chunk: tuple[slice, slice], scale: float,
                scratch: Tensor) -> Tensor:
        """Softmax weights ``(Nc·nb, Q, K)`` of a chunk, written into ``scratch``.

        ``q`` ``(Nc, nb, Q, D)`` are the chunk's query blocks, ``k`` ``(Nc, nb, K, D)``
        their key blocks. Rows that see nothing are 0.
        """
        (Nc, nb), rows, blocks = q.shape[:2], *chunk
        bias = self.geometry[:, blocks]  # (1, nb, Q, K)
        if self.key_bias is not None:
            mine = self.key_blocks if self.key_blocks.shape[0] == 1 else self.key_blocks[rows]
            bias = bias + mine[:, blocks]  # (Nc|1, nb, Q, K)
        q, k = _flat(q), _flat(k)  # (B, Q, D), (B, K, D)
        scores = scratch[:len(q)]  # (B, Q, K)
        if bias.shape[0] == Nc:  # the mask covers the chunk: scale · Q Kᵀ + mask in one call
            torch.baddbmm(_flat(bias), q, k.transpose(-2, -1), alpha=scale, out=scores)
        else:  # one mask shared by several rows: broadcast it in a separate add
            torch.baddbmm(scores, q, k.transpose(-2, -1), beta=0.0, alpha=scale, out=scores)
            scores.view(Nc, nb, *scores.shape[1:]).add_(bias)
        # Softmax over the scores in place: each row is read whole before it is written.
        weights = torch.softmax(scores, dim=-1, out=scores)
        if self.key_bias is not None:  # a key mask can blind any row: look at them all
            weights.view(Nc, nb, *weights.shape[1:]).masked_fill_(
                blocked_rows(bias)[..., None], 0.0)
        else:
            self.zero_blind(weights, chunk)
        return weights

    def zero_blind(self, x: Tensor, chunk: tuple[slice, slice]) -> None:
        """Zero the rows of a chunk's ``(B, Q, ·)`` ``x`` that see no key of the band.

        Their scores were all -inf, so their weights are NaN; only the blocks of
        :func:`_geometry`'s spans are touched (none unless ``L > S``), not the whole chunk.
        """
        rows, blocks = chunk
        first, last = range(self.n)[blocks][0], range(self.n)[blocks][-1] + 1
        x = x.view(-1, last - first, *x.shape[1:])  # (Nc, nb, Q, ·)
        for lo, hi in self.blind_spans:
            lo, hi = max(lo, first), min(hi, last)
            if lo < hi:
                x[:, lo - first:hi - first].masked_fill_(self.blind[:, lo:hi], 0.0)

    def queries(self, x: Tensor) -> Tensor:
        """``(N, L, C)`` -> ``(N, n, Q, C)``: zero rows after the last query."""
        N, C = x.shape[0], x.shape[-1]
        if self.R != self.L:
            x = F.pad(x, (0, 0, 0, self.R - self.L))
        return x.view(N, self.n, self.Q, C)

    def padded_keys(self, x: Tensor) -> Tensor:
        """The flat zero buffer ``(N·R + tail, C)`` that :meth:`keys` lays keys out in."""
        return x.new_zeros(x.shape[0] * self.R + self.tail, x.shape[-1])

    def keys(self, x: Tensor) -> Tensor:
        """``(N, S, C)`` -> ``(N, n, K, C)``: a strided view of the laid-out keys."""
        N, C = x.shape[0], x.shape[-1]
        flat = x.new_empty(N * self.R + self.tail, C)
        rows = flat[:N * self.R].view(N, self.R, C)
        self.unpad(flat, N).copy_(x)
        rows[:, :self.pad_left].zero_()  # only the padding is zeroed: one pass less
        rows[:, self.pad_left + self.S:].zero_()
        flat[N * self.R:].zero_()
        return flat.as_strided((N, self.n, self.K, C), (self.R * C, self.Q * C, C, 1),
                               self.start * C)

    def rows(self, blocks: Tensor) -> Tensor:
        """``(N, n, Q, C)`` -> ``(N, L, C)``: the inverse of :meth:`queries`."""
        out = blocks.reshape(blocks.shape[0], self.R, blocks.shape[-1])  # a copy if strided
        return out if self.R == self.L else out[:, :self.L].contiguous()

    def unpad(self, flat: Tensor, N: int | None = None) -> Tensor:
        """The ``(N, S, C)`` real keys of a :meth:`padded_keys` buffer (a view)."""
        N = self.N if N is None else N
        rows = flat[:N * self.R].view(N, self.R, flat.shape[-1])
        return rows[:, self.pad_left:self.pad_left + self.S]

    def accumulate(self, weights: Tensor, x: Tensor, out: Tensor, chunk: tuple[slice, slice],
                   alpha: float) -> None:
        """Add ``alpha · weightsᵀ x`` onto the laid-out keys ``out`` ``(N·R + tail, C)``.

        ``weights`` ``(B, Q, K)`` and ``x`` ``(B, Q, C)`` are the chunk's ``B`` blocks;
        block ``m``'s column ``t`` belongs to flat key row ``start + m·Q + t``. Column
        strip ``[t0, t0 + Q)`` of each block lies ``Q`` rows after the previous block's,
        so each strip's product is added by one ``baddbmm_`` straight into a strided
        view of ``out`` (or, when that is fewer calls, one ``addmm_`` per block).
        """
        Q, K, (rows, blocks) = self.Q, self.K, chunk
        at = self.start + ((rows.start or 0) * self.n + (blocks.start or 0)) * Q
        B = len(x)
        if B <= -(-K // Q):
            for m in range(B):
                out[at + m * Q:at + m * Q + K].addmm_(weights[m].T, x[m], alpha=alpha)
            return
        for t0 in range(0, K, Q):
            width = min(Q, K - t0)
            strip = out[at + t0:at + t0 + B * Q].unflatten(0, (B, Q))[:, :width]
            strip.baddbmm_(weights[:, :, t0:t0 + width].transpose(-2, -1), x, alpha=alpha)


@functools.lru_cache(maxsize=8)
def _geometry(L: int, S: int, back: int, ahead: int, Q: int, n: int, dtype: torch.dtype,
              device: torch.device) -> tuple[Tensor, Tensor, tuple[tuple[int, int], ...]]:
    """The band's own mask (window, padding keys) for ``n`` blocks, cached.

    Returns ``(1, n, Q, K)`` additive 0/-inf, the ``(1, n, Q, 1)`` rows that see
    nothing, and the ``(lo, hi)`` block ranges that hold such rows (the blocks before
    the first query that sees a key, when ``L > S``). Filler rows (``≥ L``) see every key
    of their block: their outputs are dropped and their gradient is 0, and finite
    weights keep a ``0 · NaN`` out of the key and value gradients without a pass to
    zero them.
    """
    K, first = Q + back + ahead, S - L - back
    row = torch.arange(Q, device=device)[:, None]  # (Q, 1)
    col = torch.arange(K, device=device)[None, :]  # (1, K)
    distance = row - col + back  # (Q, K): query position minus key position, every block
    visible = ((distance <= back) & (distance >= -ahead))[None]  # (1, Q, K)
    starts = torch.arange(n, device=device)[:, None] * Q  # (n, 1)
    key_index = starts + first + col  # (n, K)
    visible = visible & ((key_index >= 0) & (key_index < S))[:, None, :]  # (n, Q, K)
    visible = visible | (starts + row.T >= L)[:, :, None]  # filler rows: everything
    bias = torch.zeros(visible.shape, dtype=dtype, device=device)
    bias = bias.masked_fill_(~visible, float("-inf"))[None]  # (1, n, Q, K)
    blind = ~visible.any(dim=-1)  # (n, Q)
    sees_from = min(L, max(0, L - S - ahead))  # rows before it sit before every key
    spans = ((0, -(-sees_from // Q)),) if sees_from else ()
    return bias, blind[None, :, :, None], spans
