"""The virtual-topology cache: device snapshots built from store watches, loaded on demand (spec 1.3, 1.5).

Role: the original's `VirtualTopology` + `DeviceMapper`s, as the simulator's `VirtualTopology` protocol. It holds
immutable device snapshots (`simulation.topology`) of exactly the devices simulations asked for:

* a miss (`get_bridge(id)` of a device not built yet) subscribes to what the device is made of and raises
  `NotYet("bridge", id)`: the packet waits (`waiting_room`) and is simulated again from scratch when the device
  arrives (`ready("bridge", id)`);
* the store watches deliver records on the store's thread (through the agent's `EventGate`); every change of a
  record a device was built from rebuilds the device with the simulator's own mappers (`simulation.mappers`, so
  `midonet trace` and the agent build identical devices) and invalidates the flows tagged with the device's id.

What each device is made of (its *sources*; a build reads them through a `_Reader`, which records them):

    port     its Port record, its port groups (loaded with it: flow-state peer resolution reads them, spec 4.3)
    bridge   its Bridge record, its ports, their peers (router ports: MACs and addresses for ARP and L2 forwarding),
             its DHCP subnets
    router   its Router record, its ports, its routes and its ports' routes, the location of each of its
             exterior ports (below): a route through an exterior port counts only while the port is located
             somewhere (active, or its agent away restarting) and administratively up (spec 1.5,
             `RouterMapper.PortState.isPublishingRoutes`)
    chain    its Chain record, its rules in order, the IP address groups their conditions name
    mirror   its Mirror record, the IP address groups its conditions name
    load balancer   its LoadBalancer record, its pools, their members and VIPs (members' health status: the
             records' own until health monitoring writes one)
    port group   its PortGroup record (flow-state peers: the members of stateful groups, spec 4.3)

A build that finds sources not loaded yet subscribes to all of them at once and keeps the previous snapshot (if
any) until a complete one can be built; a device whose record is gone is dropped (asking for it is "not yet" again,
and the waiting packet gives up after its deadline). Sources no device needs any more are unsubscribed.

Port locations: `port_location(port)` is where translation tunnels a remote port's copies, built like a device
from the port's `Port.active` state key (`{host_id, tunnel_key}`, written by the agent that binds the port), its
Port record and the `alive` key of the host the record binds it to:

    active key present                              there (the host and key it names)
    no active key, bound to a host whose agent      nowhere: that agent says the port is down
      runs and has published its bindings
    no active key, bound to a host whose agent      Port.host_id with Port.tunnel_key (as the original's
      is away or still starting                     translator, spec 1.5): the agent is restarting, and
                                                    that host's kernel keeps delivering its installed flows
    deleted, or neither active nor bound            nowhere

"Runs and has published" is the host's `alive` key saying `"bound": true` (`agent.host`). A restarting agent
deletes `alive` before its session ends (`Agent.detach`) and the new one says `bound` only after writing its
`active` keys, so its peers' locations stay the same through the restart: no flow is invalidated and traffic keeps
flowing both ways. Not loaded yet:
`NotYet("port_location", id)`. A change of the location invalidates the flows tagged with the port (its floods,
its routes, its outputs).

    TopologyCache
    ├── values      {source: Record | PortLocation | None}   None = known absent; no entry = not loaded
    ├── subs        {source: Subscription}
    ├── devices     {(kind, id): device snapshot}
    └── deps        {(kind, id): sources of its last build} and the reverse index

Threads: not thread-safe by itself: simulations call it under the agent's lock, watch callbacks go through the
`EventGate` (which takes the same lock).

May import: `midonet.simulation` (mappers, devices, NotYet), `midonet.store`, `midonet.topology`, `agent.events`,
`agent.host` (the `alive` key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from midonet.agent.events import EventGate
from midonet.agent.host import ALIVE_KEY, is_bound
from midonet.simulation.devices.load_balancer import LoadBalancerDevice, LoadBalancerMapper
from midonet.simulation.devices.mirror import MirrorDevice, MirrorMapper
from midonet.simulation.mappers import BridgeMapper, ChainMapper, PortMapper, RouterMapper
from midonet.simulation.results import FlowTag
from midonet.simulation.topology import BridgeDevice, ChainDevice, NotYet, PortDevice, RouterDevice
from midonet.store.base import ObjectDeleted, ObjectEvent, StateValue, Store, Subscription
from midonet.topology.chains import Chain, Condition, Rule
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.hosts import Host
from midonet.topology.ids import BridgeId, ChainId, PortId, RouterId
from midonet.topology.l4lb import LoadBalancer, Pool, PoolMember, Vip
from midonet.topology.record import Record
from midonet.topology.services import DhcpSubnet, Mirror

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)
D = TypeVar("D")

ACTIVE_KEY = "active"


@dataclass(frozen=True, slots=True)
class PortLocation:
    """Where an exterior port is active: the host that bound it and the tunnel key to reach it by."""

    host_id: str
    tunnel_key: int


NOWHERE = PortLocation("", 0)   # a port bound to no host (a built location, unlike "not loaded yet")


def parse_location(value: str) -> PortLocation | None:
    """A `Port.active` value; None if malformed (read as not active)."""
    try:
        raw = json.loads(value)
        return PortLocation(str(raw["host_id"]), int(raw["tunnel_key"]))
    except (ValueError, TypeError, KeyError):
        return None


class RecordRef(NamedTuple):
    cls: type[Record]
    id: str


class ActiveRef(NamedTuple):
    port_id: str


class AliveRef(NamedTuple):
    host_id: str


Source = RecordRef | ActiveRef | AliveRef
DeviceRef = tuple[str, str]
Device = (PortDevice | BridgeDevice | RouterDevice | ChainDevice | MirrorDevice | LoadBalancerDevice | PortGroup
          | PortLocation)


class _Reader:
    """What a build reads: loaded values, with every source read recorded and the missing ones collected."""

    __slots__ = ("missing", "used", "values")

    def __init__(self, values: dict[Source, object]) -> None:
        self.values = values
        self.used: set[Source] = set()
        self.missing: set[Source] = set()

    def record(self, cls: type[R], ident: str) -> R | None:
        ref = RecordRef(cls, ident)
        self.used.add(ref)
        if ref not in self.values:
            self.missing.add(ref)
            return None
        found = self.values[ref]
        return found if isinstance(found, cls) else None

    def records(self, cls: type[R], ids: tuple[str, ...]) -> list[R]:
        return [r for i in ids if (r := self.record(cls, i)) is not None]

    def active(self, port_id: str) -> PortLocation | None:
        ref = ActiveRef(port_id)
        self.used.add(ref)
        if ref not in self.values:
            self.missing.add(ref)
            return None
        found = self.values[ref]
        return found if isinstance(found, PortLocation) else None

    def bound(self, host_id: str) -> bool:
        """Whether the agent of `host_id` runs and has published its ports' `active` keys."""
        ref = AliveRef(host_id)
        self.used.add(ref)
        if ref not in self.values:
            self.missing.add(ref)
            return False
        return self.values[ref] is True


