"""Slow, obvious float64 references for positional schemes and norms.

Everything here is written with Python loops and ``math`` on nested lists, straight from
the papers' formulas, so it shares no code (and no vectorisation tricks) with attnlab.
"""

import math

import torch


def sinusoid_table(max_len: int, embed_dim: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/E)), PE[pos, 2i+1] = cos(same)."""
    rows = []
    for pos in range(max_len):
        row = []
        for col in range(embed_dim):
            two_i = col - (col % 2)
            angle = pos / (10000.0 ** (two_i / embed_dim))
            row.append(math.sin(angle) if col % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def rotate_vector(vec: list[float], position: float, theta: float) -> list[float]:
    """Rotate feature pairs (k, k + D/2) of one vector by position * theta^(-2k/D)."""
    dim = len(vec)
    half = dim // 2
    out = [0.0] * dim
    for k in range(half):
        angle = position * theta ** (-2.0 * k / dim)
        c, s = math.cos(angle), math.sin(angle)
        a, b = vec[k], vec[k + half]
        out[k] = c * a - s * b  # explicit 2x2 rotation [[c, -s], [s, c]] @ [a, b]
        out[k + half] = s * a + c * b
    return out


def rotary(x: torch.Tensor, positions: list[list[int]], theta: float = 10000.0) -> torch.Tensor:
    """RoPE of ``x`` (B, H, L, D) with per-batch positions ``positions[b][l]``."""
    data = x.double().tolist()
    for b, heads in enumerate(data):
        for head in heads:
            for pos_index, vec in enumerate(head):
                head[pos_index] = rotate_vector(vec, positions[b][pos_index], theta)
    return torch.tensor(data, dtype=torch.float64)


def alibi_slopes(n: int) -> list[float]:
    """Verbatim logic of ofirpress/attention_with_linear_biases ``get_slopes``."""

    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (
        get_slopes_power_of_2(closest_power_of_2)
        + alibi_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2]
    )


def alibi_bias(num_heads: int, length: int, keys: int) -> torch.Tensor:
    """bias[h, i, j] = -slope_h * |(i + S - L) - j|, by loops."""
    slopes = alibi_slopes(num_heads)
    out = [
        [[-slopes[h] * abs(i + keys - length - j) for j in range(keys)] for i in range(length)]
        for h in range(num_heads)
    ]
    return torch.tensor(out, dtype=torch.float64)


def _rows(x: torch.Tensor) -> list[list[float]]:
    return x.double().reshape(-1, x.shape[-1]).tolist()


def layer_norm(x, weight, bias, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(biased var + eps) * w + b over the last dim, by loops."""
    w = weight.double().tolist()
    b = bias.double().tolist() if bias is not None else [0.0] * len(w)
    out = []
    for row in _rows(x):
        n = len(row)
        mean = sum(row) / n
        var = sum((v - mean) ** 2 for v in row) / n
        out.append([(v - mean) / math.sqrt(var + eps) * w[k] + b[k] for k, v in enumerate(row)])
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def rms_norm(x, weight, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * w over the last dim, by loops."""
    w = weight.double().tolist()
    out = []
    for row in _rows(x):
        rms = math.sqrt(sum(v * v for v in row) / len(row) + eps)
        out.append([v / rms * w[k] for k, v in enumerate(row)])
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (0 when both are zero)."""
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    denom = ref.norm().item()
    diff = (out - ref).norm().item()
    return diff / denom if denom > 0 else diff


def tolerance(dtype: torch.dtype) -> float:
    """The project's relative-error budget: 1e-6 in float64, 1e-5 in float32."""
    return 1e-6 if dtype == torch.float64 else 1e-5


ACTIVATIONS = {
    "relu": lambda v: max(v, 0.0),
    "gelu": lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
    "gelu_tanh": lambda v: 0.5 * v * (
        1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3))
    ),
    "silu": lambda v: v / (1.0 + math.exp(-v)),
}


def _linear_row(row: list[float], linear) -> list[float]:
    w = linear.weight.double().tolist()
    b = linear.bias.double().tolist() if linear.bias is not None else [0.0] * len(w)
    return [sum(w[k][j] * row[j] for j in range(len(row))) + b[k] for k in range(len(w))]


def mlp(x, up, down, activation: str) -> torch.Tensor:
    """down(act(up(x))) row by row."""
    act = ACTIVATIONS[activation]
    out = [_linear_row([act(h) for h in _linear_row(row, up)], down) for row in _rows(x)]
    return torch.tensor(out, dtype=torch.float64).reshape(*x.shape[:-1], -1)


def swiglu(x, gate, up, down) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) row by row."""
    silu = ACTIVATIONS["silu"]
    out = []
    for row in _rows(x):
        gates, ups = _linear_row(row, gate), _linear_row(row, up)
        hidden = [silu(g) * u for g, u in zip(gates, ups, strict=True)]
        out.append(_linear_row(hidden, down))
    return torch.tensor(out, dtype=torch.float64).reshape(*x.shape[:-1], -1)
