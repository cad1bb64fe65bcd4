"""The explanation as one self-contained HTML page: every step, in order, with its numbers.

Each step shows its formula, its shape, one or two plain sentences and the real
matrix as a heatmap (hover a cell for its value and the tokens it belongs to).
Below the weights, a slider sets the factor ``t`` the raw scores are multiplied
by and recomputes ``softmax(QKᵀ·t + M)`` live, so a learner can watch what the
model's ``1/√D`` does. A model view shows every module × head as thumbnails;
clicking one enlarges it and gives the command that explains it.

Like ``visualize/page_template.html``, everything is inline: no request leaves the
page. Stable DOM hooks for tests: ``section.step[data-step=NAME]`` (with
``canvas.heat[data-rows][data-cols]``), ``#temp`` (the slider), ``#live``
(``data-values``: the recomputed weights as JSON), ``#grid canvas.thumb
[data-layer][data-head]``, ``#tooltip``, ``body[data-ready=true]``.
"""

import html
import json
import math
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from torch import Tensor

from .._io import atomic_write
from ..visualize.inputs import display_name
from .steps import Explanation

#: Significant digits kept for embedded step values (scores and mask keep all).
DIGITS = 6


def _number(x: float, digits: int | None) -> float | None:
    if math.isinf(x) and x < 0:
        return None  # JSON has no -inf: null means "hidden"
    return x if digits is None else float(f"{x:.{digits}g}")


def _values(value: Tensor, digits: int | None) -> object:
    if value.dim() == 0:
        return _number(float(value), digits)
    if value.dim() == 3:  # (L, S, A) -> rows "i→j"
        value = value.reshape(-1, value.shape[-1])
    return [[_number(x, digits) for x in row] for row in value.tolist()]


def explanation_page(ex: Explanation, *, title: str = "attnlab explain",
                     grid: Mapping[str, Tensor] | None = None, command: str = "",
                     input_text: str = "") -> str:
    """Build the HTML page for ``ex``.

    Args:
        ex: The explanation (``query_tokens``/``key_tokens`` label the axes if set).
        title: Page title (escaped).
        grid: ``{module name: (B, H, L, S) weights}`` of every attention module on the
            same input (e.g. from ``capture_attention``) for the model view.
        command: The command that made the page, with ``{layer}`` and ``{head}``
            where another module/head would go (shown when a thumbnail is clicked).
        input_text: The input, shown in the header.

    Returns:
        The HTML text.
    """
    L = ex["weights"].shape[0]
    S = ex["weights"].shape[1]
    queries = list(ex.query_tokens) or [str(i) for i in range(L)]
    keys = list(ex.key_tokens) or [str(j) for j in range(S)]
    exact = {"scores", "mask"}
    steps = [{"name": s.name, "title": s.title, "formula": s.formula, "text": s.text,
              "shape": s.shape, "axes": list(s.axes),
              "values": _values(s.value, None if s.name in exact else DIGITS)}
             for s in ex.steps]
    modules = []
    for name, weights in (grid or {}).items():
        w = weights[ex.batch].double()  # (H, L, S)
        modules.append({"name": name, "label": display_name(name),
                        "heads": [[[round(x, 3) for x in row] for row in head.tolist()]
                                  for head in w]})
    payload = {
        "title": title, "module": ex.module, "label": display_name(ex.module), "head": ex.head,
        "kv_head": ex.kv_head, "num_heads": ex.num_heads, "num_kv_heads": ex.num_kv_heads,
        "kind": ex.kind, "layer": ex.layer, "queries": queries, "keys": keys,
        "input": input_text, "steps": steps, "scale": float(ex["scale"]),
        "grid": modules, "command": command, "error": ex.error,
    }
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    template = resources.files("attnlab.visualize").joinpath("explain_template.html") \
        .read_text("utf-8")
    return template.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", text)


def write_explanation_page(ex: Explanation, path: str | os.PathLike[str], *,
                           force: bool = False, **kwargs: object) -> Path:
    """Write :func:`explanation_page` to ``path`` via a temp file and a rename.

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it")
    text = explanation_page(ex, **kwargs)  # type: ignore[arg-type]
    return atomic_write(path, text, no_clobber=not force, make_parents=False)
