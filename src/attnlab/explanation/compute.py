"""Recompute one attention call step by step, in float64, from the module's own weights.

Each function takes the module, the arguments it was really called with (already
resolved to ``query``/``key``/``value``/``mask``), a batch item and a head, and
returns the steps plus the recomposed output ``(L, E)`` of every head together,
which the caller compares with what the module really returned.

Shape letters: B batch, H query heads, G key/value heads, L queries, S keys,
E model width, D head width, A additive hidden width.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import AdditiveAttention, MultiHeadAttention, SelfAttention, SimpleSelfAttention
from ..functional.masks import visibility
from .steps import Step

F64 = torch.float64


@dataclass
class Call:
    """One real call of an attention module, its arguments by role (full batch)."""

    query: Tensor  # (B, L, E)
    key: Tensor  # (B, S, kdim)
    value: Tensor  # (B, S, vdim)
    mask: Tensor | None  # broadcastable to (B, H, L, S)
    is_self: bool


@dataclass
class Recomputed:
    """The steps and the recomposed output of the batch item."""

    kind: str
    steps: list[Step]
    output: Tensor  # (L, E)
    num_heads: int
    num_kv_heads: int
    kv_head: int


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """``x Wᵀ + b`` in float64."""
    bias = None if layer.bias is None else layer.bias.detach().to("cpu", F64)
    return F.linear(x, layer.weight.detach().to("cpu", F64), bias)


def safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim; a row whose entries are all -inf becomes all zeros."""
    top = scores.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    exp = torch.exp(scores - top)
    total = exp.sum(-1, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))


def bias_of(mask: Tensor | None, b: int, H: int, L: int, S: int, *, causal: bool,
            window: int | None) -> Tensor:
    """The additive ``(H, L, S)`` float64 bias: the mask (bool -> 0/-inf) plus causal/window."""
    bias = torch.zeros(H, L, S, dtype=F64)
    if mask is not None:
        m = mask.detach().cpu()
        m = m.reshape((1,) * (4 - m.dim()) + tuple(m.shape)).expand(-1, H, L, S)
        m = m[b if m.shape[0] > 1 else 0]  # (H, L, S)
        bias = bias + (torch.where(m, 0.0, float("-inf")).to(F64) if m.dtype == torch.bool
                       else m.to(F64))
    visible = visibility(L, S, causal=causal, window=window)
    if visible is not None:
        bias = bias.masked_fill(~visible, float("-inf"))
    return bias


def _attention_steps(q: Tensor, k: Tensor, v: Tensor, scale: float, bias: Tensor, h: int,
                     group: int, *, scale_text: str) -> tuple[list[Step], Tensor]:
    """Scores, scale, mask, softmax and weighted sum for every head; steps for head ``h``.

    Shape:
        q ``(H, L, D)``, k ``(G, S, D)``, v ``(G, S, Dv)``, bias ``(H, L, S)`` ->
        heads ``(H, L, Dv)``.
    """
    kh, vh = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)  # (H, S, .)
    raw = q @ kh.transpose(-2, -1)  # (H, L, S)
    scaled = raw * scale
    masked = scaled + bias
    weights = safe_softmax(masked)  # (H, L, S)
    heads = weights @ vh  # (H, L, Dv)
    steps = [
        Step("scores", "Raw scores", "Sᵢⱼ = qᵢ · kⱼ = (Q Kᵀ)ᵢⱼ",
             "Each query is compared with every key by a dot product: the larger, the "
             "better the match.", raw[h], ("L", "S")),
        Step("scale", "Scale", scale_text,
             "Dot products of D-wide vectors grow like √D; dividing by √D keeps the "
             "softmax from saturating into a one-hot choice.", torch.tensor(scale, dtype=F64),
             ()),
        Step("scaled", "Scaled scores", "S · scale", "The scores after scaling.",
             scaled[h], ("L", "S")),
        Step("mask", "Mask and bias", "M: 0 = visible, −∞ = hidden, other = added bias",
             "What is added to the scores: −∞ hides a key (the future, padding, outside "
             "the window); finite values are position biases such as ALiBi.",
             bias[h], ("L", "S")),
        Step("masked", "Masked scores", "S · scale + M", "The scores the softmax sees.",
             masked[h], ("L", "S")),
        Step("weights", "Attention weights", "A = softmax(S · scale + M) (per row)",
             "Each row becomes a probability distribution over the keys: how much each "
             "query takes from each value.", weights[h], ("L", "S")),
        Step("head_output", "This head's output", "Oₕ = A V",
             "Each query's output is the weighted average of the value vectors.",
             heads[h], ("L", "D")),
    ]
    return steps, heads


