"""The router: ARP, routing, TTL, ICMP and next-hop resolution (spec 3.4; `RouterBase.scala`, `Router.scala`).

Role: `process(ctx, router, in_port)` decides what a router does with a packet that entered by `in_port`:

1. remember the packet as it entered (`pre_routing_match`: ICMP errors quote it); strip a VLAN 0 priority tag,
   drop other VLAN-tagged frames and EtherTypes other than IPv4 and ARP; a router administratively down sends
   ICMP filter-prohibited and drops;
2. inbound mirrors; an L2 broadcast is ARP (handled) or dropped; a destination MAC other than the ingress
   port's drops; ARP is handled here and never routed:
   * a request for the ingress port's address from inside its subnet: learn the sender (`ArpLearned`) and reply
     with the port's MAC; a gratuitous request (tpa = spa, tha = 0) from inside: learn;
   * a reply to the port's address and MAC, or a gratuitous reply, from inside the subnet: learn;
3. load balancer inbound (`devices.load_balancer`): ACCEPT (load balanced to a backend) skips the inbound filters,
   DROP drops; inbound filters [local redirect chain, inbound filter] (NAT rules among them): DROP of a first
   fragment sends ICMP frag-needed (temporary drop), other DROPs drop; REJECT sends ICMP admin-prohibited and drops;
4. routing (`routing.RoutingTable`): no route -> ICMP net unreachable, short drop; LOCAL -> an echo request
   to a port address is answered (Consumed), anything else drops temporarily; BLACKHOLE -> temporary drop;
   REJECT -> ICMP admin-prohibited, short drop; PORT -> TTL: at most 1 -> ICMP time exceeded, temporary drop,
   else decremented (not across service-container ports);
5. post-routing: an out port without an address, or a packet for the out port's own address, drops; set the
   out port; load balancer outbound (a backend's reply translated back): ACCEPT skips the outbound filters, DROP
   drops; outbound filters [forward chain, outbound filter];
6. next hop: the route's gateway, else the destination. Interior out port: a peer router port's MAC, or the peer
   bridge's router-port / seeded IPv4 -> MAC tables; else the router's ARP cache. A miss sends an ARP request from
   the out port and answers "not yet" (`NotYet("arp", ...)`); a stale hit is used and refreshed by an ARP request.
   An exterior out port whose subnet does not hold the next hop: ICMP host (direct) or net (gateway) unreachable,
   temporary drop. Rewrite Ethernet source = out port MAC, destination = next hop MAC; outbound mirrors (they see
   the rewritten MACs and TTL); to the out port's egress.

Flow tags: the router; for a route other than a /32, ("route", id) and ("dst_ip", router, destination); the ARP
entry ("arp", router, next hop).

ICMP errors and echo replies the router sends are routed through its outbound filters (`simulation.icmp`).

Not yet here: VXLAN L2 router ports (spec 3.4.2), BGP traffic to LOCAL, FIP64.

May import: `midonet.packets`, `midonet.state`, `simulation.*`, `simulation.devices.{chain,mirror,load_balancer}`.
"""

from __future__ import annotations

from midonet.packets.arp import OP_REPLY, OP_REQUEST, ZERO_MAC
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP, ETH_TYPE_IPV4
from midonet.simulation import icmp
from midonet.simulation.context import PacketContext
from midonet.simulation.devices import load_balancer
from midonet.simulation.devices.chain import ACCEPT, CONTINUE, DROP, REJECT, apply_filters
from midonet.simulation.devices.mirror import mirror_in, mirror_out
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Consumed, Drop, Step, TemporaryDrop, TemporaryDropKind, ToPort
from midonet.simulation.routing import RouteEntry
from midonet.simulation.topology import BridgePortDevice, NotYet, RouterDevice, RouterPortDevice
from midonet.state.arp_cache import ArpLearned
from midonet.topology.chains import RuleAction
from midonet.topology.devices import NextHop

SHORT = TemporaryDropKind.SHORT
_ICMP = 1
_ECHO_REQUEST = 8


def process(ctx: PacketContext, router: RouterDevice, in_port: RouterPortDevice) -> Step:
    m = ctx.match
    ctx.pre_routing_match = m.copy()
    ctx.tags.add(router.id)
    vlans = m.vlan_ids
    if vlans:
        if vlans != (0,):
            return Drop("VLAN-tagged frame on a router")
        m.vlan_ids = ()
    eth_type = m.eth_type
    if eth_type != ETH_TYPE_IPV4 and eth_type != ETH_TYPE_ARP:
        return Drop(f"EtherType {eth_type:#06x} is neither IPv4 nor ARP" if eth_type else "no EtherType")
    if not router.admin_state_up:
        icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.PROHIBITED, "filter prohibited (router down)")
        return Drop("router is administratively down")
    if router.inbound_mirror_ids:
        return mirror_in(ctx, router.inbound_mirror_ids, Stage.ROUTER_PRE_IN_MIRRORS, router.id,
                         lambda: _pre_routing(ctx, router, in_port))
    return _pre_routing(ctx, router, in_port)


