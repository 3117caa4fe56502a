"""The state tables a simulation reads: MAC learning with references and expiry, the ARP cache's stale and expiry
times, connection tracking, and applying requested writes (spec 3.3.4, 3.4 ARP timings, 3.6)."""

from __future__ import annotations

import pytest

from midonet.state.arp_cache import ARP_EXPIRATION, ARP_STALE, ArpEntry, ArpKey, ArpLearned
from midonet.state.conntrack import CONNTRACK_IDLE, ConnTrackKey
from midonet.state.mac_table import MAC_EXPIRY, Ip4MacLearned, MacEntry, MacLearned
from midonet.state.tables import InMemoryTables, in_memory
from midonet.testing.clock import FakeClock
from midonet.topology.ids import BridgeId, PortId, RouterId

B = BridgeId("b")
P1, P2 = PortId("p1"), PortId("p2")
R = RouterId("r")
MAC = "02:00:00:00:00:01"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tables(clock: FakeClock) -> InMemoryTables:
    return in_memory(clock)


def test_learned_mac_is_found_on_its_vlan_only(tables: InMemoryTables) -> None:
    tables.mac_table.learn(B, 0, MAC, P1)
    assert tables.mac_table.lookup(B, 0, MAC) == P1
    assert tables.mac_table.lookup(B, 7, MAC) is None
    assert tables.mac_table.lookup(BridgeId("other"), 0, MAC) is None


def test_mac_moves_to_the_port_it_was_last_learned_on(tables: InMemoryTables) -> None:
    tables.mac_table.learn(B, 0, MAC, P1)
    tables.mac_table.learn(B, 0, MAC, P2)
    assert tables.mac_table.lookup(B, 0, MAC) == P2


def test_referenced_mac_never_expires(tables: InMemoryTables, clock: FakeClock) -> None:
    tables.mac_table.learn(B, 0, MAC, P1)
    clock.advance(MAC_EXPIRY * 10)
    assert tables.mac_table.expire() == []
    assert tables.mac_table.lookup(B, 0, MAC) == P1


def test_unreferenced_mac_expires_after_15_seconds(tables: InMemoryTables, clock: FakeClock) -> None:
    table = tables.mac_table
    table.learn(B, 0, MAC, P1)
    table.learn(B, 0, MAC, P1)
    table.forget(B, 0, MAC, P1)
    assert table.references(B, 0, MAC, P1) == 1
    table.forget(B, 0, MAC, P1)
    clock.advance(MAC_EXPIRY - 1)
    assert table.expire() == []
    clock.advance(1)
    assert table.expire() == [MacEntry(B, 0, MAC, P1)]
    assert table.lookup(B, 0, MAC) is None


def test_relearning_before_expiry_keeps_the_entry(tables: InMemoryTables, clock: FakeClock) -> None:
    table = tables.mac_table
    table.learn(B, 0, MAC, P1)
    table.forget(B, 0, MAC, P1)
    clock.advance(10)
    table.learn(B, 0, MAC, P1)
    clock.advance(10)
    assert table.expire() == []
    assert table.lookup(B, 0, MAC) == P1


def test_expiry_of_an_old_port_leaves_a_moved_mac_alone(tables: InMemoryTables, clock: FakeClock) -> None:
    table = tables.mac_table
    table.learn(B, 0, MAC, P1)
    table.learn(B, 0, MAC, P2)
    table.forget(B, 0, MAC, P1)
    clock.advance(MAC_EXPIRY)
    assert table.expire() == []
    assert table.lookup(B, 0, MAC) == P2


def test_static_mac_entries_do_not_expire(tables: InMemoryTables, clock: FakeClock) -> None:
    tables.mac_table.put(B, 0, MAC, P1)
    tables.mac_table.learn(B, 0, MAC, P1)
    tables.mac_table.forget(B, 0, MAC, P1)
    clock.advance(MAC_EXPIRY * 2)
    assert tables.mac_table.expire() == []
    assert tables.mac_table.entries(B) == {MAC: P1}


def test_arp_entry_turns_stale_then_expires(tables: InMemoryTables, clock: FakeClock) -> None:
    cache = tables.arp_cache
    cache.learn(R, "10.0.0.1", MAC)
    assert cache.lookup(R, "10.0.0.1") == ArpEntry(MAC)
    clock.advance(ARP_STALE)
    assert cache.lookup(R, "10.0.0.1") == ArpEntry(MAC, stale=True)
    assert cache.expire() == []
    clock.advance(ARP_EXPIRATION - ARP_STALE)
    assert cache.lookup(R, "10.0.0.1") is None
    assert cache.expire() == [ArpKey(R, "10.0.0.1")]
    assert cache.entries(R) == {}


def test_relearning_refreshes_an_arp_entry(tables: InMemoryTables, clock: FakeClock) -> None:
    cache = tables.arp_cache
    cache.learn(R, "10.0.0.1", MAC)
    clock.advance(ARP_STALE + 1)
    cache.learn(R, "10.0.0.1", "02:00:00:00:00:09")
    assert cache.lookup(R, "10.0.0.1") == ArpEntry("02:00:00:00:00:09")


def test_conntrack_key_lives_while_referenced_then_idles_out(tables: InMemoryTables, clock: FakeClock) -> None:
    key = ConnTrackKey("10.0.0.1", 1000, "10.0.0.2", 80, 6, "dev")
    ct = tables.conntrack
    assert not ct.contains(key)
    ct.track(key)
    ct.track(key)
    ct.release(key)
    clock.advance(CONNTRACK_IDLE * 2)
    assert ct.expire() == []
    ct.release(key)
    assert ct.contains(key)
    clock.advance(CONNTRACK_IDLE)
    assert ct.expire() == [key]
    assert not ct.contains(key) and len(ct) == 0


def test_reply_key_swaps_the_ends_and_names_the_egress_device() -> None:
    key = ConnTrackKey("10.0.0.1", 1000, "10.0.0.2", 80, 6, "in")
    assert key.reply("out") == ConnTrackKey("10.0.0.2", 80, "10.0.0.1", 1000, 6, "out")


def test_apply_runs_requested_writes_in_order(tables: InMemoryTables) -> None:
    tables.apply([MacLearned(B, 0, MAC, P1), MacLearned(B, 0, MAC, P2), Ip4MacLearned(B, "10.0.0.5", MAC),
                  ArpLearned(R, "10.0.0.1", MAC)])
    assert tables.mac_table.lookup(B, 0, MAC) == P2
    assert tables.ip4_mac.lookup(B, "10.0.0.5") == MAC
    assert tables.arp_cache.lookup(R, "10.0.0.1") == ArpEntry(MAC)


def test_clock_never_goes_back(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        clock.advance(-1)
