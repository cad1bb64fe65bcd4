"""Draw every picture of the learning path from a real attnlab computation.

    uv run python docs/learn/make_pictures.py            # all pictures
    uv run python docs/learn/make_pictures.py 02 08      # only these

Each picture is one function below, registered in ``PICTURES`` under the file
name it writes into ``docs/learn/images/``; the numbers in it come from the
library (``attnlab.explain``, the modules, ``capture_attention``), never typed in.
Seeds are fixed, so a run draws the same pictures.
"""

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import attnlab as al
from attnlab.config import ModelConfig
from attnlab.models import DecoderLM
from attnlab.positional import AlibiBias, RotaryEmbedding

HERE = Path(__file__).parent / "images"
F64 = torch.float64
WORDS = ["the", "cat", "sat", "on", "the", "mat"]
PICTURES: dict[str, Callable[[], Figure]] = {}


def picture(name: str) -> Callable[[Callable[[], Figure]], Callable[[], Figure]]:
    """Register a function drawing ``images/<name>``."""
    def add(draw: Callable[[], Figure]) -> Callable[[], Figure]:
        PICTURES[name] = draw
        return draw
    return add


def figure(width: float, height: float, title: str) -> Figure:
    """A figure of ``width`` × ``height`` inches with a title."""
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=11)
    return fig


def heat(ax, values: torch.Tensor, rows: list[str], cols: list[str], title: str, *,
         weights: bool = False, numbers: bool = True) -> None:
    """One matrix as a heatmap with its numbers (−∞ in grey)."""
    v = values.detach().double().clone()
    hidden = torch.isneginf(v)
    if weights:
        image = ax.imshow(v.masked_fill(hidden, 0).numpy(), cmap="Blues", vmin=0, vmax=1)
    else:
        top = float(v[~hidden].abs().max()) if (~hidden).any() else 1.0
        image = ax.imshow(v.masked_fill(hidden, 0).numpy(), cmap="RdBu_r", vmin=-top, vmax=top)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            if hidden[i, j]:
                ax.add_patch(_grey(j, i))
                ax.text(j, i, "−∞", ha="center", va="center", fontsize=7, color="white")
            elif numbers:
                x = float(v[i, j])
                light = abs(x) < 0.6 * (1 if weights else float(v[~hidden].abs().max()))
                ax.text(j, i, f"{x:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if light else "white")
    ax.set_xticks(range(len(cols)), cols, fontsize=8, rotation=90 if len(cols) > 6 else 0)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    del image


def _grey(j: int, i: int):
    from matplotlib.patches import Rectangle
    return Rectangle((j - 0.5, i - 0.5), 1, 1, color="#6b7280")


@picture("01-soft-lookup.png")
def soft_lookup() -> Figure:
    """Page 01: scores and weights of one query against three keys."""
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    query = torch.tensor([[0.0, 2.0]])
    scores = query @ keys.T
    weights = torch.softmax(scores, -1)
    fig = figure(7, 2.2, "a query matches every key a little: softmax turns scores into shares")
    a, b = fig.subplots(1, 2)
    items = ["item 0", "item 1", "item 2"]
    heat(a, scores, ["query"], items, "scores q · kⱼ")
    heat(b, weights, ["query"], items, "weights softmax(scores)", weights=True)
    return fig


@picture("02-scaling.png")
def scaling() -> Figure:
    """Page 02: one row of weights at three scales, D = 64."""
    torch.manual_seed(0)
    D = 64
    q, k = torch.randn(1, D), torch.randn(8, D)
    fig = figure(8, 2.8, f"one query against 8 keys, D = {D}: without 1/√D the softmax "
                         "saturates")
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (t, label) in zip(axes, ((1.0, "t = 1 (no scaling)"), (D ** -0.5, "t = 1/√D"),
                                     (0.02, "t = 0.02")), strict=True):
        w = torch.softmax(q @ k.T * t, -1)[0]
        ax.bar(range(8), w.numpy(), color="#2563eb")
        ax.set_title(f"{label}: max weight {float(w.max()):.2f}", fontsize=9)
        ax.set_xticks(range(8))
        ax.set_ylim(0, 1)
        ax.set_xlabel("key", fontsize=8)
    axes[0].set_ylabel("weight", fontsize=8)
    return fig


@picture("03-weightless.png")
def weightless() -> Figure:
    """Page 03: X Xᵀ, the weights and the output of weightless attention."""
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]], dtype=F64)
    ex = al.explain(al.SimpleSelfAttention(), x, layer=0, head=0)
    tokens = ["x₀", "x₁", "x₂"]
    fig = figure(8, 2.8, "weightless self-attention: softmax(X Xᵀ / √E) X")
    a, b, c = fig.subplots(1, 3)
    heat(a, ex["scores"], tokens, tokens, "X Xᵀ")
    heat(b, ex["weights"], tokens, tokens, "weights", weights=True)
    heat(c, ex["output"], tokens, ["dim 0", "dim 1"], "output = weights · X")
    return fig


