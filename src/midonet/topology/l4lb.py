"""The L4 load balancer: LoadBalancer, Pool, PoolMember, Vip, HealthMonitor (spec 2.2, 3.8).

A load balancer hangs off one router (`router_id`; the router's `load_balancer_id` points back). Pools hold
members (backends) and VIPs (front-ends); a pool may have a TCP health monitor.

May import: `topology.record`, `topology.validate`.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.record import Record, value


class LBStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    MONITORED = "MONITORED"


class PoolProtocol(enum.StrEnum):
    TCP = "TCP"


class PoolLBMethod(enum.StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"


class SessionPersistence(enum.StrEnum):
    SOURCE_IP = "SOURCE_IP"


class HealthMonitorType(enum.StrEnum):
    TCP = "TCP"


@value
class LoadBalancer(Record):
    router_id: str | None = None
    admin_state_up: bool = True
    pool_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset({"pool_ids", "router_id"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "router_id", v.uuid_field("router_id", self.router_id))


@value
class Pool(Record):
    load_balancer_id: str | None = None
    health_monitor_id: str | None = None
    admin_state_up: bool = True
    protocol: PoolProtocol = PoolProtocol.TCP
    lb_method: PoolLBMethod = PoolLBMethod.ROUND_ROBIN
    status: LBStatus = LBStatus.ACTIVE
    pool_member_ids: tuple[str, ...] = ()
    vip_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset({"pool_member_ids", "vip_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "load_balancer_id", v.uuid_field("load_balancer_id", self.load_balancer_id))
        v.set_field(self, "health_monitor_id", v.uuid_field("health_monitor_id", self.health_monitor_id))


@value
class PoolMember(Record):
    pool_id: str | None = None
    admin_state_up: bool = True
    status: LBStatus = LBStatus.ACTIVE
    address: str | None = None
    protocol_port: int = 0
    weight: int = 1

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "pool_id", v.uuid_field("pool_id", self.pool_id))
        v.set_field(self, "address", v.ipv4("address", self.address))
        v.int_range("protocol_port", self.protocol_port, 0, 65535)
        v.int_range("weight", self.weight, 0, (1 << 31) - 1)


@value
class Vip(Record):
    pool_id: str | None = None
    admin_state_up: bool = True
    address: str | None = None
    protocol_port: int = 0
    session_persistence: SessionPersistence | None = None
    gateway_port_id: str | None = None

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "pool_id", v.uuid_field("pool_id", self.pool_id))
        v.set_field(self, "gateway_port_id", v.uuid_field("gateway_port_id", self.gateway_port_id))
        v.set_field(self, "address", v.ipv4("address", self.address))
        v.int_range("protocol_port", self.protocol_port, 0, 65535)


@value
class HealthMonitor(Record):
    admin_state_up: bool = True
    type: HealthMonitorType = HealthMonitorType.TCP
    status: LBStatus = LBStatus.ACTIVE
    delay: int = 5
    timeout: int = 10
    max_retries: int = 3
    pool_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset({"pool_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.int_range("delay", self.delay, 1, 86400)
        v.int_range("timeout", self.timeout, 1, 86400)
        v.int_range("max_retries", self.max_retries, 0, 1000)
