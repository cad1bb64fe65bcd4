"""String-keyed registries: one per extension point.

A new attention mechanism, positional scheme, norm, feed-forward, task or
model preset is one file plus one ``register`` line. ``attnlab models`` prints
every registry, and an unknown name lists the valid ones.

Example:
    >>> from attnlab.registry import Registry
    >>> colours = Registry("colour")
    >>> @colours.register("red", help="the warm one")
    ... def red():
    ...     return "#f00"
    >>> colours.get("red")()
    '#f00'
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    ValueError: unknown colour 'blue'; choose from: red
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with its name and one-line description."""

    name: str
    obj: T
    help: str


class Registry(Generic[T]):
    """A named collection of interchangeable components.

    Args:
        kind: What the entries are ("attention mechanism", "task", ...); used in
            error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T | None = None, *, help: str = "") -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        Raises:
            ValueError: If ``name`` is already registered.
        """

        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            doc = help or _first_line(getattr(item, "__doc__", None))
            self._entries[name] = Entry(name, item, doc)
            return item

        if obj is not None:
            return add(obj)
        return add

    def get(self, name: str) -> T:
        """Return the object registered as ``name``.

        Raises:
            ValueError: If ``name`` is unknown; the message lists the valid names.
        """
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}"
            )
        return self._entries[name].obj

    def names(self) -> list[str]:
        """All registered names, in registration order."""
        return list(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        """Iterate over the entries in registration order."""
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


ATTENTION: Registry[Callable[..., Any]] = Registry("attention mechanism")
POSITIONS: Registry[Callable[..., Any]] = Registry("positional scheme")
NORMS: Registry[Callable[..., Any]] = Registry("norm")
FFNS: Registry[Callable[..., Any]] = Registry("feed-forward")
TASKS: Registry[Callable[..., Any]] = Registry("task")
PRESETS: Registry[Any] = Registry("model preset")
