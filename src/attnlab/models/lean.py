"""The lean decode step of a :class:`~attnlab.models.decoder.DecoderLM`.

``generate`` (and ``attnlab chat``) spend almost all their time feeding one
token at a time through the model. The model's ``forward`` checks its inputs,
masks and caches on every call and runs three projections per attention layer;
for one new token these costs are a large part of the step. :class:`LeanDecoder`
runs the same layers differently, once the prompt has been checked:

* the prompt ("prefill") goes through the model's own, validated ``forward``;
* each later token goes through :meth:`LeanDecoder.step`: no per-step checks,
  one fused ``x @ W_qkvᵀ`` product per layer (weights concatenated and laid out
  transposed once per ``generate`` call, so they are never stale after training
  or loading), keys and values written in place into per-layer buffers
  preallocated to prompt + new tokens (:meth:`KVCache.append_unchecked`), the
  feed-forward's products (gate and up fused) and the output head as ``x @ Wᵀ``
  too.

Norms, embeddings, positional biases, activations and the attention kernel are
the layers' own modules and functions: this file holds the step's wiring and
its weight layout, not a second copy of each layer. :func:`lean_supported` says
when the step applies; otherwise ``generate`` keeps the plain cached forward.
``LeanDecoder(..., compile=True)`` runs the same step under ``torch.compile``
(the wiring in :mod:`attnlab.models.compiled`), over static caches; its
products read each projection's own weight as a view (no fused copy: see
:func:`_in_parts`), which made SmolLM2's compiled calls ~25% faster than
reading fused copies (1645 against 2137 ms for 128 tokens, docs/benchmarks.md).

Shape letters: B batch, H query heads, G key/value heads, D head width,
S positions so far, E width, V vocabulary.
"""

from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from ..attention.cache import KVCache
from ..attention.multihead import MultiHeadAttention
from ..blocks.feedforward import ACTIVATIONS, MLP, SwiGLU
from .quantized import QUANTIZATIONS, Int8Rows

#: Most entries of the (H, T, T) score-bias table a compiled step precomputes (ALiBi, T5).
MAX_BIAS_TABLE = 2**25


def lean_supported(lm: nn.Module) -> bool:
    """Whether :class:`LeanDecoder` can run ``lm`` (a ``DecoderLM``) exactly.

    It needs every self-attention to be a :class:`MultiHeadAttention` with plain
    ``nn.Linear`` projections and no attention recorder (``capture_attention``
    wants the plain path), and the output head to be a plain ``nn.Linear``.
    Other mechanisms ("additive", "simple") fall back to the model's forward.
    """
    if type(lm.lm_head) is not nn.Linear:
        return False
    for layer in lm.decoder.layers:
        attn = layer.self_attn
        if not isinstance(attn, MultiHeadAttention) or layer.cross_attn is not None:
            return False
        if attn._recorder is not None or attn._score_recorder is not None:
            return False
        if any(type(p) is not nn.Linear for p in (attn.q_proj, attn.k_proj, attn.v_proj,
                                                   attn.out_proj)):
            return False
    return True


def _transposed(w: Tensor, rows: bool = False) -> Tensor:
    """``w`` ``(N, K)`` as a ``(K, N)``: ``x @ that`` equals ``F.linear(x, w)``.

    Contiguous ``(K, N)`` for the eager step (MKL's fastest layout for ``x @ Wᵀ``);
    with ``rows``, the transposed view of a contiguous ``(N, K)`` tensor, the layout
    the compiled step's generated products read fastest (each output a dot
    product along a contiguous row): a view of ``w`` itself when it is contiguous
    (no copy, so a call does not re-lay the weights out), else a contiguous copy.
    """
    if rows:
        return (w.detach() if w.is_contiguous() else w.detach().contiguous()).t()
    return w.detach().t().contiguous()


def _cat_bias(*linears: nn.Linear) -> Tensor | None:
    if all(p.bias is None for p in linears):
        return None
    return torch.cat([p.bias.detach() if p.bias is not None
                      else p.weight.new_zeros(p.out_features) for p in linears])


#: A weight as a step's products read it: a transposed ``(K, N)`` tensor, or int8 rows.
Weight = Tensor | Int8Rows
Product = Callable[[Tensor, Weight, "Tensor | None"], Tensor]
#: ``quantize`` of the step: None (the model's own weights) or a :data:`QUANTIZATIONS` name.
Quantize = str | None


