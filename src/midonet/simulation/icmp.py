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

Simplification (until NAT lands): an error or echo reply leaves by the ingress port towards the packet's source
MAC; the original routes it through the router's outbound filter first (static SNAT on replies).

May import: `midonet.packets`, `simulation.context`, `simulation.topology`, `simulation.ipmath`.
"""

from __future__ import annotations

from midonet.packets import arp, ethernet, ipv4
from midonet.packets import icmp as icmp_packets
from midonet.packets.errors import MalformedPacket
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP, ETH_TYPE_IPV4, EthernetHeader
from midonet.simulation.context import PacketContext
from midonet.simulation.ipmath import ip_int
from midonet.simulation.pipeline import Stage
from midonet.simulation.topology import RouterPortDevice
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
    header = ipv4.IPv4Header(src=src or str(port.address), dst=dst, proto=ipv4.PROTO_ICMP)
    frame = ethernet.build(EthernetHeader(dst=mac, src=port.mac, eth_type=ETH_TYPE_IPV4),
                           ipv4.build(header, icmp_bytes))
    ctx.generate(port.id, frame, reason)


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
