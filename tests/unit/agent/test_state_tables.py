"""MAC, IPv4 -> MAC and ARP tables through the store: learned by one agent, seen by another, invalidating by tag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from midonet.agent.state_tables import StoreStateTables
from midonet.state.randomness import SeededRandom
from midonet.testing.clock import FakeClock
from midonet.topology.devices import Bridge, Router
from midonet.topology.ids import BridgeId, PortId, RouterId

from .conftest import Recorder, Sessions

M = "02:00:00:00:00:01"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ids(sessions: Sessions) -> tuple[BridgeId, RouterId, PortId, PortId]:
    topo = sessions.topology
    net = topo.bridge("net")
    p1, p2 = topo.port(net), topo.port(net)
    return BridgeId(net.id), RouterId(topo.router("r").id), PortId(p1.id), PortId(p2.id)


@pytest.fixture
def mine(sessions: Sessions, rec: Recorder, clock: FakeClock) -> Iterator[StoreStateTables]:
    tables = StoreStateTables(sessions.agent, rec.gate, clock, rec.invalidate, rec.ready, SeededRandom(1))
    yield tables
    tables.stop()


@pytest.fixture
def peer_rec() -> Recorder:
    return Recorder()


@pytest.fixture
def theirs(sessions: Sessions, peer_rec: Recorder, clock: FakeClock) -> Iterator[StoreStateTables]:
    """Another agent's tables, on the operator session (a second session on the same store)."""
    tables = StoreStateTables(sessions.operator, peer_rec.gate, clock, peer_rec.invalidate, peer_rec.ready,
                              SeededRandom(2))
    yield tables
    tables.stop()


def test_a_learned_mac_is_written_to_the_store_and_seen_by_another_agent(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        theirs: StoreStateTables, rec: Recorder, peer_rec: Recorder) -> None:
    bridge, _, p1, _ = ids
    assert theirs.mac_table.lookup(bridge, 0, M) is None        # mirrored from now on
    mine.mac_table.learn(bridge, 0, M, p1)
    assert mine.mac_table.lookup(bridge, 0, M) == p1            # at once, locally
    assert ("flooded", bridge, 0, M) in rec.invalidated
    table = sessions.operator.state_table(Bridge, bridge, "mac_table:0")
    assert table.get(M) == p1
    sessions.flush()
    assert theirs.mac_table.lookup(bridge, 0, M) == p1
    assert ("flooded", bridge, 0, M) in peer_rec.invalidated


def test_a_mac_moving_invalidates_the_old_port_tag(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        theirs: StoreStateTables, peer_rec: Recorder) -> None:
    bridge, _, p1, p2 = ids
    mine.mac_table.learn(bridge, 0, M, p1)
    sessions.flush()
    assert theirs.mac_table.lookup(bridge, 0, M) == p1
    theirs.mac_table.learn(bridge, 0, M, p2)
    assert ("mac", bridge, M, 0, p1) in peer_rec.invalidated
    sessions.flush()
    assert mine.mac_table.lookup(bridge, 0, M) == p2


def test_an_unreferenced_mac_is_removed_after_its_expiry(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        clock: FakeClock, rec: Recorder) -> None:
    bridge, _, p1, _ = ids
    mine.mac_table.learn(bridge, 0, M, p1)
    mine.mac_table.learn(bridge, 0, M, p1)
    assert mine.mac_table.references(bridge, 0, M, p1) == 2
    mine.mac_table.forget(bridge, 0, M, p1)
    clock.advance(20)
    mine.expire()
    assert mine.mac_table.lookup(bridge, 0, M) == p1            # still referenced by one flow
    mine.mac_table.forget(bridge, 0, M, p1)
    clock.advance(14)
    mine.expire()
    assert mine.mac_table.lookup(bridge, 0, M) == p1
    clock.advance(1)
    mine.expire()
    assert mine.mac_table.lookup(bridge, 0, M) is None
    assert ("mac", bridge, M, 0, p1) in rec.invalidated
    assert sessions.operator.state_table(Bridge, bridge, "mac_table:0").get(M) is None


def test_static_entries_written_by_the_api_are_read(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables) -> None:
    bridge, _, _, p2 = ids
    sessions.operator.state_table(Bridge, bridge, "mac_table:0").put(M, p2, persistent=True)
    sessions.operator.state_table(Bridge, bridge, "ip4_mac_table").put("10.0.0.7", M, persistent=True)
    assert mine.mac_table.lookup(bridge, 0, M) == p2
    assert mine.ip4_mac.lookup(bridge, "10.0.0.7") == M


def test_arp_entries_are_shared_wake_waiting_packets_and_age(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        theirs: StoreStateTables, peer_rec: Recorder, rec: Recorder, clock: FakeClock) -> None:
    _, router, _, _ = ids
    assert theirs.arp_table.lookup(router, "10.0.0.5") is None
    mine.arp_table.learn(router, "10.0.0.5", M)
    assert sessions.operator.state_table(Router, router, "arp_table").get("10.0.0.5") == M
    sessions.flush()
    assert ("arp", f"{router}/10.0.0.5") in peer_rec.readied
    found = theirs.arp_table.lookup(router, "10.0.0.5")
    assert found is not None and found.mac == M and not found.stale
    clock.advance(60)
    found = mine.arp_table.lookup(router, "10.0.0.5")
    assert found is not None and found.stale
    clock.advance(30)
    mine.expire()                                                # the writer removes it from the store
    assert ("arp", router, "10.0.0.5") in rec.invalidated
    sessions.flush()
    peer_rec.invalidated.clear()
    theirs.expire()                                              # and the reader's copy ages out too
    assert theirs.arp_table.lookup(router, "10.0.0.5") is None
    assert ("arp", router, "10.0.0.5") in peer_rec.invalidated


def test_arp_entries_outlive_their_writers_session_until_their_own_expiry(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        theirs: StoreStateTables, peer_rec: Recorder, clock: FakeClock) -> None:
    # The writer's agent restarts: its session ends and the entry leaves the store, but the address still answers
    # at that MAC, so the flows routed to it stay until the reader's own clock ages the entry.
    _, router, _, _ = ids
    theirs.arp_table.lookup(router, "10.0.0.5")
    mine.arp_table.learn(router, "10.0.0.5", M)
    sessions.flush()
    peer_rec.invalidated.clear()
    sessions.agent.close()
    assert sessions.operator.delivery.flush(5.0)
    assert sessions.operator.state_table(Router, router, "arp_table").get("10.0.0.5") is None
    found = theirs.arp_table.lookup(router, "10.0.0.5")
    assert found is not None and found.mac == M and peer_rec.invalidated == []
    clock.advance(90)
    theirs.expire()
    assert theirs.arp_table.lookup(router, "10.0.0.5") is None


def test_learned_entries_vanish_with_the_agents_session(
        sessions: Sessions, ids: tuple[BridgeId, RouterId, PortId, PortId], mine: StoreStateTables,
        theirs: StoreStateTables) -> None:
    bridge, _, p1, _ = ids
    theirs.mac_table.lookup(bridge, 0, M)
    mine.mac_table.learn(bridge, 0, M, p1)
    sessions.flush()
    assert theirs.mac_table.lookup(bridge, 0, M) == p1
    sessions.agent.close()
    assert sessions.operator.delivery.flush(5.0)
    assert theirs.mac_table.lookup(bridge, 0, M) is None
