"""The topology records: validation names the field, the codec round-trips, canonical forms."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from midonet.topology.chains import Condition, NatTarget, PortRange, Rule, RuleAction, RuleType
from midonet.topology.devices import NextHop, Port, Route
from midonet.topology.errors import ValidationError
from midonet.topology.hosts import TunnelZone, TunnelZoneHost
from midonet.topology.ids import cluster_tunnel_key, local_tunnel_key, new_id
from midonet.topology.record import from_dict, to_dict
from midonet.topology.registry import RECORD_TYPES
from midonet.topology.services import TraceRequest


def field_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.violations[0].field


def test_port_belongs_to_exactly_one_device() -> None:
    with pytest.raises(ValidationError) as e:
        Port(id=new_id())
    assert field_of(e) == "network_id"
    with pytest.raises(ValidationError):
        Port(id=new_id(), network_id=new_id(), router_id=new_id())


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"port_mac": "aa:bb"}, "port_mac"),
    ({"port_address": "1.2.3.999"}, "port_address"),
    ({"port_subnet": "10.0.0.0/33"}, "port_subnet"),
    ({"vlan_id": 4096}, "vlan_id"),
    ({"peer_id": "nope"}, "peer_id"),
])
def test_port_field_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        Port(id=new_id(), router_id=new_id(), **kwargs)  # type: ignore[arg-type]
    assert field_of(e) == field


def test_canonical_forms() -> None:
    p = Port(id=new_id().upper(), router_id=new_id(), port_mac="AA-BB-CC-DD-EE-FF", port_subnet="10.0.1.7/24")
    assert p.port_mac == "aa:bb:cc:dd:ee:ff"
    assert p.port_subnet == "10.0.1.0/24"
    assert p.id == p.id.lower()


def test_nested_validation_names_the_path() -> None:
    with pytest.raises(ValidationError) as e:
        from_dict(Rule, {"id": new_id(), "condition": {"tp_dst": {"start": 9, "end": 1}}})
    assert field_of(e) == "condition.tp_dst.start"
    with pytest.raises(ValidationError) as e:
        from_dict(Rule, {"id": new_id(), "type": "nat", "nat_targets": [{"nw_start": "1.1.1.300", "nw_end": "x"}]})
    assert field_of(e).startswith("nat_targets[0]")


def test_rule_type_rules() -> None:
    with pytest.raises(ValidationError):
        Rule(id=new_id(), type=RuleType.JUMP)
    with pytest.raises(ValidationError):
        Rule(id=new_id(), type=RuleType.NAT, action=RuleAction.ACCEPT)   # forward NAT without targets
    with pytest.raises(ValidationError):
        Rule(id=new_id(), type=RuleType.LITERAL, action=RuleAction.JUMP)
    assert NatTarget(nw_start="1.1.1.1", nw_end="1.1.1.1").is_static


def test_route_needs_a_port_when_normal() -> None:
    with pytest.raises(ValidationError) as e:
        Route(id=new_id(), dst_subnet="10.0.0.0/8", next_hop=NextHop.PORT)
    assert field_of(e) == "next_hop_port_id"
    Route(id=new_id(), dst_subnet="10.0.0.0/8", next_hop=NextHop.BLACKHOLE)


def test_tunnel_zone_host_ids_follow_members() -> None:
    a, b = new_id(), new_id()
    tz = TunnelZone(id=new_id(), hosts=(TunnelZoneHost(host_id=a, ip="10.0.0.1"),
                                        TunnelZoneHost(host_id=b, ip="10.0.0.2")))
    assert tz.host_ids == (a, b)
    with pytest.raises(ValidationError):
        TunnelZone(id=new_id(), hosts=(TunnelZoneHost(host_id=a, ip="10.0.0.1"),) * 2)


def test_wrong_json_types_are_validation_errors() -> None:
    for bad in ({"id": new_id(), "network_id": 5}, {"id": new_id(), "network_id": new_id(), "admin_state_up": 1},
                {"id": new_id(), "network_id": new_id(), "port_group_ids": "x"}, "not a dict", {"network_id": None}):
        with pytest.raises(ValidationError):
            from_dict(Port, bad)


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda c: c.kind())
def test_every_record_round_trips_through_json(cls: type) -> None:
    fields = {f.name for f in dataclasses.fields(cls)}
    data: dict[str, object] = {"id": new_id()}
    for name, value in (("network_id", new_id()), ("to_port_id", new_id()), ("management_ip", "192.0.2.1"),
                        ("address", "192.0.2.2"), ("as_number", 65000), ("port_id", new_id()),
                        ("next_hop", "blackhole")):
        if name in fields and not (cls is TraceRequest and name == "network_id"):
            data[name] = value
    obj = from_dict(cls, data)
    assert from_dict(cls, to_dict(obj)) == obj


ports = st.integers(0, 65535)


port_ranges = st.tuples(ports, ports).map(lambda t: PortRange(start=min(t), end=max(t)))


@given(port_ranges | st.just(None), st.booleans())
def test_condition_codec_round_trip(tp: PortRange | None, inv: bool) -> None:
    c = Condition(tp_dst=tp, tp_dst_inv=inv, nw_src_ip="10.0.0.0/8", in_port_ids=(new_id(),))
    assert from_dict(Condition, to_dict(c)) == c


def test_port_range_rejects_reversed_bounds() -> None:
    with pytest.raises(ValidationError):
        PortRange(start=10, end=1)


@given(st.integers(1, 10**7))
def test_cluster_tunnel_keys_stay_in_20_bits(seq: int) -> None:
    key = cluster_tunnel_key(seq)
    assert 1 <= key < (1 << 20)
    assert local_tunnel_key(seq) >> 20 == 1
