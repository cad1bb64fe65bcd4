"""``torch.nn.MultiheadAttention`` <-> ``attnlab.MultiHeadAttention``, the same function.

Torch packs the three input projections into ``in_proj_weight`` ``(3E, E)``
when query, key and value share a width (``q_proj_weight``/``k_proj_weight``/
``v_proj_weight`` otherwise) and may be sequence-first. attnlab keeps four
``nn.Linear`` and is always batch first. Masks convert through
:mod:`attnlab.interop.conventions`.
"""

import torch
from torch import nn

from ..attention.multihead import MultiHeadAttention


def from_torch(m: nn.MultiheadAttention) -> MultiHeadAttention:
    """Build the ``MultiHeadAttention`` that computes what ``m`` computes (batch first).

    Raises:
        TypeError: If ``m`` is not an ``nn.MultiheadAttention``.
        ValueError: For ``add_bias_kv``/``add_zero_attn``, which attnlab does not model.
    """
    if not isinstance(m, nn.MultiheadAttention):
        raise TypeError(f"m must be a torch.nn.MultiheadAttention, got {type(m).__name__}")
    if m.bias_k is not None or m.add_zero_attn:
        raise ValueError("add_bias_kv and add_zero_attn are not supported by from_torch")
    has_bias = m.in_proj_bias is not None
    out = MultiHeadAttention(m.embed_dim, m.num_heads, kdim=m.kdim, vdim=m.vdim, bias=has_bias,
                             dropout=m.dropout)
    out = out.to(dtype=m.out_proj.weight.dtype, device=m.out_proj.weight.device)
    E = m.embed_dim
    with torch.no_grad():
        if m._qkv_same_embed_dim:
            weights = m.in_proj_weight.split(E, dim=0)  # 3 x (E, E)
        else:
            weights = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
        biases = m.in_proj_bias.split(E) if has_bias else (None, None, None)
        for proj, w, b in zip((out.q_proj, out.k_proj, out.v_proj), weights, biases, strict=True):
            proj.weight.copy_(w)
            if b is not None:
                proj.bias.copy_(b)
        out.out_proj.weight.copy_(m.out_proj.weight)
        if has_bias:
            out.out_proj.bias.copy_(m.out_proj.bias)
    out.train(m.training)
    return out


def to_torch(m: MultiHeadAttention) -> nn.MultiheadAttention:
    """Build a batch-first ``nn.MultiheadAttention`` that computes what ``m`` computes.

    Raises:
        ValueError: For what torch cannot express: grouped-query heads, a custom
            ``head_dim``, ``causal``/``window`` as module settings, rotary positions,
            or biases on some projections but not others.
    """
    if not isinstance(m, MultiHeadAttention):
        raise TypeError(f"m must be an attnlab MultiHeadAttention, got {type(m).__name__}")
    problems = []
    if m.num_kv_heads != m.num_heads:
        problems.append(f"num_kv_heads={m.num_kv_heads} != num_heads={m.num_heads}")
    if m.head_dim * m.num_heads != m.embed_dim:
        problems.append(f"head_dim={m.head_dim} * num_heads != embed_dim={m.embed_dim}")
    if m.causal or m.window is not None or m.rotary is not None:
        problems.append("causal/window/rotary settings (pass an attn_mask to torch instead)")
    if problems:
        raise ValueError("to_torch cannot express: " + "; ".join(problems))
    has_bias = m.q_proj.bias is not None
    ref = m.out_proj.weight
    out = nn.MultiheadAttention(m.embed_dim, m.num_heads, dropout=m.dropout, bias=has_bias,
                                kdim=m.kdim, vdim=m.vdim, batch_first=True,
                                device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        weights = (m.q_proj.weight, m.k_proj.weight, m.v_proj.weight)
        if out._qkv_same_embed_dim:
            out.in_proj_weight.copy_(torch.cat(weights, dim=0))
        else:
            out.q_proj_weight.copy_(weights[0])
            out.k_proj_weight.copy_(weights[1])
            out.v_proj_weight.copy_(weights[2])
        if has_bias:
            out.in_proj_bias.copy_(torch.cat([m.q_proj.bias, m.k_proj.bias, m.v_proj.bias]))
            out.out_proj.bias.copy_(m.out_proj.bias)
        out.out_proj.weight.copy_(m.out_proj.weight)
    out.train(m.training)
    return out
