"""DHCP: BOOTP messages and the options MidoNet's DHCP service reads and serves.

Role: the agent intercepts DHCP requests from VM ports and answers them from the bridge's DHCP subnets (spec 3.11,
``DhcpImpl.scala``): the offered address, mask, gateway, DNS servers, domain, interface MTU, lease time, server id
and host routes (option 121). `parse` decodes a message (the UDP payload between ports 68 and 67) into a
`DhcpMessage` holding its raw options in order; `DhcpOptions` is the typed view of the options we understand,
with `decode_options` / `encode_options` between the two; `reply` makes the OFFER / ACK / NAK for a request.

May import: `midonet.packets.errors`, `midonet.packets.ipv4`.

Reference: RFC 2131 (BOOTP fields, message flow), RFC 2132 (options 1, 3, 6, 12, 15, 26, 28, 50-55, 61), RFC 3442
(121, classless static routes), RFC 3396 (an option longer than 255 bytes is split into several instances, which
a decoder concatenates).

Wire format::

    op(1) htype(1) hlen(1) hops(1) xid(4) secs(2) flags(2) ciaddr(4) yiaddr(4) siaddr(4) giaddr(4)
    chaddr(16) sname(64) file(128) magic cookie 99.130.83.99 (4) options: code(1) len(1) data, ..., END(255)

Invariants: `parse` raises `MalformedPacket` for a message shorter than the fixed part, a wrong magic cookie, an
option running past the end, or (in `decode_options`) an option whose length does not fit its type. Options
overloaded into the sname/file fields (option 52) are not read. `build` pads the message to the 300-byte BOOTP
minimum (RFC 1542 section 2.1) unless told otherwise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from midonet.packets.errors import MalformedPacket
from midonet.packets.ipv4 import ip_from_bytes, ip_to_bytes

__all__ = [
    "CLIENT_PORT",
    "SERVER_PORT",
    "ClasslessRoute",
    "DhcpMessage",
    "DhcpOptions",
    "build",
    "decode_options",
    "encode_options",
    "parse",
    "reply",
]

SERVER_PORT = 67
CLIENT_PORT = 68
OP_REQUEST = 1
OP_REPLY = 2
MAGIC = b"\x63\x82\x53\x63"
FLAG_BROADCAST = 0x8000
MIN_LENGTH = 300

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)

OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_DOMAIN_NAME = 15
OPT_MTU = 26
OPT_BROADCAST = 28
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETER_REQUEST = 55
OPT_CLIENT_ID = 61
OPT_CLASSLESS_ROUTES = 121
OPT_END = 255

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s4s")


@dataclass(frozen=True, slots=True)
class ClasslessRoute:
    """One RFC 3442 route: ``destination/prefix_len`` via ``router`` (router 0.0.0.0: on-link)."""

    destination: str
    prefix_len: int
    router: str


@dataclass(frozen=True, slots=True)
class DhcpOptions:
    """The options we understand, typed; unset ones are None or empty."""

    message_type: int | None = None
    subnet_mask: str | None = None
    routers: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    hostname: str | None = None
    domain_name: str | None = None
    interface_mtu: int | None = None
    broadcast_address: str | None = None
    requested_ip: str | None = None
    lease_time: int | None = None
    server_id: str | None = None
    parameter_request_list: tuple[int, ...] = ()
    client_id: bytes | None = None
    classless_routes: tuple[ClasslessRoute, ...] = ()


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """A BOOTP/DHCP message. `options` are (code, data) in wire order, PAD and END left out."""

    op: int
    xid: int
    chaddr: str
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    flags: int = 0
    secs: int = 0
    hops: int = 0
    htype: int = 1
    sname: bytes = b""
    file: bytes = b""
    options: tuple[tuple[int, bytes], ...] = field(default=())

    def option(self, code: int) -> bytes | None:
        """The data of option ``code`` (instances concatenated, RFC 3396), or None."""
        parts = [data for c, data in self.options if c == code]
        return b"".join(parts) if parts else None

    @property
    def message_type(self) -> int | None:
        raw = self.option(OPT_MESSAGE_TYPE)
        return raw[0] if raw and len(raw) == 1 else None

    def decoded(self) -> DhcpOptions:
        return decode_options(self.options)


def _split_options(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    options: list[tuple[int, bytes]] = []
    i = 0
    while i < len(raw):
        code = raw[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(raw) or i + 2 + raw[i + 1] > len(raw):
            raise MalformedPacket("dhcp", f"option {code} runs past the end of the message")
        options.append((code, bytes(raw[i + 2 : i + 2 + raw[i + 1]])))
        i += 2 + raw[i + 1]
    return tuple(options)


def parse(data: bytes) -> DhcpMessage:
    """The DHCP message ``data`` (a UDP payload)."""
    if len(data) < _FIXED.size:
        raise MalformedPacket("dhcp", f"{len(data)} bytes are shorter than the {_FIXED.size}-byte fixed part")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname, file,
     magic) = _FIXED.unpack_from(data)  # fmt: skip
    if magic != MAGIC:
        raise MalformedPacket("dhcp", f"magic cookie {magic.hex()} is not 63825363")
    if hlen > 16:
        raise MalformedPacket("dhcp", f"hardware address length {hlen} exceeds 16")
    return DhcpMessage(
        op=op, xid=xid, chaddr=chaddr[:hlen].hex(":"), ciaddr=ip_from_bytes(ciaddr), yiaddr=ip_from_bytes(yiaddr),
        siaddr=ip_from_bytes(siaddr), giaddr=ip_from_bytes(giaddr), flags=flags, secs=secs, hops=hops, htype=htype,
        sname=sname.rstrip(b"\x00"), file=file.rstrip(b"\x00"), options=_split_options(data[_FIXED.size :]),
    )


def build(message: DhcpMessage, *, min_length: int = MIN_LENGTH) -> bytes:
    """The message packed, options in order then END, zero-padded to ``min_length``."""
    chaddr = bytes.fromhex(message.chaddr.replace(":", ""))
    if len(chaddr) > 16 or len(message.sname) > 64 or len(message.file) > 128:
        raise ValueError("chaddr, sname or file too long for its BOOTP field")
    head = _FIXED.pack(
        message.op, message.htype, len(chaddr), message.hops, message.xid, message.secs, message.flags,
        ip_to_bytes(message.ciaddr), ip_to_bytes(message.yiaddr), ip_to_bytes(message.siaddr),
        ip_to_bytes(message.giaddr), chaddr, message.sname, message.file, MAGIC,
    )
    body = bytearray()
    for code, data in message.options:
        if not 0 < code < OPT_END:
            raise ValueError(f"option code {code} cannot carry data")
        for start in range(0, max(len(data), 1), 255):  # RFC 3396: split long options
            chunk = data[start : start + 255]
            body += bytes((code, len(chunk))) + chunk
    body.append(OPT_END)
    out = head + bytes(body)
    return out + bytes(max(0, min_length - len(out)))


def _ips(data: bytes, code: int) -> tuple[str, ...]:
    if not data or len(data) % 4:
        raise MalformedPacket("dhcp", f"option {code} length {len(data)} is not a positive multiple of 4")
    return tuple(ip_from_bytes(data[i : i + 4]) for i in range(0, len(data), 4))


def _ip(data: bytes, code: int) -> str:
    if len(data) != 4:
        raise MalformedPacket("dhcp", f"option {code} length {len(data)} is not 4")
    return ip_from_bytes(data)


def _int(data: bytes, code: int, size: int) -> int:
    if len(data) != size:
        raise MalformedPacket("dhcp", f"option {code} length {len(data)} is not {size}")
    return int.from_bytes(data, "big")


def _text(data: bytes, code: int) -> str:
    try:
        return data.rstrip(b"\x00").decode("ascii")
    except UnicodeDecodeError:
        raise MalformedPacket("dhcp", f"option {code} is not ASCII text") from None


def _routes(data: bytes) -> tuple[ClasslessRoute, ...]:
    routes: list[ClasslessRoute] = []
    i = 0
    while i < len(data):
        width = data[i]
        octets = (width + 7) // 8
        if width > 32 or i + 1 + octets + 4 > len(data):
            raise MalformedPacket("dhcp", f"option 121 route of width {width} is bad or cut short")
        dest = bytes(data[i + 1 : i + 1 + octets]) + bytes(4 - octets)
        routes.append(ClasslessRoute(ip_from_bytes(dest), width, ip_from_bytes(data[i + 1 + octets : i + 5 + octets])))
        i += 5 + octets
    return tuple(routes)


def decode_options(options: tuple[tuple[int, bytes], ...]) -> DhcpOptions:
    """The typed view of raw ``options``; unknown codes are skipped, known ones of a wrong size are malformed."""
    merged: dict[int, bytes] = {}
    for code, data in options:
        merged[code] = merged.get(code, b"") + data
    get = merged.get
    return DhcpOptions(
        message_type=_int(v, OPT_MESSAGE_TYPE, 1) if (v := get(OPT_MESSAGE_TYPE)) is not None else None,
        subnet_mask=_ip(v, OPT_SUBNET_MASK) if (v := get(OPT_SUBNET_MASK)) is not None else None,
        routers=_ips(v, OPT_ROUTER) if (v := get(OPT_ROUTER)) is not None else (),
        dns_servers=_ips(v, OPT_DNS) if (v := get(OPT_DNS)) is not None else (),
        hostname=_text(v, OPT_HOSTNAME) if (v := get(OPT_HOSTNAME)) is not None else None,
        domain_name=_text(v, OPT_DOMAIN_NAME) if (v := get(OPT_DOMAIN_NAME)) is not None else None,
        interface_mtu=_int(v, OPT_MTU, 2) if (v := get(OPT_MTU)) is not None else None,
        broadcast_address=_ip(v, OPT_BROADCAST) if (v := get(OPT_BROADCAST)) is not None else None,
        requested_ip=_ip(v, OPT_REQUESTED_IP) if (v := get(OPT_REQUESTED_IP)) is not None else None,
        lease_time=_int(v, OPT_LEASE_TIME, 4) if (v := get(OPT_LEASE_TIME)) is not None else None,
        server_id=_ip(v, OPT_SERVER_ID) if (v := get(OPT_SERVER_ID)) is not None else None,
        parameter_request_list=tuple(get(OPT_PARAMETER_REQUEST, b"")),
        client_id=get(OPT_CLIENT_ID),
        classless_routes=_routes(v) if (v := get(OPT_CLASSLESS_ROUTES)) is not None else (),
    )


def _encode_route(route: ClasslessRoute) -> bytes:
    if not 0 <= route.prefix_len <= 32:
        raise ValueError(f"route prefix length out of range: {route.prefix_len}")
    octets = (route.prefix_len + 7) // 8
    return bytes((route.prefix_len,)) + ip_to_bytes(route.destination)[:octets] + ip_to_bytes(route.router)


def encode_options(values: DhcpOptions) -> tuple[tuple[int, bytes], ...]:
    """Raw options for ``values``: message type first (RFC 2131 section 4.1 asks servers to), then by code."""
    out: list[tuple[int, bytes]] = []
    if values.message_type is not None:
        out.append((OPT_MESSAGE_TYPE, bytes((values.message_type,))))
    if values.subnet_mask is not None:
        out.append((OPT_SUBNET_MASK, ip_to_bytes(values.subnet_mask)))
    if values.routers:
        out.append((OPT_ROUTER, b"".join(ip_to_bytes(ip) for ip in values.routers)))
    if values.dns_servers:
        out.append((OPT_DNS, b"".join(ip_to_bytes(ip) for ip in values.dns_servers)))
    if values.hostname is not None:
        out.append((OPT_HOSTNAME, values.hostname.encode("ascii")))
    if values.domain_name is not None:
        out.append((OPT_DOMAIN_NAME, values.domain_name.encode("ascii")))
    if values.interface_mtu is not None:
        out.append((OPT_MTU, values.interface_mtu.to_bytes(2, "big")))
    if values.broadcast_address is not None:
        out.append((OPT_BROADCAST, ip_to_bytes(values.broadcast_address)))
    if values.requested_ip is not None:
        out.append((OPT_REQUESTED_IP, ip_to_bytes(values.requested_ip)))
    if values.lease_time is not None:
        out.append((OPT_LEASE_TIME, values.lease_time.to_bytes(4, "big")))
    if values.server_id is not None:
        out.append((OPT_SERVER_ID, ip_to_bytes(values.server_id)))
    if values.parameter_request_list:
        out.append((OPT_PARAMETER_REQUEST, bytes(values.parameter_request_list)))
    if values.client_id is not None:
        out.append((OPT_CLIENT_ID, values.client_id))
    if values.classless_routes:
        out.append((OPT_CLASSLESS_ROUTES, b"".join(_encode_route(r) for r in values.classless_routes)))
    return tuple(out)


def reply(
    request: DhcpMessage, options: DhcpOptions, *, yiaddr: str = "0.0.0.0", siaddr: str = "0.0.0.0"
) -> DhcpMessage:
    """The server's answer to ``request`` (OFFER, ACK or NAK as ``options.message_type`` says).

    It echoes the transaction id, client hardware address, broadcast flag and relay address (RFC 2131 table 3).
    """
    if request.op != OP_REQUEST:
        raise ValueError("only a client request (op 1) can be answered")
    if options.message_type is None:
        raise ValueError("a reply needs a message type")
    return replace(
        request, op=OP_REPLY, hops=0, secs=0, yiaddr=yiaddr, siaddr=siaddr, sname=b"", file=b"",
        ciaddr=request.ciaddr if options.message_type == ACK else "0.0.0.0", options=encode_options(options),
    )
