"""Learned absolute positions (GPT-2 ``wpe``, BERT ``position_embeddings``).

Shape letters: B batch, L positions (sequence length), E model dimension.
"""

from torch import Tensor, nn

from attnlab._validate import check_int, check_last_dim, check_tensor
from attnlab.positional.sinusoidal import check_window


class LearnedPositions(nn.Module):
    r"""Add a trainable vector per absolute position: :math:`y_{pos} = x_{pos} + W_{pos}`.

    The table lives in ``self.embedding`` (an ``nn.Embedding(max_len, embed_dim)``), so
    GPT-2's ``transformer.wpe.weight`` and BERT's
    ``embeddings.position_embeddings.weight`` load into ``embedding.weight`` unchanged.
    Initialised from N(0, 0.02^2), as GPT-2 and BERT do.

    Reference: Gehring et al., "Convolutional Sequence to Sequence Learning", 2017;
    Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019.

    Args:
        max_len: Number of positions with a learned vector.
        embed_dim: Model dimension E.

    Shape:
        - x: ``(B, L, E)`` (any leading dims).
        - output: same as ``x``.

    Raises:
        TypeError: If ``max_len`` or ``embed_dim`` is not an int.
        ValueError: If ``max_len`` or ``embed_dim`` is < 1.

    Example:
        >>> import torch
        >>> pos = LearnedPositions(max_len=16, embed_dim=6)
        >>> pos(torch.zeros(2, 5, 6), offset=3).shape
        torch.Size([2, 5, 6])
    """

    kind = "absolute"

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__()
        self.max_len = check_int("max_len", max_len, minimum=1)
        self.embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        self.embedding = nn.Embedding(max_len, embed_dim)  # weight: (max_len, E)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the position vectors from N(0, 0.02^2)."""
        nn.init.normal_(self.embedding.weight, mean=0.0, std=0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Return ``x + W[offset : offset + L]``.

        Args:
            x: Input of shape ``(B, L, E)``.
            offset: Absolute position of the first row of ``x`` (e.g. the cache length).

        Returns:
            Tensor of the same shape as ``x``.

        Raises:
            TypeError: If ``x`` is not a floating tensor or ``offset`` is not an int.
            ValueError: If the last dim of ``x`` is not ``embed_dim``, ``offset`` < 0, or
                ``offset + L > max_len``.
        """
        check_tensor("x", x, min_ndim=2)
        check_last_dim("x", x, self.embed_dim, "embed_dim")
        length = x.shape[-2]
        check_window(offset, length, self.max_len)
        return x + self.embedding.weight[offset : offset + length]  # (B, L, E)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"max_len={self.max_len}, embed_dim={self.embed_dim}"