@picture("04-projections.png")
def projections() -> Figure:
    """Page 04: Q, K, V and the weights of one head with projections."""
    torch.manual_seed(0)
    ex = al.explain(al.SelfAttention(4).double(), torch.randn(1, 3, 4, dtype=F64), layer=0,
                    head=0)
    t, d = ["t₀", "t₁", "t₂"], [f"d{i}" for i in range(4)]
    fig = figure(10, 2.6, "one head with weights: three views of the same input")
    axes = fig.subplots(1, 4)
    for ax, name in zip(axes[:3], ("q", "k", "v"), strict=True):
        heat(ax, ex[name], t, d, {"q": "Q = X W_Q", "k": "K = X W_K", "v": "V = X W_V"}[name])
    heat(axes[3], ex["weights"], t, t, "softmax(Q Kᵀ/√E)", weights=True)
    return fig


@picture("05-causal.png")
def causal() -> Figure:
    """Page 05: masked scores and weights of causal attention."""
    torch.manual_seed(0)
    attn = al.CausalSelfAttention(8, num_heads=2).double()
    ex = al.explain(attn, torch.randn(1, 6, 8, dtype=F64), layer=0, head=0)
    fig = figure(8, 3.2, "causal masking: −∞ above the diagonal, zero weight on the future")
    a, b = fig.subplots(1, 2)
    heat(a, ex["masked"], WORDS, WORDS, "scaled scores + mask")
    heat(b, ex["weights"], WORDS, WORDS, "weights", weights=True)
    return fig


@picture("06-cross.png")
def cross() -> Figure:
    """Page 06: cross-attention weights, 4 queries over 6 keys."""
    torch.manual_seed(0)
    attn = al.CrossAttention(8, context_dim=6, num_heads=2).double()
    x, ctx = torch.randn(1, 4, 8, dtype=F64), torch.randn(1, 6, 6, dtype=F64)
    ex = al.explain(attn, (x, ctx), layer=0, head=1)
    fig = figure(5.5, 3.2, "cross-attention: 4 target queries over 6 source keys")
    heat(fig.subplots(), ex["weights"], ["le", "chat", "est", "assis"], WORDS,
         "weights (L × S)", weights=True)
    return fig


@picture("07-heads.png")
def heads() -> Figure:
    """Page 07: the weights of four heads of one layer."""
    torch.manual_seed(1)
    mha = al.MultiHeadAttention(16, 4).double()
    x = 3 * torch.randn(1, 6, 16, dtype=F64)  # larger inputs: sharper heads at random init
    fig = figure(11, 3.0, "four heads of one layer on the same input: four different patterns")
    for h, ax in enumerate(fig.subplots(1, 4)):
        heat(ax, al.explain(mha, x, layer=0, head=h)["weights"], WORDS, WORDS, f"head {h}",
             weights=True, numbers=False)
    return fig


