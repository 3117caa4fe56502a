"""scapy as the independent oracle (test-only; never imported under src/).

`fields(raw)` reads a frame with scapy into FlowMatch's field names; `rebuilds_identically(raw)` has scapy recompute
every length and checksum of the frame and says whether it gets our bytes back.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet

ERROR_TYPES = (3, 11, 12)


def _frag_kind(ip: Any) -> str:
    if ip.frag:
        return "later"
    return "first" if ip.flags.MF else "none"


def _l4(ip: Any) -> Packet | None:
    """The transport layer right after ``ip`` (not one quoted inside an ICMP error), if scapy decoded one."""
    layer = ip.payload
    return layer if isinstance(layer, TCP | UDP | ICMP) else None


def fields(raw: bytes) -> dict[str, object]:
    """The FlowMatch fields of ``raw`` as scapy decodes it (in_port left out)."""
    pkt = Ether(raw)
    out: dict[str, object] = {name: None for name in (
        "arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa", "ip_src", "ip_dst", "ip_proto", "ip_tos", "ip_ttl",
        "ip_frag", "tp_src", "tp_dst", "icmp_id", "icmp_data")}  # fmt: skip
    vids, layer, eth_type = [], pkt.payload, pkt.type
    while isinstance(layer, Dot1Q):
        vids.append(layer.vlan)
        eth_type, layer = layer.type, layer.payload
    out.update(eth_src=pkt.src, eth_dst=pkt.dst, eth_type=eth_type, vlan_ids=tuple(vids))
    if isinstance(layer, ARP):
        out.update(arp_op=layer.op, arp_sha=layer.hwsrc, arp_spa=layer.psrc, arp_tha=layer.hwdst, arp_tpa=layer.pdst)
    elif isinstance(layer, IP):
        ip: Any = layer
        out.update(ip_src=ip.src, ip_dst=ip.dst, ip_proto=ip.proto, ip_tos=ip.tos, ip_ttl=ip.ttl,
                   ip_frag=_frag_kind(ip))  # fmt: skip
        l4: Any = _l4(ip)
        if isinstance(l4, TCP | UDP):
            out.update(tp_src=l4.sport, tp_dst=l4.dport)
        elif isinstance(l4, ICMP):
            out.update(tp_src=l4.type, tp_dst=l4.code)
            if l4.type in (0, 8):
                out["icmp_id"] = l4.id
            elif l4.type in ERROR_TYPES:
                out["icmp_data"] = bytes(l4.payload)
    return out


def rebuilds_identically(raw: bytes) -> bool:
    """Whether scapy, recomputing every IPv4 / TCP / UDP / ICMP length and checksum, produces ``raw`` again."""
    pkt = Ether(raw)
    ip: Any = pkt.getlayer(IP)
    if ip is not None:
        del ip.chksum, ip.len
        l4: Any = _l4(ip)
        if l4 is not None and not ip.frag and not ip.flags.MF:
            if not (isinstance(l4, UDP) and l4.chksum == 0):
                del l4.chksum
            if isinstance(l4, UDP):
                del l4.len
    return bytes(pkt) == raw
