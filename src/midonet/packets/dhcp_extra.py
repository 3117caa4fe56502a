"""Extra DHCP options an operator sets on a DHCP host, from (name, value text) to the option's code and bytes.

Role: Neutron's ``extra_dhcp_opts`` and MidoNet's DHCP host ``extraDhcpOpts`` are text: ``("interface-mtu",
"1400")``, ``("ntp-servers", "10.0.0.1, 10.0.0.2")``, ``("121", "10.1.0.0/16,10.0.0.254")``. `encode_extra(name,
value)` turns one into ``(code, data)``, or None when the name is unknown or the value does not parse, as the
original's ``DhcpValueParser`` (``DhcpImpl.scala``) does; the DHCP server adds the valid ones to its replies,
replacing options it would have sent itself, and ignores the others.

Names: a decimal code, or an option name of ``DHCPOption.Code`` (the IANA list), case-insensitive, ``-`` and spaces
read as ``_`` ("domain-name", "DOMAIN_NAME"). Values, by the option's kind:

    ips        comma-separated IPv4 addresses (routers, DNS, NTP ...)       ip      one IPv4 address
    u16 / u32  comma-separated numbers, 2 or 4 bytes each, big-endian       bool    true/false/0/1/0x0/0x1
    byte       a number 0..31 (TTLs)                                         cidr    comma-separated CIDRs, each
                                                                                     as network then mask
    routes     RFC 3442 pairs "dst-cidr,gateway,..." (option 121)           node    1, 2, 4 or 8 (NetBIOS type)
    overload   1..3                                                          msg     1..8 (a message type)
    domains    RFC 3397 domain search list, compressed                      text    the bytes of the text
    byte+text, bool+text, bool+ips, status+text: a first byte, a comma, then the rest

A value that parses to nothing, or whose length is not a multiple of the option's unit length, is invalid.
Deliberate difference: RAPID_COMMIT (80), whose original encoding is broken, is not offered.

May import: `midonet.packets.ipv4`.

Reference: RFC 2132 (options 1-61), RFC 3442 (121), RFC 3397 (119), the IANA BOOTP/DHCP parameters registry.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final

from midonet.packets.ipv4 import ip_to_bytes

__all__ = ["OPTIONS", "encode_extra", "option_code"]

# (code, unit length, name, kind) as the original's DHCPOption.Code
_TABLE: Final[tuple[tuple[int, int, str, str], ...]] = (
    (1, 4, "SUBNET_MASK", "ip"), (2, 4, "TIME_OFFSET", "u32"), (3, 4, "ROUTER", "ips"),
    (4, 4, "TIME_SERVER", "ips"), (5, 4, "NAME_SERVER", "ips"), (6, 4, "DNS", "ips"), (7, 4, "LOG_SERVER", "ips"),
    (8, 4, "QUOTES_SERVER", "ips"), (9, 4, "LPR_SERVER", "ips"), (10, 4, "IMPRESS_SERVER", "ips"),
    (11, 4, "RESOURCE_LOCATION_SERVER", "ips"), (12, 1, "HOST_NAME", "text"), (13, 2, "BOOT_FILE_SIZE", "u16"),
    (14, 1, "MERIT_DUMP_FILE", "text"), (15, 1, "DOMAIN_NAME", "text"), (16, 4, "SWAP_SERVER", "ip"),
    (17, 1, "ROOT_PATH", "text"), (18, 1, "EXTENSION_PATH", "text"), (19, 1, "IP_FOWARDING_ENABLE_DISABLE", "bool"),
    (20, 1, "NON_LOCAL_SOURCE_ROUTING_ENABLE_DISABLE", "bool"), (21, 8, "POLICY_FILTER", "cidr"),
    (22, 2, "MAXIMUM_DATAGRAM_REASSEMBLY_SIZE", "u16"), (23, 1, "DEFAULT_IP_TTL", "byte"),
    (24, 4, "PATH_MTU_AGING_TIMEOUT", "u32"), (25, 2, "PATH_MTU_PLATEAU_TABLE", "u16"),
    (26, 2, "INTERFACE_MTU", "u16"), (27, 1, "ALL_SUBNETS_ARE_LOCAL", "bool"), (28, 4, "BROADCAST_ADDRESS", "ip"),
    (29, 1, "PERFORM_MASK_DISCOVERY", "bool"), (30, 1, "MASK_SUPPLIER", "bool"),
    (31, 1, "PERFORME_ROUTER_DISCOVERY", "text"), (32, 4, "ROUTER_SOLITATION_ADDRESS", "ip"),
    (33, 8, "STATIC_ROUTE", "cidr"), (34, 1, "TRAILER_ENCAPSULATION_OPTION", "bool"),
    (35, 4, "ARP_CACHE_TIMEOUT", "u32"), (36, 1, "ETHERNET_ENCAPSULATION", "bool"),
    (37, 1, "TCP_DEFAULT_TTL", "byte"), (38, 4, "TCP_KEEPALIVE_INTERVAL", "u32"),
    (39, 1, "TCP_KEEPALIVE_GARBAGE", "bool"), (40, 1, "NIS_DOMAIN", "text"), (41, 4, "NIS_SERVERS", "ips"),
    (42, 4, "NTP_SERVERS", "ips"), (43, 1, "VENDOR_SPECIFIC_INFORMATION", "text"),
    (44, 4, "NETBIOS_OVER_TCP_IP_NAME_SERVER", "ips"),
    (45, 4, "NETBIOS_OVER_TCP_IP_DATAGRAM_DISTRIBUTION_SERVER", "ips"),
    (46, 1, "NETBIOS_OVER_TCP_IP_NODE_TYPE", "node"), (47, 1, "NETBIOS_OVER_TCP_IP_SCOPE", "text"),
    (48, 4, "X_WINDOW_SYSTEM_FONT_SRVER", "ips"), (49, 4, "X_WINDOW_SYSTEM_DISPLAY_MANGER", "ips"),
    (50, 4, "REQUESTED_IP", "ip"), (51, 4, "IP_LEASE_TIME", "u32"), (52, 1, "OPTION_OVERLOAD", "overload"),
    (53, 1, "DHCP_MESSAGE_TYPE", "text"), (54, 4, "SERVER_ID", "ip"), (55, 1, "PARAMETER_REQUEST_LIST", "text"),
    (56, 1, "ERROR_MESSAGE", "msg"), (57, 2, "MAXIMUM_DHCP_MESSAGE_SIZE", "u16"),
    (58, 4, "RENEWAL_TIME_VALUE", "u32"), (59, 4, "REBINDING_TIME_VALUE", "u32"),
    (60, 1, "CLASS_IDENTIFIER", "text"), (61, 1, "CLIENT_IDENTIFIER", "byte+text"), (62, 1, "NWIP_DOMAIN", "text"),
    (63, 1, "NWIP_SUBOPTIONS", "text"), (64, 1, "NETWORK_INFORMATION_SREVICE_AND_DOMAIN", "text"),
    (65, 4, "NETWORK_INFORMATION_SREVICE_AND_SERVERS", "ips"), (66, 1, "TFTP_SERVER_NAME", "text"),
    (67, 1, "BOOTFILE_NAME", "text"), (68, 4, "MOBILE_IP_HOME_AGENT", "ips"),
    (69, 4, "SIMPLE_MAIL_TRANSPORT_PROTOCOL_SERVER", "ips"), (70, 4, "POST_OFFICE_PROTOCOL_SERVER", "ips"),
    (71, 4, "NETWORK_NEWS_TRANSPORT_PROTOCOL_SERVER", "ips"), (72, 4, "DEFAULT_WORLD_WIDE_WEB_SERVER", "ips"),
    (73, 4, "DEFAULT_FINGER_SERVER", "ips"), (74, 4, "DEFAULT_INTERNET_RELAY_CHAT_SERVER", "ips"),
    (75, 4, "STREETTALK_SERVER", "ips"), (76, 4, "STREETTALK_DIRECTORY_ASSISTANCE_SERVER", "ips"),
    (77, 1, "USER_CLASS", "text"), (78, 1, "SLP_DIRECTORY_AGENT", "bool+ips"),
    (79, 1, "SLP_SERVICE_SCOPE", "bool+text"), (81, 1, "CLIENT_FQDN", "text"), (83, 1, "STORAGE_NS", "text"),
    (85, 4, "NDS_SERVERS", "ips"), (86, 1, "NDS_TREE_NAME", "text"), (87, 1, "NDS_CONTEXT", "text"),
    (88, 1, "BCMS_CONTROLLLER_NAMES", "text"), (89, 1, "BCMS_CONTROLLLER_ADDRESS", "text"),
    (90, 1, "DHCP_AUTH", "text"), (91, 4, "DHCP_CLIENT_LAST_TIME", "u32"), (92, 4, "ASSOCIATED_IP", "ips"),
    (93, 2, "SYSTEM_ARCHITECTURE", "u16"), (94, 1, "INTERFACE_ID", "text"), (95, 4, "LDAP_SERVERS", "ips"),
    (97, 1, "MACHINE_ID", "text"), (98, 1, "USER_AUTH", "text"), (99, 1, "GEOCONF_CIVIC", "text"),
    (100, 1, "PCODE", "text"), (101, 1, "TCODE", "text"), (112, 1, "NETINFO_SERVER_ADDRESS", "text"),
    (113, 1, "NETINFO_SERVER_TAG", "ips"), (114, 1, "DEFAULT_URL", "text"), (116, 1, "AUTO_CONFIGURE", "bool"),
    (117, 2, "NAME_SEARCH", "u16"), (118, 4, "SUBNET_SELECTION", "ip"), (119, 1, "DOMAIN_SEARCH", "domains"),
    (120, 1, "SIP_SERVERS", "text"), (121, 1, "CLASSLESS_STATIC_ROUTES", "routes"), (122, 1, "DHCP_CCC", "text"),
    (123, 16, "DHCP_GEOCONF", "text"), (124, 1, "VENDOR_CLASS_IDENTIFIER", "text"), (125, 1, "VIVSO", "text"),
    (128, 4, "TFTP_SERVER", "ips"), (136, 4, "PANA_AGENT", "ips"), (137, 1, "LOST_SERVER", "text"),
    (138, 4, "CAPWAP_AC_V4", "ips"), (139, 1, "DHCP_MOS", "text"), (140, 1, "DHCP_FQDN_MOS", "text"),
    (141, 1, "SIP_UA_CONFIG_DOMAIN", "text"), (142, 4, "ANDSF_SERVERS", "ips"), (144, 16, "DHCP_GEOLOC", "text"),
    (145, 1, "FORCE_RENEW_NONCE_CAP", "text"), (146, 1, "RDNSS_SELECTION", "text"),
    (150, 4, "TFTP_SERVER_ADDRESS", "ips"), (151, 1, "STATUS_CODE", "status+text"), (152, 4, "DHCP_BASE_TIME", "u32"),
    (153, 4, "DHCP_STATE_START_TIME", "u32"), (154, 4, "DHCP_QUERY_START_TIME", "u32"),
    (155, 4, "DHCP_QUERY_END_TIME", "u32"), (156, 1, "DHCP_STATE", "msg"), (157, 1, "DATA_SOURCE", "byte"),
    (158, 1, "PCP_SERVER", "text"), (208, 4, "DHCP_PXE_MAGIC", "u32"), (209, 1, "CONFIG_FILE", "text"),
    (210, 4, "PATH_PREFIX", "text"), (211, 4, "REBOOT_TIME", "u32"), (212, 1, "DHCP_6RD", "text"),
    (213, 1, "DHCP_ACCESS_DOMAIN", "text"), (220, 1, "SUBNET_ALLOCATION", "text"), (221, 1, "DHCP_VSS", "byte+text"),
)  # fmt: skip

OPTIONS: Final[dict[int, tuple[int, str]]] = {code: (unit, kind) for code, unit, _, kind in _TABLE}
"""Option code -> (unit length, kind of value)."""

_BY_NAME: Final[dict[str, int]] = {name: code for code, _, name, _ in _TABLE} | {"VSS_OPTION": 221}


def option_code(name: str) -> int | None:
    """The code an option name or decimal number stands for, None if it names no option we know."""
    text = name.strip()
    if text.isdigit():
        code = int(text)
        return code if code in OPTIONS else None
    return _BY_NAME.get(re.sub(r"[-\s]", "_", text).upper())


def encode_extra(name: str, value: str) -> tuple[int, bytes] | None:
    """``(code, data)`` for an extra option, or None if the name is unknown or the value invalid for it."""
    code = option_code(name)
    if code is None:
        return None
    unit, kind = OPTIONS[code]
    try:
        data = _PARSERS[kind](value)
    except (ValueError, IndexError):
        return None
    if data is None or not data or len(data) % unit:
        return None
    return code, data


# ---- one parser per kind; each raises ValueError (or answers None) for a value it cannot encode ----

def _split(value: str) -> list[str]:
    return re.sub(r"\s", "", value).split(",")


def _ips(value: str) -> bytes:
    return b"".join(ip_to_bytes(_ipv4(ip)) for ip in _split(value))


def _ipv4(text: str) -> str:
    return str(ipaddress.IPv4Address(text.strip()))


def _numbers(size: int) -> Callable[[str], bytes]:
    low, high = (-(1 << 15), (1 << 16) - 1) if size == 2 else (-(1 << 31), (1 << 32) - 1)

    def parse(value: str) -> bytes:
        out = b""
        for item in _split(value):
            n = int(item)
            if not low <= n <= high:
                raise ValueError(f"{n} does not fit {size} bytes")
            out += (n % (1 << (8 * size))).to_bytes(size, "big")
        return out
    return parse


def _choice(allowed: dict[str, int]) -> Callable[[str], bytes | None]:
    def parse(value: str) -> bytes | None:
        n = allowed.get(value.strip().lower())
        return None if n is None else bytes((n,))
    return parse


def _number_forms(values: range) -> dict[str, int]:
    forms: dict[str, int] = {}
    for n in values:
        forms.update({str(n): n, hex(n): n, f"0x{n:02x}": n})
    return forms


_BOOL = {"true": 1, "false": 0} | _number_forms(range(2))
_byte = _choice(_number_forms(range(32)))
_bool = _choice(_BOOL)


def _cidrs(value: str) -> bytes:
    out = b""
    for item in _split(value):
        net = ipaddress.IPv4Network(item, strict=False)
        out += net.network_address.packed + net.netmask.packed
    return out


def _routes(value: str) -> bytes | None:
    items = _split(value)
    if len(items) % 2:
        return None
    out = b""
    for dst, gateway in zip(items[::2], items[1::2], strict=True):
        net = ipaddress.IPv4Network(dst, strict=False)
        out += bytes((net.prefixlen,)) + net.network_address.packed[: (net.prefixlen + 7) // 8] + ip_to_bytes(
            _ipv4(gateway))
    return out


def _domains(value: str) -> bytes:
    """RFC 3397: each domain as RFC 1035 labels, a suffix seen before replaced by a pointer to it."""
    out = bytearray()
    seen: dict[str, int] = {}
    for domain in (d.strip().strip(".") for d in value.split(",")):
        labels = [label for label in domain.split(".") if label]
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if suffix in seen:
                out += (0xC000 | seen[suffix]).to_bytes(2, "big")
                break
            if len(out) < 0x4000:
                seen[suffix] = len(out)
            label = labels[i].encode("ascii")
            if not 0 < len(label) < 64:
                raise ValueError(f"bad label {labels[i]!r}")
            out += bytes((len(label),)) + label
        else:
            out.append(0)
    return bytes(out)


def _first_then(first: Callable[[str], bytes | None], rest: Callable[[str], bytes]) -> Callable[[str], bytes | None]:
    def parse(value: str) -> bytes | None:
        head, tail = value.split(",", 1)
        lead = first(head)
        return None if lead is None else lead + rest(tail)
    return parse


def _text(value: str) -> bytes:
    return value.encode("utf-8")


_PARSERS: Final[dict[str, Callable[[str], bytes | None]]] = {
    "ips": _ips, "ip": lambda v: ip_to_bytes(_ipv4(v)), "u16": _numbers(2), "u32": _numbers(4), "bool": _bool,
    "byte": _byte, "cidr": _cidrs, "routes": _routes, "domains": _domains, "text": _text,
    "node": _choice({k: n for n in (1, 2, 4, 8) for k in (str(n), hex(n), f"0x{n:02x}")}),
    "overload": _choice(_number_forms(range(1, 4))), "msg": _choice(_number_forms(range(1, 9))),
    "byte+text": _first_then(_byte, lambda v: v.strip().encode("utf-8")),
    "bool+text": _first_then(_bool, lambda v: v.strip().encode("utf-8")),
    "bool+ips": _first_then(_bool, _ips),
    "status+text": _first_then(_choice(_number_forms(range(5))), lambda v: v.strip().encode("utf-8")),
}  # fmt: skip
