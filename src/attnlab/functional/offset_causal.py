"""Bottom-right causal attention as two fused-kernel calls and an exact merge.

Query ``i`` (of ``L``) sees keys ``j <= i + S - L`` (of ``S``). With ``offset =
S - L >= 0`` the keys split in two parts that PyTorch's CPU flash kernel
computes exactly, each in one call (one parallel region, no ``(L, S)`` mask):

* **A**, keys ``0 ... offset - 1``: every query sees all of them (no causality);
* **B**, keys ``offset ... S - 1``: a top-left causal ``L × L`` square (the
  kernel's ``is_causal``, which skips the blocks above the diagonal).

Each call returns its output ``O_A``, ``O_B`` and its rows' log-sum-exp
``ℓ_A``, ``ℓ_B``; the whole row's softmax is their log-sum-exp merge::

    ℓ = log(e^ℓ_A + e^ℓ_B),   O = e^(ℓ_A - ℓ) O_A + e^(ℓ_B - ℓ) O_B

The backward is the flash backward of each part, given the *merged* ``O`` and
``ℓ``: with those, ``P = exp(Q Kᵀ · scale + mask - ℓ)`` are the whole row's
weights restricted to the part's keys, and ``rowsum(∂O ⊙ O)`` is the whole
row's, so the two calls return exactly the parts' shares of ``∂Q`` (summed)
and their keys' ``∂K``, ``∂V`` (concatenated). A per-key mask (padding) is
sliced between the parts. A row that sees no key of a part (its keys all
masked) gets ``ℓ = -inf`` for that part; a row that sees no key at all is 0,
with zero gradients.

Work: ``L · offset + L² / 2`` score pairs, exactly the visible ones (rounded to
the kernel's blocks); memory ``O(L + S)`` besides inputs and outputs.

Shape letters: B batch, H heads, L queries, S keys, D width, Dv value width.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import as_bias

_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_flash_backward = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward",
                          None)


def offset_causal(
    query: Tensor, key: Tensor, value: Tensor, key_mask: Tensor | None, *, scale: float,
    dropout_p: float, enable_gqa: bool,
) -> Tensor | None:
    """Bottom-right causal attention through :class:`OffsetCausal`, or None if it can't.

    Shape:
        query ``(..., H, L, D)``, key ``(..., G, S, D)``, value ``(..., G, S, Dv)`` with
        equal leading dims (at most 4 dims in all; ``G = H`` unless ``enable_gqa``),
        key_mask bool or additive, broadcastable to ``(..., 1, S)`` -> ``(..., H, L, Dv)``.

    None (the caller then takes its blocked path) where the CPU flash kernel can't
    take the call: dropout, a mask that needs a gradient, another device or dtype,
    more than 4 dims, a value width other than the query's.
    """
    L, S, dims = query.shape[-2], key.shape[-2], query.dim()
    if (_flash is None or _flash_backward is None or dropout_p != 0.0 or dims > 4
            or value.shape[-1] != query.shape[-1]
            or query.device.type != "cpu" or (key_mask is not None and key_mask.dim() > 4)
            or query.dtype not in (torch.float32, torch.float64, torch.bfloat16, torch.float16)
            or (key_mask is not None and key_mask.requires_grad)):
        return None
    if enable_gqa:  # the kernel has no grouped heads: each key/value head serves H/G heads
        groups = query.shape[-3] // key.shape[-3]
        key, value = (t.repeat_interleave(groups, dim=-3) for t in (key, value))
    q, k, v = (t.reshape((1,) * (4 - dims) + t.shape) for t in (query, key, value))
    bias = None
    if key_mask is not None:
        bias = as_bias(key_mask, query.dtype)
        bias = bias.reshape((1,) * (4 - bias.dim()) + bias.shape)  # (B|1, H|1, 1, S)
    if L > S:  # the first L - S queries sit before every key: zero rows
        out = F.pad(OffsetCausal.apply(q[..., L - S:, :], k, v, bias, scale), (0, 0, L - S, 0))
    else:
        out = OffsetCausal.apply(q, k, v, bias, scale)
    return out.reshape(out.shape[4 - dims:])


class OffsetCausal(torch.autograd.Function):
    """``apply(query, key, value, key_bias, scale)`` -> ``(B, H, L, Dv)``, ``L <= S``.

    query ``(B, H, L, D)``, key ``(B, H, S, D)``, value ``(B, H, S, Dv)`` (equal or
    broadcast leading dims), key_bias additive ``(B|1, H|1, 1, S)`` of the query's
    dtype, or None.
    """

    @staticmethod
    def forward(ctx, query, key, value, key_bias, scale):  # noqa: D102
        L, S = query.shape[-2], key.shape[-2]
        offset = S - L
        parts = _parts(key, value, key_bias, offset)
        results = [_flash(query, k, v, 0.0, causal, attn_mask=bias, scale=scale)
                   for k, v, bias, causal in parts]
        lses = [lse if bias is None else lse.masked_fill(_blind(bias, causal, L), float("-inf"))
                for (_, lse), (_, _, bias, causal) in zip(results, parts, strict=True)]
        if len(results) == 1:
            out, lse = results[0][0], lses[0]
        else:  # O = O_B + σ(ℓ_A - ℓ_B) (O_A - O_B): four operations in all
            (out_a, _), (out_b, _) = results
            share = torch.sigmoid(lses[0] - lses[1])  # e^ℓ_A / (e^ℓ_A + e^ℓ_B), (B, H, L)
            if key_bias is not None:  # both parts blind: -inf - -inf; the row is 0 anyway
                share = share.nan_to_num_(0.0)
            out = torch.lerp(out_b, out_a, share[..., None].to(out_a.dtype))
            lse = torch.logaddexp(*lses)  # (B, H, L)
        if key_bias is not None:  # a row that sees nothing: its P is 0 whatever ℓ is
            lse = lse.nan_to_num(neginf=0.0)
        ctx.save_for_backward(query, key, value, key_bias, out, lse)
        ctx.scale = scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        query, key, value, key_bias, out, lse = ctx.saved_tensors
        offset = key.shape[-2] - query.shape[-2]
        grad_out = grad_out.contiguous()  # sum()'s gradient has stride 0
        grads = [_flash_backward(grad_out, query, k, v, out, lse, 0.0, causal, attn_mask=bias,
                                 scale=ctx.scale)
                 for k, v, bias, causal in _parts(key, value, key_bias, offset)]
        grad_q = grads[0][0] if len(grads) == 1 else grads[0][0] + grads[1][0]
        grad_k, grad_v = (g[0] if len(grads) == 1 else torch.cat(g, dim=-2)
                          for g in ([g[1] for g in grads], [g[2] for g in grads]))
        return grad_q, grad_k, grad_v, None, None


def _parts(key: Tensor, value: Tensor, key_bias: Tensor | None,
           offset: int) -> list[tuple[Tensor, Tensor, Tensor | None, bool]]:
    """``(keys, values, bias, causal)`` of part A (if ``offset > 0``) and part B (views)."""
    def part(lo: int, hi: int, causal: bool) -> tuple[Tensor, Tensor, Tensor | None, bool]:
        bias = None if key_bias is None else key_bias[..., lo:hi]
        return key[..., lo:hi, :], value[..., lo:hi, :], bias, causal
    return ([part(0, offset, False)] if offset > 0 else []) + [part(offset, key.shape[-2], True)]


def _blind(bias: Tensor, causal: bool, L: int) -> Tensor:
    """``(B|1, H|1, L)`` bool: rows that see no key of a part whose bias is ``(…, 1, S')``.

    Without causality a row sees the part's every key; with it (top-left, ``S' = L``)
    row ``i`` sees keys ``0 ... i``, so it is blind until the first visible key.
    """
    hidden = torch.isneginf(bias[..., 0, :])  # (B|1, H|1, S')
    if not causal:
        return hidden.all(dim=-1, keepdim=True).expand(*hidden.shape[:-1], L)
    return (~hidden).cumsum(dim=-1) == 0  # (B|1, H|1, L)
