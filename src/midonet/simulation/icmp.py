"""The packets a router generates about a packet: ICMP errors, echo replies, ARP replies and requests (spec 3.4).

Role: builds the frames and hands them to the context as generated packets, to be simulated afterwards from the
egress of the port they leave by. Routers call it; the bridge calls `arp_reply` for ARP suppression.

ICMP errors (the original's `Icmp.scala`):
* are built from the packet as it entered the router (`ctx.pre_routing_match`, the pre-NAT view): source = the
  ingress port's address, destination = the packet's source, Ethernet destination = its source MAC; the payload
  quotes the offending datagram's IP header and first 8 data bytes, with the header as the router saw it;
* are never sent about an ICMP error, an L2 multicast or broadcast frame, an IP multicast or broadcast
  destination (255.255.255.255 or the ingress port's subnet broadcast), a 255.255.255.255 or multicast source, or
  a fragment other than the first.
The decision reads the packet with `peek`: it is a side effect of this packet only, never part of the flow
(generated packets never install flows), so it must not widen the wildcard.

An error or an echo reply is an IP packet the router sends itself, so it is routed (spec 3.4, the original's
`Router.sendIPPacket`): the routing table gives its out port (no PORT route: it is not sent; nor to the out port's
own address); the next hop's MAC is the sender's when it leaves by the port the packet came in by, else what the
router knows of the next hop (a peer port, the peer bridge's tables, the ARP cache -- on a miss an ARP request goes
out and the reply is not sent, where the original would wait); then the router's outbound filters run on it in a
context of its own, with empty NAT and conntrack tables (so a static SNAT applies: an echo reply from a DNAT'd
address leaves from the address the client pinged), and what they rewrote is written into the frame. A DROP or
REJECT there means no reply. It is then sent from the egress of its out port.

May import: `midonet.packets`, `midonet.state`, `simulation.context`, `simulation.topology`, `simulation.ipmath`,
`simulation.devices.chain`.
"""

from __future__ import annotations

from midonet.packets import arp, ethernet, ipv4
from midonet.packets import frame as frames
from midonet.packets import icmp as icmp_packets
from midonet.packets.errors import MalformedPacket
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP, ETH_TYPE_IPV4, EthernetHeader
from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.simulation.context import PacketContext
from midonet.simulation.devices.chain import ACCEPT, apply_filters
from midonet.simulation.ipmath import ip_int
from midonet.simulation.pipeline import Stage
from midonet.simulation.routing import RouteEntry
from midonet.simulation.topology import BridgePortDevice, RouterDevice, RouterPortDevice
from midonet.state.tables import in_memory
from midonet.topology.devices import NextHop
from midonet.topology.ids import PortId

UNREACHABLE = icmp_packets.TYPE_UNREACHABLE
TIME_EXCEEDED = icmp_packets.TYPE_TIME_EXCEEDED
NET_UNREACHABLE = icmp_packets.CODE_NET_UNREACHABLE
HOST_UNREACHABLE = icmp_packets.CODE_HOST_UNREACHABLE
FRAG_NEEDED = icmp_packets.CODE_FRAG_NEEDED
PROHIBITED = icmp_packets.CODE_PROHIBITED

_ALL_ONES = 0xFFFFFFFF
_MULTICAST = (0xE0000000, 0xF0000000)   # 224.0.0.0/4


def why_no_error(ctx: PacketContext, port: RouterPortDevice) -> str | None:
    """Why no ICMP error may be sent about this packet, or None if one may."""
    pre = ctx.pre_routing_match
    if port.address is None:
        return "the ingress port has no IPv4 address"
    if pre.peek("eth_type") != ETH_TYPE_IPV4:
        return "not IPv4"
    if pre.peek("ip_proto") == 1 and pre.peek("tp_src") in icmp_packets.ERROR_TYPES:
        return "never about an ICMP error"
    if ethernet.is_multicast(str(pre.peek("eth_dst"))):
        return "L2 multicast or broadcast"
    if pre.peek("ip_frag") == "later":
        return "not the first fragment"
    dst, src = ip_int(str(pre.peek("ip_dst"))), ip_int(str(pre.peek("ip_src")))
    if dst == _ALL_ONES or dst & _MULTICAST[1] == _MULTICAST[0] or dst == port.subnet_broadcast:
        return "IP multicast or broadcast destination"
    if src == _ALL_ONES or src & _MULTICAST[1] == _MULTICAST[0]:
        return "IP broadcast or multicast source"
    return None