def multihead(module: MultiHeadAttention | SelfAttention, call: Call, b: int,
              h: int) -> Recomputed:
    """Steps of :class:`MultiHeadAttention` (and its subclasses) or :class:`SelfAttention`."""
    if isinstance(module, MultiHeadAttention):
        H, G, D = module.num_heads, module.num_kv_heads, module.head_dim
        rotary, window = module.rotary, module.window
    else:
        H, G, D, rotary, window = 1, 1, module.embed_dim, None, None
    x = call.query[b].detach().to("cpu", F64)  # (L, E)
    kin = call.key[b].detach().to("cpu", F64)  # (S, kdim)
    vin = call.value[b].detach().to("cpu", F64)  # (S, vdim)
    L, S = x.shape[0], kin.shape[0]
    q = linear(module.q_proj, x).view(L, H, D).transpose(0, 1)  # (H, L, D)
    k = linear(module.k_proj, kin).view(S, G, D).transpose(0, 1)  # (G, S, D)
    v = linear(module.v_proj, vin).view(S, G, -1).transpose(0, 1)  # (G, S, Dv)
    group, g = H // G, h // (H // G)
    kv_note = f" (key/value head {g}, shared by {group} query heads)" if group > 1 else ""
    steps = [_input_step(x, call)]
    src = "X" if call.is_self else "C"  # where keys and values come from
    if not call.is_self:
        steps.append(Step("context", "Context (keys and values come from here)", "C",
                          "Cross-attention: the queries come from the input, the keys and "
                          "values from this other sequence.", kin, ("S", "E")))
    if rotary is not None:
        steps += [
            Step("q_raw", "Queries before rotary", "Q = X W_Q", "The projected queries.",
                 q[h], ("L", "D")),
            Step("k_raw", "Keys before rotary", f"K = {src} W_K", "The projected keys.", k[g],
                 ("S", "D")),
        ]
        q, k = rotary(q[None])[0], rotary(k[None])[0]
    rot = " after rotary (RoPE: each pair of dims turned by an angle ∝ position)" \
        if rotary is not None else ""
    steps += [
        Step("q", f"Queries, head {h}{rot}", "Qₕ = X W_Qₕ" + (" → RoPE" if rot else ""),
             "What each token is looking for: its query vector.", q[h], ("L", "D")),
        Step("k", f"Keys{kv_note}{rot}", f"Kₕ = {src} W_Kₕ" + (" → RoPE" if rot else ""),
             "What each token offers to be found by: its key vector.", k[g], ("S", "D")),
        Step("v", f"Values{kv_note}", f"Vₕ = {src} W_Vₕ",
             "What each token hands over when it is attended to.", v[g], ("S", "D")),
    ]
    bias = bias_of(call.mask, b, H, L, S, causal=bool(getattr(module, "causal", False)),
                   window=window)
    more, heads = _attention_steps(q, k, v, D ** -0.5, bias, h, group,
                                   scale_text=f"1/√D = 1/√{D}")
    concat = heads.transpose(0, 1).reshape(L, -1)  # (L, H·Dv)
    out = linear(module.out_proj, concat)  # (L, E)
    steps += more + [
        Step("concat", "Concatenate the heads", "[O₁ … O_H]",
             "Every head's output, side by side: each head could look for something "
             "different.", concat, ("L", "HD")),
        Step("output", "Output projection", "Y = [O₁ … O_H] W_O",
             "A linear map mixes the heads back into one model-wide vector per token.",
             out, ("L", "E")),
    ]
    kind = "single-head" if H == 1 else "multi-head" if G == H else \
        "multi-query" if G == 1 else "grouped-query"
    return Recomputed(kind, steps, out, H, G, g)


