"""A preallocated key/value cache for incremental decoding.

While generating, each new token's keys and values are appended instead of
recomputing the whole prefix: a decode step then costs ``O(current length)``.
Storage is allocated once (``max_len`` positions, or grown by doubling when
``max_len`` is None), so appending never copies the prefix.

Shape letters: B batch, G key/value heads, S cached positions, D head width.
"""

from torch import Tensor

from .._validate import check_int


class KVCache:
    """Keys and values of one attention layer, appended step by step.

    Args:
        max_len: Positions to preallocate; ``None`` grows as needed.

    Example:
        >>> import torch
        >>> cache = KVCache(max_len=8)
        >>> k, v = cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
        >>> k.shape, len(cache)
        (torch.Size([1, 2, 3, 4]), 3)
    """

    def __init__(self, max_len: int | None = None) -> None:
        self.max_len = None if max_len is None else check_int("max_len", max_len, minimum=1)
        self._k: Tensor | None = None  # (B, G, capacity, D)
        self._v: Tensor | None = None  # (B, G, capacity, Dv)
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``(B, G, L, D)`` keys and values; return all ``(B, G, S, D)`` so far.

        Raises:
            ValueError: If the cache would pass ``max_len`` or the shapes change.
        """
        new = k.shape[-2]
        if self._k is None or self._v is None:
            capacity = self.max_len if self.max_len is not None else max(16, 2 * new)
            self._k = k.new_empty(*k.shape[:-2], capacity, k.shape[-1])
            self._v = v.new_empty(*v.shape[:-2], capacity, v.shape[-1])
        elif k.shape[:-2] != self._k.shape[:-2] or k.shape[-1] != self._k.shape[-1]:
            raise ValueError(
                f"cache holds keys of shape (B, G, *, D) = {tuple(self._k.shape[:-2])} x "
                f"{self._k.shape[-1]}, got {tuple(k.shape)}"
            )
        end = self.length + new
        if end > self._k.shape[-2]:
            if self.max_len is not None:
                raise ValueError(
                    f"cache max_len ({self.max_len}) exceeded: {self.length} cached + {new} new"
                )
            self._k, self._v = _grow(self._k, end), _grow(self._v, end)
        self._k[..., self.length:end, :] = k
        self._v[..., self.length:end, :] = v
        self.length = end
        return self._k[..., :end, :], self._v[..., :end, :]

    def get(self) -> tuple[Tensor, Tensor]:
        """The cached ``(B, G, S, D)`` keys and values."""
        if self._k is None or self._v is None:
            raise ValueError("the cache is empty")
        return self._k[..., : self.length, :], self._v[..., : self.length, :]

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on."""
        check_int("length", length, minimum=0)
        self.length = min(self.length, length)

    def reset(self) -> None:
        """Forget everything (storage is kept for reuse)."""
        self.length = 0

    def reorder(self, index: Tensor) -> None:
        """Select batch rows (e.g. for beam search): ``index`` is ``(B',)`` long."""
        if self._k is not None and self._v is not None:
            self._k, self._v = self._k[index], self._v[index]


def _grow(x: Tensor, needed: int) -> Tensor:
    capacity = max(needed, 2 * x.shape[-2])
    bigger = x.new_empty(*x.shape[:-2], capacity, x.shape[-1])
    bigger[..., : x.shape[-2], :] = x
    return bigger