@picture("08-kv-cache.png")
def kv_cache() -> Figure:
    """Page 08: measured KV-cache size for G = 8, 2, 1 key/value heads."""
    lengths = [256, 512, 1024, 2048]
    fig = figure(6, 3.2, "KV cache of one layer (E = 512, H = 8 query heads, float32)")
    ax = fig.subplots()
    for G, name in ((8, "multi-head, G = 8"), (2, "grouped-query, G = 2"),
                    (1, "multi-query, G = 1")):
        attn = al.MultiHeadAttention(512, 8, num_kv_heads=G, causal=True)
        sizes = []
        for n in lengths:
            cache = al.KVCache()
            with torch.no_grad():
                attn(torch.randn(1, n, 512), cache=cache)
            k, v = cache.get()
            sizes.append((k.numel() + v.numel()) * k.element_size() / 2 ** 20)
        ax.plot(lengths, sizes, marker="o", label=name)
    ax.set_xlabel("tokens cached", fontsize=9)
    ax.set_ylabel("MiB (measured)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


@picture("09-window.png")
def window() -> Figure:
    """Page 09: the weights of causal attention with a window of 3."""
    torch.manual_seed(0)
    attn = al.MultiHeadAttention(8, 2, causal=True, window=3).double()
    tokens = [f"t{i}" for i in range(8)]
    ex = al.explain(attn, torch.randn(1, 8, 8, dtype=F64), layer=0, head=0)
    fig = figure(5, 3.6, "causal sliding window of 3: a band, not a triangle")
    heat(fig.subplots(), ex["weights"], tokens, tokens, "weights", weights=True)
    return fig


@picture("10-positions.png")
def positions() -> Figure:
    """Page 10: RoPE's score against positions, and an ALiBi bias."""
    rope = RotaryEmbedding(16)
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    n = 12
    grid = torch.tensor([[float((rope(q, offset=i) * rope(k, offset=j)).sum()) for j in range(n)]
                         for i in range(n)])
    fig = figure(10, 3.6, "positions enter the scores: RoPE depends on i − j, ALiBi subtracts "
                          "slope · distance")
    a, b = fig.subplots(1, 2)
    heat(a, grid, [str(i) for i in range(n)], [str(j) for j in range(n)],
         "RoPE: q at i · k at j (same q, k)", numbers=False)
    bias = AlibiBias(4, causal=True)(8, 8)[0].masked_fill(~al.causal_mask(8), float("-inf"))
    heat(b, bias, [str(i) for i in range(8)], [str(j) for j in range(8)],
         "ALiBi bias + causal mask, head 0")
    return fig


@picture("11-block.png")
def block() -> Figure:
    """Page 11: the residual stream around one attention sub-block."""
    torch.manual_seed(0)
    lm = DecoderLM(ModelConfig(vocab_size=20, embed_dim=8, num_heads=2, num_layers=2,
                               positions="rotary", norm="rmsnorm", ffn="swiglu")).double()
    ex = al.explain(lm, torch.tensor([[3, 1, 4, 1, 5, 9]]), layer=1, head=0)
    tokens, dims = [f"t{i}" for i in range(6)], [f"e{i}" for i in range(8)]
    fig = figure(12, 2.9, "pre-norm block, attention half: x → norm → attention → x + Y")
    axes = fig.subplots(1, 4)
    for ax, (name, title) in zip(axes, (("layer_input", "x (residual stream)"),
                                        ("input", "norm(x)"), ("output", "Y = attention"),
                                        ("residual", "x + Y")), strict=True):
        heat(ax, ex[name], tokens, dims, title, numbers=False)
    return fig


@picture("12-additive.png")
def additive() -> Figure:
    """Page 12: additive scores and weights."""
    torch.manual_seed(0)
    attn = al.AdditiveAttention(6, kdim=4, hidden_dim=5).double()
    ex = al.explain(attn, (torch.randn(1, 4, 6, dtype=F64), torch.randn(1, 5, 4, dtype=F64)),
                    layer=0, head=0)
    fig = figure(8, 3.0, "additive attention: a small network scores each pair")
    a, b = fig.subplots(1, 2)
    src, tgt = [f"h{j}" for j in range(5)], [f"s{i}" for i in range(4)]
    heat(a, ex["scores"], tgt, src, "eᵢⱼ = w · tanh(W_q sᵢ + W_k hⱼ + b)")
    heat(b, ex["weights"], tgt, src, "softmax over j", weights=True)
    return fig


def main(names: list[str]) -> None:
    """Draw the pictures named (by number or file name), or all of them."""
    HERE.mkdir(exist_ok=True)
    chosen = [n for n in PICTURES if not names or n.split("-")[0] in names or n in names]
    for name in chosen:
        fig = PICTURES[name]()
        fig.savefig(HERE / name, format="png")
        print(f"images/{name}")


if __name__ == "__main__":
    main(sys.argv[1:])
