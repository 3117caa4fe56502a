"""A router's routing table: longest-prefix match on the destination, source filter, weights, ECMP (spec 3.4.5).

Role: `RoutingTable.lookup(match)` picks the route a router forwards a packet by, as the original
(`layer3/RoutingTable.java`, `RouteBalancer.scala`):

1. walk the destination prefixes that contain the packet's destination, longest first;
2. at each, keep the routes whose source subnet contains the packet's source; if none, try the next shorter
   prefix;
3. of those, keep the ones with the minimum weight;
4. if several remain (ECMP), choose ``routes[hash(5-tuple) % n]``, so one connection always takes one path.

The table is built once per router snapshot: one dictionary per prefix length, keyed by the masked destination.
Reads are what the wildcard records: the destination always; the source only where a candidate route has a
source subnet; the 5-tuple only for ECMP.

May import: `midonet.packets`, `midonet.topology`, `simulation.ipmath`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.ipmath import Subnet, ip_int, prefix_mask, subnet
from midonet.topology.devices import NextHop, Route
from midonet.topology.ids import PortId, RouteId


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One IPv4 route as the simulation uses it."""

    id: RouteId
    dst: Subnet
    src: Subnet
    next_hop: NextHop
    port: PortId | None
    gateway: str | None    # the next-hop router's address; None for a directly connected destination
    weight: int

    @classmethod
    def from_record(cls, route: Route) -> RouteEntry | None:
        """The entry for `route`, or None for an IPv6 route (IPv4 only here)."""
        dst, src = subnet(route.dst_subnet), subnet(route.src_subnet)
        if dst is None or src is None:
            return None
        gateway = route.next_hop_gateway
        if gateway in ("0.0.0.0", "255.255.255.255") or (gateway is not None and ":" in gateway):
            gateway = None
        port = PortId(route.next_hop_port_id) if route.next_hop_port_id else None
        return cls(RouteId(route.id), dst, src, route.next_hop, port, gateway, route.weight)

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        src = f" from {self.src}" if self.src.length else ""
        return f"{self.dst}{src} -> {self.next_hop.value} {self.port or ''}{via} (weight {self.weight})"


class _Bucket:
    """The routes of one destination prefix; `best` precomputed when none filters on the source."""

    __slots__ = ("best", "routes")

    def __init__(self, routes: tuple[RouteEntry, ...]) -> None:
        self.routes = routes
        self.best = _min_weight(routes) if all(r.src.length == 0 for r in routes) else None


def _min_weight(routes: Iterable[RouteEntry]) -> tuple[RouteEntry, ...]:
    chosen: list[RouteEntry] = []
    weight = None
    for route in routes:
        if weight is None or route.weight < weight:
            chosen, weight = [route], route.weight
        elif route.weight == weight:
            chosen.append(route)
    return tuple(chosen)


class RoutingTable:
    """An immutable IPv4 routing table."""

    __slots__ = ("_levels", "routes")

    def __init__(self, routes: Iterable[RouteEntry]) -> None:
        self.routes: tuple[RouteEntry, ...] = tuple(sorted(routes, key=lambda r: (-r.dst.length, r.weight, r.id)))
        by_length: dict[int, dict[int, list[RouteEntry]]] = {}
        for route in self.routes:
            by_length.setdefault(route.dst.length, {}).setdefault(route.dst.network, []).append(route)
        self._levels: tuple[tuple[int, dict[int, _Bucket]], ...] = tuple(
            (prefix_mask(length), {network: _Bucket(tuple(rs)) for network, rs in buckets.items()})
            for length, buckets in sorted(by_length.items(), reverse=True)
        )

    def lookup(self, match: FlowMatch) -> RouteEntry | None:
        """The route for `match` (reads `ip_dst`, and more only when needed), or None: no route."""
        dst = match.ip_dst
        if dst is None:
            return None
        d = ip_int(dst)
        src = -1
        for mask, buckets in self._levels:
            bucket = buckets.get(d & mask)
            if bucket is None:
                continue
            best = bucket.best
            if best is None:
                if src < 0:
                    s = match.ip_src
                    src = ip_int(s) if s is not None else 0
                best = _min_weight(r for r in bucket.routes if r.src.contains_int(src))
                if not best:
                    continue
            if len(best) == 1:
                return best[0]
            return best[connection_hash(match) % len(best)]
        return None

    def __len__(self) -> int:
        return len(self.routes)


def connection_hash(match: FlowMatch) -> int:
    """A stable hash of the packet's 5-tuple (the original's `connectionHash`), for ECMP."""
    key = f"{match.ip_src}|{match.ip_dst}|{match.ip_proto}|{match.tp_src}|{match.tp_dst}"
    return zlib.crc32(key.encode())
