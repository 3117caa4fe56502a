"""Write a virtual topology into a store, record by record, the way the API would (for scenarios and the sandbox).

Role: the agent scenarios build their topology through the store rather than over HTTP: the same records the API
writes, in the same transactions, with no server in between (faster, and a failing test points at the agent, not
at the REST layer; the API's own tests cover that layer). What the API adds around a record is done here too:

* every bridge and port gets a tunnel key from the store's `tunnel_key` sequence (`ids.cluster_tunnel_key`);
* a router port gets its LOCAL /32 route (`api.ports`);
* back-references are the store's business (`topology.bindings`): a port created on a bridge appears in the
  bridge's `port_ids`, a rule created on a chain is appended to its `rule_ids`, a port bound to a host appears in
  the host's `port_ids`.

Changes later in a test (filters, rules, bindings, deletes) use `UpdateWith`, as the API does, so that concurrent
back-reference updates are never lost.

    topo = StoreTopology(store)
    net = topo.bridge("net")
    p1 = topo.port(net, host_id=h1, interface="vm1")
    r = topo.router("r"); rp = topo.router_port(r, "10.0.1.254/24", "02:00:00:00:ff:01")
    topo.link(rp, topo.port(net))
    topo.route(r, "10.0.1.0/24", rp)
    topo.nat(topo.chain("post"), "snat", ("192.0.2.1", "192.0.2.1", 1024, 65535), nw_src_ip="10.0.1.0/24")
    topo.port_group("uplinks", up1, up2, stateful=True)
    topo.vip(pool := topo.pool(topo.load_balancer(r)), "10.0.2.100", 80); topo.member(pool, "10.0.1.1", 8080)

May import: `midonet.store`, `midonet.topology`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, TypeVar

from midonet.store.base import Create, Delete, Store, UpdateWith
from midonet.topology.chains import Chain, Condition, NatTarget, PortRange, Rule, RuleAction, RuleType
from midonet.topology.devices import Bridge, NextHop, Port, Route, Router
from midonet.topology.groups import PortGroup
from midonet.topology.hosts import Host, TunnelZone, TunnelZoneHost, TunnelZoneType
from midonet.topology.ids import cluster_tunnel_key, new_id
from midonet.topology.l4lb import LoadBalancer, Pool, PoolMember, SessionPersistence, Vip
from midonet.topology.record import Record

R = TypeVar("R", bound=Record)


class StoreTopology:
    """Topology writes through `store`; every method returns the record as stored."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, cls: type[R], ident: str) -> R:
        return self.store.get(cls, ident)

    def _tunnel_key(self) -> int:
        return cluster_tunnel_key(self.store.next_sequence("tunnel_key"))

    def _update(self, cls: type[R], ident: str, **changes: Any) -> R:
        self.store.multi([UpdateWith(cls, ident, lambda obj: dataclasses.replace(obj, **changes))])
        return self.store.get(cls, ident)

    # ---- devices and ports ----

    def bridge(self, name: str, **kw: Any) -> Bridge:
        bridge = Bridge(id=new_id(), name=name, tunnel_key=self._tunnel_key(), **kw)
        self.store.create(bridge)
        return bridge

    def router(self, name: str, **kw: Any) -> Router:
        router = Router(id=new_id(), name=name, **kw)
        self.store.create(router)
        return router

    def port(self, bridge: Bridge, *, host_id: str | None = None, interface: str | None = None, **kw: Any) -> Port:
        """A bridge port; exterior (bound to `interface` of host `host_id`) when both are given."""
        port = Port(id=new_id(), network_id=bridge.id, host_id=host_id, interface_name=interface,
                    tunnel_key=self._tunnel_key(), **kw)
        self.store.create(port)
        return port

    def router_port(self, router: Router, address: str, mac: str, *, host_id: str | None = None,
                    interface: str | None = None, **kw: Any) -> Port:
        """A router port with `address` as "10.0.1.254/24", its MAC, and its LOCAL /32 route."""
        iface = ipaddress.ip_interface(address)
        port = Port(id=new_id(), router_id=router.id, port_address=str(iface.ip), port_subnet=str(iface.network),
                    port_mac=mac, host_id=host_id, interface_name=interface, tunnel_key=self._tunnel_key(), **kw)
        local = Route(id=new_id(), router_id=router.id, dst_subnet=f"{iface.ip}/32", next_hop=NextHop.LOCAL,
                      next_hop_port_id=port.id, weight=0)
        self.store.multi([Create(port), Create(local)])
        return port

    def link(self, a: Port, b: Port) -> tuple[Port, Port]:
        """Link two interior ports (the store sets the peer's `peer_id` too)."""
        self._update(Port, a.id, peer_id=b.id)
        return self.store.get(Port, a.id), self.store.get(Port, b.id)

    def route(self, router: Router, dst: str, port: Port | None = None, *, gateway: str | None = None,
              src: str = "0.0.0.0/0", weight: int = 100, next_hop: NextHop = NextHop.PORT) -> Route:
        route = Route(id=new_id(), router_id=router.id, dst_subnet=dst, src_subnet=src, next_hop=next_hop,
                      next_hop_port_id=port.id if port else None, next_hop_gateway=gateway, weight=weight)
        self.store.create(route)
        return route

    # ---- bindings ----

    def bind(self, port: Port, host_id: str, interface: str) -> Port:
        """Bind an exterior port (REST `POST /hosts/{id}/ports`)."""
        return self._update(Port, port.id, host_id=host_id, interface_name=interface)

    def unbind(self, port: Port) -> Port:
        """Unbind (REST `DELETE /hosts/{id}/ports/{port}`): the previous host is remembered."""
        current = self.store.get(Port, port.id)
        return self._update(Port, port.id, host_id=None, interface_name=None, previous_host_id=current.host_id)

    # ---- chains ----

    def chain(self, name: str) -> Chain:
        chain = Chain(id=new_id(), name=name)
        self.store.create(chain)
        return chain

    def rule(self, chain: Chain, action: RuleAction | str, **fields: Any) -> Rule:
        """Append a literal rule; `fields` are `Condition` fields (tp_dst=(80, 80) becomes a PortRange)."""
        for key in ("tp_src", "tp_dst"):
            if isinstance(fields.get(key), tuple):
                fields[key] = PortRange(start=fields[key][0], end=fields[key][1])
        rule = Rule(id=new_id(), chain_id=chain.id, type=RuleType.LITERAL, action=RuleAction(action),
                    condition=Condition(**fields))
        self.store.create(rule)
        return rule

    def nat(self, chain: Chain, kind: str, *targets: str | tuple[str, str, int, int],
            action: RuleAction | str = "accept", **fields: Any) -> Rule:
        """Append a NAT rule of `kind` "dnat", "snat", "rev_dnat" or "rev_snat" (as `TopologyBuilder.nat`): a
        target is an address (static when alone) or (first address, last address, first port, last port)."""
        for key in ("tp_src", "tp_dst"):
            if isinstance(fields.get(key), tuple):
                fields[key] = PortRange(start=fields[key][0], end=fields[key][1])
        nat_targets = tuple(NatTarget(nw_start=t, nw_end=t) if isinstance(t, str)
                            else NatTarget(nw_start=t[0], nw_end=t[1], tp_start=t[2], tp_end=t[3]) for t in targets)
        rule = Rule(id=new_id(), chain_id=chain.id, type=RuleType.NAT, action=RuleAction(action),
                    condition=Condition(**fields), nat_targets=nat_targets, dnat=kind in ("dnat", "rev_dnat"),
                    reverse=kind.startswith("rev_"))
        self.store.create(rule)
        return rule

    def filters(self, cls: type[R], ident: str, *, inbound: Chain | None = None,
                outbound: Chain | None = None) -> R:
        """Set a bridge's, router's or port's inbound and/or outbound filter."""
        changes: dict[str, Any] = {}
        if inbound is not None:
            changes["inbound_filter_id"] = inbound.id
        if outbound is not None:
            changes["outbound_filter_id"] = outbound.id
        return self._update(cls, ident, **changes)

    # ---- port groups and load balancers ----

    def port_group(self, name: str, *ports: Port, stateful: bool = False) -> PortGroup:
        """A port group of `ports` (the store lists it in each port's `port_group_ids`)."""
        group = PortGroup(id=new_id(), name=name, stateful=stateful, port_ids=tuple(p.id for p in ports))
        self.store.create(group)
        return group

    def load_balancer(self, router: Router) -> LoadBalancer:
        """A load balancer on `router` (the router's `load_balancer_id` points to it)."""
        lb = LoadBalancer(id=new_id())
        self.store.create(lb)
        self._update(Router, router.id, load_balancer_id=lb.id)
        return self.store.get(LoadBalancer, lb.id)

    def pool(self, lb: LoadBalancer, **kw: Any) -> Pool:
        pool = Pool(id=new_id(), load_balancer_id=lb.id, **kw)
        self.store.create(pool)
        return pool

    def member(self, pool: Pool, address: str, port: int, *, weight: int = 1, **kw: Any) -> PoolMember:
        member = PoolMember(id=new_id(), pool_id=pool.id, address=address, protocol_port=port, weight=weight, **kw)
        self.store.create(member)
        return member

    def vip(self, pool: Pool, address: str, port: int, *, sticky: bool = False, **kw: Any) -> Vip:
        """A VIP of `pool`; `sticky`: source-IP session persistence."""
        vip = Vip(id=new_id(), pool_id=pool.id, address=address, protocol_port=port,
                  session_persistence=SessionPersistence.SOURCE_IP if sticky else None, **kw)
        self.store.create(vip)
        return vip

    # ---- hosts and tunnel zones ----

    def tunnel_zone(self, name: str, zone_type: TunnelZoneType = TunnelZoneType.VXLAN) -> TunnelZone:
        zone = TunnelZone(id=new_id(), name=name, type=zone_type)
        self.store.create(zone)
        return zone

    def join(self, zone: TunnelZone, host_id: str, ip: str) -> TunnelZone:
        """Add a host (which must exist) to a tunnel zone with its underlay address."""
        member = TunnelZoneHost(host_id=host_id, ip=ip)

        def add(obj: Record) -> Record:
            assert isinstance(obj, TunnelZone)
            kept = tuple(h for h in obj.hosts if h.host_id != host_id)
            return dataclasses.replace(obj, hosts=(*kept, member))

        self.store.multi([UpdateWith(TunnelZone, zone.id, add)])
        return self.store.get(TunnelZone, zone.id)

    def host(self, host_id: str) -> Host:
        return self.store.get(Host, host_id)

    # ---- removal ----

    def delete(self, cls: type[Record], ident: str) -> None:
        self.store.multi([Delete(cls, ident)])
