"""attnlab: attention mechanisms you can read, train, see and measure.

Every public name (the README's tour lists them) is importable from here::

    import attnlab as al
    out = al.scaled_dot_product_attention(q, k, v, causal=True)

Shape letters, the same in every module's docstrings and comments: B batch,
H query heads, G key/value heads, L queries (the target's or the new tokens),
S keys (the source's tokens, or every token seen with a cache), E model width,
D head width, F feed-forward width, V vocabulary; ``*`` any leading dims.
A module that needs another letter says so in its own docstring.

The parts, lowest first; each imports only from lower ones (a test checks it):
``_validate``/``_io``/``_openmp``/``registry``; ``functional``, ``positional``, ``tasks``;
``attention``; ``blocks``; ``config``; ``models``, ``visualize``; ``interop``,
``explanation``, ``training``; ``bench``, ``compat``; ``cli``.
"""

from importlib import import_module

__version__ = "0.1.0"

#: Where each public name lives. Names load on first use (PEP 562), so ``import attnlab``
#: and the ``attnlab`` command start without importing torch; the command then handles
#: Ctrl-C at any moment, start-up included.
_EXPORTS = {
    "AdditiveAttention": "attention",
    "CausalSelfAttention": "attention",
    "CrossAttention": "attention",
    "KVCache": "attention",
    "MultiHeadAttention": "attention",
    "SelfAttention": "attention",
    "SimpleSelfAttention": "attention",
    "attention_weights": "functional",
    "causal_mask": "functional",
    "padding_mask": "functional",
    "scaled_dot_product_attention": "functional",
    "explain": "explanation",
    "AttentionMaps": "visualize.capture",
    "capture_attention": "visualize.capture",
    "plot_attention": "visualize",  # matplotlib loads on first use
}
_SUBMODULES = ("compat", "interop")


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


__all__ = [
    "AdditiveAttention",
    "AttentionMaps",
    "CausalSelfAttention",
    "CrossAttention",
    "KVCache",
    "MultiHeadAttention",
    "SelfAttention",
    "SimpleSelfAttention",
    "attention_weights",
    "capture_attention",
    "causal_mask",
    "compat",
    "explain",
    "interop",
    "padding_mask",
    "plot_attention",
    "scaled_dot_product_attention",
]
