"""VXLAN: the 8-byte header with its 24-bit VNI, and whole-frame encapsulation between hosts.

Role: the overlay (ARCHITECTURE.md "Deliberate differences": VXLAN, not GRE). Between agents the VNI carries the
tunnel key that names the egress port (spec 5.1); towards a hardware VTEP it is the bridge's VNI (spec 5.2). The
Linux datapath lets the kernel encapsulate (collect_md tunnels); this module is for the in-memory datapath, the
testbed and tests: `build` / `parse` the header, `encapsulate` / `decapsulate` a whole outer frame.

May import: `midonet.packets.errors`, `ethernet`, `ipv4`, `udp`.

Reference: RFC 7348 (section 5: header, UDP port 4789, source port from a hash of the inner headers, UDP
checksum SHOULD be zero).

Wire format::

    flags(1) = 0x08 (I: VNI valid)  reserved(3)  VNI(3)  reserved(1)

Invariants: `parse` raises `MalformedPacket` for fewer than 8 bytes or a header without the I flag; reserved bits
are ignored on receipt and written as zero. `source_port` is a pure function of the inner frame's first 38 bytes
(addresses and, for untagged IPv4, ports), so one inner flow always takes one underlay path.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from midonet.packets import ethernet, ipv4, udp
from midonet.packets.errors import MalformedPacket

__all__ = ["HEADER_LENGTH", "UDP_PORT", "Decapsulated", "build", "decapsulate", "encapsulate", "parse", "source_port"]

UDP_PORT = 4789
HEADER_LENGTH = 8
FLAG_VNI = 0x08
MAX_VNI = 0xFFFFFF
OVERHEAD = ethernet.HEADER_LENGTH + ipv4.HEADER_LENGTH + udp.HEADER_LENGTH + HEADER_LENGTH  # 50 bytes


def build(vni: int, inner: bytes) -> bytes:
    """The VXLAN header for ``vni`` followed by the inner Ethernet frame."""
    if not 0 <= vni <= MAX_VNI:
        raise ValueError(f"VNI out of range: {vni}")
    return bytes((FLAG_VNI, 0, 0, 0)) + vni.to_bytes(3, "big") + b"\x00" + inner


def parse(data: bytes) -> tuple[int, bytes]:
    """The VNI and inner frame of the VXLAN packet ``data`` (a UDP payload)."""
    if len(data) < HEADER_LENGTH:
        raise MalformedPacket("vxlan", f"{len(data)} bytes are shorter than the 8-byte header")
    if not data[0] & FLAG_VNI:
        raise MalformedPacket("vxlan", f"flags {data[0]:#04x} lack the I (VNI valid) flag")
    return int.from_bytes(data[4:7], "big"), bytes(data[HEADER_LENGTH:])


def source_port(inner: bytes) -> int:
    """A UDP source port in the ephemeral range 49152-65535 from a hash of the inner frame's headers."""
    return 49152 | (zlib.crc32(inner[:38]) & 0x3FFF)


@dataclass(frozen=True, slots=True)
class Decapsulated:
    """What a tunnel endpoint learns from a VXLAN frame: the outer addresses, the VNI and the inner frame."""

    outer_eth_src: str
    outer_eth_dst: str
    outer_ip_src: str
    outer_ip_dst: str
    outer_tos: int
    outer_ttl: int
    vni: int
    inner: bytes


def encapsulate(
    inner: bytes,
    *,
    vni: int,
    eth_src: str,
    eth_dst: str,
    ip_src: str,
    ip_dst: str,
    ttl: int = 64,
    tos: int = 0,
    src_port: int | None = None,
    dst_port: int = UDP_PORT,
    udp_checksum: bool = False,
) -> bytes:
    """The whole underlay frame carrying ``inner``: Ethernet / IPv4 (DF set) / UDP / VXLAN / inner frame."""
    port = source_port(inner) if src_port is None else src_port
    segment = udp.build(udp.UdpHeader(port, dst_port), build(vni, inner), ip_src, ip_dst, with_checksum=udp_checksum)
    header = ipv4.IPv4Header(src=ip_src, dst=ip_dst, proto=ipv4.PROTO_UDP, ttl=ttl, tos=tos, flags=ipv4.FLAG_DF)
    outer = ethernet.EthernetHeader(dst=eth_dst, src=eth_src, eth_type=ethernet.ETH_TYPE_IPV4)
    return ethernet.build(outer, ipv4.build(header, segment))


def decapsulate(frame: bytes, *, port: int = UDP_PORT) -> Decapsulated:
    """The outer addresses, VNI and inner frame of an underlay frame; `MalformedPacket` if it is not VXLAN to ``port``.

    The outer datagram must not be a fragment (VXLAN endpoints do not reassemble; RFC 7348 section 4.3).
    """
    outer, payload = ethernet.parse(frame)
    if outer.eth_type != ethernet.ETH_TYPE_IPV4:
        raise MalformedPacket("vxlan", f"outer EtherType {outer.eth_type:#06x} is not IPv4")
    header, segment = ipv4.parse(payload)
    if header.proto != ipv4.PROTO_UDP or header.is_fragment:
        raise MalformedPacket("vxlan", "outer datagram is not an unfragmented UDP datagram")
    udp_header, data = udp.parse(segment)
    if udp_header.dst_port != port:
        raise MalformedPacket("vxlan", f"UDP destination port {udp_header.dst_port} is not {port}")
    vni, inner = parse(data)
    return Decapsulated(outer.src, outer.dst, header.src, header.dst, header.tos, header.ttl, vni, inner)
