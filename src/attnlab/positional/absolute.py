"""What the absolute schemes share: a table of one vector per position, added to ``x``.

Shape letters: B batch, L positions (sequence length), E model dimension.
"""

from torch import Tensor, nn

from attnlab._validate import check_int, check_last_dim, check_tensor


def check_positions_fit(offset: object, length: int, max_len: int) -> int:
    """Check that positions ``offset .. offset + length - 1`` fit in a ``max_len`` table."""
    check_int("offset", offset, minimum=0)
    if offset + length > max_len:
        raise ValueError(
            f"offset ({offset}) + sequence length L ({length}) = {offset + length} "
            f"exceeds max_len ({max_len})"
        )
    return offset


class AbsolutePositions(nn.Module):
    """``x + table[offset : offset + L]``: the checks and the sum; a subclass holds the table.

    A subclass defines :meth:`rows`. ``kind = "absolute"`` tells a model to add it to
    the token embeddings.

    Args:
        max_len: Number of positions the table covers.
        embed_dim: Model dimension E.
    """

    kind = "absolute"

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__()
        self.max_len = check_int("max_len", max_len, minimum=1)
        self.embed_dim = check_int("embed_dim", embed_dim, minimum=1)

    def rows(self, offset: int, length: int, like: Tensor) -> Tensor:
        """Rows ``offset .. offset + length - 1`` of the table, ``(L, E)``, to add to ``like``."""
        raise NotImplementedError

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Return ``x`` plus the table's rows ``offset .. offset + L - 1``.

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
        check_positions_fit(offset, length, self.max_len)
        return x + self.rows(offset, length, x)  # (B, L, E)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"max_len={self.max_len}, embed_dim={self.embed_dim}"
