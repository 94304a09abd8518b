"""The one registry helper: things by name (losses, noise models, detectors, backbones).

A :class:`Registry` maps names to objects (usually factories). Register with the decorator
``@REG.register("name")`` or the call ``REG.add("name", obj)``; list with
:meth:`Registry.names`; look up with :meth:`Registry.get`, which raises
:class:`~noisybox.errors.NoisyboxError` (a ``ValueError``) listing the valid names. A room
keeps its public functions (``register_loss``, ``list_losses``, ``get_loss``, ...) as thin
wrappers over its registry, so adding a variant is one decorated function.

>>> shapes = Registry("shape")
>>> @shapes.register("square")
... def _square(side):
...     return side * side
>>> shapes.names(), shapes.get("square")(3)
(['square'], 9)
>>> shapes.get("circle")
Traceback (most recent call last):
...
noisybox.errors.NoisyboxError: Expected a shape in ['square'] but got 'circle'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from noisybox.errors import NoisyboxError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of one kind by name.

    Args:
        kind: what one entry is, as the error messages say it (``"loss name"`` gives
            "Expected a loss name in [...] but got 'x'").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, obj: T, *, override: bool = False) -> T:
        """Register ``obj`` as ``name`` and return it.

        Args:
            name: the registry key.
            obj: the entry (any value, ``None`` included).
            override: replace an existing entry instead of raising.

        Raises:
            NoisyboxError: ``name`` is taken and ``override`` is false.
        """
        if name in self._entries and not override:
            raise NoisyboxError(f"Expected a new {self.kind} but got {name!r}, already registered")
        self._entries[name] = obj
        return obj

    def register(self, name: str, *, override: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register("name")`` over a function or class."""

        def decorator(obj: T) -> T:
            return self.add(name, obj, override=override)

        return decorator

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            NoisyboxError: unknown ``name``; the message lists the valid ones.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise NoisyboxError(
                f"Expected a {self.kind} in {self.names()} but got {name!r}"
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