def _build_port(rd: _Reader, ident: str) -> PortDevice | None:
    port = rd.record(Port, ident)
    if port is None:
        return None
    rd.records(PortGroup, port.port_group_ids)      # loaded with the port: flow-state peers read them next
    return PortMapper.map(port)


def _build_bridge(rd: _Reader, ident: str) -> BridgeDevice | None:
    bridge = rd.record(Bridge, ident)
    if bridge is None:
        return None
    ports = rd.records(Port, bridge.port_ids)
    peers = {p.peer_id: peer for p in ports if p.peer_id and (peer := rd.record(Port, p.peer_id)) is not None}
    return BridgeMapper.map(bridge, ports, peers, rd.records(DhcpSubnet, bridge.dhcp_ids))


def _build_router(rd: _Reader, ident: str) -> RouterDevice | None:
    router = rd.record(Router, ident)
    if router is None:
        return None
    ports = {p.id: p for p in rd.records(Port, router.port_ids)}
    route_ids = dict.fromkeys((*router.route_ids, *(r for p in ports.values() for r in p.route_ids)))
    routes = rd.records(Route, tuple(route_ids))
    inactive = {pid for pid, p in ports.items()
                if p.is_exterior and (_locate(rd, p) == NOWHERE or not p.admin_state_up)}
    return RouterMapper.map(router, routes, ports, inactive)


