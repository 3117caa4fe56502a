"""Frames a test sends into a simulated network: UDP, TCP, ICMP echo, ARP, in one call each.

Role: thin keyword wrappers over `midonet.packets.frame.build`, with the defaults a test wants (TTL 64, a small
payload), so a scenario reads as what it sends: ``udp(src_mac, dst_mac, "10.0.1.1", "10.0.2.1", dport=80)``.

May import: `midonet.packets`.
"""

from __future__ import annotations

from midonet.packets import dhcp as dhcp_packets
from midonet.packets import frame
from midonet.packets.arp import OP_REPLY, OP_REQUEST, ZERO_MAC
from midonet.packets.ethernet import BROADCAST
from midonet.packets.flowmatch import FlowMatch, IpFrag

PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17


def udp(eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, *, sport: int = 10000, dport: int = 80,
        ttl: int = 64, tos: int = 0, frag: IpFrag | None = None, vlans: tuple[int, ...] = (),
        payload: bytes = b"payload") -> bytes:
    return frame.build(FlowMatch(eth_src=eth_src, eth_dst=eth_dst, vlan_ids=vlans, ip_src=ip_src, ip_dst=ip_dst,
                                 ip_proto=PROTO_UDP, ip_ttl=ttl, ip_tos=tos, ip_frag=frag, tp_src=sport,
                                 tp_dst=dport), payload)


def tcp(eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, *, sport: int = 10000, dport: int = 80,
        ttl: int = 64, payload: bytes = b"") -> bytes:
    return frame.build(FlowMatch(eth_src=eth_src, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst,
                                 ip_proto=PROTO_TCP, ip_ttl=ttl, tp_src=sport, tp_dst=dport), payload)


def ping(eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, *, ident: int = 7, seq: int = 1, ttl: int = 64,
         payload: bytes = b"ping-data") -> bytes:
    """An ICMP echo request."""
    return frame.build(FlowMatch(eth_src=eth_src, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst,
                                 ip_proto=PROTO_ICMP, ip_ttl=ttl, tp_src=8, tp_dst=0, icmp_id=ident),
                       payload, icmp_seq=seq)


def pong(eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, *, ident: int = 7, seq: int = 1, ttl: int = 64,
         payload: bytes = b"ping-data") -> bytes:
    """An ICMP echo reply."""
    return frame.build(FlowMatch(eth_src=eth_src, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst,
                                 ip_proto=PROTO_ICMP, ip_ttl=ttl, tp_src=0, tp_dst=0, icmp_id=ident),
                       payload, icmp_seq=seq)


def icmp_error(eth_src: str, eth_dst: str, ip_src: str, ip_dst: str, quoted: bytes, *, kind: int = 3,
               code: int = 1, ttl: int = 64) -> bytes:
    """An ICMP error (`kind`/`code`, destination unreachable by default) quoting the datagram `quoted`."""
    return frame.build(FlowMatch(eth_src=eth_src, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst,
                                 ip_proto=PROTO_ICMP, ip_ttl=ttl, tp_src=kind, tp_dst=code, icmp_data=quoted))


def arp_request(sha: str, spa: str, tpa: str, *, eth_dst: str = BROADCAST, vlans: tuple[int, ...] = ()) -> bytes:
    """Who has `tpa`? Tell `spa` (at `sha`). Broadcast unless `eth_dst` says otherwise."""
    return frame.build(FlowMatch(eth_src=sha, eth_dst=eth_dst, vlan_ids=vlans, arp_op=OP_REQUEST, arp_sha=sha,
                                 arp_spa=spa, arp_tha=ZERO_MAC, arp_tpa=tpa))


def arp_reply(sha: str, spa: str, tha: str, tpa: str, *, eth_dst: str | None = None) -> bytes:
    """`spa` is at `sha`, told to `tpa` at `tha` (unicast to `tha` unless `eth_dst` says otherwise)."""
    return frame.build(FlowMatch(eth_src=sha, eth_dst=eth_dst or tha, arp_op=OP_REPLY, arp_sha=sha, arp_spa=spa,
                                 arp_tha=tha, arp_tpa=tpa))


def garp(mac: str, ip: str) -> bytes:
    """A gratuitous ARP request: `ip` is at `mac`, broadcast."""
    return frame.build(FlowMatch(eth_src=mac, eth_dst=BROADCAST, arp_op=OP_REQUEST, arp_sha=mac, arp_spa=ip,
                                 arp_tha=ZERO_MAC, arp_tpa=ip))


def dhcp(mac: str, kind: int, *, xid: int = 0x1234, requested: str | None = None, server: str | None = None,
         ip_src: str = "0.0.0.0", ip_dst: str = "255.255.255.255", eth_dst: str = BROADCAST,
         chaddr: str | None = None, params: tuple[int, ...] = (1, 3, 6, 26, 28, 51, 54, 121)) -> bytes:
    """A DHCP client message of type `kind` (`packets.dhcp.DISCOVER`, `REQUEST` ...) from `mac`, UDP 68 -> 67,
    broadcast unless told otherwise; `requested` and `server` set options 50 and 54."""
    options = dhcp_packets.DhcpOptions(message_type=kind, requested_ip=requested, server_id=server,
                                       parameter_request_list=params)
    message = dhcp_packets.DhcpMessage(op=dhcp_packets.OP_REQUEST, xid=xid, chaddr=chaddr or mac,
                                       flags=dhcp_packets.FLAG_BROADCAST,
                                       options=dhcp_packets.encode_options(options))
    return frame.build(FlowMatch(eth_src=mac, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst, ip_proto=PROTO_UDP,
                                 tp_src=dhcp_packets.CLIENT_PORT, tp_dst=dhcp_packets.SERVER_PORT),
                       dhcp_packets.build(message))
