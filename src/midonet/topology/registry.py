"""Every stored record class, by kind name (the store's path segment and the API's index).

May import: the record modules of `topology`.
"""

from __future__ import annotations

from midonet.topology.chains import Chain, Rule
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.hosts import Host, TunnelZone
from midonet.topology.l4lb import HealthMonitor, LoadBalancer, Pool, PoolMember, Vip
from midonet.topology.record import Record
from midonet.topology.services import (
    BgpNetwork,
    BgpPeer,
    DhcpSubnet,
    Mirror,
    QosPolicy,
    QosRuleBandwidthLimit,
    QosRuleDscp,
    TraceRequest,
    Vtep,
)

RECORD_TYPES: tuple[type[Record], ...] = (
    Bridge, Router, Port, Route, Chain, Rule, PortGroup, IPAddrGroup, Host, TunnelZone,
    LoadBalancer, Pool, PoolMember, Vip, HealthMonitor, Mirror, BgpPeer, BgpNetwork, DhcpSubnet,
    Vtep, TraceRequest, QosPolicy, QosRuleBandwidthLimit, QosRuleDscp,
)

BY_KIND: dict[str, type[Record]] = {cls.kind(): cls for cls in RECORD_TYPES}


def record_type(kind: str) -> type[Record]:
    """The record class named `kind`; KeyError if there is none."""
    return BY_KIND[kind]
