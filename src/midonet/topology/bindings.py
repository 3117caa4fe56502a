"""The referential-integrity table (spec 1.2), as ZOOM declares it.

A `Binding` ties a reference field of one class to a field of another (or the same) class that points back.
Stores keep both sides equal in every transaction, and on delete apply the action declared for the side
being deleted to every object it references:

    CLEAR    remove the deleted object's id from the referenced object's back-reference field
    CASCADE  delete the referenced object too (and apply its own bindings, recursively)
    ERROR    refuse the delete while the field references anything (ConflictError)

Setting a single-valued field (e.g. `Port.peer_id`) that already points at another object is refused
("no stealing"): unlink first.

May import: the record modules of `topology`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from midonet.topology.chains import Chain, Rule
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.groups import PortGroup
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
)


class OnDelete(enum.Enum):
    CLEAR = "clear"
    CASCADE = "cascade"
    ERROR = "error"


CLEAR, CASCADE, ERROR = OnDelete.CLEAR, OnDelete.CASCADE, OnDelete.ERROR


@dataclass(frozen=True, slots=True)
class Binding:
    """`left.left_field` <-> `right.right_field`; `on_left_delete` applies when a left object is deleted."""

    left: type[Record]
    left_field: str
    on_left_delete: OnDelete
    right: type[Record]
    right_field: str
    on_right_delete: OnDelete


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a binding seen from `cls`: its field, what deleting it does, and the other end."""

    cls: type[Record]
    field: str
    on_delete: OnDelete
    other: type[Record]
    other_field: str


def _b(left: type[Record], lf: str, ld: OnDelete, right: type[Record], rf: str, rd: OnDelete) -> Binding:
    return Binding(left, lf, ld, right, rf, rd)