def matmul(x: Tensor, wt: Weight, b: Tensor | None) -> Tensor:
    """``x @ wt (+ b)``: the eager step's products (MKL; int8 rows: their own product)."""
    out = wt.matmul(x) if isinstance(wt, Int8Rows) else x @ wt
    return out if b is None else out + b


def _weight(w: Tensor, rows: bool, quantize: Quantize) -> Weight:
    """One projection's weight ``(N, K)`` for the step: :func:`_transposed`, or quantized."""
    return QUANTIZATIONS[quantize](w) if quantize else _transposed(w, rows)


def _in_parts(linears: tuple[nn.Linear, ...], rows: bool,
              quantize: Quantize = None) -> list[tuple[Weight, Tensor | None]]:
    """The weights (and biases) of projections that read the same input, for :func:`joint`.

    Eager layout: one fused ``(K, ΣN)`` matrix (one MKL product for all of them).
    Rows layout (the compiled step): each projection's own ``(N, K)`` weight as a
    view, no copy; inductor reads them in one pass anyway, and a call does not
    concatenate hundreds of MiB of weights first. Quantized: each projection's
    own int8 rows (cached per weight, :mod:`attnlab.models.quantized`).
    """
    if rows or quantize:
        return [(_weight(p.weight, rows, quantize),
                 None if p.bias is None else p.bias.detach()) for p in linears]
    return [(_transposed(torch.cat([p.weight for p in linears])), _cat_bias(*linears))]


def joint(x: Tensor, parts: list[tuple[Weight, Tensor | None]], product: Product) -> Tensor:
    """``x`` through every part, outputs side by side: ``(B, 1, K)`` -> ``(B, 1, ΣN)``."""
    outs = [product(x, w, b) for w, b in parts]
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


def run_layer(layer: nn.Module, x: Tensor, attend: Callable[[Tensor], Tensor],
              feed: Callable[[Tensor], Tensor]) -> Tensor:
    """One layer's residual wiring around ``attend`` and ``feed``: ``(B, 1, E)`` -> same.

    Parallel (attention and feed-forward of one normed input), pre-norm or
    post-norm, as the layer's forward wires them; the eager and the compiled
    step both go through here.
    """
    if layer.parallel:
        return x + attend(layer.self_norm(x)) + feed(layer.ffn_norm(x))
    if layer.prenorm:
        x = x + attend(layer.self_norm(x))
        return x + feed(layer.ffn_norm(x))
    x = layer.self_norm(x + attend(x))
    return layer.ffn_norm(x + feed(x))


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary positions of ``x`` ``(..., D)`` at one position, ``cos``/``sin`` ``(R,)``.

    Queries and keys together, as ``RotaryEmbedding`` computes them (Llama's
    half-split layout, the first R of D features rotated).
    """
    R = cos.shape[-1]
    y = x.to(cos.dtype)
    part = y[..., :R]
    half = R // 2
    turned = part * cos + torch.cat((-part[..., half:], part[..., :half]), dim=-1) * sin
    if R < y.shape[-1]:
        turned = torch.cat((turned, y[..., R:]), dim=-1)
    return turned.to(x.dtype)


class _Attn:
    """One layer's attention weights for the step: q/k/v as :func:`_in_parts` lays them out."""

    def __init__(self, attn: MultiHeadAttention, rows: bool = False,
                 quantize: Quantize = None) -> None:
        self.module = attn
        self.H, self.G, self.D = attn.num_heads, attn.num_kv_heads, attn.head_dim
        projs = (attn.q_proj, attn.k_proj, attn.v_proj)
        self.qkv = _in_parts(projs, rows, quantize)  # x -> (B, 1, (H + 2G) D) through joint()
        self.w_out = _weight(attn.out_proj.weight, rows, quantize)  # (H D, E)
        self.b_out = None if attn.out_proj.bias is None else attn.out_proj.bias.detach()


