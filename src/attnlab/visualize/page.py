"""A self-contained interactive HTML page for exploring attention weights.

The page is one file: the weights are embedded as JSON, the CSS and JavaScript are
inline, and nothing is fetched from anywhere, so it opens from disk, offline, in
any modern browser. It shows one module and one head at a time (chosen with
``<select id="layer">`` and ``<select id="head">``; heads are never averaged) in
two views:

- a head view: query tokens on the left, key tokens on the right; hovering a query
  draws a line to every key, with width and opacity growing with the weight, and
  shades the keys by weight (the row's maximum is outlined);
- a matrix view: an L x S table of cells shaded by weight, with a tooltip; the
  colour scale is shared by every head (0–1) unless ``<select id="scale">`` asks
  for each head's own maximum (which makes a near-uniform head look confident).

Stable DOM hooks (for tests and scripting): ``.query-token[data-index=i]``,
``.key-token[data-index=j]`` (with ``data-weight`` and class ``top`` on the row
maximum while a query is hovered), ``#lines line.attn-line[data-query][data-key]
[data-weight]`` and ``#matrix td.cell[data-row][data-col][data-weight]``;
``body[data-ready=true]`` once drawn.

Shape letters: B batch, H heads, L queries, S keys.
"""

import html
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from .._io import atomic_write
from .inputs import (
    TokensArg,
    as_maps,
    check_batch_index,
    display_name,
    resolve_labels,
)

#: Decimal places kept for the embedded weights.
DECIMALS = 4


def attention_page(
    maps: Mapping[str, Tensor] | Tensor,
    tokens: TokensArg,
    *,
    key_tokens: Sequence[str] | None = None,
    batch_index: int = 0,
    title: str = "attnlab",
) -> str:
    """Build one self-contained HTML page showing every module's attention, per head.

    Args:
        maps: ``{module name: (B, H, L, S) weights}`` as returned by
            ``capture_attention``, or one tensor of shape ``(L, S)``, ``(H, L, S)``
            or ``(B, H, L, S)``.
        tokens: query labels (length L) shared by all modules, or a dict
            ``{module name: labels}`` whose values are one list (self-attention)
            or a pair ``(query_tokens, key_tokens)`` (cross-attention). A dict must
            cover every module.
        key_tokens: key labels (length S) when ``tokens`` is a list; defaults to
            ``tokens``.
        batch_index: which example of the batch to embed.
        title: page title (escaped).

    Returns:
        The HTML text. Weights are rounded to 4 decimals; the page size grows as
        the total number of weights (about 7 bytes each).

    Raises:
        ValueError: a token count that does not match L or S, or a batch index out
            of range.
        TypeError: ``maps`` or ``tokens`` of the wrong type.

    Example:
        >>> import torch
        >>> text = attention_page(torch.tensor([[1.0, 0.0], [0.25, 0.75]]), ["a", "b"])
        >>> text.startswith("<!DOCTYPE html>"), '"weights":[[[1.0,0.0],[0.25,0.75]]]' in text
        (True, True)
    """
    all_maps = as_maps(maps)
    labels = resolve_labels(all_maps, list(all_maps), tokens, key_tokens)
    modules = []
    for name, weights in all_maps.items():  # weights: (B, H, L, S)
        check_batch_index(batch_index, weights.shape[0])
        rounded = torch.round(weights[batch_index].double(), decimals=DECIMALS)  # (H, L, S)
        queries, keys = labels[name]
        modules.append({"name": name, "label": display_name(name), "queries": queries,
                        "keys": keys,
                        "weights": rounded.tolist()})
    payload = json.dumps({"title": title, "batch_index": batch_index, "modules": modules},
                         separators=(",", ":"))
    # "<" only occurs inside JSON strings, where \u003c means the same: no "</script>".
    payload = payload.replace("<", "\\u003c")
    template = resources.files(__package__).joinpath("page_template.html").read_text("utf-8")
    return template.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", payload)


def write_page(
    maps: Mapping[str, Tensor] | Tensor,
    tokens: TokensArg,
    path: str | os.PathLike[str],
    *,
    key_tokens: Sequence[str] | None = None,
    batch_index: int = 0,
    title: str = "attnlab",
    force: bool = False,
) -> Path:
    """Write :func:`attention_page` to ``path`` (UTF-8), via a temp file and a rename.

    Args:
        maps: as for :func:`attention_page`.
        tokens: as for :func:`attention_page`.
        path: where to write, e.g. ``"attention.html"``.
        key_tokens: as for :func:`attention_page`.
        batch_index: as for :func:`attention_page`.
        title: as for :func:`attention_page`.
        force: overwrite ``path`` if it exists.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
        FileNotFoundError: the directory of ``path`` does not exist.
        ValueError: as for :func:`attention_page`.
    """
    path = Path(path)
    if path.exists() and not force:  # fail before building a possibly large page
        raise FileExistsError(f"{path} already exists; pass force=True to overwrite it")
    text = attention_page(maps, tokens, key_tokens=key_tokens, batch_index=batch_index,
                          title=title)
    return atomic_write(path, text, no_clobber=not force, make_parents=False)
