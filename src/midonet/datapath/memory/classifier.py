"""The megaflow classifier: installed flows grouped by mask, one dict lookup per mask (tuple-space search).

Role: the flow table of a `MemoryDatapath`, the same algorithm as the OVS kernel datapath's
(`datapath/flow_table.c`: one hash table per distinct mask, probed in turn). Each `FlowKey` has a mask (the names
of the fields it matches, in `KEY_FIELDS` order) and values; flows with the same mask live in one subtable, a dict
from the tuple of their values to the flow. Looking a packet up builds, for each subtable, the tuple of the
packet's values for that mask (`FlowMatch.key`, which records nothing as seen) and probes the dict: cost is one
tuple and one dict probe per distinct mask, whatever the number of flows.

    MegaflowTable
    └── subtables {mask: _Subtable}           probed in the order their masks first appeared
        └── entries {values: _Entry}          _Entry = flow + packets, bytes, last_used

Overlap: two flows whose masks differ can both match a packet; the first subtable probed wins, i.e. the flow
whose mask was installed *first* (while a subtable is not empty it keeps its place). OVS megaflows never overlap
and our agent guarantees the same (spec 3.12); this order is a fact of this backend, not of the contract. A flow
with the same key as an installed one replaces it, and its stats start again.

`tunnel_id` is not a `FlowMatch` field: the caller passes the tunnel id the packet arrived with (None off a tunnel
port); it is last in `KEY_FIELDS`, so it is last in a mask that has it.

Not thread-safe: the owning datapath holds its lock around every call.

May import: `midonet.packets`, `midonet.datapath.base`.
"""

from __future__ import annotations

from midonet.datapath.base import TUNNEL_FIELDS, Flow, FlowKey, FlowStats
from midonet.packets.flowmatch import FieldValue, FlowMatch

_TUNNEL_ID = TUNNEL_FIELDS[0]


class _Entry:
    """An installed flow and its counters (mutated in place on every hit)."""

    __slots__ = ("bytes", "flow", "last_used", "packets")

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.packets = 0
        self.bytes = 0
        self.last_used: float | None = None

    def hit(self, size: int, now: float) -> None:
        self.packets += 1
        self.bytes += size
        self.last_used = now

    def stats(self) -> FlowStats:
        return FlowStats(self.packets, self.bytes, self.last_used)


class _Subtable:
    """The flows of one mask: `fields` are the mask's `FlowMatch` fields, `with_tunnel` whether it has tunnel_id."""

    __slots__ = ("entries", "fields", "mask", "with_tunnel")

    def __init__(self, mask: tuple[str, ...]) -> None:
        self.mask = mask
        self.with_tunnel = _TUNNEL_ID in mask
        self.fields = tuple(f for f in mask if f != _TUNNEL_ID)
        self.entries: dict[tuple[FieldValue, ...], _Entry] = {}


def _values(key: FlowKey) -> tuple[FieldValue, ...]:
    return tuple(value for _, value in key.fields)


class MegaflowTable:
    """Installed flows by mask; see the module docstring."""

    __slots__ = ("_count", "_subtables")

    def __init__(self) -> None:
        self._subtables: dict[tuple[str, ...], _Subtable] = {}
        self._count = 0

    def insert(self, flow: Flow) -> FlowStats | None:
        """Install `flow`; the stats of the flow it replaced (same key), or None."""
        mask = flow.key.mask
        sub = self._subtables.get(mask)
        if sub is None:
            sub = self._subtables[mask] = _Subtable(mask)
        values = _values(flow.key)
        old = sub.entries.get(values)
        sub.entries[values] = _Entry(flow)
        if old is None:
            self._count += 1
            return None
        return old.stats()

    def delete(self, key: FlowKey) -> FlowStats | None:
        """Remove the flow with `key`; its final stats, or None if there is none."""
        sub = self._subtables.get(key.mask)
        if sub is None:
            return None
        old = sub.entries.pop(_values(key), None)
        if old is None:
            return None
        self._count -= 1
        if not sub.entries:
            del self._subtables[key.mask]
        return old.stats()

    def lookup(self, match: FlowMatch, tunnel_id: int | None) -> _Entry | None:
        """The entry whose key matches the packet (`match` + the tunnel id it came with), or None (a miss)."""
        for sub in self._subtables.values():
            values = match.key(sub.fields)
            if sub.with_tunnel:
                values += (tunnel_id,)
            entry = sub.entries.get(values)
            if entry is not None:
                return entry
        return None

    def get(self, key: FlowKey) -> tuple[Flow, FlowStats] | None:
        sub = self._subtables.get(key.mask)
        entry = sub.entries.get(_values(key)) if sub is not None else None
        return None if entry is None else (entry.flow, entry.stats())

    def entries(self) -> list[tuple[Flow, FlowStats]]:
        return [(e.flow, e.stats()) for sub in self._subtables.values() for e in sub.entries.values()]

    def masks(self) -> list[tuple[str, ...]]:
        """The distinct masks, in probe order (OVS's `masks` statistic is their number)."""
        return list(self._subtables)

    def clear(self) -> None:
        self._subtables.clear()
        self._count = 0

    def __len__(self) -> int:
        return self._count
