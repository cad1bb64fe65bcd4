"""Slow, obvious float64 references for attention.

Written from the contract in ``shared/API.md`` only, with Python loops over batch
elements, heads, queries and keys, so it shares no code (and no vectorisation
tricks, no fused kernels, no block structure) with attnlab:

* bool mask: ``True`` = the query may attend to the key; float mask: additive bias
  (``-inf`` hides the key);
* ``causal``: bottom-right aligned, query ``i`` sees key ``j`` iff ``j <= i + (S - L)``;
* ``window=w``: key ``j`` is visible iff ``|i + (S - L) - j| < w``;
* a query that sees no key outputs zeros and has all-zero weights;
* grouped-query heads: query head ``h`` uses key/value head ``g(h) = h // (H / G)``;
* additive attention: ``e_ij = w · tanh(W_q q_i + W_k k_j + b_k)``.

Nothing here imports attnlab. Everything returns float64 tensors.
"""

import math

import torch
from torch import Tensor

NEG_INF = float("-inf")


def rel_err(actual: Tensor, expected: Tensor) -> float:
    """``‖actual − expected‖ / ‖expected‖`` in float64 (absolute error if ``expected`` is 0)."""
    a, e = actual.detach().double(), expected.detach().double()
    assert a.shape == e.shape, f"shape {tuple(a.shape)} != expected {tuple(e.shape)}"
    assert torch.isfinite(a).all(), "result has NaN/inf"
    denom = e.norm().item()
    diff = (a - e).norm().item()
    return diff / denom if denom > 0 else diff


def tolerance(dtype: torch.dtype) -> float:
    """The project's oracle tolerances: 1e-6 in float64, 1e-5 in float32, 2e-2 in half."""
    return {torch.float64: 1e-6, torch.float32: 1e-5}.get(dtype, 2e-2)


def is_visible(i: int, j: int, L: int, S: int, causal: bool, window: int | None) -> bool:
    """Whether query ``i`` of ``L`` may see key ``j`` of ``S`` (before any user mask)."""
    position = i + (S - L)  # the query's absolute position
    if causal and j > position:
        return False
    if window is not None and abs(position - j) >= window:
        return False
    return True


def visibility(L: int, S: int, causal: bool, window: int | None) -> Tensor:
    """The ``(L, S)`` bool matrix of :func:`is_visible`."""
    rows = [[is_visible(i, j, L, S, causal, window) for j in range(S)] for i in range(L)]
    return torch.tensor(rows, dtype=torch.bool).reshape(L, S)


def softmax_row(logits: dict[int, float], S: int) -> list[float]:
    """Softmax over the visible keys ``{j: logit}``; invisible keys (and an empty row) get 0."""
    row = [0.0] * S
    if not logits:
        return row
    top = max(logits.values())
    exps = {j: math.exp(s - top) for j, s in logits.items()}
    total = sum(exps.values())
    for j, e in exps.items():
        row[j] = e / total
    return row


def _row_logits(
    dots: list[float], mask_row: list | None, mask_is_bool: bool, i: int, L: int, S: int,
    causal: bool, window: int | None, scale: float,
) -> dict[int, float]:
    logits = {}
    for j in range(S):
        if not is_visible(i, j, L, S, causal, window):
            continue
        bias = 0.0
        if mask_row is not None:
            if mask_is_bool:
                if not mask_row[j]:
                    continue
            else:
                bias = float(mask_row[j])
                if bias == NEG_INF:
                    continue
        logits[j] = scale * dots[j] + bias
    return logits


def attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, *,
    causal: bool = False, window: int | None = None, scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference ``softmax(Q Kᵀ · scale + bias) V``; returns ``(out, weights)``.

    query ``(..., L, E)``, key ``(..., S, E)``, value ``(..., S, Ev)``, mask broadcastable
    to ``(..., L, S)`` -> out ``(..., L, Ev)``, weights ``(..., L, S)``.
    """
    q, k, v = (t.detach().double() for t in (query, key, value))
    L, E = q.shape[-2], q.shape[-1]
    S, Ev = k.shape[-2], v.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    n = math.prod(batch)
    q = q.expand(*batch, L, E).reshape(n, L, E)
    k = k.expand(*batch, S, E).reshape(n, S, E)
    v = v.expand(*batch, S, Ev).reshape(n, S, Ev)
    mask_is_bool = mask is not None and mask.dtype == torch.bool
    m = None
    if mask is not None:
        m = mask.detach() if mask_is_bool else mask.detach().double()
        m = m.expand(*batch, L, S).reshape(n, L, S)
    out = torch.zeros(n, L, Ev, dtype=torch.float64)
    weights = torch.zeros(n, L, S, dtype=torch.float64)
    for b in range(n):
        for i in range(L):
            dots = (k[b] @ q[b, i]).tolist()  # q_i · k_j for every j
            mask_row = None if m is None else m[b, i].tolist()
            logits = _row_logits(dots, mask_row, mask_is_bool, i, L, S, causal, window, scale)
            row = torch.tensor(softmax_row(logits, S), dtype=torch.float64)
            weights[b, i] = row
            out[b, i] = row @ v[b]  # Σ_j w_ij v_j
    return out.reshape(*batch, L, Ev), weights.reshape(*batch, L, S)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x Wᵀ + b`` in float64."""
    y = x.detach().double() @ weight.detach().double().T
    return y if bias is None else y + bias.detach().double()


