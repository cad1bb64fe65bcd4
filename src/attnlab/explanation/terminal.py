"""The explanation as text: each step's formula and shape, small matrices as rounded tables.

A matrix with more than ``max_rows`` rows or ``max_cols`` columns is summarised:
its first rows and columns are printed, the rest elided with ``…``, followed by
its minimum, maximum and mean.
"""

from torch import Tensor

from ..visualize.inputs import display_name
from .steps import Explanation, Step


def _cell(x: float, decimals: int) -> str:
    if x == float("-inf"):
        return "-inf"
    return f"{x:.{decimals}f}"


def _labels(axis: str, n: int, ex: Explanation) -> list[str]:
    tokens = ex.query_tokens if axis == "L" else ex.key_tokens if axis == "S" else []
    return list(tokens) if len(tokens) == n else [str(i) for i in range(n)]


def format_matrix(value: Tensor, rows: list[str], cols: list[str], *, decimals: int = 3,
                  max_rows: int = 12, max_cols: int = 8) -> list[str]:
    r"""A 2-D tensor as aligned text lines (elided past ``max_rows`` × ``max_cols``).

    Example:
        >>> import torch
        >>> for line in format_matrix(torch.tensor([[1.0, float("-inf")]]), ["a"], ["x", "y"]):
        ...     print(line)
               x     y
        a  1.000  -inf
    """
    R, C = value.shape
    show_r, show_c = min(R, max_rows), min(C, max_cols)
    cells = [[_cell(float(value[i, j]), decimals) for j in range(show_c)] for i in range(show_r)]
    heads = [c[:8] for c in cols[:show_c]]
    width = max([len(c) for row in cells for c in row] + [len(h) for h in heads]) + 1
    label_w = max(len(r[:10]) for r in rows[:show_r])
    more_c = " …" if C > show_c else ""
    lines = [" " * label_w + " " + "".join(h.rjust(width) for h in heads) + more_c]
    for i in range(show_r):
        lines.append(rows[i][:10].ljust(label_w) + " " + "".join(c.rjust(width) for c in cells[i])
                     + more_c)
    if R > show_r:
        lines.append(" " * label_w + " " + "⋮".rjust(width))
    if R > show_r or C > show_c:
        finite = value[value.isfinite()]
        if finite.numel():
            lines.append(f"({R}×{C}: min {finite.min():.{decimals}f}, max "
                         f"{finite.max():.{decimals}f}, mean {finite.mean():.{decimals}f})")
    return lines


def format_step(step: Step, ex: Explanation, number: int, **kwargs: int) -> str:
    """One step as text: title, formula, shape, sentence and its numbers."""
    lines = [f"{number}. {step.title}", f"   {step.formula}    {step.shape}", f"   {step.text}"]
    value = step.value
    if value.dim() == 0:
        lines.append(f"   = {float(value):.6g}")
        return "\n".join(lines)
    if value.dim() == 3:
        value = value.reshape(-1, value.shape[-1])  # (L·S, A)
        rows = [f"{q}→{k}" for q in _labels("L", step.value.shape[0], ex)
                for k in _labels("S", step.value.shape[1], ex)]
        cols = _labels(step.axes[2], value.shape[1], ex)
    else:
        rows = _labels(step.axes[0], value.shape[0], ex)
        cols = _labels(step.axes[1], value.shape[1], ex)
    lines += ["   " + line for line in format_matrix(value, rows, cols, **kwargs)]
    return "\n".join(lines)


def format_explanation(ex: Explanation, **kwargs: int) -> str:
    """Every step of ``ex`` as text, numbered, after a one-line header."""
    kv = f" (key/value head {ex.kv_head})" if ex.num_kv_heads != ex.num_heads else ""
    header = (f"{display_name(ex.module)} · head {ex.head}{kv} of {ex.num_heads} · {ex.kind} · "
              f"recomposed to the model's own output within {ex.error:.1e} (relative)")
    body = [format_step(step, ex, n + 1, **kwargs) for n, step in enumerate(ex.steps)]
    return "\n\n".join([header, *body])
