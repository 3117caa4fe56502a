"""Tunnel-zone membership: this host's underlay address towards each peer host (spec 1.6, 5.1).

Role: the original's `DatapathStateDriver.addPeer / peerTunnelInfo`. The agent watches its own `Host` record for
the tunnel zones it belongs to (`Host.tunnel_zone_ids`) and each of those `TunnelZone` records. For every other
member of a VXLAN or GRE zone it keeps a *tunnel route* (my address in that zone, the peer's address in it); the
first zone (in the host's order) that has the peer wins. VTEP zones give no peer routes (hardware VTEPs only).
We tunnel over VXLAN whatever the zone type says (GRE is absent from these kernels; ARCHITECTURE.md).

    TunnelZones
    ├── zone_ids   the host's zones, in order             (Host watch)
    ├── zones      {zone id: TunnelZone}                  (one watch per zone)
    └── routes     {peer host id: TunnelRoute(src, dst)}  recomputed on every change

A change of a peer's route (new, moved, gone) invalidates the flows tagged `("tunnel", peer)`: the flows that
tunnel to it, and the flows that could not (a peer without a route gets no output, spec 5.1 "peer unreachable",
and its flow is tagged the same way so that a route appearing fixes it).

Threads: store callbacks go through the agent's `EventGate`.

May import: `midonet.store`, `midonet.topology`, `agent.events`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from midonet.agent.events import EventGate
from midonet.simulation.results import FlowTag
from midonet.store.base import ObjectDeleted, ObjectEvent, ObjectUpdated, Store, Subscription
from midonet.topology.hosts import Host, TunnelZone, TunnelZoneType

log = logging.getLogger(__name__)

Invalidate = Callable[[FlowTag], None]


@dataclass(frozen=True, slots=True)
class TunnelRoute:
    """How to reach a peer: tunnel from `src` (my address in the zone) to `dst` (the peer's)."""

    src: str
    dst: str
    zone_id: str


def tunnel_tag(peer_host_id: str) -> tuple[str, str]:
    """The tag of flows that tunnel to (or could not reach) `peer_host_id`."""
    return ("tunnel", peer_host_id)


class TunnelZones:
    """See the module docstring."""

    def __init__(self, host_id: str, store: Store, gate: EventGate, invalidate: Invalidate) -> None:
        self.host_id = host_id
        self._store = store
        self._gate = gate
        self._invalidate = invalidate
        self._zone_ids: tuple[str, ...] = ()
        self._zones: dict[str, TunnelZone] = {}
        self._zone_subs: dict[str, Subscription] = {}
        self._host_sub: Subscription | None = None
        self._routes: dict[str, TunnelRoute] = {}

    def start(self) -> None:
        self._host_sub = self._store.watch(Host, self.host_id, lambda e: self._gate.run(lambda: self._host(e)))

    def stop(self) -> None:
        if self._host_sub is not None:
            self._host_sub.cancel()
            self._host_sub = None
        for sub in self._zone_subs.values():
            sub.cancel()
        self._zone_subs.clear()

    # ---- reading ----

    def route(self, peer_host_id: str) -> TunnelRoute | None:
        return self._routes.get(peer_host_id)

    def routes(self) -> dict[str, TunnelRoute]:
        return dict(self._routes)

    def my_ip(self) -> str | None:
        """This host's address in its first zone that has one (what peers tunnel to)."""
        for zone_id in self._zone_ids:
            zone = self._zones.get(zone_id)
            member = zone.member(self.host_id) if zone is not None else None
            if member is not None and zone is not None and zone.type is not TunnelZoneType.VTEP:
                return member.ip
        return None

    # ---- store events (under the gate) ----

    def _host(self, event: ObjectEvent) -> None:
        zone_ids = event.obj.tunnel_zone_ids if isinstance(event, ObjectUpdated) and isinstance(
            event.obj, Host) else ()
        if zone_ids == self._zone_ids:
            return
        self._zone_ids = zone_ids
        for zone_id in [z for z in self._zone_subs if z not in zone_ids]:
            self._zone_subs.pop(zone_id).cancel()
            self._zones.pop(zone_id, None)
        for zone_id in zone_ids:
            if zone_id not in self._zone_subs:
                self._zone_subs[zone_id] = self._watch_zone(zone_id)
        self._recompute()

    def _watch_zone(self, zone_id: str) -> Subscription:
        return self._store.watch(TunnelZone, zone_id, lambda e: self._gate.run(lambda: self._zone(zone_id, e)))

    def _zone(self, zone_id: str, event: ObjectEvent) -> None:
        if zone_id not in self._zone_subs:
            return
        if isinstance(event, ObjectDeleted):
            self._zones.pop(zone_id, None)
        elif isinstance(event.obj, TunnelZone):
            self._zones[zone_id] = event.obj
        self._recompute()

    def _recompute(self) -> None:
        routes: dict[str, TunnelRoute] = {}
        for zone_id in self._zone_ids:
            zone = self._zones.get(zone_id)
            if zone is None or zone.type is TunnelZoneType.VTEP:
                continue
            me = zone.member(self.host_id)
            if me is None:
                continue
            for member in zone.hosts:
                if member.host_id != self.host_id and member.host_id not in routes:
                    routes[member.host_id] = TunnelRoute(me.ip, member.ip, zone_id)
        changed = {h for h in routes.keys() | self._routes.keys() if routes.get(h) != self._routes.get(h)}
        self._routes = routes
        for peer in changed:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("host %s: tunnel route to %s is now %s", self.host_id, peer, routes.get(peer))
            self._invalidate(tunnel_tag(peer))
