"""Positional schemes: absolute tables, rotary embeddings and additive biases.

Each class has a ``kind`` attribute telling a model where it plugs in:
``"absolute"`` (added to token embeddings), ``"rotary"`` (applied to queries and keys)
or ``"bias"`` (added to attention scores).
"""

from attnlab.positional.alibi import AlibiBias, alibi_slopes
from attnlab.positional.learned import LearnedPositions, RealTokenPositions
from attnlab.positional.relative import RelativePositionBias, relative_buckets
from attnlab.positional.rotary import RotaryEmbedding
from attnlab.positional.sinusoidal import SinusoidalPositions, sinusoidal_table
from attnlab.registry import POSITIONS

__all__ = [
    "AlibiBias",
    "LearnedPositions",
    "RealTokenPositions",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SinusoidalPositions",
    "alibi_slopes",
    "relative_buckets",
    "sinusoidal_table",
]

POSITIONS.register(
    "sinusoidal", SinusoidalPositions, help="fixed sin/cos table added to embeddings (Vaswani)"
)
POSITIONS.register("learned", LearnedPositions, help="trainable vector per position (GPT-2, BERT)")
POSITIONS.register("rotary", RotaryEmbedding, help="rotary q/k embedding, RoPE (Su; Llama layout)")
POSITIONS.register("alibi", AlibiBias, help="linear distance bias on scores, ALiBi (Press)")
POSITIONS.register("learned_real", RealTokenPositions,
                   help="learned vector per position, counted over real tokens (OPT)")
POSITIONS.register("t5", RelativePositionBias,
                   help="learned bias per head and bucketed distance on scores (T5, Raffel)")
