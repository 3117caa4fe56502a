"""A bounded memo for objects many flows share: one object for equal values (fewer objects kept per flow for the
garbage collector to walk, and work done once per distinct value). Emptied when full.

    ACTIONS = Memo[tuple[Action, ...], tuple[Action, ...]]()
    actions = ACTIONS(actions, same)                 # interned
    set_fields = SET_FIELDS(changes, SetFields)      # made (and checked) once per distinct changes

May import: nothing of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

SIZE = 1 << 12


class Memo(Generic[K, V]):
    """`memo(key, make)`: what `make(key)` gave for an equal key before, else `make(key)`, remembered."""

    __slots__ = ("_found", "_size")

    def __init__(self, size: int = SIZE) -> None:
        self._found: dict[K, V] = {}
        self._size = size

    def __call__(self, key: K, make: Callable[[K], V]) -> V:
        found = self._found.get(key)
        if found is None:
            if len(self._found) >= self._size:
                self._found.clear()
            found = self._found[key] = make(key)
        return found


def same(value: T) -> T:
    """The value itself: a `Memo` with `same` interns."""
    return value
