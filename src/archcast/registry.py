"""A tiny registry: exact-name lookups that list the valid names when they fail."""

from __future__ import annotations

import contextlib
from typing import Callable, Generic, Iterator, TypeVar

from archcast.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps exact names to objects (classes, factories, specs).

    >>> r = Registry("tokenizer"); _ = r.register("a")(int); r.get("a")
    <class 'int'>
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def deco(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = o
            return o

        return deco(obj) if obj is not None else deco

    @contextlib.contextmanager
    def temporary(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` as ``name`` for the duration of a ``with`` block (tests, plug-ins tried
        out); the name must be free, and is free again afterwards.

        >>> r = Registry("tokenizer")
        >>> with r.temporary("tmp", int):
        ...     "tmp" in r
        True
        >>> "tmp" in r
        False
        """
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        try:
            yield obj
        finally:
            self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._items)) or '(none)'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