def _pre_routing(ctx: PacketContext, router: RouterDevice, in_port: RouterPortDevice) -> Step:
    """L2 checks, ARP, inbound filters, routing (the original's `preRouting`), after the inbound mirrors."""
    m = ctx.match
    eth_type = m.eth_type
    dst_mac = m.eth_dst
    if dst_mac == BROADCAST:
        if eth_type == ETH_TYPE_ARP:
            return _arp(ctx, router, in_port)
        return Drop("L2 broadcast other than ARP")
    if dst_mac != in_port.mac:
        return Drop(f"destination MAC {dst_mac} is not the ingress port's {in_port.mac}")
    if eth_type == ETH_TYPE_ARP:
        return _arp(ctx, router, in_port)
    ctx.out_port = None
    ctx.out_port_groups = frozenset()
    if router.load_balancer_id is not None:
        balanced = load_balancer.inbound(ctx, ctx.topology.get_load_balancer(router.load_balancer_id))
        if balanced is DROP:
            return Drop("load balancer: no valid backend for the VIP")
        if balanced is ACCEPT:
            return _route(ctx, router, in_port)
    if router.inbound_filters:
        action = apply_filters(ctx, router.inbound_filters, Stage.ROUTER_IN_FILTER)
        if action is not ACCEPT:
            return _refused_in(ctx, in_port, action)
    return _route(ctx, router, in_port)


def _refused_in(ctx: PacketContext, in_port: RouterPortDevice, action: RuleAction) -> Step:
    """The inbound filter did not accept (the original's `dropIn` and `reject`)."""
    if action is DROP:
        if ctx.match.ip_frag == "first":
            icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.FRAG_NEEDED, "fragmentation needed")
            return TemporaryDrop("router inbound filter dropped a first fragment")
        return Drop("router inbound filter: drop")
    if action is REJECT:
        icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.PROHIBITED, "admin prohibited (inbound filter)")
        return Drop("router inbound filter: reject")
    return TemporaryDrop(f"router inbound filter answered {action.value}")


def _route(ctx: PacketContext, router: RouterDevice, in_port: RouterPortDevice) -> Step:
    m = ctx.match
    route = router.routing_table.lookup(m)
    if route is None:
        icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.NET_UNREACHABLE, "net unreachable (no route)")
        return TemporaryDrop(f"no route to {m.ip_dst}", SHORT)
    if ctx.trace is not None:
        ctx.note(Stage.ROUTER_ROUTING, router.id, f"route {route}")
    next_hop = route.next_hop
    if next_hop is NextHop.PORT and route.port is not None:
        out_port = ctx.topology.get_port(route.port)
        if not isinstance(out_port, RouterPortDevice):
            return TemporaryDrop(f"route {route.id} leaves by {route.port}, not a port of this router")
        ttl = m.ip_ttl
        if ttl is not None and not (in_port.service_container or out_port.service_container):
            if ttl <= 1:
                icmp.send_error(ctx, in_port, icmp.TIME_EXCEEDED, 0, "time exceeded")
                return TemporaryDrop("TTL expired")
            m.ip_ttl = ttl - 1
        if route.dst.length != 32:
            ctx.tags.add(("route", route.id))
            ctx.tags.add(("dst_ip", router.id, m.ip_dst))
        return _post_routing(ctx, router, in_port, out_port, route)
    if next_hop is NextHop.LOCAL:
        if m.ip_proto == _ICMP and m.tp_src == _ECHO_REQUEST and m.tp_dst == 0:
            icmp.send_echo_reply(ctx, in_port)
            return Consumed(f"ICMP echo request to {m.ip_dst} answered by the router")
        return TemporaryDrop(f"traffic to the router's own address {m.ip_dst} other than ping")
    if next_hop is NextHop.BLACKHOLE:
        return TemporaryDrop(f"blackhole route {route.dst}")
    if next_hop is NextHop.REJECT:
        icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.PROHIBITED, "admin prohibited (reject route)")
        return TemporaryDrop(f"reject route {route.dst}", SHORT)
    return TemporaryDrop(f"route {route.id}: next hop {next_hop.value} is not simulated")


