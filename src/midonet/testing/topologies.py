"""Topologies as records, built in a few readable lines: for simulation tests, scenarios and benchmarks.

Role: `TopologyBuilder` makes the topology records (`midonet.topology`) a virtual network is made of, with
deterministic ids and the links both ways, the way the API would store them (a router port gets its LOCAL /32
route, a chain lists its rules in order). No store and no API: `builder.topology()` hands the records to
`simulation.mappers.InMemoryTopology`. `two_subnet_router()` builds the spec's reference topology (section 11).

    b = TopologyBuilder()
    left = b.bridge("left")
    vm1 = b.exterior_port(left, "vm1")
    r = b.router("r")
    b.link(b.router_port(r, "10.0.1.254/24"), b.interior_port(left))
    b.route(r, "10.0.1.0/24", via=...)
    b.mirror_on(vm1, b.mirror(analyser_port, nw_proto=1), "inbound")
    b.dhcp_subnet(left, "10.0.1.0/24", gateway="10.0.1.254", hosts={"02:00:00:00:01:01": "10.0.1.1"})
    b.nat(b.chain("in"), "dnat", "10.0.1.1", nw_dst_ip="192.0.2.10/32")        # a floating IP's inbound half
    b.vip(pool := b.pool(b.load_balancer(r)), "10.0.2.100", 80); b.member(pool, "10.0.1.1", 8080)
    topology = b.topology()

May import: `midonet.topology`, `midonet.simulation`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from midonet.simulation.mappers import InMemoryTopology
from midonet.topology.chains import Chain, Condition, NatTarget, PortRange, Rule, RuleAction, RuleType
from midonet.topology.devices import Bridge, NextHop, Port, Route, Router
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.l4lb import LoadBalancer, Pool, PoolMember, SessionPersistence, Vip
from midonet.topology.record import Record
from midonet.topology.services import DhcpHost, DhcpOption, DhcpSubnet, Mirror, Opt121Route

R = TypeVar("R", bound=Record)

HOST_ID = "00000000-0000-4000-8000-0000000000aa"


class TopologyBuilder:
    """Records with deterministic ids, kept up to date as links and filters are added."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._next = 0
        self.records: dict[str, Record] = {}
        self.names: dict[str, str] = {}       # name -> id

    # ---- plumbing ----

    def new_id(self, name: str | None = None) -> str:
        self._next += 1     # the counter leads the id, so ids stay readable in traces ("00000007-...")
        ident = str(uuid.UUID(int=(self._next << 96) | self._seed, version=4))
        if name is not None:
            self.names[name] = ident
        return ident

    def add(self, record: R) -> R:
        self.records[record.id] = record
        return record

    def get(self, cls: type[R], ident: str) -> R:
        found = self.records[ident]
        assert isinstance(found, cls)
        return found

    def update(self, record: R, **changes: Any) -> R:
        """Replace the current version of `record` with `changes` applied; returns the new version."""
        current = cast(R, self.records[record.id])
        return self.add(dataclasses.replace(current, **changes))

    def topology(self, **kw: Any) -> InMemoryTopology:
        return InMemoryTopology(self.records.values(), **kw)

    # ---- devices and ports ----

    def bridge(self, name: str, **kw: Any) -> Bridge:
        return self.add(Bridge(id=self.new_id(name), name=name, **kw))

    def router(self, name: str, **kw: Any) -> Router:
        return self.add(Router(id=self.new_id(name), name=name, **kw))

    def exterior_port(self, bridge: Bridge, name: str, *, host_id: str = HOST_ID, **kw: Any) -> Port:
        """A bridge port bound to interface `name` on a host (a VM's port)."""
        port = self.add(Port(id=self.new_id(name), network_id=bridge.id, host_id=host_id, interface_name=name,
                             **kw))
        self._attach(bridge, port)
        return port

    def interior_port(self, bridge: Bridge, name: str | None = None, **kw: Any) -> Port:
        """A bridge port to be linked (`link`) to a router port or another bridge."""
        port = self.add(Port(id=self.new_id(name), network_id=bridge.id, **kw))
        self._attach(bridge, port)
        return port

    def router_port(self, router: Router, address: str, mac: str, name: str | None = None, **kw: Any) -> Port:
        """A router port with `address` given as "10.0.1.254/24", its MAC, and its LOCAL /32 route."""
        iface = ipaddress.ip_interface(address)
        port = self.add(Port(id=self.new_id(name), router_id=router.id, port_address=str(iface.ip),
                             port_subnet=str(iface.network), port_mac=mac, **kw))
        self.update(router, port_ids=(*self.get(Router, router.id).port_ids, port.id))
        self.route(router, f"{iface.ip}/32", port, next_hop=NextHop.LOCAL, weight=0)
        return port

    def _attach(self, bridge: Bridge, port: Port) -> None:
        self.update(bridge, port_ids=(*self.get(Bridge, bridge.id).port_ids, port.id))

    def link(self, a: Port, b: Port) -> tuple[Port, Port]:
        """Link two interior ports (both peer ids set)."""
        return self.update(a, peer_id=b.id), self.update(b, peer_id=a.id)

    def route(self, router: Router, dst: str, port: Port | None = None, *, gateway: str | None = None,
              src: str = "0.0.0.0/0", weight: int = 100, next_hop: NextHop = NextHop.PORT) -> Route:
        route = self.add(Route(id=self.new_id(), router_id=router.id, dst_subnet=dst, src_subnet=src,
                               next_hop=next_hop, next_hop_port_id=port.id if port else None,
                               next_hop_gateway=gateway, weight=weight))
        self.update(router, route_ids=(*self.get(Router, router.id).route_ids, route.id))
        return route

    # ---- chains ----

    def chain(self, name: str) -> Chain:
        return self.add(Chain(id=self.new_id(name), name=name))

    def rule(self, chain: Chain, action: RuleAction | str, condition: Condition | None = None,
             **fields: Any) -> Rule:
        """Append a literal rule; `fields` are `Condition` fields (tp_dst=(80, 80) becomes a PortRange)."""
        for key in ("tp_src", "tp_dst"):
            if isinstance(fields.get(key), tuple):
                fields[key] = PortRange(start=fields[key][0], end=fields[key][1])
        cond = condition if condition is not None else Condition(**fields)
        return self.append(chain, Rule(id=self.new_id(), chain_id=chain.id, type=RuleType.LITERAL,
                                        action=RuleAction(action), condition=cond))

    def jump(self, chain: Chain, target: Chain, condition: Condition | None = None, **fields: Any) -> Rule:
        cond = condition if condition is not None else Condition(**fields)
        return self.append(chain, Rule(id=self.new_id(), chain_id=chain.id, type=RuleType.JUMP,
                                        action=RuleAction.JUMP, jump_chain_id=target.id, condition=cond))

    def append(self, chain: Chain, rule: Rule) -> Rule:
        """Append any rule (NAT, trace ...) to `chain`."""
        self.add(rule)
        self.update(chain, rule_ids=(*self.get(Chain, chain.id).rule_ids, rule.id))
        return rule

    def filters(self, device: R, inbound: Chain | None = None, outbound: Chain | None = None) -> R:
        """Set a bridge's, router's or port's inbound and/or outbound filter."""
        changes = {}
        if inbound is not None:
            changes["inbound_filter_id"] = inbound.id
        if outbound is not None:
            changes["outbound_filter_id"] = outbound.id
        return self.update(device, **changes)

    # ---- NAT and load balancing ----

    def nat(self, chain: Chain, kind: str, *targets: str | tuple[str, str, int, int],
            action: RuleAction | str = "accept", condition: Condition | None = None, **fields: Any) -> Rule:
        """Append a NAT rule of `kind` "dnat", "snat", "rev_dnat" or "rev_snat". A target is an address
        ("192.0.2.10": a static rule when it is the only one) or (first address, last address, first port, last
        port): dynamic. `fields` are `Condition` fields, as for `rule`."""
        for key in ("tp_src", "tp_dst"):
            if isinstance(fields.get(key), tuple):
                fields[key] = PortRange(start=fields[key][0], end=fields[key][1])
        cond = condition if condition is not None else Condition(**fields)
        nat_targets = tuple(NatTarget(nw_start=t, nw_end=t) if isinstance(t, str)
                            else NatTarget(nw_start=t[0], nw_end=t[1], tp_start=t[2], tp_end=t[3]) for t in targets)
        return self.append(chain, Rule(id=self.new_id(), chain_id=chain.id, type=RuleType.NAT,
                                        action=RuleAction(action), condition=cond, nat_targets=nat_targets,
                                        dnat=kind in ("dnat", "rev_dnat"), reverse=kind.startswith("rev_")))

    def load_balancer(self, router: Router, name: str | None = None, **kw: Any) -> LoadBalancer:
        """A load balancer on `router` (the router's `load_balancer_id` points to it)."""
        lb = self.add(LoadBalancer(id=self.new_id(name), router_id=router.id, **kw))
        self.update(router, load_balancer_id=lb.id)
        return lb

    def pool(self, lb: LoadBalancer, name: str | None = None, **kw: Any) -> Pool:
        pool = self.add(Pool(id=self.new_id(name), load_balancer_id=lb.id, **kw))
        self.update(lb, pool_ids=(*self.get(LoadBalancer, lb.id).pool_ids, pool.id))
        return pool

    def member(self, pool: Pool, address: str, port: int, *, weight: int = 1, name: str | None = None,
               **kw: Any) -> PoolMember:
        member = self.add(PoolMember(id=self.new_id(name), pool_id=pool.id, address=address, protocol_port=port,
                                     weight=weight, **kw))
        self.update(pool, pool_member_ids=(*self.get(Pool, pool.id).pool_member_ids, member.id))
        return member

    def vip(self, pool: Pool, address: str, port: int, *, sticky: bool = False, name: str | None = None,
            **kw: Any) -> Vip:
        """A VIP of `pool`; `sticky`: source-IP session persistence (one backend per client address)."""
        vip = self.add(Vip(id=self.new_id(name), pool_id=pool.id, address=address, protocol_port=port,
                           session_persistence=SessionPersistence.SOURCE_IP if sticky else None, **kw))
        self.update(pool, vip_ids=(*self.get(Pool, pool.id).vip_ids, vip.id))
        return vip

    # ---- mirrors, DHCP, VTEPs ----

    def mirror(self, to_port: Port, *conditions: Condition, name: str | None = None, **fields: Any) -> Mirror:
        """A mirror copying to `to_port` what matches any of `conditions` (or one `Condition(**fields)`)."""
        for key in ("tp_src", "tp_dst"):
            if isinstance(fields.get(key), tuple):
                fields[key] = PortRange(start=fields[key][0], end=fields[key][1])
        conds = conditions or (Condition(**fields),)
        mirror = self.add(Mirror(id=self.new_id(name), to_port_id=to_port.id, conditions=conds))
        self.update(to_port, mirror_ids=(*self.get(Port, to_port.id).mirror_ids, mirror.id))
        return mirror

    _MIRROR_BACKREFS = {
        (Port, "inbound"): "port_inbound_ids", (Port, "outbound"): "port_outbound_ids",
        (Port, "post_in_filter"): "port_post_in_filter_ids", (Port, "pre_out_filter"): "port_pre_out_filter_ids",
        (Bridge, "inbound"): "network_inbound_ids", (Bridge, "outbound"): "network_outbound_ids",
        (Router, "inbound"): "router_inbound_ids", (Router, "outbound"): "router_outbound_ids",
    }

    def mirror_on(self, device: R, mirror: Mirror, where: str) -> R:
        """Attach `mirror` to a port, bridge or router at `where`: "inbound" (a port's pre-in-filter),
        "post_in_filter", "pre_out_filter" (ports only) or "outbound" (a port's post-out-filter)."""
        backref = self._MIRROR_BACKREFS[(type(device), where)]
        field = f"{where}_mirror_ids"
        current = self.records[device.id]
        self.update(mirror, **{backref: (*getattr(self.get(Mirror, mirror.id), backref), device.id)})
        return self.update(device, **{field: (*getattr(current, field), mirror.id)})

    def dhcp_subnet(self, bridge: Bridge, cidr: str, *, gateway: str | None = None,
                    hosts: dict[str, str] | None = None, routes: tuple[tuple[str, str], ...] = (),
                    extra: dict[str, tuple[tuple[str, str], ...]] | None = None, **kw: Any) -> DhcpSubnet:
        """A DHCP subnet on `bridge`; `hosts` maps MAC -> address, `routes` are (destination CIDR, gateway)
        option 121 routes, `extra` maps a host MAC to its extra options as (name, value) pairs."""
        extra = extra or {}
        subnet = self.add(DhcpSubnet(
            id=self.new_id(), network_id=bridge.id, subnet_address=cidr, default_gateway=gateway,
            opt121_routes=tuple(Opt121Route(dst_subnet=d, gateway=g) for d, g in routes),
            hosts=tuple(DhcpHost(mac=mac, ip_address=ip, extra_dhcp_opts=tuple(
                DhcpOption(name=n, value=v) for n, v in extra.get(mac, ()))) for mac, ip in (hosts or {}).items()),
            **kw))
        self.update(bridge, dhcp_ids=(*self.get(Bridge, bridge.id).dhcp_ids, subnet.id))
        return subnet

    def vxlan_port(self, bridge: Bridge, name: str | None = None, *, vtep_id: str | None = None,
                   **kw: Any) -> Port:
        """A bridge's VXLAN port towards a hardware VTEP (exterior for the simulation, spec 5.2)."""
        port = self.add(Port(id=self.new_id(name), network_id=bridge.id, vtep_id=vtep_id or self.new_id(), **kw))
        self._attach(bridge, port)
        self.update(bridge, vxlan_port_ids=(*self.get(Bridge, bridge.id).vxlan_port_ids, port.id))
        return port

    def port_group(self, name: str, *ports: Port, stateful: bool = False) -> PortGroup:
        return self.add(PortGroup(id=self.new_id(name), name=name, stateful=stateful,
                                  port_ids=tuple(p.id for p in ports)))

    def ip_addr_group(self, name: str, *addresses: str) -> IPAddrGroup:
        return self.add(IPAddrGroup(id=self.new_id(name), name=name, addresses=addresses))