def _build_chain(rd: _Reader, ident: str) -> ChainDevice | None:
    chain = rd.record(Chain, ident)
    if chain is None:
        return None
    rules = rd.records(Rule, chain.rule_ids)
    return ChainMapper.map(chain, rules, _groups(rd, [r.condition for r in rules]))


def _build_mirror(rd: _Reader, ident: str) -> MirrorDevice | None:
    mirror = rd.record(Mirror, ident)
    return None if mirror is None else MirrorMapper.map(mirror, _groups(rd, mirror.conditions))


def _build_load_balancer(rd: _Reader, ident: str) -> LoadBalancerDevice | None:
    lb = rd.record(LoadBalancer, ident)
    if lb is None:
        return None
    pools = rd.records(Pool, lb.pool_ids)
    members = rd.records(PoolMember, tuple(m for p in pools for m in p.pool_member_ids))
    vips = rd.records(Vip, tuple(v for p in pools for v in p.vip_ids))
    return LoadBalancerMapper.map(lb, pools, members, vips)


def _build_port_group(rd: _Reader, ident: str) -> PortGroup | None:
    return rd.record(PortGroup, ident)


def _build_location(rd: _Reader, ident: str) -> PortLocation:
    port = rd.record(Port, ident)
    return NOWHERE if port is None else _locate(rd, port)


def _locate(rd: _Reader, port: Port) -> PortLocation:
    """Where `port` is (the table in the module docstring)."""
    active = rd.active(port.id)
    if active is not None:
        return active
    if not (port.host_id and port.is_exterior) or rd.bound(port.host_id):
        return NOWHERE
    return PortLocation(port.host_id, port.tunnel_key)


def _groups(rd: _Reader, conditions: Iterable[Condition]) -> dict[str, IPAddrGroup]:
    ids = {g for c in conditions for g in (c.ip_addr_group_id_src, c.ip_addr_group_id_dst) if g}
    return {g.id: g for g in rd.records(IPAddrGroup, tuple(sorted(ids)))}


_BUILDERS: dict[str, Callable[[_Reader, str], Device | None]] = {
    "port": _build_port, "bridge": _build_bridge, "router": _build_router, "chain": _build_chain,
    "mirror": _build_mirror, "load_balancer": _build_load_balancer, "port_group": _build_port_group,
    "port_location": _build_location}

Invalidate = Callable[[FlowTag], None]
Ready = Callable[[str, str], None]


