"""The transaction engine (store.integrity) against a plain dict: ZOOM's binding semantics, op by op.

The hypothesis tests drive random batches over a small universe of bridges, routers, ports, chains, rules and
hosts, and check two oracles: after every committed batch both sides of every binding agree, and a batch
that commits gives the same result as its ops committed one at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from midonet.store.base import Create, Delete, Op, Update, UpdateWith
from midonet.store.integrity import Key, Plan, plan
from midonet.topology.bindings import referenced_ids, sides_of
from midonet.topology.chains import Chain, Rule, RuleAction, RuleType
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.errors import ConflictError, NotFoundError, TopologyError, ValidationError
from midonet.topology.hosts import Host, TunnelZone, TunnelZoneHost
from midonet.topology.l4lb import LoadBalancer
from midonet.topology.record import Record

DB = dict[Key, Record]
R = TypeVar("R", bound=Record)


def uid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def run(db: DB, ops: Sequence[Op]) -> Plan:
    """Plan `ops` against `db` and commit the plan into it."""
    result = plan(lambda cls, i: db.get((cls, i)), ops)
    for key, obj in result.writes.items():
        if obj is None:
            db.pop(key, None)
        else:
            db[key] = obj
    return result


def get(db: DB, cls: type[R], obj_id: str) -> R:
    obj = db[(cls, obj_id)]
    assert isinstance(obj, cls)
    return obj


def assert_bindings_agree(db: DB) -> None:
    for (cls, obj_id), obj in db.items():
        for side in sides_of(cls):
            for ref in referenced_ids(obj, side.field):
                other = db.get((side.other, ref))
                assert other is not None, f"{cls.kind()} {obj_id}.{side.field} -> missing {ref}"
                assert obj_id in referenced_ids(other, side.other_field), (
                    f"{cls.kind()} {obj_id}.{side.field} -> {ref}, but not back")


B1, B2, R1, P1, P2, P3, C1, C2, U1, U2, H1, TZ, LB, RT = (uid(i) for i in range(14))


# --- creates, updates, deletes --------------------------------------------------------------------

def test_create_port_adds_it_to_its_bridge() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1)), Create(Port(id=P1, network_id=B1)), Create(Port(id=P2, network_id=B1))])
    assert get(db, Bridge, B1).port_ids == (P1, P2)
    assert_bindings_agree(db)


def test_create_of_an_existing_id_conflicts() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1))])
    with pytest.raises(ConflictError):
        run(db, [Create(Bridge(id=B1, name="again"))])


def test_update_and_delete_of_a_missing_object_are_not_found() -> None:
    db: DB = {}
    with pytest.raises(NotFoundError):
        run(db, [Update(Bridge(id=B1))])
    with pytest.raises(NotFoundError):
        run(db, [UpdateWith(Bridge, B1, lambda b: b)])
    with pytest.raises(NotFoundError):
        run(db, [Delete(Bridge, B1)])
    assert run(db, [Delete(Bridge, B1, ignore_missing=True)]).writes == {}


def test_reference_to_a_missing_object_names_its_kind_and_id() -> None:
    db: DB = {}
    with pytest.raises(NotFoundError) as err:
        run(db, [Create(Port(id=P1, network_id=B1))])
    assert (err.value.kind, err.value.obj_id) == ("Bridge", B1)


def test_ops_see_earlier_ops_of_the_batch() -> None:
    db: DB = {}
    run(db, [
        Create(Chain(id=C1)),
        Create(Rule(id=U1, chain_id=C1)),
        Create(Rule(id=U2, chain_id=C1, action=RuleAction.DROP)),
        UpdateWith(Chain, C1, lambda c: c.replace(rule_ids=(U2, U1))),
    ])
    assert get(db, Chain, C1).rule_ids == (U2, U1)


def test_update_with_must_keep_the_id() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1))])
    with pytest.raises(ValidationError):
        run(db, [UpdateWith(Bridge, B1, lambda b: b.replace(id=B2))])


def test_moving_a_port_updates_both_bridges() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1)), Create(Bridge(id=B2)), Create(Port(id=P1, network_id=B1))])
    run(db, [UpdateWith(Port, P1, lambda p: p.replace(network_id=B2))])
    assert get(db, Bridge, B1).port_ids == ()
    assert get(db, Bridge, B2).port_ids == (P1,)


def test_unchanged_objects_are_not_written_and_reads_are_reported() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1)), Create(Port(id=P1, network_id=B1))])
    result = run(db, [Update(get(db, Port, P1))])
    assert result.writes == {}
    assert (Port, P1) in result.reads
    result = run(db, [Delete(Port, P1)])
    assert set(result.writes) == {(Port, P1), (Bridge, B1)}
    assert result.writes[(Port, P1)] is None
    assert [type(e).__name__ for e in result.events] == ["ObjectDeleted", "ObjectUpdated"]


# --- delete actions -------------------------------------------------------------------------------

def router_with_ports(db: DB) -> None:
    run(db, [
        Create(Router(id=R1)), Create(Bridge(id=B1)),
        Create(Port(id=P1, router_id=R1, port_subnet="10.0.0.0/24", port_address="10.0.0.1")),
        Create(Port(id=P2, network_id=B1, peer_id=P1)),
        Create(Route(id=RT, router_id=R1, next_hop_port_id=P1, dst_subnet="10.0.0.0/24")),
    ])


def test_router_delete_cascades_to_ports_and_routes_once_and_clears_peers() -> None:
    db: DB = {}
    router_with_ports(db)
    assert get(db, Port, P1).route_ids == (RT,)
    assert get(db, Router, R1).route_ids == (RT,)
    result = run(db, [Delete(Router, R1)])    # the route is reached through the router and its port
    assert set(db) == {(Bridge, B1), (Port, P2)}
    assert set(result.deleted) == {(Router, R1), (Port, P1), (Route, RT)}   # their state goes with them
    assert get(db, Port, P2).peer_id is None
    assert_bindings_agree(db)


def test_an_object_created_and_deleted_in_one_batch_writes_and_deletes_nothing() -> None:
    result = plan(lambda cls, i: None, [Create(Bridge(id=B1)), Delete(Bridge, B1)])
    assert result.writes == {} and result.deleted == []


def test_port_delete_clears_the_bridge() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1)), Create(Port(id=P1, network_id=B1))])
    run(db, [Delete(Port, P1)])
    assert get(db, Bridge, B1).port_ids == ()


def test_chain_delete_cascades_to_rules_and_clears_filters() -> None:
    db: DB = {}
    run(db, [Create(Chain(id=C1)), Create(Chain(id=C2)), Create(Bridge(id=B1, inbound_filter_id=C1)),
             Create(Rule(id=U1, chain_id=C1)),
             Create(Rule(id=U2, chain_id=C2, type=RuleType.JUMP, jump_chain_id=C1))])
    assert get(db, Chain, C1).network_inbound_ids == (B1,)
    assert get(db, Chain, C1).jump_rule_ids == (U2,)
    run(db, [Delete(Chain, C1)])
    assert get(db, Bridge, B1).inbound_filter_id is None
    assert (Rule, U1) not in db and (Rule, U2) not in db     # its rules, and the rules jumping to it
    assert get(db, Chain, C2).rule_ids == ()
    assert_bindings_agree(db)


def test_error_binding_refuses_the_delete() -> None:
    db: DB = {}
    run(db, [Create(Router(id=R1)), Create(LoadBalancer(id=LB, router_id=R1))])
    assert get(db, Router, R1).load_balancer_id == LB
    with pytest.raises(ConflictError):
        run(db, [Delete(Router, R1)])
    run(db, [Delete(LoadBalancer, LB), Delete(Router, R1)])
    assert db == {}


def test_error_inside_a_cascade_fails_the_batch() -> None:
    db: DB = {}
    run(db, [Create(Router(id=R1)), Create(LoadBalancer(id=LB, router_id=R1))])
    with pytest.raises(ConflictError):
        plan(lambda cls, i: db.get((cls, i)), [Create(Bridge(id=B1)), Delete(Router, R1)])


# --- single-valued references ---------------------------------------------------------------------

def test_linking_sets_both_peers_and_unlinking_clears_both() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1)), Create(Port(id=P1, network_id=B1)), Create(Port(id=P2, network_id=B1))])
    run(db, [UpdateWith(Port, P1, lambda p: p.replace(peer_id=P2))])
    assert get(db, Port, P2).peer_id == P1
    run(db, [UpdateWith(Port, P2, lambda p: p.replace(peer_id=None))])
    assert get(db, Port, P1).peer_id is None


def test_stealing_a_linked_port_conflicts() -> None:
    db: DB = {}
    run(db, [Create(Bridge(id=B1))] + [Create(Port(id=p, network_id=B1)) for p in (P1, P2, P3)])
    run(db, [UpdateWith(Port, P1, lambda p: p.replace(peer_id=P2))])
    with pytest.raises(ConflictError):
        run(db, [UpdateWith(Port, P3, lambda p: p.replace(peer_id=P2))])
    with pytest.raises(ConflictError):   # the same from a bridge's multi-valued side
        run(db, [Create(Bridge(id=B2, port_ids=(P1,)))])


# --- tunnel zones -----------------------------------------------------------------------------------

def test_tunnel_zone_membership_is_written_on_the_zone() -> None:
    db: DB = {}
    run(db, [Create(Host(id=H1)), Create(TunnelZone(id=TZ, hosts=(TunnelZoneHost(host_id=H1, ip="10.0.0.1"),)))])
    assert get(db, Host, H1).tunnel_zone_ids == (TZ,)
    run(db, [UpdateWith(TunnelZone, TZ, lambda z: z.replace(hosts=()))])
    assert get(db, Host, H1).tunnel_zone_ids == ()
    with pytest.raises(ValidationError):
        run(db, [UpdateWith(Host, H1, lambda h: h.replace(tunnel_zone_ids=(TZ,)))])


def test_deleting_a_host_removes_its_tunnel_zone_member() -> None:
    db: DB = {}
    run(db, [Create(Host(id=H1)), Create(TunnelZone(id=TZ, hosts=(TunnelZoneHost(host_id=H1, ip="10.0.0.1"),)))])
    run(db, [Delete(Host, H1)])
    zone = get(db, TunnelZone, TZ)
    assert zone.hosts == () and zone.host_ids == ()


# --- properties -----------------------------------------------------------------------------------

BRIDGES = [uid(100 + i) for i in range(2)]
ROUTERS = [uid(200 + i) for i in range(2)]
PORTS = [uid(300 + i) for i in range(4)]
CHAINS = [uid(400 + i) for i in range(2)]
RULES = [uid(500 + i) for i in range(3)]
HOSTS = [uid(600 + i) for i in range(2)]

maybe_chain = st.none() | st.sampled_from(CHAINS)


def _port_op(pid: str, on_bridge: bool, device: int, peer: str | None, host: str | None,
             chain: str | None) -> Op:
    if peer == pid:
        peer = None
    return Create(Port(id=pid, network_id=BRIDGES[device] if on_bridge else None,
                       router_id=None if on_bridge else ROUTERS[device],
                       peer_id=peer, host_id=host, inbound_filter_id=chain))


def _set(cls: type[Record], obj_id: str, **changes: object) -> Op:
    return UpdateWith(cls, obj_id, lambda o: o.replace(**changes))


ops_strategy = st.one_of(
    st.builds(_port_op, st.sampled_from(PORTS), st.booleans(), st.integers(0, 1),
              st.none() | st.sampled_from(PORTS), st.none() | st.sampled_from(HOSTS), maybe_chain),
    st.builds(lambda i, c: Create(Rule(id=i, chain_id=c)), st.sampled_from(RULES), st.sampled_from(CHAINS)),
    st.builds(lambda i, peer: _set(Port, i, peer_id=peer), st.sampled_from(PORTS),
              st.none() | st.sampled_from(PORTS)),
    st.builds(lambda i, c: _set(Port, i, inbound_filter_id=c), st.sampled_from(PORTS), maybe_chain),
    st.builds(lambda i, c: _set(Bridge, i, inbound_filter_id=c), st.sampled_from(BRIDGES), maybe_chain),
    st.builds(lambda i, h: _set(Port, i, host_id=h), st.sampled_from(PORTS), st.none() | st.sampled_from(HOSTS)),
    st.builds(lambda i: Delete(Port, i, ignore_missing=True), st.sampled_from(PORTS)),
    st.builds(lambda i: Delete(Rule, i, ignore_missing=True), st.sampled_from(RULES)),
    st.builds(lambda cls_ids: Delete(cls_ids[0], cls_ids[1], ignore_missing=True),
              st.sampled_from([(Bridge, i) for i in BRIDGES] + [(Router, i) for i in ROUTERS]
                              + [(Chain, i) for i in CHAINS] + [(Host, i) for i in HOSTS])),
    st.builds(lambda i, c: Create(Bridge(id=i, inbound_filter_id=c)), st.sampled_from(BRIDGES), maybe_chain),
    st.builds(lambda i: Create(Chain(id=i)), st.sampled_from(CHAINS)),
)
batches_strategy = st.lists(st.lists(ops_strategy, min_size=1, max_size=3), min_size=1, max_size=12)


def base() -> DB:
    """Bridges, routers, chains and hosts to hang ports and rules on (the batches may delete them too)."""
    db: DB = {}
    run(db, [Create(Bridge(id=i)) for i in BRIDGES] + [Create(Router(id=i)) for i in ROUTERS]
         + [Create(Chain(id=i)) for i in CHAINS] + [Create(Host(id=i)) for i in HOSTS])
    return db


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches_strategy)
def test_every_committed_batch_keeps_both_sides_of_every_binding_equal(batches: list[list[Op]]) -> None:
    db = base()
    for ops in batches:
        before = dict(db)
        try:
            run(db, ops)
        except TopologyError:
            assert db == before
        assert_bindings_agree(db)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches_strategy)
def test_a_committed_batch_equals_its_ops_committed_one_by_one(batches: list[list[Op]]) -> None:
    db = base()
    for ops in batches:
        try:
            result = plan(lambda cls, i: db.get((cls, i)), ops)
        except TopologyError:
            continue
        one_by_one = dict(db)
        for op in ops:
            run(one_by_one, [op])
        for key, obj in result.writes.items():
            if obj is None:
                db.pop(key, None)
            else:
                db[key] = obj
        assert db == one_by_one
