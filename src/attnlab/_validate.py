"""The argument checks every part of the library shares.

Bools, ints and floats with bounds, choices, divisibility, dataclass fields,
tensors, devices, widths and broadcasting are checked here, so the same mistake
gets the same words everywhere: the argument's name, what was expected, and what
was got, as a ``ValueError`` or ``TypeError`` raised before any work is done.
Checks that need one part's knowledge (a mask's shape in
:mod:`attnlab.functional.masks`, a module's inputs in :mod:`attnlab.attention.base`,
token ids in :mod:`attnlab.models.stack`, a layer or head in
:mod:`attnlab.visualize.inputs`, a task's arguments in :mod:`attnlab.tasks.base`)
live with that part, use these where they fit, and keep the same form.
"""

from collections.abc import Sequence
from dataclasses import fields

from torch import Tensor


def check_bool(name: str, value: object) -> bool:
    """Check that ``value`` is a bool, not something with a truth value.

    ``"False"``, ``"no"``, ``0`` and ``None`` are refused rather than guessed:
    ``bool("False")`` is True.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Check that ``value`` is an int (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
    min_inclusive: bool = True, max_inclusive: bool = True,
) -> float:
    """Check that ``value`` is a real number inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if value != value:
        raise ValueError(f"{name} must not be NaN")
    if minimum is not None and (value < minimum or (not min_inclusive and value == minimum)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (not max_inclusive and value == maximum)):
        op = "<=" if max_inclusive else "<"
        raise ValueError(f"{name} must be {op} {maximum}, got {value}")
    return value


def check_divisible(name: str, value: int, divisor_name: str, divisor: int) -> None:
    """Check that ``divisor`` divides ``value``."""
    if value % divisor != 0:
        raise ValueError(
            f"{name} ({value}) must be divisible by {divisor_name} ({divisor})"
        )


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_fields(cls: type, data: dict[str, object]) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls`` (no silent typos)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")


def check_tensor(name: str, x: object, *, min_ndim: int = 0, floating: bool = True) -> Tensor:
    """Check that ``x`` is a tensor with at least ``min_ndim`` dims (floating if asked)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dims, got shape {tuple(x.shape)}"
        )
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    return x


def check_device(name: str, x: Tensor, device: object = None, other: str = "") -> None:
    """Check that ``x`` holds data (not the ``meta`` device) and is on ``device`` if given.

    ``other`` names what is on ``device`` (e.g. ``"query"``), for the message. Comparing devices
    is a Python attribute check: no data is touched, nothing is synchronised.
    """
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the meta device (a shape without data); attention "
                         "needs tensors that hold values")
    if device is not None and x.device != device:
        raise ValueError(f"{name} is on {x.device}, but {other or 'the other inputs'} on "
                         f"{device}; move them to one device")


def check_last_dim(name: str, x: Tensor, expected: int, what: str = "") -> None:
    """Check the size of the last dimension of ``x``."""
    if x.shape[-1] != expected:
        extra = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must have last dimension {expected}{extra}, got shape {tuple(x.shape)}"
        )


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape ``shapes`` broadcast to (NumPy rules), like ``torch.broadcast_shapes``.

    Plain Python: ``torch.broadcast_shapes`` imports sympy the first time it runs
    (0.3–2.6 s measured here), which a user's first masked attention call would pay.

    Raises:
        ValueError: If the shapes do not broadcast.

    Example:
        >>> broadcast_shape((2, 1, 5), (3, 1), ())
        (2, 3, 5)
    """
    out = [1] * max((len(shape) for shape in shapes), default=0)
    for shape in shapes:
        for i, n in enumerate(shape, start=len(out) - len(shape)):
            if n != 1:
                if out[i] not in (1, n):
                    raise ValueError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} "
                                     "do not broadcast")
                out[i] = n
    return tuple(out)


def check_broadcastable(name: str, shape: Sequence[int], target: Sequence[int]) -> None:
    """Check that ``shape`` broadcasts to ``target`` (without changing ``target``)."""
    try:
        out = broadcast_shape(shape, target)
    except ValueError:
        out = None
    if out is None or tuple(out) != tuple(target):
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to {tuple(target)}"
        )