def send_error(ctx: PacketContext, port: RouterPortDevice, kind: int, code: int, reason: str) -> bool:
    """Generate ICMP `kind`/`code` about the current packet out of `port` (the ingress port); False if not allowed."""
    refused = why_no_error(ctx, port)
    if refused is None:
        try:
            datagram = _quoted_datagram(ctx)
        except MalformedPacket as e:
            refused = f"cannot quote the packet: {e}"
    if refused is not None:
        if ctx.trace is not None:
            ctx.note(Stage.ROUTER_ROUTING, port.device_id, f"no ICMP {reason}: {refused}")
        return False
    if kind == TIME_EXCEEDED:
        message = icmp_packets.time_exceeded(datagram)
    else:
        message = icmp_packets.unreachable(code, datagram)
    pre = ctx.pre_routing_match
    _send_ip(ctx, port, str(pre.peek("eth_src")), str(pre.peek("ip_src")), message.pack(), f"ICMP {reason}")
    return True


def send_echo_reply(ctx: PacketContext, port: RouterPortDevice) -> bool:
    """Answer the ICMP echo request in the current packet, from its destination address; False if unreadable."""
    try:
        _, payload = ethernet.parse(ctx.frame)
        _, body = ipv4.parse(payload)
        reply = icmp_packets.echo_reply(icmp_packets.parse(body))
    except (MalformedPacket, ValueError):
        return False
    m = ctx.match
    _send_ip(ctx, port, str(m.peek("eth_src")), str(m.peek("ip_src")), reply.pack(), "ICMP echo reply",
             src=str(m.peek("ip_dst")))
    return True


def _send_ip(ctx: PacketContext, port: RouterPortDevice, mac: str, dst: str, icmp_bytes: bytes, reason: str,
             src: str | None = None) -> None:
    """Route an IP packet the router of `port` (the ingress port) sends to `dst` whose sender is at `mac`."""
    source = src or str(port.address)
    router = ctx.topology.get_router(port.router_id)
    route = router.routing_table.lookup(FlowMatch(ip_src=source, ip_dst=dst))
    if route is None or route.next_hop is not NextHop.PORT or route.port is None:
        ctx.note(Stage.ROUTER_ROUTING, router.id, f"{reason} to {dst}: no route, not sent")
        return
    out = ctx.topology.get_port(route.port)
    if not isinstance(out, RouterPortDevice) or dst == out.address:
        ctx.note(Stage.ROUTER_ROUTING, router.id, f"{reason} to {dst}: not sent by port {route.port[:8]}")
        return
    next_mac = mac if out.id == port.id else _next_hop_mac(ctx, router, out, route, dst)
    if next_mac is None:
        ctx.note(Stage.ROUTER_NEXT_HOP, router.id, f"{reason} to {dst}: next hop unresolved, not sent")
        return
    header = ipv4.IPv4Header(src=source, dst=dst, proto=ipv4.PROTO_ICMP)
    frame: bytes | None = ethernet.build(EthernetHeader(dst=next_mac, src=out.mac, eth_type=ETH_TYPE_IPV4),
                                         ipv4.build(header, icmp_bytes))
    if router.outbound_filters and frame is not None:
        frame = _outbound_filters(ctx, router, out, frame, reason)
    if frame is not None:
        ctx.generate(out.id, frame, reason)


