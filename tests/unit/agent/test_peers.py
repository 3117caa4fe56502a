"""Interested hosts (spec 4.3): owners of the flow's ports and of the members of their stateful port groups; "not yet"
until the cache has what it needs; tags that make the answer go stale."""

from __future__ import annotations

import pytest

from midonet.agent.bindings import active_value
from midonet.agent.flowstate import PeerResolver
from midonet.agent.topology_cache import TopologyCache
from midonet.simulation.topology import NotYet
from midonet.topology.devices import Port

from .conftest import Recorder, Sessions

ME, B, C = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))


@pytest.fixture
def cache(sessions: Sessions, rec: Recorder) -> TopologyCache:
    return TopologyCache(sessions.agent, rec.gate, rec.invalidate, rec.ready)


def _ports(sessions: Sessions, n: int) -> list[Port]:
    net = sessions.topology.bridge("net")
    return [sessions.topology.port(net) for _ in range(n)]


def _active(sessions: Sessions, port: Port, host: str) -> None:
    sessions.operator.set_state(Port, port.id, "active", active_value(host, port.tunnel_key))


def _resolve(sessions: Sessions, resolver: PeerResolver, ports: list[str]) -> tuple[frozenset[str], frozenset[object]]:
    for _ in range(6):
        try:
            peers = resolver.interested(ports)
            return peers.hosts, peers.tags
        except NotYet:
            sessions.flush()
    raise AssertionError("never resolved")


def test_the_owners_of_the_flows_ports_other_than_me(sessions: Sessions, cache: TopologyCache) -> None:
    here, there, nowhere = _ports(sessions, 3)
    _active(sessions, there, B)
    resolver = PeerResolver(ME, cache, lambda p: p == here.id)
    hosts, tags = _resolve(sessions, resolver, [here.id, there.id, nowhere.id])
    assert hosts == {B}
    assert {here.id, there.id, nowhere.id} <= tags


def test_members_of_stateful_groups_only(sessions: Sessions, cache: TopologyCache) -> None:
    here, up1, up2, other = _ports(sessions, 4)
    _active(sessions, up1, B)
    _active(sessions, up2, C)
    _active(sessions, other, C)
    stateful = sessions.topology.port_group("uplinks", up1, up2, stateful=True)
    plain = sessions.topology.port_group("plain", up1, other)
    resolver = PeerResolver(ME, cache, lambda p: p == here.id)
    hosts, tags = _resolve(sessions, resolver, [here.id, up1.id])
    assert hosts == {B, C}                              # up2 shares up1's state; `other` does not
    assert {stateful.id, plain.id, up2.id} <= tags and other.id not in tags


def test_not_yet_until_every_location_is_loaded_at_once(sessions: Sessions, cache: TopologyCache) -> None:
    here, up1, up2, up3 = _ports(sessions, 4)
    for port, host in ((up1, B), (up2, C), (up3, C)):
        _active(sessions, port, host)
    sessions.topology.port_group("uplinks", up1, up2, up3, stateful=True)
    resolver = PeerResolver(ME, cache, lambda p: p == here.id)
    rounds = 0
    while True:
        try:
            peers = resolver.interested([here.id, up1.id])
            break
        except NotYet:
            rounds += 1
            sessions.flush()
    assert peers.hosts == {B, C}
    assert rounds <= 3                                  # port, its groups, then every member's location together


def test_a_membership_change_invalidates_the_flows_of_the_ports(sessions: Sessions, cache: TopologyCache,
                                                               rec: Recorder) -> None:
    here, up1, up2 = _ports(sessions, 3)
    group = sessions.topology.port_group("uplinks", up1, stateful=True)
    resolver = PeerResolver(ME, cache, lambda p: p == here.id)
    _, tags = _resolve(sessions, resolver, [here.id, up1.id])
    assert group.id in tags
    rec.invalidated.clear()
    sessions.operator.update(sessions.operator.get(type(group), group.id).replace(port_ids=(up1.id, up2.id)))
    sessions.flush()
    assert group.id in rec.invalidated                   # the flows tagged with the group go: pushed again
    _active(sessions, up2, C)
    hosts, _ = _resolve(sessions, resolver, [here.id, up1.id])
    assert hosts == {C}