def simple(module: SimpleSelfAttention, call: Call, b: int, h: int) -> Recomputed:
    """Steps of weightless self-attention ``softmax(X Xᵀ · scale) X``."""
    x = call.query[b].detach().to("cpu", F64)  # (L, E)
    L, E = x.shape
    scale = module.scale if module.scale is not None else E ** -0.5
    text = f"1/√E = 1/√{E}" if module.scale is None else f"{scale:g} (set by hand)"
    steps = [_input_step(x, call),
             Step("q", "Queries = the input", "Q = X", "No weights: each token's query is "
                  "the token itself.", x, ("L", "E")),
             Step("k", "Keys = the input", "K = X", "…and so are the keys…", x, ("S", "E")),
             Step("v", "Values = the input", "V = X", "…and the values.", x, ("S", "E"))]
    bias = bias_of(call.mask, b, 1, L, L, causal=module.causal, window=None)
    more, heads = _attention_steps(x[None], x[None], x[None], scale, bias, 0, 1,
                                   scale_text=text)
    steps += more + [Step("output", "Output (no projection)", "Y = A X",
                          "With no weights there is nothing to mix: the weighted averages "
                          "are the output.", heads[0], ("L", "E"))]
    return Recomputed("weightless", steps, heads[0], 1, 1, 0)


def additive(module: AdditiveAttention, call: Call, b: int, h: int) -> Recomputed:
    """Steps of Bahdanau's additive attention, its scoring network included."""
    x = call.query[b].detach().to("cpu", F64)  # (L, E)
    kin = call.key[b].detach().to("cpu", F64)  # (S, kdim)
    vin = call.value[b].detach().to("cpu", F64)
    L, S = x.shape[0], kin.shape[0]
    q = linear(module.q_proj, x)  # (L, A)
    k = linear(module.k_proj, kin)  # (S, A)
    features = torch.tanh(q[:, None] + k[None])  # (L, S, A)
    scores = linear(module.score_proj, features).squeeze(-1)  # (L, S)
    v = linear(module.v_proj, vin)  # (S, E)
    bias = bias_of(call.mask, b, 1, L, S, causal=module.causal, window=module.window)[0]
    masked = scores + bias
    weights = safe_softmax(masked)
    head = weights @ v  # (L, E)
    out = linear(module.out_proj, head)
    steps = [_input_step(x, call)]
    src = "X" if call.is_self else "C"  # where keys and values come from
    if not call.is_self:
        steps.append(Step("context", "Context (keys and values come from here)", "C",
                          "The sequence attended to.", kin, ("S", "E")))
    steps += [
        Step("q", "Projected queries", "W_q xᵢ", "The query side of the scoring network.",
             q, ("L", "A")),
        Step("k", "Projected keys", "W_k cⱼ + b", "The key side of the scoring network.",
             k, ("S", "A")),
        Step("features", "Hidden layer of the scoring network", "tanh(W_q xᵢ + W_k cⱼ + b)",
             "Every (query, key) pair goes through a small network instead of a dot "
             "product: this is its hidden layer.", features, ("L", "S", "A")),
        Step("scores", "Scores", "eᵢⱼ = w · tanh(W_q xᵢ + W_k cⱼ + b)",
             "One number per pair: how well the key suits the query.", scores, ("L", "S")),
        Step("scale", "Scale", "1 (none)", "Additive scores are not dot products of wide "
             "vectors, so they are not scaled.", torch.tensor(1.0, dtype=F64), ()),
        Step("mask", "Mask", "M: 0 = visible, −∞ = hidden", "Hidden keys get −∞.", bias,
             ("L", "S")),
        Step("masked", "Masked scores", "e + M", "The scores the softmax sees.", masked,
             ("L", "S")),
        Step("weights", "Attention weights", "α = softmax(e + M)",
             "Each row becomes a distribution over the keys.", weights, ("L", "S")),
        Step("v", "Values", f"V = {src} W_V", "What each key position hands over.", v,
             ("S", "E")),
        Step("head_output", "Weighted sum", "Σⱼ αᵢⱼ vⱼ",
             "The context vector of each query.", head, ("L", "E")),
        Step("output", "Output projection", "Y = (Σⱼ αᵢⱼ vⱼ) W_O", "A final linear map.",
             out, ("L", "E")),
    ]
    return Recomputed("additive", steps, out, 1, 1, 0)


def _input_step(x: Tensor, call: Call) -> Step:
    return Step("input", "Input to the attention", "X",
                "The vectors the attention reads, one row per token (inside a layer: "
                "after the layer's norm, for pre-norm models).", x, ("L", "E"))


def recompute(module: nn.Module, call: Call, b: int, h: int) -> Recomputed:
    """Dispatch on the mechanism (``TypeError`` for a module this file cannot explain)."""
    if isinstance(module, (MultiHeadAttention, SelfAttention)):
        return multihead(module, call, b, h)
    if isinstance(module, SimpleSelfAttention):
        return simple(module, call, b, h)
    if isinstance(module, AdditiveAttention):
        return additive(module, call, b, h)
    raise TypeError(f"cannot explain attention module {type(module).__name__}")