def _next_hop_mac(ctx: PacketContext, router: RouterDevice, out: RouterPortDevice, route: RouteEntry,
                  dst: str) -> str | None:
    """The next hop's MAC as the router knows it, without waiting: a miss asks by ARP and answers None."""
    ip = route.gateway or dst
    if out.peer_id is not None:
        peer = ctx.topology.get_port(out.peer_id)
        if isinstance(peer, RouterPortDevice):
            return peer.mac
        if isinstance(peer, BridgePortDevice):
            bridge = ctx.topology.get_bridge(peer.bridge_id)
            known = bridge.router_macs_by_ip.get(ip) or ctx.tables.ip4_mac.lookup(bridge.id, ip)
            if known is not None:
                return known
    elif not out.in_subnet(ip):
        return None
    entry = ctx.tables.arp_cache.lookup(router.id, ip)
    if entry is None or entry.stale:
        arp_request(ctx, out, ip)
    return entry.mac if entry is not None else None


def _outbound_filters(ctx: PacketContext, router: RouterDevice, out: RouterPortDevice, frame: bytes,
                      reason: str) -> bytes | None:
    """The router's outbound filters on a packet it generated, in a context of its own with empty NAT and
    conntrack tables; the frame with what they rewrote, or None if they did not accept it."""
    sub = PacketContext(frame, parse_frame(frame), egress_port=out.id)
    sub.trace = ctx.trace
    sub.topology = ctx.topology
    sub.tables = in_memory(_NO_CLOCK)
    sub.current_device = router.id
    sub.out_port, sub.out_port_groups = out.id, out.port_groups
    action = apply_filters(sub, router.outbound_filters, Stage.ROUTER_OUT_FILTER)
    if action is not ACCEPT:
        ctx.note(Stage.ROUTER_OUT_FILTER, router.id, f"{reason}: outbound filter answered {action.value}, not sent")
        return None
    changes = {k: v for k, v in sub.match.diff(sub.orig_match).items() if k in frames.APPLICABLE}
    return frames.apply(frame, changes) if changes else frame


class _NoClock:
    """The clock of the throw-away tables a generated packet's filters run with: nothing there ages."""

    def now(self) -> float:
        return 0.0


_NO_CLOCK = _NoClock()


def _quoted_datagram(ctx: PacketContext) -> bytes:
    """The packet's IP datagram from the frame, with its header as the router saw it (addresses, TTL)."""
    _, datagram = ethernet.parse(ctx.frame)
    pre = ctx.pre_routing_match
    quoted = bytearray(icmp_packets.embedded_bytes(datagram))
    ttl = pre.peek("ip_ttl")
    if isinstance(ttl, int):
        quoted[8] = ttl
    src, dst = pre.peek("ip_src"), pre.peek("ip_dst")
    return icmp_packets.rewrite_embedded(bytes(quoted), ip_src=src if isinstance(src, str) else None,
                                         ip_dst=dst if isinstance(dst, str) else None)


def arp_reply(ctx: PacketContext, port: PortId, mac: str, reason: str) -> None:
    """Answer the ARP request in the current packet: its target address is at `mac`; sent out of `port`."""
    m = ctx.match
    request = arp.ArpPacket(op=arp.OP_REQUEST, sha=str(m.peek("arp_sha")), spa=str(m.peek("arp_spa")),
                            tha=str(m.peek("arp_tha")), tpa=str(m.peek("arp_tpa")))
    answer = arp.reply(request, mac)
    frame = ethernet.build(EthernetHeader(dst=request.sha, src=mac, eth_type=ETH_TYPE_ARP), answer.pack())
    ctx.generate(port, frame, reason)


def arp_request(ctx: PacketContext, port: RouterPortDevice, ip: str) -> None:
    """Ask "who has `ip`?" out of router port `port` (resolving a next hop)."""
    question = arp.request(port.mac, str(port.address), ip)
    frame = ethernet.build(EthernetHeader(dst=BROADCAST, src=port.mac, eth_type=ETH_TYPE_ARP), question.pack())
    ctx.generate(port.id, frame, f"ARP request for {ip}")
