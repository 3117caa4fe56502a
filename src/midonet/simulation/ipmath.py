"""IPv4 address arithmetic for the simulator: dotted quads to integers, subnets as (network, length, mask).

Role: `FlowMatch` carries addresses as dotted-quad strings (`midonet.packets`); longest-prefix match, subnet
membership and rule conditions work on integers. `ip_int` converts with a small memo (a simulation asks for the
same few addresses again and again); subnets are parsed once, when a device snapshot is built.

Invariant: the memo only caches a pure function, so it never changes an answer; it is cleared when it grows past
`_MEMO_LIMIT` entries.

May import: `midonet.packets.ipv4`.
"""

from __future__ import annotations

from typing import NamedTuple

from midonet.packets.ipv4 import ip_from_int, ip_to_int

_MEMO_LIMIT = 1 << 16
_memo: dict[str, int] = {}


def ip_int(ip: str) -> int:
    """``"10.0.0.1"`` as an integer (memoised); `ValueError` if it is not an IPv4 address."""
    value = _memo.get(ip)
    if value is None:
        value = ip_to_int(ip)
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[ip] = value
    return value


def ip_str(value: int) -> str:
    return ip_from_int(value)


def prefix_mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0


class Subnet(NamedTuple):
    """An IPv4 subnet: network address (host bits zero), prefix length, netmask, all as integers."""

    network: int
    length: int
    mask: int

    def contains(self, ip: str | None) -> bool:
        return ip is not None and (ip_int(ip) & self.mask) == self.network

    def contains_int(self, value: int) -> bool:
        return (value & self.mask) == self.network

    @property
    def broadcast(self) -> int:
        return self.network | (~self.mask & 0xFFFFFFFF)

    def __str__(self) -> str:
        return f"{ip_str(self.network)}/{self.length}"


def subnet(cidr: str) -> Subnet | None:
    """``"10.0.1.0/24"`` (or a bare address, /32) as a `Subnet`; None for an IPv6 subnet."""
    address, _, length_text = cidr.partition("/")
    if ":" in address:
        return None
    length = int(length_text) if length_text else 32
    if not 0 <= length <= 32:
        raise ValueError(f"bad IPv4 prefix length in {cidr!r}")
    mask = prefix_mask(length)
    return Subnet(ip_to_int(address) & mask, length, mask)


ANY = Subnet(0, 0, 0)
