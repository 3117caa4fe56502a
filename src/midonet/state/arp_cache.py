"""A router's ARP table: IPv4 -> MAC of its neighbours, with stale and expiry times (spec 3.4, `arptable`).

Role: where a router finds the MAC of a next hop. The simulation reads it (`lookup`); on a miss it emits an ARP
request and answers "not yet"; on a *stale* hit it uses the MAC and also emits an ARP request to refresh it. It
never writes: it reports `ArpLearned` (from an ARP request to a port address, a reply, or a gratuitous ARP) and
the caller applies it.

Timings (the original's `agent.conf arptable`): an entry is stale 60 s after it was learned and expires at 90 s;
`expire()` removes expired entries and returns them for flow invalidation (flows are tagged with the ARP entry).
Retry pacing of ARP requests (10 s, jittered) belongs to the agent's ARP broker, not here.

The stale flag is decided by the table with its own clock: the simulation never reads the time.

May import: `midonet.topology.ids`, `midonet.state.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from midonet.state.clock import Clock
from midonet.topology.ids import RouterId

ARP_STALE = 60.0
ARP_EXPIRATION = 90.0


@dataclass(frozen=True, slots=True)
class ArpLearned:
    """Requested write: `ip` is at `mac`, as seen by `router`."""

    router: RouterId
    ip: str
    mac: str


@dataclass(frozen=True, slots=True)
class ArpEntry:
    """What a lookup finds: the MAC, and whether the entry should be refreshed (an ARP request sent)."""

    mac: str
    stale: bool = False


class ArpKey(NamedTuple):
    router: RouterId
    ip: str


class ArpCache(Protocol):
    def lookup(self, router: RouterId, ip: str) -> ArpEntry | None:
        """The live entry for `ip`, or None if there is none or it expired."""
        ...

    def learn(self, router: RouterId, ip: str, mac: str) -> None: ...


class InMemoryArpCache:
    """`ArpCache` in a dictionary, ageing entries by the clock it is handed."""

    def __init__(self, clock: Clock, stale: float = ARP_STALE, expiration: float = ARP_EXPIRATION) -> None:
        self._clock = clock
        self._stale = stale
        self._expiration = expiration
        # key -> (entry, stale at, expires at); the entry object is replaced only when it turns stale
        self._entries: dict[ArpKey, tuple[ArpEntry, float, float]] = {}

    def lookup(self, router: RouterId, ip: str) -> ArpEntry | None:
        key = ArpKey(router, ip)
        found = self._entries.get(key)
        if found is None:
            return None
        entry, stale_at, expires_at = found
        now = self._clock.now()
        if now >= expires_at:
            return None
        if now >= stale_at and not entry.stale:
            entry = ArpEntry(entry.mac, stale=True)
            self._entries[key] = (entry, stale_at, expires_at)
        return entry

    def learn(self, router: RouterId, ip: str, mac: str) -> None:
        now = self._clock.now()
        self._entries[ArpKey(router, ip)] = (ArpEntry(mac), now + self._stale, now + self._expiration)

    def remove(self, router: RouterId, ip: str) -> None:
        self._entries.pop(ArpKey(router, ip), None)

    def expire(self) -> list[ArpKey]:
        """Remove expired entries; returns their keys (for flow invalidation)."""
        now = self._clock.now()
        gone = [key for key, (_, _, expires_at) in self._entries.items() if now >= expires_at]
        for key in gone:
            del self._entries[key]
        return gone

    def entries(self, router: RouterId) -> dict[str, str]:
        """A copy of one router's live entries, IPv4 -> MAC."""
        now = self._clock.now()
        return {k.ip: e.mac for k, (e, _, exp) in self._entries.items() if k.router == router and now < exp}
