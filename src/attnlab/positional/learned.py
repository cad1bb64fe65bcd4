"""Learned absolute positions (GPT-2 ``wpe``, BERT ``position_embeddings``).

Shape letters: B batch, L positions (sequence length), E model dimension.
"""

from torch import Tensor, nn

from attnlab._validate import check_last_dim, check_tensor
from attnlab.positional.absolute import AbsolutePositions


class LearnedPositions(AbsolutePositions):
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

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__(max_len, embed_dim)
        self.embedding = nn.Embedding(max_len, embed_dim)  # weight: (max_len, E)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the position vectors from N(0, 0.02^2)."""
        nn.init.normal_(self.embedding.weight, mean=0.0, std=0.02)

    def forward(self, x: Tensor, offset: int = 0, positions: Tensor | None = None) -> Tensor:
        """Return ``x + W[offset : offset + L]`` (or ``x + W[positions]``).

        Args:
            x: Input of shape ``(B, L, E)``.
            offset: Absolute position of the first row of ``x`` (e.g. the cache length).
            positions: ``(B, L)`` integer positions per token instead of ``offset``.

        Returns:
            Tensor of the same shape as ``x``.

        Raises:
            TypeError: If ``x`` is not a floating tensor or ``offset`` is not an int.
            ValueError: If the last dim of ``x`` is not ``embed_dim``, ``offset`` < 0, or
                ``offset + L > max_len``.
        """
        if positions is None:
            return super().forward(x, offset)
        check_tensor("x", x, min_ndim=2)
        check_last_dim("x", x, self.embed_dim, "embed_dim")
        if positions.shape != x.shape[:-1] or positions.is_floating_point():
            raise ValueError(f"positions must be integers of shape {tuple(x.shape[:-1])}, "
                             f"got {positions.dtype} {tuple(positions.shape)}")
        if positions.numel() and int(positions.max()) >= self.max_len:
            raise ValueError(f"positions reach {int(positions.max())}, beyond the "
                             f"table's max_len={self.max_len}")
        return x + self.embedding(positions)  # (B, L, E)

    def rows(self, offset: int, length: int, like: Tensor) -> Tensor:  # noqa: ARG002
        """``W[offset : offset + L]``, ``(L, E)``."""
        return self.embedding.weight[offset : offset + length]


class RealTokenPositions(LearnedPositions):
    r"""Learned positions numbered over the real tokens of each row: OPT's positions.

    With a padding mask, token ``t`` of a row gets position
    :math:`\sum_{u \le t} \mathrm{mask}_u - 1`: a left-padded row starts at 0 at
    its first real token, as if it were not padded (padding tokens get 0; their
    outputs are not used). Without a mask this is :class:`LearnedPositions`.
    The model passes the mask (``Embeddings`` does, for schemes with
    ``counts_real_tokens``).

    Reference: Zhang et al., "OPT: Open Pre-trained Transformer Language Models", 2022
    (Hugging Face's ``OPTLearnedPositionalEmbedding``).

    Example:
        >>> import torch
        >>> RealTokenPositions.from_mask(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]])).tolist()
        [[0, 0, 0, 1], [0, 1, 2, 0]]
    """

    counts_real_tokens = True

    @staticmethod
    def from_mask(attention_mask: Tensor, offset: int = 0) -> Tensor:
        """``(B, S)`` 0/1 mask -> positions ``(B, S - offset)`` of the tokens after ``offset``."""
        mask = attention_mask.long()
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0) * mask  # (B, S)
        return positions[:, offset:]
