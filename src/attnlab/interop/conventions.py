"""PyTorch's mask conventions, converted to attnlab's and back.

attnlab: bool ``True`` = may attend, float = additive bias, batch first.
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` use the opposite bool
polarity (``True`` = ignore): this module is the only place it is converted
(:mod:`.torch_encoder` calls it; so does code that passes torch's masks to a module
:func:`~attnlab.interop.from_torch` made). Hugging Face's
``attention_mask`` (1 = real token) already has attnlab's polarity; the models take
it as it is and only reshape it to a ``(B, 1, 1, S)`` padding mask
(:func:`attnlab.models.stack.padding_bias`, which also checks it).
"""

import torch
from torch import Tensor


def from_torch_key_padding_mask(key_padding_mask: Tensor) -> Tensor:
    """``nn.MultiheadAttention`` ``key_padding_mask`` ``(B, S)`` -> attnlab ``(B, 1, 1, S)``.

    Torch's bool mask is ``True`` = ignore; a float mask is already additive.
    """
    if key_padding_mask.dtype == torch.bool:
        return ~key_padding_mask[:, None, None, :]
    return key_padding_mask[:, None, None, :]


def from_torch_attn_mask(attn_mask: Tensor, num_heads: int | None = None) -> Tensor:
    """``nn.MultiheadAttention`` ``attn_mask`` ``(L, S)`` or ``(B·H, L, S)`` -> attnlab.

    Bool ``True`` = not allowed in torch, so it is inverted; float stays additive.
    A 3-D mask is unflattened to ``(B, H, L, S)`` (``num_heads`` needed).
    """
    mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
    if mask.dim() == 3:
        if num_heads is None:
            raise ValueError("num_heads is needed to unflatten a (B*H, L, S) attn_mask")
        mask = mask.unflatten(0, (-1, num_heads))  # (B, H, L, S)
    return mask


def to_torch_key_padding_mask(mask: Tensor) -> Tensor:
    """Convert attnlab's padding mask ``(B, 1, 1, S)`` -> torch ``key_padding_mask`` ``(B, S)``."""
    return ~mask.reshape(mask.shape[0], mask.shape[-1])
