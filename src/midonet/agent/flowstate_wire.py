"""Flow-state messages on the wire: what agents tell each other about connections (spec 2.4, 4.4, 4.5).

Role: the encoding of the in-band flow-state packets (`agent.flowstate` sends and receives them) and of the records
of the local flow-state log (`agent.flowstate_storage` keeps the same bytes on disk). The original encodes an SBE
`FlowState` message (spec 2.4); this is a simpler fixed layout of the same content, versioned and bounded.

A message travels as a frame of its own, tunnelled with the reserved tunnel key 0xFFFFFF (`FLOW_STATE_TUNNEL_KEY`)
to each interested host, *before* the data packet it is about::

    Ethernet ac:ca:ba:00:15:01 -> ac:ca:ba:00:15:02, IPv4 169.254.15.1 -> 169.254.15.2 (TOS 184),
    UDP 2925 -> 2925 (checksummed), payload = one message of at most MAX_PAYLOAD bytes

Identical headers on every message: the same flow hash, so one receiver worker sees them in order (spec 4.4).

The message (network byte order; ids are UUIDs, 16 bytes; addresses IPv4, 4 bytes)::

    header   version(1)=1 kind(1) flags(1) n_egress(1) n_conntrack(1) n_nat(1) reserved(2)=0
             sender host id(16) request id(4)
    ports    [ingress port id(16), if flags & HAS_INGRESS] egress port id(16) x n_egress
    conntrack  x n_conntrack: src ip(4) src port(2) dst ip(4) dst port(2) proto(1) device(16)          29 bytes
    nat        x n_nat: type(1) src ip(4) src port(2) dst ip(4) dst port(2) proto(1) device(16)
                        binding ip(4) binding port(2)                                                    36 bytes

    kind   STATE (1)     keys a simulation created or refreshed, with the ports of its flow (spec 4.4)
           REQUEST (2)   "send me the state of port <ingress>": a host a port moved to asks its previous host
                         (spec 4.5); no keys; `request id` names the exchange
           RESPONSE (3)  the answer, as STATE messages carrying the request id; flags & LAST marks the final one
    NAT types as the original's SBE schema: FWD_DNAT 1, FWD_STICKY_DNAT 2, REV_DNAT 3, REV_STICKY_DNAT 4,
    FWD_SNAT 5, REV_SNAT 6.

Bounded: a message is at most `MAX_PAYLOAD` bytes (a 1,500-byte underlay MTU less the VXLAN and inner headers: the
original allows 1,430 and counts on a larger MTU), so `encode` splits a large one (many egress ports, many keys)
into several, each complete in itself. Robust: `decode` checks the version, every count against the length (no
byte left over), every enumerated value; anything else is `MalformedFlowState`, which the receiver counts and drops.

May import: `midonet.packets`, `midonet.state` (the key types).
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass, replace

from midonet.packets import MalformedPacket, ethernet, ipv4, udp
from midonet.state.conntrack import ConnTrackKey
from midonet.state.nat import NatBinding, NatKey, NatKeyType

VERSION = 1
FLOW_STATE_TUNNEL_KEY = 0xFFFFFF
ETH_SRC, ETH_DST = "ac:ca:ba:00:15:01", "ac:ca:ba:00:15:02"
IP_SRC, IP_DST = "169.254.15.1", "169.254.15.2"
UDP_PORT = 2925
CONTROL_TOS = 184                  # `datapath.control_packet_tos`
FRAME_OVERHEAD = 14 + 20 + 8       # inner Ethernet, IPv4, UDP
MAX_PAYLOAD = 1500 - 50 - FRAME_OVERHEAD
"""Largest message: the inner frame plus VXLAN encapsulation (50 bytes) fit a 1,500-byte underlay MTU."""
MAX_EGRESS_PER_MESSAGE = 32

HAS_INGRESS = 0x01
LAST = 0x02
_KNOWN_FLAGS = HAS_INGRESS | LAST

_HEADER = struct.Struct("!BBBBBBH16sI")
_CONNTRACK = struct.Struct("!4sH4sHB16s")
_NAT = struct.Struct("!B4sH4sHB16s4sH")
_ID = 16

_NAT_CODES = {NatKeyType.FWD_DNAT: 1, NatKeyType.FWD_STICKY_DNAT: 2, NatKeyType.REV_DNAT: 3,
              NatKeyType.REV_STICKY_DNAT: 4, NatKeyType.FWD_SNAT: 5, NatKeyType.REV_SNAT: 6}
_NAT_TYPES = {code: kind for kind, code in _NAT_CODES.items()}


class MessageKind(enum.IntEnum):
    STATE = 1
    REQUEST = 2
    RESPONSE = 3


_KINDS = frozenset(int(k) for k in MessageKind)


class MalformedFlowState(ValueError):
    """A flow-state message that does not decode (truncated, trailing bytes, unknown version or values)."""


@dataclass(frozen=True, slots=True)
class FlowStateMessage:
    """One message (see the module docstring); `ingress_port` is the port asked for in a REQUEST."""

    sender: str
    kind: MessageKind = MessageKind.STATE
    ingress_port: str | None = None
    egress_ports: tuple[str, ...] = ()
    conntrack: tuple[ConnTrackKey, ...] = ()
    nat: tuple[tuple[NatKey, NatBinding], ...] = ()
    request_id: int = 0
    last: bool = True

    @property
    def ports(self) -> tuple[str, ...]:
        """Every port the message names (ingress first)."""
        return self.egress_ports if self.ingress_port is None else (self.ingress_port, *self.egress_ports)

    @property
    def has_keys(self) -> bool:
        return bool(self.conntrack or self.nat)


# ---- encoding ----

def _id(text: str) -> bytes:
    return uuid.UUID(text).bytes


def _ip(text: str) -> bytes:
    return ipv4.ip_to_bytes(text)


def _pack(message: FlowStateMessage) -> bytes:
    flags = (HAS_INGRESS if message.ingress_port is not None else 0) | (LAST if message.last else 0)
    out = [_HEADER.pack(VERSION, message.kind, flags, len(message.egress_ports), len(message.conntrack),
                        len(message.nat), 0, _id(message.sender), message.request_id)]
    out.extend(_id(p) for p in message.ports)
    for k in message.conntrack:
        out.append(_CONNTRACK.pack(_ip(k.ip_src), k.tp_src, _ip(k.ip_dst), k.tp_dst, k.proto, _id(k.device)))
    for n, b in message.nat:
        out.append(_NAT.pack(_NAT_CODES[n.type], _ip(n.ip_src), n.tp_src, _ip(n.ip_dst), n.tp_dst, n.proto,
                             _id(n.device), _ip(b.ip), b.port))
    return b"".join(out)


def encode(message: FlowStateMessage) -> list[bytes]:
    """The message as one or more payloads of at most `MAX_PAYLOAD` bytes (only the last keeps `last`);
    `ValueError` for an id that is not a UUID or a value out of range."""
    if not 0 <= message.request_id <= 0xFFFFFFFF:
        raise ValueError(f"request id {message.request_id} out of range")
    groups = [message.egress_ports[i:i + MAX_EGRESS_PER_MESSAGE]
              for i in range(0, len(message.egress_ports), MAX_EGRESS_PER_MESSAGE)] or [()]
    parts: list[FlowStateMessage] = []
    for egress in groups:
        room = MAX_PAYLOAD - _HEADER.size - _ID * (len(egress) + (message.ingress_port is not None))
        conntrack, nat = list(message.conntrack), list(message.nat)
        if not conntrack and not nat:
            parts.append(replace(message, egress_ports=egress, last=False))
            continue
        while conntrack or nat:
            n_ct = min(len(conntrack), 255, room // _CONNTRACK.size)
            n_nat = min(len(nat), 255, (room - n_ct * _CONNTRACK.size) // _NAT.size)
            parts.append(replace(message, egress_ports=egress, conntrack=tuple(conntrack[:n_ct]),
                                 nat=tuple(nat[:n_nat]), last=False))
            del conntrack[:n_ct], nat[:n_nat]
    parts[-1] = replace(parts[-1], last=message.last)
    try:
        return [_pack(p) for p in parts]
    except (struct.error, KeyError) as e:
        raise ValueError(f"cannot encode {message}: {e}") from e


# ---- decoding ----

class _Reader:
    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, layout: struct.Struct, what: str) -> tuple[object, ...]:
        if self.at + layout.size > len(self.data):
            raise MalformedFlowState(f"{what} cut short at byte {self.at} of {len(self.data)}")
        values = layout.unpack_from(self.data, self.at)
        self.at += layout.size
        return tuple(values)

    def uuid(self, what: str) -> str:
        if self.at + _ID > len(self.data):
            raise MalformedFlowState(f"{what} cut short at byte {self.at} of {len(self.data)}")
        raw = self.data[self.at:self.at + _ID]
        self.at += _ID
        return str(uuid.UUID(bytes=raw))


def _text_ip(raw: object) -> str:
    assert isinstance(raw, bytes)
    return ipv4.ip_from_bytes(raw)


def _text_id(raw: object) -> str:
    assert isinstance(raw, bytes)
    return str(uuid.UUID(bytes=raw))


def _int(raw: object) -> int:
    assert isinstance(raw, int)
    return raw


def decode(payload: bytes) -> FlowStateMessage:
    """The message in `payload`; `MalformedFlowState` if it is not exactly one well-formed message."""
    if not payload:
        raise MalformedFlowState("empty message")
    if payload[0] != VERSION:
        raise MalformedFlowState(f"unsupported version {payload[0]}")
    r = _Reader(payload)
    _, kind, flags, n_egress, n_ct, n_nat, reserved, sender, request_id = r.take(_HEADER, "header")
    if _int(kind) not in _KINDS:
        raise MalformedFlowState(f"unknown message kind {kind}")
    if _int(flags) & ~_KNOWN_FLAGS or reserved:
        raise MalformedFlowState(f"unknown flags {flags:#x} / reserved {reserved}")
    ingress = r.uuid("ingress port") if _int(flags) & HAS_INGRESS else None
    egress = tuple(r.uuid("egress port") for _ in range(_int(n_egress)))
    conntrack = []
    for _ in range(_int(n_ct)):
        src, sport, dst, dport, proto, device = r.take(_CONNTRACK, "conntrack key")
        conntrack.append(ConnTrackKey(_text_ip(src), _int(sport), _text_ip(dst), _int(dport), _int(proto),
                                      _text_id(device)))
    nat = []
    for _ in range(_int(n_nat)):
        code, src, sport, dst, dport, proto, device, bip, bport = r.take(_NAT, "NAT key")
        kind_of = _NAT_TYPES.get(_int(code))
        if kind_of is None:
            raise MalformedFlowState(f"unknown NAT key type {code}")
        nat.append((NatKey(kind_of, _text_ip(src), _int(sport), _text_ip(dst), _int(dport), _int(proto),
                           _text_id(device)), NatBinding(_text_ip(bip), _int(bport))))
    if r.at != len(payload):
        raise MalformedFlowState(f"{len(payload) - r.at} bytes after the message")
    message = FlowStateMessage(_text_id(sender), MessageKind(_int(kind)), ingress, egress, tuple(conntrack),
                               tuple(nat), _int(request_id), bool(_int(flags) & LAST))
    if message.kind is MessageKind.REQUEST and (ingress is None or message.has_keys or egress):
        raise MalformedFlowState("a request names one port and carries no keys")
    return message


# ---- frames ----

def frame(payload: bytes) -> bytes:
    """The inner frame that carries `payload` (see the module docstring)."""
    datagram = udp.build(udp.UdpHeader(UDP_PORT, UDP_PORT), payload, IP_SRC, IP_DST)
    packet = ipv4.build(ipv4.IPv4Header(src=IP_SRC, dst=IP_DST, proto=ipv4.PROTO_UDP, tos=CONTROL_TOS), datagram)
    return ethernet.build(ethernet.EthernetHeader(ETH_DST, ETH_SRC, ethernet.ETH_TYPE_IPV4), packet)


def payload_of(data: bytes) -> bytes:
    """The message `frame` carries; `MalformedFlowState` if it is not a flow-state frame or is damaged."""
    try:
        eth, body = ethernet.parse(data)
        if eth.eth_type != ethernet.ETH_TYPE_IPV4 or eth.vlans:
            raise MalformedFlowState(f"not an IPv4 frame (EtherType {eth.eth_type:#06x})")
        ip, segment = ipv4.parse(body, verify=True)
        if ip.proto != ipv4.PROTO_UDP or ip.is_fragment:
            raise MalformedFlowState(f"not an unfragmented UDP datagram (protocol {ip.proto})")
        header, payload = udp.parse(segment)
        if header.dst_port != UDP_PORT or not udp.is_checksum_valid(segment[:header.length], ip.src, ip.dst):
            raise MalformedFlowState(f"not a flow-state datagram (port {header.dst_port}) or a bad checksum")
    except MalformedPacket as e:
        raise MalformedFlowState(str(e)) from e
    if len(payload) > MAX_PAYLOAD:
        raise MalformedFlowState(f"a message of {len(payload)} bytes is over {MAX_PAYLOAD}")
    return payload