@dataclass(frozen=True)
class Vm:
    """A VM on an exterior bridge port: its port, MAC and address."""

    name: str
    port: Port
    mac: str
    ip: str


@dataclass
class TwoSubnetRouter:
    """The reference topology (spec 11): router `router` with ports .254 on 10.0.1.0/24 (bridge `left`) and
    10.0.2.0/24 (bridge `right`); one route per subnet (weight 100) besides the LOCAL /32 routes; VMs on
    exterior ports (`vms["l1"]` = 10.0.1.1 ..., `vms["r1"]` = 10.0.2.1 ...)."""

    builder: TopologyBuilder
    router: Router
    left: Bridge
    right: Bridge
    left_router_port: Port
    right_router_port: Port
    left_link: Port
    right_link: Port
    vms: dict[str, Vm]

    def topology(self, **kw: Any) -> InMemoryTopology:
        return self.builder.topology(**kw)

    def port(self, record: Port) -> Port:
        """The current version of a port record (after links and filters were added)."""
        return self.builder.get(Port, record.id)


LEFT_ROUTER_MAC = "02:00:00:00:ff:01"
RIGHT_ROUTER_MAC = "02:00:00:00:ff:02"


def two_subnet_router(vms_per_bridge: int = 2, builder: TopologyBuilder | None = None) -> TwoSubnetRouter:
    b = builder or TopologyBuilder()
    router = b.router("router")
    left, right = b.bridge("left"), b.bridge("right")
    lrp = b.router_port(router, "10.0.1.254/24", LEFT_ROUTER_MAC, "router-left")
    rrp = b.router_port(router, "10.0.2.254/24", RIGHT_ROUTER_MAC, "router-right")
    llink, rlink = b.interior_port(left, "left-link"), b.interior_port(right, "right-link")
    lrp, llink = b.link(lrp, llink)
    rrp, rlink = b.link(rrp, rlink)
    b.route(router, "10.0.1.0/24", lrp)
    b.route(router, "10.0.2.0/24", rrp)
    vms: dict[str, Vm] = {}
    for side, bridge, net in (("l", left, 1), ("r", right, 2)):
        for i in range(1, vms_per_bridge + 1):
            name = f"{side}{i}"
            port = b.exterior_port(bridge, name)
            vms[name] = Vm(name, port, f"02:00:00:00:{net:02x}:{i:02x}", f"10.0.{net}.{i}")
    return TwoSubnetRouter(b, router, left, right, lrp, rrp, llink, rlink, vms)
