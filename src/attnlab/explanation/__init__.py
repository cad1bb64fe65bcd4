"""Explain attention step by step: ``attnlab.explain(model, inputs, layer=..., head=...)``.

The steps of one head's computation (input, Q, K, V, scores, scale, mask/bias,
weights, the head's output, the concatenation, the output projection and the
residual) as float64 tensors, recomposed and checked against the model's own
output.
"""

from .core import explain
from .steps import Explanation, Step

__all__ = ["Explanation", "Step", "explain"]
