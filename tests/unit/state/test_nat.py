"""NAT state (spec 3.7, 4.2): bindings with references and idle expiry, SNAT ports over leased 64-port blocks,
"not yet" until a block is leased, idle blocks returned, expired SNAT keys giving their port back."""

from __future__ import annotations

import random

import pytest

from midonet.state.conntrack import ConnTracked, ConnTrackKey
from midonet.state.nat import (
    BLOCK_IDLE,
    BLOCK_SIZE,
    NAT_IDLE,
    InMemoryNatLeaser,
    NatBinding,
    NatBlock,
    NatBlockNeeded,
    NatBound,
    NatDeleted,
    NatKey,
    NatKeyType,
    NatPortsExhausted,
    target_ips,
)
from midonet.state.randomness import SeededRandom
from midonet.state.tables import InMemoryTables, in_memory
from midonet.testing.clock import FakeClock
from midonet.topology.chains import NatTarget

DEV = "00000000-0000-4000-8000-00000000d001"
ONE_BLOCK = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024, tp_end=1087)
FWD = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, DEV)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tables(clock: FakeClock) -> InMemoryTables:
    return in_memory(clock)


def test_key_types_invert() -> None:
    assert {k: k.inverse for k in NatKeyType}[NatKeyType.FWD_STICKY_DNAT] is NatKeyType.REV_STICKY_DNAT
    assert all(k.inverse.inverse is k for k in NatKeyType)
    with pytest.raises(ValueError):
        FWD.return_key(NatBinding("1.1.1.1", 1)).return_key(NatBinding("1.1.1.1", 1))


def test_unreferenced_key_idles_out_after_60s(tables: InMemoryTables, clock: FakeClock) -> None:
    tables.nat.bind(FWD, NatBinding("192.0.2.1", 1024))
    clock.advance(NAT_IDLE * 5)
    assert tables.nat.expire() == []                    # referenced: never
    tables.nat.unref(FWD)
    clock.advance(NAT_IDLE - 1)
    assert tables.nat.expire() == []
    tables.nat.bind(FWD, NatBinding("192.0.2.9", 9))    # a new flow refreshes it (and keeps the binding)
    tables.nat.unref(FWD)
    clock.advance(NAT_IDLE)
    assert tables.nat.expire() == [(FWD, NatBinding("192.0.2.1", 1024))]
    assert tables.nat.get(FWD) is None


def test_expired_snat_key_gives_its_port_back(tables: InMemoryTables, clock: FakeClock) -> None:
    binding = tables.nat_leaser.allocate(DEV, (ONE_BLOCK,), "10.0.2.1", 53)
    key = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, DEV)
    tables.apply([NatBound(key, binding)])
    tables.release([NatBound(key, binding)])
    clock.advance(NAT_IDLE)
    tables.expire()
    assert tables.nat.get(key) is None
    clock.advance(BLOCK_IDLE)
    assert tables.nat_leaser.expire() == [NatBlock(DEV, "192.0.2.1", 1024 // BLOCK_SIZE)]


def test_deleted_key_is_gone_at_once(tables: InMemoryTables) -> None:
    key = NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 5000, "10.0.2.100", 80, 6, DEV)
    tables.apply([NatBound(key, NatBinding("10.0.2.1", 8080)), NatDeleted(key)])
    assert tables.nat.get(key) is None and len(tables.nat) == 0


def test_conntrack_and_nat_writes_release_their_references(tables: InMemoryTables, clock: FakeClock) -> None:
    ct = ConnTrackKey("10.0.2.1", 53, "10.0.1.1", 5000, 17, DEV)
    writes = [ConnTracked(ct), NatBound(FWD, NatBinding("192.0.2.1", 1024))]
    tables.apply(writes)
    assert tables.nat.references(FWD) == 1 and tables.conntrack.contains(ct)
    tables.release(writes)
    assert tables.nat.references(FWD) == 0
    clock.advance(NAT_IDLE)
    tables.expire()
    assert not tables.conntrack.contains(ct) and tables.nat.get(FWD) is None


def test_leaser_picks_ports_of_the_target_range_in_order(clock: FakeClock) -> None:
    leaser = InMemoryNatLeaser(clock)
    target = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1030, tp_end=1040)
    ports = [leaser.allocate(DEV, (target,), "10.0.2.1", 53).port for _ in range(11)]
    assert ports == list(range(1030, 1041))
    with pytest.raises(NatPortsExhausted):
        leaser.allocate(DEV, (target,), "10.0.2.1", 53)


