"""The default banded kernel: all query blocks of a sliding window at once.

See :mod:`attnlab.functional.windowed` for the block structure and the dispatch.
Shape letters: N flattened batch, L queries, S keys, D head width, Dv value
width, n blocks, nb blocks in a chunk, Q queries per block, K keys per block.
"""

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import blocked_rows


def kernel_block_size(window: int, causal: bool) -> int:
    """Queries per block of :class:`BandedAttention` (before capping at ``L``).

    Every block meets ``K = Q + w - 1`` keys (``Q + 2w - 2`` without causality), of
    which each row keeps ``w`` (``2w - 1``): small blocks waste little work outside
    the band, large ones make bigger matrix products. 64 rows for wide windows,
    down to 16 for narrow ones. (``causal`` is part of the signature for callers
    that pick per direction; both directions use the same size today.)
    """
    del causal
    return max(16, min(64, window))


class BandedAttention(torch.autograd.Function):
    """All query blocks at once: a handful of batched products over strided block views.

    ``apply(query, key, value, key_bias, window, causal, scale)``: query ``(N, L, D)``,
    key ``(N, S, D)``, value ``(N, S, Dv)``, key_bias ``(N or 1, S)`` additive or
    None -> ``(N, L, Dv)``. Rows that see no key are zero, with zero gradients.

    The blocks are taken a *chunk* at a time (every block of every batch element,
    in runs of blocks whose ``(N, nb, Q, K)`` scores fill about :data:`CHUNK_BYTES`).
    Per chunk the forward is one product for the scores, one add of the band's
    mask, one softmax, one product with the values; the backward recomputes those
    and adds three products, softmax's backward and a few overlap-adds that fold
    the ``(N, nb, K, ·)`` key-block gradients back onto the keys. So the thread
    pool wakes a few dozen times per call, whatever the length (a loop per block
    woke it thousands of times, and under another process's load each wake-up
    can cost a scheduler time slice), while every temporary stays small enough
    for the allocator to reuse instead of mapping fresh pages every call.
    Memory beyond inputs and outputs: ``O(CHUNK_BYTES)``.
    """

    @staticmethod
    def forward(ctx, query, key, value, key_bias, window, causal, scale):  # noqa: D102
        band = _Band(query, key, window, causal, key_bias)
        q_blocks = band.queries(query * scale)  # (N, n, Q, D)
        k_blocks, v_blocks = band.keys(key), band.keys(value)  # (N, n, K, D), (N, n, K, Dv)
        out = query.new_empty(query.shape[0], band.n, band.Q, value.shape[-1])  # (N, n, Q, Dv)
        for chunk in band.chunks():  # (rows of N, blocks): out[chunk] is contiguous
            weights = band.weights(q_blocks[chunk], k_blocks[chunk], chunk)
            torch.matmul(weights, v_blocks[chunk], out=out[chunk])
        ctx.save_for_backward(query, key, value, key_bias)
        ctx.band = window, causal, scale
        return band.rows(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        query, key, value, key_bias = ctx.saved_tensors
        window, causal, scale = ctx.band
        band = _Band(query, key, window, causal, key_bias)
        q_blocks = band.queries(query * scale)  # (N, n, Q, D)
        k_blocks, v_blocks = band.keys(key), band.keys(value)  # (N, n, K, D), (N, n, K, Dv)
        grad = band.queries(grad_out.contiguous())  # (N, n, Q, Dv); sum()'s grad has stride 0
        grad_q = torch.empty_like(q_blocks)  # (N, n, Q, D)
        grad_k, grad_v = band.padded_keys(key), band.padded_keys(value)  # zeros, padded
        for chunk in band.chunks():
            q, k, v, g = (t[chunk] for t in (q_blocks, k_blocks, v_blocks, grad))
            weights = band.weights(q, k, chunk)  # (N, nb, Q, K), recomputed
            band.fold(torch.matmul(weights.transpose(-2, -1), g), grad_v, chunk)
            grad_w = torch.matmul(g, v.transpose(-2, -1))  # (N, nb, Q, K)
            # softmax's own backward kernel: weights * (grad_w - rowsum(grad_w * weights)).
            # Private but stable (torch >= 1.11 with this signature); gradcheck tests cover it.
            grad_s = torch._softmax_backward_data(grad_w, weights, -1, weights.dtype)
            del grad_w, weights
            torch.matmul(grad_s, k, out=grad_q[chunk])
            band.fold(torch.matmul(grad_s.transpose(-2, -1), q), grad_k, chunk)
        return (band.rows(grad_q.mul_(scale)), band.unpad(grad_k), band.unpad(grad_v),
                None, None, None, None)


CHUNK_BYTES = 24 * 2**20
"""At most about this many bytes of scores are computed at once (:class:`BandedAttention`).

Below glibc's largest ``mmap`` threshold (32 MiB), so that temporaries of this size are
reused from the heap on the next call instead of being mapped, zeroed by the kernel and
unmapped again; large enough that a long sequence is only a few chunks."""


ROW_BYTES = 12 * 2**20
"""A batch row whose band of scores is at least this big gets chunks of its own."""


class _Band:
    """Block geometry of one banded call and the strided views it is computed on.

    Query ``i`` sits at ``p = i + S - L`` and sees keys ``p - back ... p + ahead``.
    Queries are cut into ``n`` blocks of ``Q`` rows (the last padded with zero rows);
    block ``b`` meets the ``K = Q + back + ahead`` keys starting at key index
    ``first + b·Q`` with ``first = S - L - back``. Keys before 0 or after ``S - 1``
    come from zero padding and are hidden by the mask, as are the padded query rows.
    """

    def __init__(self, query: Tensor, key: Tensor, window: int, causal: bool,
                 key_bias: Tensor | None) -> None:
        (N, L, _), S = query.shape, key.shape[1]
        self.L, self.S, self.key_bias = L, S, key_bias
        back, ahead = window - 1, (0 if causal else window - 1)
        self.Q = Q = min(kernel_block_size(window, causal), L)
        self.n = -(-L // Q)
        self.K = Q + back + ahead
        first = S - L - back
        self.pad_left = max(0, -first)
        self.start = first + self.pad_left  # where block 0's keys begin in the padded keys
        self.length = self.start + self.n * Q + self.K  # padded keys: every view fits
        geometry = _geometry.__wrapped__ if torch.compiler.is_compiling() else _geometry
        self.geometry, self.blind, self.blind_blocks = geometry(  # the cache is eager-only
            L, S, back, ahead, Q, query.dtype, query.device)
        self.N, self.per_block = N, Q * self.K * query.element_size()  # bytes of scores
        if key_bias is not None:  # (N|1, S) -> (N|1, n, 1, K); padding keys add 0
            self.key_blocks = self.keys(key_bias[..., None]).squeeze(-1)[:, :, None, :]

    def chunks(self) -> list[tuple[slice, slice]]:
        """``(batch rows, blocks)`` index pairs, each within about :data:`CHUNK_BYTES` of scores.

        Where one batch row's band is at least :data:`ROW_BYTES`, a chunk is a run of blocks
        of one row: its query, key and output blocks are then plain strided matrices
        that the batched product reads and writes in place (no copies). Otherwise a
        chunk is a run of whole rows (the key blocks of several rows get copied).
        """
        row = self.n * self.per_block  # bytes of one batch row's scores
        if row >= ROW_BYTES:
            parts = -(-row // CHUNK_BYTES)
            step = -(-self.n // parts)  # balanced runs of blocks
            return [(slice(e, e + 1), slice(b, min(self.n, b + step)))
                    for e in range(self.N) for b in range(0, self.n, step)]
        rows = max(1, CHUNK_BYTES // row)
        rows = -(-self.N // -(-self.N // rows))  # balanced runs of rows
        return [(slice(e, min(self.N, e + rows)), slice(None)) for e in range(0, self.N, rows)]

    def weights(self, q: Tensor, k: Tensor, chunk: tuple[slice, slice]) -> Tensor:
        """Softmax weights ``(N, nb, Q, K)`` of a chunk; rows that see nothing are 0.

        ``q`` ``(N, nb, Q, D)`` are the chunk's query blocks, already scaled, ``k``
        ``(N, nb, K, D)`` their key blocks.
        """
        scores = torch.matmul(q, k.transpose(-2, -1))  # (N, nb, Q, K)
        rows, blocks = chunk
        bias, blind = self.geometry[:, blocks], None  # (1, nb, Q, K)
        if self.key_bias is not None:
            mine = self.key_blocks if self.key_blocks.shape[0] == 1 else self.key_blocks[rows]
            bias = bias + mine[:, blocks]  # (Nc|1, nb, Q, K)
            blind = blocked_rows(bias)[..., None]  # (Nc|1, nb, Q, 1)
        elif any(self.blind_blocks[blocks]):
            blind = self.blind[:, blocks]  # (1, nb, Q, 1)
        weights = torch.softmax(scores.add_(bias), dim=-1)
        return weights if blind is None else weights.masked_fill_(blind, 0.0)  # NaN rows -> 0

    def queries(self, x: Tensor) -> Tensor:
        """``(N, L, C)`` -> ``(N, n, Q, C)``, zero rows after the last query."""
        rows = self.n * self.Q
        x = x if rows == self.L else F.pad(x, (0, 0, 0, rows - self.L))
        return x.reshape(x.shape[0], self.n, self.Q, x.shape[-1])

    def padded_keys(self, x: Tensor) -> Tensor:
        """``(N, S, C)`` -> zeros ``(N, length, C)``: keys padded so that every block fits."""
        return x.new_zeros(x.shape[0], self.length, x.shape[-1])

    def keys(self, x: Tensor) -> Tensor:
        """``(N, S, C)`` -> ``(N, n, K, C)``: a strided view of the padded keys."""
        x = F.pad(x, (0, 0, self.pad_left, self.length - self.pad_left - self.S))
        return x[:, self.start:].unfold(1, self.K, self.Q)[:, :self.n].transpose(-2, -1)

    def rows(self, blocks: Tensor) -> Tensor:
        """``(N, n, Q, C)`` -> ``(N, L, C)``: the inverse of :meth:`queries`."""
        out = blocks.reshape(blocks.shape[0], self.n * self.Q, blocks.shape[-1])
        return out if out.shape[1] == self.L else out[:, :self.L].contiguous()

    def unpad(self, padded: Tensor) -> Tensor:
        """The ``(N, S, C)`` real keys of a :meth:`padded_keys` tensor."""
        return padded[:, self.pad_left:self.pad_left + self.S]

    def fold(self, blocks: Tensor, out: Tensor, chunk: tuple[slice, slice]) -> None:
        """Add key-block gradients ``(Nc, nb, K, C)`` of ``chunk`` into padded ``out``.

        Block ``b``'s column ``t`` belongs to padded key ``start + b·Q + t``. Either
        one add per block, or one add per ``Q``-wide column strip across the chunk's
        blocks at once (strip ``t0`` of each block lies ``Q`` keys after the previous
        block's): whichever is fewer operations.
        """
        Q, nb = self.Q, blocks.shape[1]
        rows, first = chunk[0], chunk[1].start or 0
        out = out[rows]
        at = self.start + first * Q
        if nb <= -(-self.K // Q):
            for b in range(nb):
                out[:, at + b * Q:at + b * Q + self.K] += blocks[:, b]
            return
        for t0 in range(0, self.K, Q):
            width = min(Q, self.K - t0)
            strip = out[:, at + t0:at + t0 + nb * Q].unflatten(1, (nb, Q))  # (Nc, nb, Q, C)
            strip[:, :, :width] += blocks[:, :, t0:t0 + width]


@functools.lru_cache(maxsize=8)
def _geometry(L: int, S: int, back: int, ahead: int, Q: int, dtype: torch.dtype,
              device: torch.device) -> tuple[Tensor, Tensor, tuple[bool, ...]]:
    """The band's own mask (window, padding keys, padding rows) for one shape, cached.

    Returns ``(1, n, Q, K)`` additive 0/-inf, the ``(1, n, Q, 1)`` rows that see
    nothing, and per block whether it has such a row.
    """
    n, K, first = -(-L // Q), Q + back + ahead, S - L - back
    row = torch.arange(Q, device=device)[:, None]  # (Q, 1)
    col = torch.arange(K, device=device)[None, :]  # (1, K)
    distance = row - col + back  # (Q, K): query position minus key position, every block
    visible = ((distance <= back) & (distance >= -ahead))[None]  # (1, Q, K)
    starts = torch.arange(n, device=device)[:, None] * Q  # (n, 1)
    key_index = starts + first + col  # (n, K)
    visible = visible & ((key_index >= 0) & (key_index < S))[:, None, :]  # (n, Q, K)
    visible = visible & (starts + row.T < L)[:, :, None]  # padding rows see nothing
    bias = torch.zeros(visible.shape, dtype=dtype, device=device)
    bias = bias.masked_fill_(~visible, float("-inf"))[None]  # (1, n, Q, K)
    blind = ~visible.any(dim=-1)  # (n, Q)
    # Rows before L - S - ahead sit before every key; padding rows follow row L - 1.
    sees_from = max(0, L - S - ahead)
    has_blind = tuple(b * Q < sees_from or (b + 1) * Q > L for b in range(n))
    return bias, blind[None, :, :, None], has_blind
