"""Shared helpers of the interop tests: the error measure and a padded batch."""

import torch


def rel_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """``max |ours - ref| / max |ref|``: stricter than the norm ratio, one bad entry shows."""
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 11) ids below 99; row 1 is right-padded after 6 real tokens (mask 0)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 99, (2, 11), generator=g)
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 6:] = 0
    return ids, mask
