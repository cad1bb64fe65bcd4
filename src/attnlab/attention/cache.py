"""A preallocated key/value cache for incremental decoding.

While generating, each new token's keys and values are appended instead of
recomputing the whole prefix: a decode step then costs ``O(current length)``.
Storage is allocated once (``max_len`` positions, or grown by doubling when
``max_len`` is None), so appending never copies the prefix. It takes the dtype
and device of the first keys and values it is given; an empty cache (new, or
after :meth:`KVCache.reset`) takes whatever batch size, heads, width, dtype and
device come next.

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
        """Append ``(B, G, L, D)`` keys and ``(B, G, L, Dv)`` values; return all so far.

        Returns:
            keys ``(B, G, S, D)`` and values ``(B, G, S, Dv)``, S = cached + L.

        Raises:
            TypeError: If ``k``/``v`` are not floating tensors of one dtype, or their
                dtype differs from what the cache holds (it never casts silently).
            ValueError: If the cache would pass ``max_len``, ``k`` and ``v`` disagree
                on ``(B, G, L)`` or device, or B, G, D, Dv or the device change while
                the cache holds positions (``reset()`` first).
        """
        _check_pair(k, v)
        new = k.shape[-2]
        if self._k is None or self._v is None or (self.length == 0 and not self._fits(k, v)):
            capacity = self.max_len if self.max_len is not None else max(16, 2 * new)
            self._k = k.new_empty(*k.shape[:-2], capacity, k.shape[-1])
            self._v = v.new_empty(*v.shape[:-2], capacity, v.shape[-1])
        elif not self._fits(k, v):
            held, got = self._k, k
            if (held.dtype, self._v.dtype) != (k.dtype, v.dtype):
                raise TypeError(f"the cache holds keys/values of dtype {held.dtype}/"
                                f"{self._v.dtype}, got {k.dtype}/{v.dtype}; it does not cast: "
                                "reset() it or cast the inputs")
            if held.device != k.device:
                raise ValueError(f"the cache is on {held.device}, got keys on {k.device}")
            raise ValueError(
                f"cache holds keys of shape (B, G, *, D) = {tuple(held.shape[:-2])} x "
                f"{held.shape[-1]} and values of width {self._v.shape[-1]}, got "
                f"{tuple(got.shape)} keys and {tuple(v.shape)} values; reset() it to start over"
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

    def append_unchecked(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`update` without its checks, for the lean decode step.

        Writes ``(B, G, L, D)`` keys and values in place into the preallocated
        storage and returns views of everything cached. Only for a cache that
        :meth:`update` has filled already (the validated prefill) with room for
        ``L`` more positions, and inputs of the same batch, heads, widths, dtype
        and device: nothing is checked.
        """
        assert self._k is not None
        assert self._v is not None
        end = self.length + k.shape[-2]
        self._k[..., self.length:end, :] = k
        self._v[..., self.length:end, :] = v
        self.length = end
        return self._k[..., :end, :], self._v[..., :end, :]

    def storage(self) -> tuple[Tensor, Tensor]:
        """The whole preallocated ``(B, G, capacity, D)`` key and value buffers, in place.

        For the compiled decode step, which writes position ``length`` itself
        (``index_copy_``) and then advances ``length``; positions from ``length``
        on hold nothing meaningful.
        """
        if self._k is None or self._v is None:
            raise ValueError("the cache is empty")
        return self._k, self._v

    def _fits(self, k: Tensor, v: Tensor) -> bool:
        """Whether ``k``/``v`` can be appended to the storage as it is."""
        assert self._k is not None
        assert self._v is not None
        return (k.shape[:-2] == self._k.shape[:-2] and k.shape[-1] == self._k.shape[-1]
                and v.shape[-1] == self._v.shape[-1] and k.dtype == self._k.dtype
                and v.dtype == self._v.dtype and k.device == self._k.device)

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
        """Forget everything (storage is kept for reuse by inputs of the same shape)."""
        self.length = 0

    def reorder(self, index: Tensor) -> None:
        """Select batch rows (e.g. for beam search): ``index`` is ``(B',)`` long."""
        if self._k is not None and self._v is not None:
            self._k, self._v = self._k[index], self._v[index]


def _check_pair(k: object, v: object) -> None:
    """Check keys ``(B, G, L, D)`` and values ``(B, G, L, Dv)`` belong together."""
    for name, x in (("k", k), ("v", v)):
        if not isinstance(x, Tensor) or not x.is_floating_point():
            got = f"{x.dtype} tensor" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"KVCache.update: {name} must be a floating tensor, got {got}")
        if x.dim() != 4:
            raise ValueError(f"KVCache.update: {name} must have shape (B, G, L, D), got "
                             f"{tuple(x.shape)}")
    assert isinstance(k, Tensor)
    assert isinstance(v, Tensor)
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"KVCache.update: keys and values must agree on (B, G, L), got "
                         f"k {tuple(k.shape)} and v {tuple(v.shape)}")
    if k.dtype != v.dtype:
        raise TypeError(f"KVCache.update: k and v must share a dtype, got {k.dtype} and {v.dtype}")
    if k.device != v.device or k.device.type == "meta":
        raise ValueError(f"KVCache.update: k and v must be on one device that holds data, got "
                         f"{k.device} and {v.device}")


def _grow(x: Tensor, needed: int) -> Tensor:
    capacity = max(needed, 2 * x.shape[-2])
    bigger = x.new_empty(*x.shape[:-2], capacity, x.shape[-1])
    bigger[..., : x.shape[-2], :] = x
    return bigger