class _FFN:
    """One layer's feed-forward weights for the step (gate and up laid out by :func:`_in_parts`).

    MLP and the gated blocks (SwiGLU, GeGLU) are wired here with the blocks' own
    activations; any other block is called as it is.
    """

    def __init__(self, ffn: nn.Module, rows: bool = False, quantize: Quantize = None) -> None:
        self.module = ffn
        self.gated = isinstance(ffn, SwiGLU)
        self.plain = not self.gated and type(ffn) is not MLP
        if self.plain:
            return
        ins = (ffn.gate_proj, ffn.up_proj) if self.gated else (ffn.up_proj,)
        self.act = ACTIVATIONS[ffn.gate_activation if self.gated else ffn.activation]
        self.ins = _in_parts(ins, rows, quantize)  # x -> (B, 1, F) or (B, 1, 2F) via joint()
        self.w_out = _weight(ffn.down_proj.weight, rows, quantize)  # (F, E)
        self.b_out = None if ffn.down_proj.bias is None else ffn.down_proj.bias.detach()

    def __call__(self, x: Tensor, product: Product | None = None) -> Tensor:
        """``(B, 1, E)`` -> ``(B, 1, E)``, as the block computes it.

        ``product(x, wt, b)`` computes each ``x @ wt + b`` (default :func:`matmul`).
        """
        if self.plain:
            return self.module(x)
        product = product or matmul
        h = joint(x, self.ins, product)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)  # (B, 1, F) each
            h = self.act(gate) * up
        else:
            h = self.act(h)
        return product(h, self.w_out, self.b_out)  # (B, 1, E)