def test_leaser_moves_on_to_the_next_address_when_one_is_full(clock: FakeClock) -> None:
    leaser = InMemoryNatLeaser(clock)
    target = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.2", tp_start=2000, tp_end=2001)
    got = [leaser.allocate(DEV, (target,), "10.0.2.1", 53) for _ in range(4)]
    assert got == [NatBinding("192.0.2.1", 2000), NatBinding("192.0.2.1", 2001),
                   NatBinding("192.0.2.2", 2000), NatBinding("192.0.2.2", 2001)]
    assert target_ips(target) == ["192.0.2.1", "192.0.2.2"]


def test_asynchronous_leaser_answers_not_yet_until_a_block_is_leased(clock: FakeClock) -> None:
    leaser = InMemoryNatLeaser(clock, asynchronous=True)
    with pytest.raises(NatBlockNeeded) as waiting:
        leaser.allocate(DEV, (ONE_BLOCK,), "10.0.2.1", 53)
    assert (waiting.value.device, waiting.value.ip) == (DEV, "192.0.2.1")
    assert leaser.leased() == []
    assert leaser.lease_pending() == [NatBlock(DEV, "192.0.2.1", 16)]
    assert leaser.allocate(DEV, (ONE_BLOCK,), "10.0.2.1", 53) == NatBinding("192.0.2.1", 1024)


def test_block_in_use_is_kept_an_idle_one_returned_after_5_minutes(clock: FakeClock) -> None:
    leaser = InMemoryNatLeaser(clock)
    binding = leaser.allocate(DEV, (ONE_BLOCK,), "10.0.2.1", 53)
    clock.advance(BLOCK_IDLE * 2)
    assert leaser.expire() == []
    leaser.release(DEV, "10.0.2.1", 53, binding)
    clock.advance(BLOCK_IDLE - 1)
    assert leaser.expire() == []
    clock.advance(1)
    assert leaser.expire() == [NatBlock(DEV, "192.0.2.1", 16)]
    assert leaser.leased(DEV) == []


def test_random_block_choice_is_seeded(clock: FakeClock) -> None:
    wide = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024, tp_end=65535)
    picks = []
    for _ in range(2):
        leaser = InMemoryNatLeaser(clock, rng=random.Random(7))
        picks.append(leaser.allocate(DEV, (wide,), "10.0.2.1", 53).port)
    assert picks[0] == picks[1] and picks[0] // BLOCK_SIZE >= 16


def test_seeded_random_is_deterministic_and_in_range() -> None:
    a, b = SeededRandom(3), SeededRandom(3)
    draws = [a.randrange(5, 9) for _ in range(200)]
    assert draws == [b.randrange(5, 9) for _ in range(200)]
    assert set(draws) == {5, 6, 7, 8}
    with pytest.raises(ValueError):
        a.randrange(3, 3)


def test_asynchronous_leaser_says_exhausted_when_nothing_is_left_to_lease(clock: FakeClock) -> None:
    leaser = InMemoryNatLeaser(clock, asynchronous=True)
    one_port = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024, tp_end=1024)
    with pytest.raises(NatBlockNeeded):
        leaser.allocate(DEV, (one_port,), "10.0.2.1", 53)
    leaser.lease_pending()
    leaser.allocate(DEV, (one_port,), "10.0.2.1", 53)
    with pytest.raises(NatPortsExhausted):
        leaser.allocate(DEV, (one_port,), "10.0.2.1", 53)
    assert leaser.pending == [] and leaser.lease_pending() == []