def _post_routing(ctx: PacketContext, router: RouterDevice, in_port: RouterPortDevice,
                  out_port: RouterPortDevice, route: RouteEntry) -> Step:
    m = ctx.match
    if out_port.address is None:
        return Drop("out port has no IPv4 address")
    if m.ip_dst == out_port.address:
        return Drop("packet for the out port's own address (no LOCAL route)")
    ctx.out_port = out_port.id
    ctx.out_port_groups = out_port.port_groups
    reply = CONTINUE
    if router.load_balancer_id is not None:
        reply = load_balancer.outbound(ctx, ctx.topology.get_load_balancer(router.load_balancer_id))
        if reply is DROP:
            return Drop("load balancer: a reply from a backend that is no longer valid")
    if router.outbound_filters and reply is not ACCEPT:
        action = apply_filters(ctx, router.outbound_filters, Stage.ROUTER_OUT_FILTER)
        if action is not ACCEPT:
            if action is REJECT:
                icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.PROHIBITED,
                                "admin prohibited (outbound filter)")
            if action is DROP or action is REJECT:
                return Drop(f"router outbound filter: {action.value}")
            return TemporaryDrop(f"router outbound filter answered {action.value}")
    mac = _next_hop_mac(ctx, router, out_port, route)
    if mac is None:
        if route.gateway is None:
            icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.HOST_UNREACHABLE, "host unreachable")
            return TemporaryDrop(f"{m.ip_dst} is not in the subnet of the out port")
        icmp.send_error(ctx, in_port, icmp.UNREACHABLE, icmp.NET_UNREACHABLE, "net unreachable (gateway)")
        return TemporaryDrop(f"gateway {route.gateway} is not in the subnet of the out port")
    m.eth_src = out_port.mac
    m.eth_dst = mac
    if ctx.trace is not None:
        ctx.note(Stage.ROUTER_NEXT_HOP, router.id, f"next hop MAC {mac}: out by port {out_port.id[:8]}")
    if router.outbound_mirror_ids:
        return mirror_out(ctx, router.outbound_mirror_ids, Stage.ROUTER_POST_OUT_MIRRORS, router.id,
                          ToPort(out_port.id))
    return ToPort(out_port.id)


def _next_hop_mac(ctx: PacketContext, router: RouterDevice, out_port: RouterPortDevice,
                  route: RouteEntry) -> str | None:
    ip = route.gateway or str(ctx.match.ip_dst)
    if out_port.peer_id is not None:
        peer = ctx.topology.get_port(out_port.peer_id)
        if isinstance(peer, RouterPortDevice):
            return peer.mac
        if isinstance(peer, BridgePortDevice):
            bridge = ctx.topology.get_bridge(peer.bridge_id)
            mac = bridge.router_macs_by_ip.get(ip) or ctx.tables.ip4_mac.lookup(bridge.id, ip)
            if mac is not None:
                return mac
    elif not out_port.in_subnet(ip):
        return None
    ctx.tags.add(("arp", router.id, ip))
    entry = ctx.tables.arp_cache.lookup(router.id, ip)
    if entry is None:
        icmp.arp_request(ctx, out_port, ip)
        if ctx.trace is not None:
            ctx.note(Stage.ROUTER_NEXT_HOP, router.id, f"{ip} not in the ARP table: ARP request, wait")
        raise NotYet("arp", f"{router.id}/{ip}")
    if entry.stale:
        icmp.arp_request(ctx, out_port, ip)
    return entry.mac


def _arp(ctx: PacketContext, router: RouterDevice, port: RouterPortDevice) -> Step:
    """ARP to a router port: learn and answer; never routed (the original's `processArp`)."""
    m = ctx.match
    op = m.arp_op
    if op != OP_REQUEST and op != OP_REPLY:
        return Drop(f"ARP operation {op} is neither request nor reply")
    if port.address is None:
        return Consumed("ARP on a router port without an IPv4 address: ignored")
    spa, tpa, sha, tha = m.arp_spa, m.arp_tpa, str(m.arp_sha), m.arp_tha
    if not port.in_subnet(spa):
        return Consumed(f"ARP from {spa}, outside the port's subnet: ignored")
    if op == OP_REQUEST:
        if tpa == spa and tha == ZERO_MAC:
            _learn(ctx, router, str(spa), sha)
            return Consumed(f"gratuitous ARP request: {spa} is at {sha}")
        if tpa != port.address:
            return Consumed(f"ARP request for {tpa}, not the port's address: ignored")
        _learn(ctx, router, str(spa), sha)
        icmp.arp_reply(ctx, port.id, port.mac, f"ARP reply for {tpa}")
        return Consumed(f"ARP request for {tpa} answered by the router")
    if not (tpa == spa and tha == sha) and not (tpa == port.address and tha == port.mac):
        return Consumed("ARP reply neither for this port nor gratuitous: ignored")
    _learn(ctx, router, str(spa), sha)
    return Consumed(f"ARP reply: {spa} is at {sha}")


def _learn(ctx: PacketContext, router: RouterDevice, ip: str, mac: str) -> None:
    ctx.request(ArpLearned(router.id, ip, mac))
    if ctx.trace is not None:
        ctx.note(Stage.ROUTER_ARP, router.id, f"learn {ip} at {mac}")
