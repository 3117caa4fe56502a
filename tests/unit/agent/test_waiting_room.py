"""The waiting room: packets parked by what they wait for, handed back when it arrives, given up on after 3 s."""

from __future__ import annotations

from midonet.agent.waiting_room import WaitingRoom
from midonet.testing.clock import FakeClock


def test_packets_come_back_when_what_they_wait_for_is_ready() -> None:
    clock = FakeClock()
    room = WaitingRoom(clock)
    a, b, c = room.new(b"a", 1), room.new(b"b", 1), room.new(b"c", 2)
    assert room.park(a, ("bridge", "x")) and room.park(b, ("bridge", "x")) and room.park(c, ("arp", "r/ip"))
    assert len(room) == 3
    room.ready("router", "unrelated")
    assert room.take_ready() == []
    room.ready("bridge", "x")
    back = room.take_ready()
    assert back == [a, b] and all(p.attempts == 2 for p in back)
    assert room.take_ready() == [] and len(room) == 1 and room.waiting_for() == [("arp", "r/ip")]


def test_a_packet_keeps_its_first_deadline_when_parked_again() -> None:
    clock = FakeClock()
    room = WaitingRoom(clock, timeout=3.0)
    packet = room.new(b"p", 1)
    room.park(packet, ("port", "p"))
    clock.advance(2)
    room.ready("port", "p")
    [again] = room.take_ready()
    room.park(again, ("bridge", "b"))
    clock.advance(0.5)
    assert room.expire() == []
    clock.advance(0.5)
    assert room.expire() == [packet] and len(room) == 0
    assert room.too_late(packet)


def test_the_room_is_bounded() -> None:
    room = WaitingRoom(FakeClock(), capacity=2)
    assert room.park(room.new(b"1", 1), ("k", "1"))
    assert room.park(room.new(b"2", 1), ("k", "1"))
    assert not room.park(room.new(b"3", 1), ("k", "1"))
    assert len(room.clear()) == 2 and len(room) == 0


def test_generated_packets_remember_their_port_and_generation() -> None:
    room = WaitingRoom(FakeClock())
    packet = room.new_generated(b"arp", "port-1", 2)
    assert (packet.dp_port, packet.egress_port, packet.depth) == (None, "port-1", 2)
