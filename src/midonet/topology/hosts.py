"""Hosts and tunnel zones (spec 1.4, 1.6, 2.2).

A host is a machine running an agent; its liveness and interfaces are state (store state keys), not part of
the record. A tunnel zone groups hosts that tunnel to each other, each with its underlay address.

May import: `topology.record`, `topology.validate`.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.record import Record, Value, value


@value
class Host(Record):
    name: str | None = None
    flooding_proxy_weight: int = 1
    container_weight: int = 1
    container_limit: int = -1
    enforce_container_limit: bool = False
    # back-references
    tunnel_zone_ids: tuple[str, ...] = ()
    port_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset({"tunnel_zone_ids", "port_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.int_range("flooding_proxy_weight", self.flooding_proxy_weight, 0, (1 << 31) - 1)
        v.int_range("container_weight", self.container_weight, 0, (1 << 31) - 1)
        v.int_range("container_limit", self.container_limit, -1, (1 << 31) - 1)


class TunnelZoneType(enum.StrEnum):
    GRE = "gre"
    VXLAN = "vxlan"
    VTEP = "vtep"


@value
class TunnelZoneHost(Value):
    host_id: str
    ip: str

    def __post_init__(self) -> None:
        v.set_field(self, "host_id", v.uuid_field("host_id", self.host_id))
        v.set_field(self, "ip", v.ip_any("ip", self.ip))


@value
class TunnelZone(Record):
    name: str | None = None
    type: TunnelZoneType = TunnelZoneType.VXLAN
    hosts: tuple[TunnelZoneHost, ...] = ()
    host_ids: tuple[str, ...] = ()   # the members' ids, kept equal to `hosts` for integrity

    backrefs: ClassVar[frozenset[str]] = frozenset({"host_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        ids = tuple(h.host_id for h in self.hosts)
        if len(set(ids)) != len(ids):
            raise v.fail("hosts", "lists the same host twice")
        v.set_field(self, "host_ids", ids)

    def member(self, host_id: str) -> TunnelZoneHost | None:
        return next((h for h in self.hosts if h.host_id == host_id), None)
