"""Model configuration: one frozen dataclass, validated when it is made.

Every model attnlab builds — encoder (BERT-like), decoder-only language model
(GPT/Llama-like), encoder–decoder (the original Transformer) — comes from a
:class:`ModelConfig`. Names of components (attention mechanism, positions,
norm, feed-forward) are registry keys: ``attnlab models`` lists them, and an
unknown name is an error that lists the valid ones.
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

from . import attention, blocks, positional  # noqa: F401  (fill the registries)
from ._validate import (
    check_bool,
    check_choice,
    check_divisible,
    check_fields,
    check_float,
    check_int,
)
from .attention.mechanisms import Mechanism
from .registry import ATTENTION, FFNS, NORMS, POSITIONS

ARCHS = ("encoder", "decoder", "encoder-decoder")
RESIDUALS = ("sequential", "parallel")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a Transformer's shape.

    Args:
        arch: ``"encoder"``, ``"decoder"`` (decoder-only LM) or ``"encoder-decoder"``.
        vocab_size: Tokens V.
        embed_dim: Model width E.
        num_layers: Layers (each stack, for encoder–decoder).
        num_heads: Query heads H.
        num_kv_heads: Key/value heads G (grouped-query); default H.
        head_dim: Head width D; default E // H.
        ffn_dim: Feed-forward hidden width; default 4E.
        attention: Self-attention mechanism (registry name).
        cross_attention: Decoder's cross-attention mechanism (registry name).
        positions: ``"sinusoidal"``, ``"learned"``, ``"rotary"``, ``"alibi"`` or ``"none"``.
        rope_theta: Rotary base.
        rotary_dim: Rotate only the first ``rotary_dim`` features of each head
            (GPT-NeoX's partial rotary); default the whole head.
        max_len: Longest sequence (absolute positions and generation limit).
        norm: ``"layernorm"`` or ``"rmsnorm"``.
        norm_eps: Norm epsilon.
        prenorm: Pre-norm (GPT-2, Llama) if True, post-norm (original, BERT) if False.
        residual: ``"sequential"`` (attention, then feed-forward) or ``"parallel"``
            (both read the same input and add to it: GPT-J, GPT-NeoX; pre-norm only).
        ffn: ``"mlp"`` or ``"swiglu"``.
        activation: MLP activation (``relu``, ``gelu``, ``gelu_tanh``, ``silu``).
        bias: Biases in attention and feed-forward projections.
        dropout: Dropout on embeddings, residual branches and attention weights.
        window: Sliding-window size for self-attention (None = full).
        tie_embeddings: Share the token embedding with the output head.
        embed_norm: Norm right after the embeddings (BERT).
        final_norm: Norm after the last layer (pre-norm models).
        type_vocab_size: Token-type embeddings (BERT segments); 0 = none.
        embed_scale: Multiply token embeddings by sqrt(E) (Vaswani et al.).
        embed_std: Standard deviation of the embeddings (tokens, learned positions)
            at initialisation.

    Raises:
        ValueError: For values that cannot work, named with what was got.
    """

    arch: str = "decoder"
    vocab_size: int = 256
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None
    head_dim: int | None = None
    ffn_dim: int | None = None
    attention: str = "multihead"
    cross_attention: str = "multihead"
    positions: str = "learned"
    rope_theta: float = 10000.0
    rotary_dim: int | None = None
    max_len: int = 512
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    prenorm: bool = True
    residual: str = "sequential"
    ffn: str = "mlp"
    activation: str = "gelu"
    bias: bool = True
    dropout: float = 0.0
    window: int | None = None
    tie_embeddings: bool = True
    embed_norm: bool = False
    final_norm: bool = True
    type_vocab_size: int = 0
    embed_scale: bool = False
    embed_std: float = 0.02

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        for name in ("prenorm", "bias", "tie_embeddings", "embed_norm", "final_norm",
                     "embed_scale"):
            check_bool(name, getattr(self, name))
        for name in ("vocab_size", "embed_dim", "num_layers", "num_heads", "max_len"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("num_kv_heads", "head_dim", "ffn_dim", "window", "rotary_dim"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("type_vocab_size", self.type_vocab_size, minimum=0)
        if self.num_kv_heads is not None:
            check_divisible("num_heads", self.num_heads, "num_kv_heads", self.num_kv_heads)
        if self.head_dim is None:
            check_divisible("embed_dim", self.embed_dim, "num_heads", self.num_heads)
        self_attn, cross_attn = self.mechanism, ATTENTION.get(self.cross_attention)
        if self.positions != "none":
            POSITIONS.get(self.positions)
        NORMS.get(self.norm)
        FFNS.get(self.ffn)
        check_float("rope_theta", self.rope_theta, minimum=0.0, min_inclusive=False)
        check_float("norm_eps", self.norm_eps, minimum=0.0)
        check_float("embed_std", self.embed_std, minimum=0.0, min_inclusive=False)
        check_float("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_choice("residual", self.residual, RESIDUALS)
        if self.residual == "parallel" and (not self.prenorm or self.arch == "encoder-decoder"):
            raise ValueError(f"residual='parallel' needs prenorm=True and no cross-attention, "
                             f"got prenorm={self.prenorm}, arch={self.arch!r}")
        rotated = self.resolved_head_dim if self.rotary_dim is None else self.rotary_dim
        if self.positions == "rotary" and rotated > self.resolved_head_dim:
            raise ValueError(f"rotary_dim={rotated} exceeds head_dim={self.resolved_head_dim}")
        if self.positions == "rotary" and rotated % 2:
            what = "head_dim" if self.rotary_dim is None else "rotary_dim"
            raise ValueError(f"positions='rotary' needs an even {what}, got {what}={rotated}")
        scheme_kind = "absolute" if self.positions == "none" else POSITIONS.get(self.positions).kind
        if scheme_kind != "absolute" and not self_attn.dot_product:  # rotary or a score bias
            raise ValueError(
                f"positions={self.positions!r} acts inside dot-product attention; "
                f"attention={self.attention!r} cannot use it (choose sinusoidal or learned)"
            )
        if self.arch != "decoder" and self_attn.always_causal:
            raise ValueError(
                f"attention={self.attention!r} is for decoders (it never looks ahead); an "
                f"{self.arch} needs a mechanism that sees the whole source (e.g. 'multihead')"
            )
        if self.window is not None and not self_attn.window:
            raise ValueError(f"attention={self.attention!r} takes no window, "
                             f"got window={self.window}")
        for role, name, chosen in (("attention", self.attention, self_attn),
                                   ("cross_attention", self.cross_attention, cross_attn)):
            if role == "cross_attention" and self.arch != "encoder-decoder":
                continue
            if (self.num_kv_heads, self.head_dim) != (None, None) and not chosen.grouped:
                raise ValueError(f"{role}={name!r} has no num_kv_heads/head_dim, got "
                                 f"num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}")
            if self.dropout and not chosen.weights:
                raise ValueError(f"{role}={name!r} has no weights to drop: give it "
                                 f"dropout=0, got dropout={self.dropout}")
        if self.arch == "encoder-decoder" and not cross_attn.cross:
            raise ValueError(f"cross_attention={self.cross_attention!r} is self-attention only; "
                             "choose one that can attend to the source (e.g. 'multihead')")

    @property
    def mechanism(self) -> Mechanism:
        """The self-attention's registry entry (its capabilities)."""
        return ATTENTION.get(self.attention)

    @property
    def attention_heads(self) -> int:
        """Query heads the self-attention really has (a mechanism without heads has one)."""
        return self.num_heads if self.mechanism.heads else 1

    @property
    def resolved_head_dim(self) -> int:
        """Head width D (a mechanism without heads attends as one head of width E)."""
        if not self.mechanism.heads:
            return self.embed_dim
        return self.head_dim if self.head_dim is not None else self.embed_dim // self.num_heads

    @property
    def resolved_ffn_dim(self) -> int:
        """Feed-forward hidden width."""
        return self.ffn_dim if self.ffn_dim is not None else 4 * self.embed_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a dict; unknown keys are an error (no silent typos)."""
        check_fields(cls, data)
        return cls(**data)
