"""Admission control: hierarchical token buckets over the datapath's ports (spec 1.7; the original's `HTB`,
`TokenBucket`, `docs/fast-path.md`).

Role: a flood of new flows from one port must not starve the others. Every upcall takes a token from its
datapath port's bucket before anything else is done with it (before parsing: a rejected upcall costs a dict
lookup and a comparison); an upcall finding no token is dropped and counted against its port.

    root pool           capacity `global_burst` (256)  refilled at `rate` tokens a second by the injected clock
    ├── tunnel class    50 % of what the root hands out: the VXLAN overlay port, bucket `tunnel_burst` (128)
    └── VM class        the other 50 %, shared fairly: one bucket per VM port, `vm_burst` (32) each

Tokens flow down only when a bucket that is asked runs dry (as the original: `tryGet` on an empty leaf fills
the hierarchy, then retries): the time since the last refill becomes tokens in the root pool (capped at its
capacity), and the pool is *water-filled* into the buckets: first between the two classes by their shares,
then equally between the buckets of a class, each bucket capped at its capacity; what a full bucket or an
absent class cannot take goes to the others (the scheme is work-conserving: an idle tunnel leaves its half
to the VM ports, an idle VM its part to the busy ones), and what nobody can take stays in the root pool.

Invariants (tested, `tests/unit/agent/test_admission.py`, with hypothesis):
* no tokens are made out of nothing: admitted <= the initial buckets + pool + `rate` x elapsed time;
* a VM port sending no more than its fair share (`rate` / 2 / number of VM ports, and at most its burst per
  refill) loses nothing, whatever the others send;
* a flooding tunnel port gets at least half of `rate` while VM ports flood too.

A bucket is made full the first time its port upcalls (the port kind is the caller's: the VXLAN overlay port
is the tunnel class, any other port a VM); `retain` forgets the ports that are gone (the agent's tick).

Threads: upcalls may arrive on several threads; one small lock guards the buckets (never the agent's lock).

May import: `midonet.state.clock`.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from midonet.state.clock import Clock

_EPSILON = 1e-9
_ONE = 1.0 - 1e-6      # a token, give or take the rounding of a float clock (1000.05 - 1000.0 < 0.05)


class BucketKind(enum.StrEnum):
    TUNNEL = "tunnel"
    VM = "vm"


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """The buckets' sizes (packets; the original's `datapath.*_burst_capacity` defaults) and the refill rate."""

    rate: float = 5000.0          # upcalls per second admitted in total once the bursts are spent
    global_burst: int = 256
    tunnel_burst: int = 128
    vm_burst: int = 32
    tunnel_share: float = 0.5     # of what the root hands out, when VM ports want tokens too

    def __post_init__(self) -> None:
        if self.rate <= 0 or min(self.global_burst, self.tunnel_burst, self.vm_burst) < 1:
            raise ValueError("admission: the rate and every burst must be positive")
        if not 0.0 < self.tunnel_share < 1.0:
            raise ValueError("admission: tunnel_share must be between 0 and 1")


DEFAULT_ADMISSION = AdmissionConfig()


@dataclass(frozen=True, slots=True)
class PortAdmission:
    """One port's bucket: what it admitted and dropped, and the tokens it holds now."""

    port: int
    kind: BucketKind
    admitted: int
    dropped: int
    tokens: float


@dataclass(frozen=True, slots=True)
class AdmissionStatistics:
    """`AdmissionControl.statistics()`: totals (ports forgotten included) and the current buckets."""

    admitted: int = 0
    dropped: int = 0
    pool: float = 0.0
    ports: tuple[PortAdmission, ...] = ()

    def port(self, number: int) -> PortAdmission | None:
        return next((p for p in self.ports if p.port == number), None)


class _Bucket:
    __slots__ = ("admitted", "capacity", "dropped", "kind", "tokens")

    def __init__(self, kind: BucketKind, capacity: int) -> None:
        self.kind = kind
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.admitted = 0
        self.dropped = 0


