"""The random numbers a simulation draws, injected like the clock (STYLE habit 5).

Role: dynamic DNAT picks a random target address and port, the load balancer a weighted-random pool member (spec
3.7, 3.8). The simulation never imports `random`: it asks the `RandomSource` in its `StateTables`. Tests and
benchmarks hand a seeded `random.Random`, which satisfies the protocol as it is; the agent hands an unseeded one.
`SeededRandom` is the default of `tables.in_memory`: a small SplitMix64 generator, so that this package needs no
`random` import and a default-built table bundle is deterministic.

May import: nothing of ours.
"""

from __future__ import annotations

from typing import Protocol

_MASK64 = (1 << 64) - 1


class RandomSource(Protocol):
    def randrange(self, start: int, stop: int) -> int:
        """A uniformly drawn integer in [start, stop) (stop > start)."""
        ...


class SeededRandom:
    """SplitMix64 (Steele, Lea, Flood 2014): deterministic for a seed, uniform enough for choosing backends."""

    __slots__ = ("_state",)

    def __init__(self, seed: int = 0) -> None:
        self._state = seed & _MASK64

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def randrange(self, start: int, stop: int) -> int:
        span = stop - start
        if span <= 0:
            raise ValueError(f"empty range [{start}, {stop})")
        return start + self._next() % span