BINDINGS: tuple[Binding, ...] = (
    _b(Bridge, "port_ids", CASCADE, Port, "network_id", CLEAR),
    _b(Router, "port_ids", CASCADE, Port, "router_id", CLEAR),
    _b(Router, "route_ids", CASCADE, Route, "router_id", CLEAR),
    _b(Port, "peer_id", CLEAR, Port, "peer_id", CLEAR),
    _b(Port, "route_ids", CASCADE, Route, "next_hop_port_id", CLEAR),
    _b(Port, "host_id", CLEAR, Host, "port_ids", CLEAR),
    _b(Port, "port_group_ids", CLEAR, PortGroup, "port_ids", CLEAR),
    _b(Bridge, "inbound_filter_id", CLEAR, Chain, "network_inbound_ids", CLEAR),
    _b(Bridge, "outbound_filter_id", CLEAR, Chain, "network_outbound_ids", CLEAR),
    _b(Router, "inbound_filter_id", CLEAR, Chain, "router_inbound_ids", CLEAR),
    _b(Router, "outbound_filter_id", CLEAR, Chain, "router_outbound_ids", CLEAR),
    _b(Router, "local_redirect_chain_id", CLEAR, Chain, "router_redirect_ids", CLEAR),
    _b(Router, "forward_chain_id", CLEAR, Chain, "router_forward_ids", CLEAR),
    _b(Port, "inbound_filter_id", CLEAR, Chain, "port_inbound_ids", CLEAR),
    _b(Port, "outbound_filter_id", CLEAR, Chain, "port_outbound_ids", CLEAR),
    _b(Rule, "chain_id", CLEAR, Chain, "rule_ids", CASCADE),
    _b(Rule, "jump_chain_id", CLEAR, Chain, "jump_rule_ids", CASCADE),
    _b(Rule, "fip_port_id", CLEAR, Port, "fip_nat_rule_ids", CASCADE),
    _b(Host, "tunnel_zone_ids", CLEAR, TunnelZone, "host_ids", CLEAR),
    _b(LoadBalancer, "pool_ids", CASCADE, Pool, "load_balancer_id", CLEAR),
    _b(Pool, "pool_member_ids", CASCADE, PoolMember, "pool_id", CLEAR),
    _b(Pool, "vip_ids", CASCADE, Vip, "pool_id", CLEAR),
    _b(Pool, "health_monitor_id", CLEAR, HealthMonitor, "pool_ids", CLEAR),
    _b(Router, "load_balancer_id", ERROR, LoadBalancer, "router_id", CLEAR),
    _b(Vip, "gateway_port_id", CLEAR, Port, "vip_ids", ERROR),
    _b(Router, "bgp_network_ids", CASCADE, BgpNetwork, "router_id", CLEAR),
    _b(Router, "bgp_peer_ids", CASCADE, BgpPeer, "router_id", CLEAR),
    _b(Mirror, "to_port_id", CLEAR, Port, "mirror_ids", CASCADE),
    _b(Bridge, "inbound_mirror_ids", CLEAR, Mirror, "network_inbound_ids", CLEAR),
    _b(Bridge, "outbound_mirror_ids", CLEAR, Mirror, "network_outbound_ids", CLEAR),
    _b(Router, "inbound_mirror_ids", CLEAR, Mirror, "router_inbound_ids", CLEAR),
    _b(Router, "outbound_mirror_ids", CLEAR, Mirror, "router_outbound_ids", CLEAR),
    _b(Port, "inbound_mirror_ids", CLEAR, Mirror, "port_inbound_ids", CLEAR),
    _b(Port, "outbound_mirror_ids", CLEAR, Mirror, "port_outbound_ids", CLEAR),
    _b(Port, "post_in_filter_mirror_ids", CLEAR, Mirror, "port_post_in_filter_ids", CLEAR),
    _b(Port, "pre_out_filter_mirror_ids", CLEAR, Mirror, "port_pre_out_filter_ids", CLEAR),
    _b(Bridge, "dhcp_ids", CASCADE, DhcpSubnet, "network_id", CLEAR),
    _b(QosPolicy, "bandwidth_limit_rule_ids", CASCADE, QosRuleBandwidthLimit, "policy_id", CLEAR),
    _b(QosPolicy, "dscp_marking_rule_ids", CASCADE, QosRuleDscp, "policy_id", CLEAR),
    _b(Port, "qos_policy_id", CLEAR, QosPolicy, "port_ids", CLEAR),
    _b(Bridge, "qos_policy_id", CLEAR, QosPolicy, "network_ids", CLEAR),
    _b(Bridge, "trace_request_ids", CASCADE, TraceRequest, "network_id", CLEAR),
    _b(Router, "trace_request_ids", CASCADE, TraceRequest, "router_id", CLEAR),
    _b(Port, "trace_request_ids", CASCADE, TraceRequest, "port_id", CLEAR),
)


def _index() -> dict[type[Record], tuple[Side, ...]]:
    sides: dict[type[Record], list[Side]] = {}
    for b in BINDINGS:
        sides.setdefault(b.left, []).append(Side(b.left, b.left_field, b.on_left_delete, b.right, b.right_field))
        if (b.left, b.left_field) != (b.right, b.right_field):
            sides.setdefault(b.right, []).append(
                Side(b.right, b.right_field, b.on_right_delete, b.left, b.left_field))
    return {cls: tuple(s) for cls, s in sides.items()}


_SIDES = _index()


def sides_of(cls: type[Record]) -> tuple[Side, ...]:
    """Every binding end on `cls`."""
    return _SIDES.get(cls, ())


def referenced_ids(obj: Record, field: str) -> tuple[str, ...]:
    """The ids `obj.field` refers to (a single-valued field gives zero or one)."""
    raw = getattr(obj, field)
    if raw is None:
        return ()
    if isinstance(raw, tuple):
        return raw
    return (raw,)


def is_single(cls: type[Record], field: str) -> bool:
    """Whether `cls.field` holds one id (str | None) rather than a tuple of ids."""
    default = cls.__dataclass_fields__[field].default
    return not isinstance(default, tuple)


def iter_bindings() -> Iterator[Binding]:
    return iter(BINDINGS)
