"""Field validators used by the records' `__post_init__`.

Each checker takes the field name and the value and either returns the value in canonical form (lower-case
MAC, canonical UUID, normalised CIDR) or raises `ValidationError` naming the field. `None` passes unless the
field is required, which the record says by not allowing None in its type.

May import: `topology.errors`, `topology.ids`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from midonet.topology.errors import ValidationError, Violation
from midonet.topology.ids import canonical_id

_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def fail(field: str, message: str) -> ValidationError:
    return ValidationError(Violation(field, message))


def set_field(obj: Any, name: str, value: Any) -> None:
    """Store a canonicalised value on a frozen record during `__post_init__`."""
    object.__setattr__(obj, name, value)


def uuid_field(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return canonical_id(value)
    except ValueError:
        raise fail(field, f"is not a valid UUID: {value!r}") from None


def uuid_list(field: str, values: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(uuid_field(f"{field}[{i}]", v) or "" for i, v in enumerate(values))
    if len(set(out)) != len(out):
        raise fail(field, "lists the same id twice")
    return out


def ipv4(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise fail(field, f"is not a valid IPv4 address: {value!r}") from None


def ip_any(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise fail(field, f"is not a valid IP address: {value!r}") from None


def cidr(field: str, value: str | None, *, strict: bool = False) -> str | None:
    """A CIDR 'a.b.c.d/n' (IPv4 or IPv6). Host bits are allowed unless `strict` (they are kept as given)."""
    if value is None:
        return None
    try:
        net = ipaddress.ip_interface(value)
        if "/" not in value:
            raise ValueError
        if strict:
            ipaddress.ip_network(value, strict=True)
    except (ValueError, TypeError):
        raise fail(field, f"is not a valid CIDR (address/length): {value!r}") from None
    return f"{net.ip}/{net.network.prefixlen}"


def prefix_length(field: str, value: int | None, maximum: int = 32) -> int | None:
    if value is None:
        return None
    if not 0 <= value <= maximum:
        raise fail(field, f"must be between 0 and {maximum}, not {value}")
    return value


def mac(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _MAC.match(value):
        raise fail(field, f"is not a valid MAC address: {value!r}")
    return value.replace("-", ":").lower()


def int_range(field: str, value: int | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not low <= value <= high:
        raise fail(field, f"must be between {low} and {high}, not {value}")
    return value


def non_empty(field: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise fail(field, "must not be empty")
    return value
