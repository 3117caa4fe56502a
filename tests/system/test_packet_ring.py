"""The AF_PACKET receive ring (`packetsock`, `ring=`): what the upcall channel reads, against a plain socket.

Frames sent into one end of a veth pair in a namespace of the test's own are read on the other end: every one
whole and in order, a frame too big for a ring frame in between (it comes from the socket, marked in the ring), a
VLAN tag the receive path took off put back, the two ways of waiting for nothing, a full ring's drops counted.
Then the datapath's upcall channel behind a stuck handler: every miss is handled or counted as a drop.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterator

import pytest

from midonet.datapath.base import DropReason, Upcall
from midonet.datapath.linux import LinuxDatapath
from midonet.datapath.linux.packetsock import RING_FRAME, PacketSocket
from midonet.datapath.linux.upcalls import RING_FRAMES
from midonet.testing.datapath_conformance import udp_frame
from midonet.testing.linux_rig import LinuxRig
from midonet.testing.namespaces import NamespaceWorld
from tests.contract.test_store_contract import wait_until

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@pytest.fixture
def veth() -> Iterator[str]:
    """A namespace with a veth pair a/b (MTU 9000, so a frame bigger than a ring frame fits)."""
    world = NamespaceWorld()
    try:
        ns = world.namespace("ring")
        world.veth(ns, "a", ns, "b", mtu=9000)
        yield ns
    finally:
        world.close()


@contextlib.contextmanager
def ends(ns: str, frames: int) -> Iterator[tuple[PacketSocket, PacketSocket]]:
    """(a reader of b with a ring of `frames` frames, a sender on a), both closed after."""
    rx = PacketSocket("b", netns_name=ns, ignore_outgoing=True, ring=frames)
    try:
        tx = PacketSocket("a", netns_name=ns, receive=False)
        try:
            yield rx, tx
        finally:
            tx.close()
    finally:
        rx.close()


def frame(n: int, size: int = 64, vlan: int | None = None) -> bytes:
    head = bytes.fromhex(MAC_B.replace(":", "") + MAC_A.replace(":", ""))
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    body = struct.pack("!I", n) * (size // 4)
    return head + tag + struct.pack("!H", 0x88B5) + body   # a local experimental EtherType: nothing answers it


def test_frames_arrive_whole_and_in_order_big_ones_included(veth: str) -> None:
    sent = [frame(n, 5000 if n % 7 == 3 else 64 + n) for n in range(60)]
    assert any(len(f) > RING_FRAME for f in sent)
    with ends(veth, 64) as (rx, tx):
        for f in sent:
            tx.send(f)
        rx.setblocking(False)
        got = []
        while len(got) < len(sent):
            try:
                got.append(rx.receive().frame)
            except BlockingIOError:
                break
        assert got == sent
        assert rx.truncated == 0


def test_the_ring_wraps_around(veth: str) -> None:
    """Three times as many frames as the ring holds, read as they come: each slot is handed back and used again."""
    with ends(veth, 32) as (rx, tx):
        rx.settimeout(5)
        for n in range(96):
            tx.send(frame(n))
            assert rx.receive().frame == frame(n)


def test_a_vlan_tag_the_receive_path_took_off_is_put_back(veth: str) -> None:
    with ends(veth, 64) as (rx, tx):
        rx.settimeout(5)
        tx.send(frame(1, vlan=7))
        tx.send(frame(2))
        assert rx.receive().frame == frame(1, vlan=7)
        assert rx.receive().frame == frame(2)


def test_waiting_for_nothing(veth: str) -> None:
    with ends(veth, 32) as (rx, _):
        rx.setblocking(False)
        with pytest.raises(BlockingIOError):
            rx.receive()
        rx.settimeout(0.1)
        with pytest.raises(TimeoutError):
            rx.receive()


def test_a_full_ring_drops_what_comes_next_and_counts_it(veth: str) -> None:
    """32 frames of room, 100 sent unread: the first 32 are kept, 68 counted dropped, and the count is kept across
    reads (the kernel's restarts at every read); once read, the ring takes frames again."""
    with ends(veth, 32) as (rx, tx):
        for n in range(100):
            tx.send(frame(n))
        assert rx.dropped() == 68
        assert rx.dropped() == 68
        rx.setblocking(False)
        assert [rx.receive().frame for _ in range(32)] == [frame(n) for n in range(32)]
        with pytest.raises(BlockingIOError):
            rx.receive()
        tx.send(frame(100))
        rx.settimeout(5)
        assert rx.receive().frame == frame(100)
        assert rx.dropped() == 68


def test_misses_behind_a_stuck_handler_are_handled_or_counted_as_drops(rig: LinuxRig, dp: LinuxDatapath) -> None:
    """The handler blocks on the first upcall while more misses come than the ring holds: once it goes on, every
    one of them was handled or is counted in the datapath's drops as `upcall_queue_full`."""
    sent = RING_FRAMES + 1000
    burst = udp_frame(tp_dst=4242)
    go_on = threading.Event()
    handled = 0

    def handler(upcall: Upcall) -> None:
        nonlocal handled
        go_on.wait(30)
        handled += upcall.packet == burst

    dp.on_upcall(handler)
    for _ in range(sent):
        rig.inject("h1", "a", burst)
    wait_until(lambda: dp.statistics().misses >= sent, 20, "the kernel to see every miss")
    dropped = dict(dp.statistics().drops).get(DropReason.UPCALL_QUEUE_FULL, 0)
    go_on.set()
    wait_until(lambda: handled + dropped >= sent, 20, "every miss handled or counted dropped")
    assert handled + dropped == sent
    assert dropped >= sent - RING_FRAMES - 1
    assert dp.channel_statistics().overflowed == dropped