class LeanDecoder:
    """Prefill through the model's forward, then lean one-token steps.

    Built by ``DecoderLM.generate`` for one call: it owns the per-layer caches
    (preallocated to ``total`` positions) and the fused, transposed weights.
    Call it as the decode loop's ``step(ids, cache)``: the first call (empty
    caches) is the prefill, every later one feeds ``(B, 1)`` new tokens.

    With ``compile=True`` every token after the prefill runs through the same
    step compiled (:mod:`attnlab.models.compiled`): the caches are static
    buffers of :func:`~attnlab.models.compiled.static_positions` positions, and
    the compiled step is kept per model (and batch, dtype, thread count) for
    every cache size, so later calls do not compile again. Should compiling
    fail, a warning says so once and this eager step takes over (the tokens
    are the same).

    With ``quantize="int8"`` the steps after the prefill read int8 copies of
    the weights (:mod:`attnlab.models.quantized`: approximate, opt-in); the
    prefill stays the model's own forward.

    Args:
        lm: A ``DecoderLM`` in eval mode for which :func:`lean_supported` holds.
        total: Prompt length + new tokens (the caches' size).
        compile: Run the steps after the prefill through ``torch.compile``.
        quantize: None, or a :data:`~attnlab.models.quantized.QUANTIZATIONS` name.
    """

    def __init__(self, lm: nn.Module, total: int, *, compile: bool = False,
                 quantize: Quantize = None) -> None:
        from .compiled import static_positions

        self.lm = lm
        windows = {layer.self_attn.window for layer in lm.decoder.layers}
        self.window = next(iter(windows)) if len(windows) == 1 else None
        self.compile = compile and len(windows) == 1
        self.size = static_positions(total, lm.config.max_len) if self.compile else total
        self.caches: list[KVCache] = lm.new_cache(self.size)
        with torch.no_grad():
            rows = self.compile  # the compiled step's layout (the eager step reads it too)
            self.quantize = quantize
            self.attn = [_Attn(layer.self_attn, rows, quantize) for layer in lm.decoder.layers]
            self.ffn = [_FFN(layer.ffn, rows, quantize) for layer in lm.decoder.layers]
            self.w_head = _weight(lm.lm_head.weight, rows, quantize)  # (E, V)
            self.b_head = None if lm.lm_head.bias is None else lm.lm_head.bias.detach()
        rotary = lm.embed.rotary
        self.cos = self.sin = None
        if rotary is not None:
            w = lm.embed.tokens.weight
            compute = torch.float64 if w.dtype == torch.float64 else torch.float32
            cos, sin = rotary._cached(self.size, w.device, compute)  # (>= size, R)
            self.cos, self.sin = cos[: self.size], sin[: self.size]
        self.compiled = None  # the compiled step, once the prefill ran (compile=True)
        self._first_step = True

    def __call__(self, ids: Tensor, cache: object = None) -> Tensor:
        """``(B, L)`` ids -> ``(B, L, V)`` logits (L = 1 after the prefill)."""
        if len(self.caches[0]) == 0:
            logits = self.lm(ids, cache=self.caches)  # the prompt: checked once, here
            if self.compile:
                self._prepare_static(ids)
            return logits
        if self.compiled is not None:
            return self._compiled_step(ids)
        return self.step(ids)

    @torch.no_grad()
    def _prepare_static(self, ids: Tensor) -> None:
        """After the prefill: the tables the compiled step indexes, and the step itself."""
        from .compiled import compile_available, compiled_step, mark_positions_dynamic, warn_once

        if not compile_available():
            warn_once("torch.compile is not available here: decoding with the eager lean step")
            return
        lm, T = self.lm, self.size
        w = lm.embed.tokens.weight
        bias_elements = 0 if lm.embed.score_bias is None else self.attn[0].H * T * T
        if bias_elements > MAX_BIAS_TABLE:
            warn_once(f"the compiled step would need a {bias_elements:,}-entry score-bias table "
                      "(ALiBi/T5 positions over a long context): decoding with the eager step")
            return
        self.buffers = [cache.storage() for cache in self.caches]  # (B, G, T, D) each
        start = len(self.caches[0])
        for k_buf, v_buf in self.buffers:  # finite where masked: -inf hides 0, never NaN
            k_buf[:, :, start:].zero_()
            v_buf[:, :, start:].zero_()
        self.pos = torch.tensor([len(self.caches[0])], device=ids.device)  # (1,)
        self.key_positions = torch.arange(T, device=ids.device)  # (T,)
        self.pos_table = None
        if lm.embed.positions is not None:  # what the absolute positions add, per position
            zeros = w.new_zeros(1, T, w.shape[1])
            self.pos_table = lm.embed.positions(zeros, offset=0)[0]  # (T, E)
        self.bias_table = lm.embed.attention_bias(T, T, w.dtype, w.device)  # (H, T, T) | None
        sized = [(self.key_positions, (0,)), (self.cos, (0,)), (self.sin, (0,)),
                 (self.pos_table, (0,)), (self.bias_table, (1, 2)),
                 *((buffer, (2,)) for pair in self.buffers for buffer in pair)]
        mark_positions_dynamic(sized)
        key = (ids.shape[0], w.dtype, w.device, torch.get_num_threads(), self.quantize)
        self.compiled = compiled_step(lm, key)

    def _compiled_step(self, ids: Tensor) -> Tensor:
        """One token through the compiled step; the eager step if compiling fails."""
        from .compiled import quiet_compile, warn_once

        try:
            # the first step of a call is where a compile happens (quieted: see quiet_compile)
            with torch.no_grad(), quiet_compile() if self._first_step else nullcontext():
                logits = self.compiled(self.lm, self, ids, self.pos)  # (B, 1, V)
            self._first_step = False
        except Exception as error:  # noqa: BLE001 (any failure: the eager step is exact)
            warn_once(f"torch.compile of the decode step failed ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''}); decoding with "
                      "the eager lean step")
            self.compiled = None
            return self.step(ids)
        self.pos += 1
        for cache in self.caches:
            cache.length += 1
        return logits

    @torch.no_grad()
    def step(self, ids: Tensor) -> Tensor:
        """One new token per row: ``(B, 1)`` ids -> ``(B, 1, V)`` logits, no checks."""
        lm = self.lm
        offset = len(self.caches[0])
        x = lm.embed(ids, offset=offset)  # (B, 1, E)
        bias = lm.embed.attention_bias(1, offset + 1, x.dtype, x.device)  # (H, 1, S) | None
        for layer, attn, ffn, cache in zip(lm.decoder.layers, self.attn, self.ffn, self.caches,
                                           strict=True):
            x = run_layer(layer, x, lambda h, a=attn, c=cache: self._attend(h, a, c, bias, offset),
                          ffn)
        norm = lm.decoder.final_norm
        if norm is not None:
            x = norm(x)
        return matmul(x, self.w_head, self.b_head)  # (B, 1, V)

    def _attend(self, h: Tensor, a: _Attn, cache: KVCache, bias: Tensor | None,
                offset: int) -> Tensor:
        """``(B, 1, E)`` -> ``(B, 1, E)``: fused QKV, in-place cache write, the module's kernel."""
        B, H, G, D = h.shape[0], a.H, a.G, a.D
        qkv = joint(h, a.qkv, matmul)  # (B, 1, (H + 2G) D)
        qkv = qkv.view(B, H + 2 * G, 1, D)  # L = 1: (B, 1, N, D) and (B, N, 1, D) agree
        qk, v = qkv[:, : H + G], qkv[:, H + G:]  # (B, H + G, 1, D), (B, G, 1, D)
        if self.cos is not None:
            qk = rotate(qk, self.cos[offset], self.sin[offset])
        k, v = cache.append_unchecked(qk[:, H:], v)  # (B, G, S, D)
        out = a.module.attend(qk[:, :H], k, v, bias, causal=a.module.causal,
                              window=a.module.window)  # (B, H, 1, D)
        return matmul(out.reshape(B, 1, H * D), a.w_out, a.b_out)  # (B, 1, E)