def water_fill(amount: float, rooms: list[float], weights: list[float]) -> list[float]:
    """Share `amount` between claimants with `rooms` (how much each can still take) in proportion to `weights`;
    what a full claimant cannot take is shared again between the others. Returns what each gets (their sum is
    at most `amount`)."""
    given = [0.0] * len(rooms)
    active = [i for i, room in enumerate(rooms) if room > _EPSILON and weights[i] > 0]
    while amount > _EPSILON and active:
        total_weight = sum(weights[i] for i in active)
        spent = 0.0
        hungry = []
        for i in active:
            share = amount * weights[i] / total_weight
            left = rooms[i] - given[i]
            if share >= left:
                given[i] += left
                spent += left
            else:
                given[i] += share
                spent += share
                hungry.append(i)
        amount -= spent
        if len(hungry) == len(active):     # nobody was capped: everything was handed out
            break
        active = hungry
    return given


class AdmissionControl:
    """See the module docstring."""

    def __init__(self, clock: Clock, config: AdmissionConfig | None = None) -> None:
        self.config = config or AdmissionConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, _Bucket] = {}
        self._pool = float(self.config.global_burst)
        self._last = clock.now()
        self._admitted = 0
        self._dropped = 0

    def admit(self, port: int, tunnel: bool = False) -> bool:
        """Take a token for an upcall from `port` (the tunnel class if `tunnel`); False: drop the upcall."""
        with self._lock:
            bucket = self._buckets.get(port)
            if bucket is None:
                bucket = self._add(port, BucketKind.TUNNEL if tunnel else BucketKind.VM)
            if bucket.tokens < _ONE:
                self._refill()
                if bucket.tokens < _ONE:
                    bucket.dropped += 1
                    self._dropped += 1
                    return False
            bucket.tokens -= 1.0
            bucket.admitted += 1
            self._admitted += 1
            return True

    def retain(self, ports: set[int]) -> None:
        """Forget the buckets of ports not in `ports` (gone from the datapath)."""
        with self._lock:
            for number in [n for n in self._buckets if n not in ports]:
                del self._buckets[number]

    def statistics(self) -> AdmissionStatistics:
        with self._lock:
            ports = tuple(PortAdmission(n, b.kind, b.admitted, b.dropped, b.tokens)
                          for n, b in sorted(self._buckets.items()))
            return AdmissionStatistics(self._admitted, self._dropped, self._pool, ports)

    # ---- the hierarchy (under the lock) ----

    def _add(self, port: int, kind: BucketKind) -> _Bucket:
        capacity = self.config.tunnel_burst if kind is BucketKind.TUNNEL else self.config.vm_burst
        bucket = self._buckets[port] = _Bucket(kind, capacity)
        return bucket

    def _refill(self) -> None:
        """Turn the time elapsed into tokens in the root pool, then water-fill the pool into the buckets."""
        now = self._clock.now()
        elapsed = now - self._last
        if elapsed > 0:
            self._last = now
            self._pool = min(float(self.config.global_burst), self._pool + elapsed * self.config.rate)
        if self._pool < _ONE:
            return
        classes = ([b for b in self._buckets.values() if b.kind is BucketKind.TUNNEL],
                   [b for b in self._buckets.values() if b.kind is BucketKind.VM])
        share = self.config.tunnel_share
        rooms = [sum(b.capacity - b.tokens for b in members) for members in classes]
        for members, amount in zip(classes, water_fill(self._pool, rooms, [share, 1.0 - share]), strict=True):
            if amount <= _EPSILON:
                continue
            given = water_fill(amount, [b.capacity - b.tokens for b in members], [1.0] * len(members))
            for bucket, tokens in zip(members, given, strict=True):
                bucket.tokens = min(bucket.capacity, bucket.tokens + tokens)
                self._pool -= tokens
        self._pool = max(0.0, self._pool)


__all__ = ["DEFAULT_ADMISSION", "AdmissionConfig", "AdmissionControl", "AdmissionStatistics", "BucketKind",
           "PortAdmission", "water_fill"]