def multi_head(
    query: Tensor, key: Tensor, value: Tensor, params: dict[str, Tensor | None], *,
    num_heads: int, num_kv_heads: int | None = None, mask: Tensor | None = None,
    causal: bool = False, window: int | None = None, scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference multi-head (grouped-query) attention, batch first.

    ``params`` holds ``q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b`` (biases may be None).
    query ``(B, L, E)``, key ``(B, S, kdim)``, value ``(B, S, vdim)``, mask broadcastable
    to ``(B, H, L, S)``. Returns ``(out (B, L, E), weights (B, H, L, S))``.
    """
    H = num_heads
    G = H if num_kv_heads is None else num_kv_heads
    qp = linear(query, params["q_w"], params["q_b"])  # (B, L, H*D)
    kp = linear(key, params["k_w"], params["k_b"])  # (B, S, G*D)
    vp = linear(value, params["v_w"], params["v_b"])  # (B, S, G*Dv)
    B, L, S = qp.shape[0], qp.shape[1], kp.shape[1]
    D, Dv = qp.shape[-1] // H, vp.shape[-1] // G
    full_mask = None if mask is None else mask.expand(B, H, L, S)
    heads, maps = [], []
    for h in range(H):
        g = h // (H // G)
        out_h, w_h = attention(
            qp[:, :, h * D:(h + 1) * D], kp[:, :, g * D:(g + 1) * D],
            vp[:, :, g * Dv:(g + 1) * Dv], None if full_mask is None else full_mask[:, h],
            causal=causal, window=window, scale=scale,
        )
        heads.append(out_h)
        maps.append(w_h)
    concat = torch.cat(heads, dim=-1)  # (B, L, H*Dv)
    return linear(concat, params["o_w"], params["o_b"]), torch.stack(maps, dim=1)


def module_params(module: torch.nn.Module) -> dict[str, Tensor | None]:
    """The contract's ``q_proj/k_proj/v_proj/out_proj`` weights of a module, as oracle params."""
    params = {}
    for short, name in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
        layer = getattr(module, name)
        params[f"{short}_w"] = layer.weight
        params[f"{short}_b"] = layer.bias
    return params


def additive(
    query: Tensor, key: Tensor, value: Tensor, *, wq: Tensor, wk: Tensor, bk: Tensor | None,
    w: Tensor, wv: Tensor, wo: Tensor, bq: Tensor | None = None, bv: Tensor | None = None,
    bo: Tensor | None = None, mask: Tensor | None = None, causal: bool = False,
    window: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference additive attention ``e_ij = w · tanh(W_q q_i + b_q + W_k k_j + b_k)``.

    ``α = softmax_j(e)``, ``out_i = W_o Σ_j α_ij (W_v v_j + b_v) + b_o``.
    query ``(B, L, E)``, key/value ``(B, S, kdim)``, mask broadcastable to ``(B, 1, L, S)``.
    Returns ``(out (B, L, E), weights (B, 1, L, S))``.
    """
    qa = linear(query, wq, bq)  # (B, L, A)
    ka = linear(key, wk, bk)  # (B, S, A)
    vv = linear(value, wv, bv)  # (B, S, E)
    w64 = w.detach().double().reshape(-1)
    B, L, S = qa.shape[0], qa.shape[1], ka.shape[1]
    mask_is_bool = mask is not None and mask.dtype == torch.bool
    m = None if mask is None else mask.detach().expand(B, 1, L, S)
    if m is not None and not mask_is_bool:
        m = m.double()
    weights = torch.zeros(B, 1, L, S, dtype=torch.float64)
    context = torch.zeros(B, L, vv.shape[-1], dtype=torch.float64)
    for b in range(B):
        for i in range(L):
            scores = [float((w64 * torch.tanh(qa[b, i] + ka[b, j])).sum()) for j in range(S)]
            mask_row = None if m is None else m[b, 0, i].tolist()
            logits = _row_logits(scores, mask_row, mask_is_bool, i, L, S, causal, window, 1.0)
            row = torch.tensor(softmax_row(logits, S), dtype=torch.float64)
            weights[b, 0, i] = row
            context[b, i] = row @ vv[b]
    return linear(context, wo, bo), weights


# --- small helpers shared by the tests (not references) -----------------------------------


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    """Seeded standard-normal tensor (independent of the global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def rand_bool(*shape: int, seed: int = 0, p_true: float = 0.7) -> Tensor:
    """Seeded bool tensor, ``True`` with probability ``p_true``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen) < p_true


def rand_bias(*shape: int, seed: int = 0, p_neg_inf: float = 0.3,
              dtype: torch.dtype = torch.float64) -> Tensor:
    """Seeded additive float mask: normal biases with a fraction of ``-inf``."""
    bias = randn(*shape, seed=seed, dtype=dtype)
    return bias.masked_fill(rand_bool(*shape, seed=seed + 1, p_true=p_neg_inf), NEG_INF)
