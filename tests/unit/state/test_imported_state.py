"""Flow state that comes from elsewhere (spec 4.2, 4.5): keys imported with no reference, and the SNAT allocator of
blocks leased elsewhere (held by others, installed, a restored connection's port reserved)."""

from __future__ import annotations

import pytest

from midonet.state.conntrack import CONNTRACK_IDLE, ConnTrackKey, InMemoryConnTrack
from midonet.state.nat import (
    BLOCK_SIZE,
    NAT_IDLE,
    InMemoryNatLeaser,
    InMemoryNatTable,
    NatBinding,
    NatBlock,
    NatBlockNeeded,
    NatKey,
    NatKeyType,
    NatPortsExhausted,
)
from midonet.testing.clock import FakeClock
from midonet.topology.chains import NatTarget

DEV = "00000000-0000-4000-8000-00000000d001"
KEY = ConnTrackKey("10.0.2.1", 53, "10.0.1.1", 5000, 17, DEV)
FWD = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, DEV)
TWO_BLOCKS = NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024, tp_end=1151)


def test_an_imported_conntrack_key_lives_its_idle_time_from_the_import() -> None:
    clock = FakeClock()
    table = InMemoryConnTrack(clock)
    table.touch(KEY)
    assert table.contains(KEY)
    clock.advance(CONNTRACK_IDLE - 1)
    table.touch(KEY)                                    # imported again: refreshed
    clock.advance(CONNTRACK_IDLE - 1)
    assert table.expire() == []
    clock.advance(1)
    assert table.expire() == [KEY]


def test_an_imported_key_leaves_a_key_our_flows_hold_alone() -> None:
    clock = FakeClock()
    table = InMemoryConnTrack(clock)
    table.track(KEY)
    table.touch(KEY)
    clock.advance(CONNTRACK_IDLE * 2)
    assert table.expire() == [] and table.contains(KEY)


def test_an_imported_nat_key_replaces_the_binding_and_idles_out() -> None:
    clock = FakeClock()
    table = InMemoryNatTable(clock)
    table.touch(FWD, NatBinding("192.0.2.1", 1025))
    table.touch(FWD, NatBinding("192.0.2.1", 1026))
    assert table.get(FWD) == NatBinding("192.0.2.1", 1026)
    assert table.references(FWD) == 0
    table.bind(FWD, NatBinding("192.0.2.1", 9))         # a flow of ours takes it: the binding stays
    table.touch(FWD, NatBinding("192.0.2.1", 1027))
    assert table.references(FWD) == 1
    clock.advance(NAT_IDLE * 2)
    assert table.expire() == []
    table.unref(FWD)
    clock.advance(NAT_IDLE)
    assert table.expire() == [(FWD, NatBinding("192.0.2.1", 1027))]


def test_blocks_others_hold_are_never_asked_for() -> None:
    clock = FakeClock()
    taken: set[int] = {1024 // BLOCK_SIZE}
    leaser = InMemoryNatLeaser(clock, asynchronous=True, unavailable=lambda device, ip: taken)
    with pytest.raises(NatBlockNeeded):
        leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53)
    assert leaser.add_block(NatBlock(DEV, "192.0.2.1", 17))
    assert not leaser.add_block(NatBlock(DEV, "192.0.2.1", 17))
    binding = leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53)
    assert binding.port // BLOCK_SIZE == 17
    for _ in range(BLOCK_SIZE - 1):
        leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53)
    with pytest.raises(NatPortsExhausted):              # block 16 is someone else's: nothing left to lease
        leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53)


def test_a_restored_port_is_reserved_for_its_destination() -> None:
    clock = FakeClock()
    leaser = InMemoryNatLeaser(clock, asynchronous=True)
    restored = NatBinding("192.0.2.1", 17 * BLOCK_SIZE)
    assert not leaser.reserve(DEV, restored, "10.0.2.1", 53)       # its block is not leased here
    leaser.add_block(NatBlock(DEV, "192.0.2.1", 17))
    assert leaser.reserve(DEV, restored, "10.0.2.1", 53)
    assert not leaser.reserve(DEV, restored, "10.0.2.1", 53)
    ports = {leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53).port for _ in range(BLOCK_SIZE - 1)}
    assert restored.port not in ports
    leaser.release(DEV, "10.0.2.1", 53, restored)
    assert leaser.allocate(DEV, (TWO_BLOCKS,), "10.0.2.1", 53) == restored
