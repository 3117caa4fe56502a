"""Port groups and IP address groups (spec 2.2), referenced by rule conditions.

A *stateful* port group shares flow state among its members (spec 4.3): a connection leaving through one
uplink may come back through another.

May import: `topology.record`, `topology.validate`.
"""

from __future__ import annotations

from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.record import Record, value


@value
class PortGroup(Record):
    tenant_id: str | None = None
    name: str | None = None
    stateful: bool = False
    port_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset({"port_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "port_ids", v.uuid_list("port_ids", self.port_ids))


@value
class IPAddrGroup(Record):
    """A named set of IP addresses (IPv4 or IPv6)."""

    tenant_id: str | None = None
    name: str | None = None
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        addrs = tuple(v.ip_any(f"addresses[{i}]", a) or "" for i, a in enumerate(self.addresses))
        v.set_field(self, "addresses", tuple(dict.fromkeys(addrs)))