class TopologyCache:
    """The agent's `VirtualTopology`; see the module docstring."""

    def __init__(self, store: Store, gate: EventGate, invalidate: Invalidate, ready: Ready) -> None:
        self._store = store
        self._gate = gate
        self._invalidate = invalidate
        self._ready = ready
        self._values: dict[Source, object] = {}
        self._subs: dict[Source, Subscription] = {}
        self._devices: dict[DeviceRef, Device] = {}
        self._ports: dict[str, PortDevice] = {}        # the "port" and "bridge" devices again, by id alone: a
        self._bridges: dict[str, BridgeDevice] = {}    # new flow asks for a dozen (no key tuple built each time)
        self._wanted: set[DeviceRef] = set()
        self._deps: dict[DeviceRef, frozenset[Source]] = {}
        self._dependents: dict[Source, set[DeviceRef]] = {}
        self.builds = 0

    # ---- the simulator's VirtualTopology ----

    def get_port(self, port_id: PortId) -> PortDevice:
        device = self._ports.get(port_id)
        return device if device is not None else self._get("port", port_id, PortDevice)

    def get_bridge(self, bridge_id: BridgeId) -> BridgeDevice:
        device = self._bridges.get(bridge_id)
        return device if device is not None else self._get("bridge", bridge_id, BridgeDevice)

    def get_router(self, router_id: RouterId) -> RouterDevice:
        return self._get("router", router_id, RouterDevice)

    def get_chain(self, chain_id: ChainId) -> ChainDevice:
        return self._get("chain", chain_id, ChainDevice)

    def get_mirror(self, mirror_id: str) -> MirrorDevice:
        return self._get("mirror", mirror_id, MirrorDevice)

    def get_load_balancer(self, lb_id: str) -> LoadBalancerDevice:
        return self._get("load_balancer", lb_id, LoadBalancerDevice)

    def get_port_group(self, group_id: str) -> PortGroup:
        """A port group record (not a simulation device: the flow-state peer resolution reads it)."""
        return self._get("port_group", group_id, PortGroup)

    def _get(self, kind: str, ident: str, cls: type[D]) -> D:
        ref = (kind, ident)
        device = self._devices.get(ref)
        if device is None and ref not in self._wanted:
            self._wanted.add(ref)
            self._build(ref)
            device = self._devices.get(ref)
        if isinstance(device, cls):
            return device
        raise NotYet(kind, ident)

    # ---- port locations ----

    def port_location(self, port_id: str) -> PortLocation | None:
        """Where `port_id` is (None: nowhere); `NotYet("port_location", id)` until it is loaded."""
        found = self._get("port_location", port_id, PortLocation)
        return None if found == NOWHERE else found

    # ---- reading for tests and statistics ----

    def loaded(self) -> list[DeviceRef]:
        return list(self._devices)

    def watched(self) -> int:
        """How many store subscriptions the cache holds."""
        return len(self._subs)

    def stop(self) -> None:
        for sub in self._subs.values():
            sub.cancel()
        self._subs.clear()
        self._values.clear()
        self._devices.clear()
        self._ports.clear()
        self._bridges.clear()
        self._wanted.clear()
        self._deps.clear()
        self._dependents.clear()

    # ---- building ----

    def _build(self, ref: DeviceRef) -> None:
        reader = _Reader(self._values)
        device = _BUILDERS[ref[0]](reader, ref[1])
        self.builds += 1
        self._set_deps(ref, frozenset(reader.used))
        for source in reader.missing:
            self._subscribe(source)
        if reader.missing:
            return   # keep the previous snapshot until a complete one can be built
        old = self._devices.get(ref)
        if device is None:
            self._devices.pop(ref, None)
        else:
            self._devices[ref] = device
        self._index(ref, device)
        if old is not None and old != device:
            self._invalidate(ref[1])
        if device is not None and old is None:
            self._ready(*ref)

    def _index(self, ref: DeviceRef, device: Device | None) -> None:
        kind, ident = ref
        if kind == "port":
            if isinstance(device, PortDevice):
                self._ports[ident] = device
            else:
                self._ports.pop(ident, None)
        elif kind == "bridge":
            if isinstance(device, BridgeDevice):
                self._bridges[ident] = device
            else:
                self._bridges.pop(ident, None)

    def _set_deps(self, ref: DeviceRef, sources: frozenset[Source]) -> None:
        old = self._deps.get(ref, frozenset())
        self._deps[ref] = sources
        for source in sources - old:
            self._dependents.setdefault(source, set()).add(ref)
        for source in old - sources:
            users = self._dependents.get(source)
            if users is not None:
                users.discard(ref)
                if not users:
                    del self._dependents[source]
                    self._release(source)

    def _release(self, source: Source) -> None:
        sub = self._subs.pop(source, None)
        if sub is not None:
            sub.cancel()
        self._values.pop(source, None)

    def _subscribe(self, source: Source) -> None:
        if source in self._subs:
            return
        if isinstance(source, RecordRef):
            self._subs[source] = self._store.watch(
                source.cls, source.id, lambda e: self._gate.run(lambda: self._on_record(source, e)))
        elif isinstance(source, ActiveRef):
            self._subs[source] = self._store.watch_state(
                Port, source.port_id, ACTIVE_KEY, lambda v: self._gate.run(lambda: self._on_active(source, v)))
        else:
            self._subs[source] = self._store.watch_state(
                Host, source.host_id, ALIVE_KEY, lambda v: self._gate.run(lambda: self._on_alive(source, v)))

    # ---- store events (under the gate) ----

    def _on_record(self, source: RecordRef, event: ObjectEvent) -> None:
        if source not in self._subs:
            return
        self._values[source] = None if isinstance(event, ObjectDeleted) else event.obj
        self._rebuild(source)

    def _on_active(self, source: ActiveRef, value: StateValue | None) -> None:
        if source not in self._subs:
            return
        self._values[source] = None if value is None else parse_location(value.value)
        self._rebuild(source)

    def _on_alive(self, source: AliveRef, value: StateValue | None) -> None:
        if source not in self._subs:
            return
        self._values[source] = value is not None and is_bound(value.value)
        self._rebuild(source)

    def _rebuild(self, source: Source) -> None:
        for ref in list(self._dependents.get(source, ())):
            self._build(ref)
