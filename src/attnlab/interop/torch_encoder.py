"""``torch.nn.TransformerEncoderLayer`` -> an attnlab ``TransformerLayer``, the same function.

Torch's layer is ``x = norm1(x + sa(x)); x = norm2(x + ff(x))`` (``norm_first=False``)
or ``x = x + sa(norm1(x)); x = x + ff(norm2(x))`` (``norm_first=True``), with a
packed ``in_proj_weight``, a possibly sequence-first layout, and masks whose
bool ``True`` means "ignore". :func:`from_torch_encoder_layer` returns a
:class:`TorchEncoderLayer`: torch's call signature around an attnlab
:class:`~attnlab.blocks.layers.TransformerLayer` (``.layer``), with layouts and
masks converted by :mod:`attnlab.interop.conventions`.

Shape letters: B batch, L tokens, E width.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks.layers import TransformerLayer
from ..config import ModelConfig
from ..functional.masks import merge_masks
from ..models.layer import build_layer
from .conventions import from_torch_attn_mask, from_torch_key_padding_mask
from .hf import build_loaded, one_dropout
from .state_dict import split_fused

TABLE = [
    *((f"self_attn.{p}_proj.{t}", f"self_attn.in_proj_{t}:{p}")
      for p in ("q", "k", "v") for t in ("weight", "bias")),
    ("self_attn.out_proj.weight", "self_attn.out_proj.weight"),
    ("self_attn.out_proj.bias", "self_attn.out_proj.bias"),
    ("ffn.up_proj.weight", "linear1.weight"),
    ("ffn.up_proj.bias", "linear1.bias"),
    ("ffn.down_proj.weight", "linear2.weight"),
    ("ffn.down_proj.bias", "linear2.bias"),
    ("self_norm.weight", "norm1.weight"),
    ("self_norm.bias", "norm1.bias"),
    ("ffn_norm.weight", "norm2.weight"),
    ("ffn_norm.bias", "norm2.bias"),
]


class TorchEncoderLayer(nn.Module):
    """An attnlab layer called like ``nn.TransformerEncoderLayer``.

    Args:
        layer: The attnlab layer (batch first, attnlab masks).
        batch_first: Whether ``src`` is ``(B, L, E)`` (else ``(L, B, E)``).

    Shape:
        src ``(B, L, E)`` or ``(L, B, E)`` -> the same shape.
    """

    def __init__(self, layer: TransformerLayer, *, batch_first: bool) -> None:
        super().__init__()
        self.layer = layer
        self.batch_first = batch_first

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """Run the layer with torch's arguments and conventions.

        Args:
            src: The input sequence.
            src_mask: Torch ``attn_mask`` ``(L, L)`` or ``(B·H, L, L)``: bool
                ``True`` = may not attend, or a float bias.
            src_key_padding_mask: ``(B, L)``: bool ``True`` = padding, or a float bias.
            is_causal: Torch's hint that ``src_mask`` is causal (it must then be given).

        Returns:
            The output, in ``src``'s layout.

        Raises:
            ValueError: If ``is_causal`` is set without a ``src_mask``.
        """
        if is_causal and src_mask is None:
            raise ValueError("is_causal=True is a hint about src_mask; pass the mask too")
        x = src if self.batch_first else src.transpose(0, 1)  # (B, L, E)
        heads = self.layer.self_attn.num_heads
        attn = None if src_mask is None else from_torch_attn_mask(src_mask, heads)
        padding = (None if src_key_padding_mask is None
                   else from_torch_key_padding_mask(src_key_padding_mask))  # (B, 1, 1, L)
        out = self.layer(x, mask=merge_masks(attn, padding))  # (B, L, E)
        return out if self.batch_first else out.transpose(0, 1)


def from_torch_encoder_layer(layer: nn.Module) -> TorchEncoderLayer:
    """Build the attnlab layer that computes what ``layer`` computes.

    Post-norm and pre-norm (``norm_first``), ReLU and GELU (exact or tanh),
    with or without biases, batch- or sequence-first are all supported.

    Args:
        layer: A ``torch.nn.TransformerEncoderLayer``.

    Returns:
        A :class:`TorchEncoderLayer` (its ``.layer`` is the attnlab
        :class:`~attnlab.blocks.layers.TransformerLayer`), in ``layer``'s dtype,
        device and train/eval mode.

    Raises:
        TypeError: If ``layer`` is not an ``nn.TransformerEncoderLayer``.
        ValueError: For an activation other than ReLU/GELU, or dropout rates that differ.

    Example:
        >>> import torch
        >>> torch_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
        >>> ours = from_torch_encoder_layer(torch_layer)
        >>> x = torch.randn(2, 5, 8)
        >>> torch.allclose(ours(x), torch_layer(x), atol=1e-5)
        True
    """
    if not isinstance(layer, nn.TransformerEncoderLayer):
        raise TypeError(f"layer must be a torch.nn.TransformerEncoderLayer, "
                        f"got {type(layer).__name__}")
    attn = layer.self_attn
    rates = {"self_attn.dropout": attn.dropout, "dropout": layer.dropout.p,
             "dropout1": layer.dropout1.p, "dropout2": layer.dropout2.p}
    one_dropout(rates, *rates)  # attnlab layers have one rate: refuse rates that differ
    config = ModelConfig(
        arch="encoder", vocab_size=1, embed_dim=attn.embed_dim, num_layers=1,
        num_heads=attn.num_heads, ffn_dim=layer.linear1.out_features, positions="none",
        norm="layernorm", norm_eps=layer.norm1.eps, prenorm=layer.norm_first, ffn="mlp",
        activation=_activation(layer.activation), bias=layer.linear1.bias is not None,
        dropout=attn.dropout,
    )
    source = dict(layer.state_dict())
    for norm in ("norm1", "norm2"):  # torch's bias=False also drops the norms' biases
        source.setdefault(f"{norm}.bias", torch.zeros_like(source[f"{norm}.weight"]))
    table = TABLE
    if config.bias:
        source = split_fused(source, "self_attn.in_proj_bias", ("q", "k", "v"))
    else:
        table = [(t, s) for t, s in TABLE if not (t.endswith(".bias") and "norm" not in t)]
    source = split_fused(source, "self_attn.in_proj_weight", ("q", "k", "v"))
    ours = build_loaded(partial(build_layer, causal=False), config, layer, source, table)
    wrapper = TorchEncoderLayer(ours, batch_first=layer.self_attn.batch_first)
    return wrapper.train(layer.training)


def _activation(fn: object) -> str:
    """Name torch's activation (a function or module) in attnlab's terms."""
    if fn is F.relu or isinstance(fn, nn.ReLU):
        return "relu"
    if fn is F.gelu or (isinstance(fn, nn.GELU) and fn.approximate == "none"):
        return "gelu"
    if isinstance(fn, nn.GELU) and fn.approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"activation {fn!r} is not supported; use relu, gelu or "
                     "nn.GELU(approximate='tanh')")

