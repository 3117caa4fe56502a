"""Fake interfaces: attach by name, inject and capture, link state, MTU, callbacks (a fake VM that answers)."""

from __future__ import annotations

import threading

import pytest

from midonet.datapath.base import DatapathError, DropReason, Flow, FlowKey, Output
from midonet.datapath.memory import InterfaceDrop, Interfaces
from midonet.datapath.memory.interfaces import default_mac, payload_length
from midonet.packets import parse_frame
from midonet.testing.datapath_conformance import arp_request, udp_frame
from tests.unit.datapath.conftest import World


def forward(world: World, src: int, dst: int) -> None:
    world.dp1.install(Flow(FlowKey.of({"in_port": src}), (Output(dst),)))


def test_interfaces_have_a_name_mac_and_mtu() -> None:
    interfaces = Interfaces("h")
    vm = interfaces.add("vm", mtu=9000)
    assert (vm.name, vm.mtu, vm.up, vm.mac) == ("vm", 9000, True, default_mac("h", "vm"))
    assert int(vm.mac[:2], 16) & 0b11 == 0b10, "locally administered unicast"
    assert default_mac("h", "vm") != default_mac("h2", "vm")
    assert interfaces.add("other", mac="02:aa:bb:cc:dd:ee").mac == "02:aa:bb:cc:dd:ee"
    assert interfaces.names() == ["vm", "other"] and "vm" in interfaces
    with pytest.raises(DatapathError):
        interfaces.add("vm")
    with pytest.raises(ValueError):
        interfaces.add("tiny", mtu=20)


def test_attach_needs_an_existing_free_interface() -> None:
    interfaces = Interfaces("h")
    interfaces.add("vm")
    with pytest.raises(DatapathError, match="no interface"):
        interfaces.attach("nope", lambda frame: None)
    vm = interfaces.attach("vm", lambda frame: None)
    assert vm.attached
    with pytest.raises(DatapathError, match="already attached"):
        interfaces.attach("vm", lambda frame: None)
    interfaces.detach(vm)
    assert not vm.attached
    interfaces.attach("vm", lambda frame: None)


def test_add_port_attaches_by_name(world: World) -> None:
    with pytest.raises(DatapathError):
        world.dp1.add_port("vm3")          # an interface of the other host
    with pytest.raises(DatapathError):
        world.dp2.add_port("vm3")          # already attached
    world.h1.interfaces.add("vm9")
    assert world.dp1.add_port("vm9").name == "vm9"


def test_inject_on_an_unattached_interface_is_dropped_and_counted() -> None:
    interfaces = Interfaces("h")
    interfaces.add("vm")
    interfaces.inject("vm", udp_frame())
    stats = interfaces.statistics("vm")
    assert (stats.sent, stats.dropped(InterfaceDrop.NOT_ATTACHED)) == (0, 1)


def test_unknown_interface_names_are_errors() -> None:
    interfaces = Interfaces("h")
    for call in (lambda: interfaces.inject("x", b""), lambda: interfaces.take("x"),
                 lambda: interfaces.set_link("x", False), lambda: interfaces.statistics("x")):
        with pytest.raises(DatapathError):
            call()


def test_captured_take_and_wait(world: World) -> None:
    forward(world, world.vm1.number, world.vm2.number)
    frames = [udp_frame(payload=bytes([i])) for i in range(3)]
    for frame in frames:
        world.h1.interfaces.inject("vm1", frame)
    assert world.h1.interfaces.captured("vm2") == frames
    assert world.h1.interfaces.wait_frames("vm2", 2) == frames[:2]
    assert world.h1.interfaces.take("vm2") == frames[2:]
    assert world.h1.interfaces.take("vm2") == []
    stats = world.h1.interfaces.statistics("vm2")
    assert (stats.received, stats.sent) == (3, 0)
    assert world.h1.interfaces.statistics("vm1").sent == 3


def test_wait_frames_has_a_deadline(world: World) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 frames"):
        world.h1.interfaces.wait_frames("vm2", 1, timeout=0.01)


def test_wait_frames_wakes_on_a_frame_from_another_thread(world: World) -> None:
    forward(world, world.vm1.number, world.vm2.number)
    sender = threading.Thread(target=world.h1.interfaces.inject, args=("vm1", udp_frame()))
    sender.start()
    assert world.h1.interfaces.wait_frames("vm2", 1, timeout=5.0) == [udp_frame()]
    sender.join()


def test_link_down_drops_both_ways(world: World) -> None:
    forward(world, world.vm1.number, world.vm2.number)
    forward(world, world.vm2.number, world.vm1.number)
    world.h1.interfaces.set_link("vm2", False)
    world.h1.interfaces.inject("vm1", udp_frame())     # towards the down link
    world.h1.interfaces.inject("vm2", udp_frame())     # from the down link
    assert world.h1.interfaces.take("vm2") == [] and world.h1.interfaces.take("vm1") == []
    assert world.h1.interfaces.statistics("vm2").dropped(InterfaceDrop.LINK_DOWN) == 2
    assert world.dp1.statistics().dropped(DropReason.LINK_DOWN) == 1
    world.h1.interfaces.set_link("vm2", True)
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.h1.interfaces.take("vm2") == [udp_frame()]


def test_mtu_limits_the_payload_both_ways(world: World) -> None:
    world.h1.interfaces.add("small", mtu=100)
    small = world.dp1.add_port("small")
    forward(world, world.vm1.number, small.number)
    fits = udp_frame(payload=bytes(100 - 28))          # IPv4 + UDP headers + payload = 100
    too_big = udp_frame(payload=bytes(101 - 28))
    assert payload_length(fits) == 100
    assert payload_length(udp_frame(vlan_ids=(5, 6))) == payload_length(udp_frame())
    world.h1.interfaces.inject("vm1", fits)
    world.h1.interfaces.inject("vm1", too_big)
    assert world.h1.interfaces.take("small") == [fits]
    world.h1.interfaces.inject("small", too_big)       # the VM cannot send it either
    assert world.h1.interfaces.statistics("small").dropped(InterfaceDrop.TOO_BIG) == 2
    assert world.upcalls1 == []


def test_a_callback_vm_answers_from_its_receive_callback(world: World) -> None:
    """A fake VM on vm2 answers every ARP request; the answer goes back through the datapath to vm1."""
    forward(world, world.vm1.number, world.vm2.number)
    forward(world, world.vm2.number, world.vm1.number)
    received: list[bytes] = []

    def vm(frame: bytes) -> None:
        received.append(frame)
        request = parse_frame(frame)
        if request.peek("arp_op") == 1:
            world.h1.interfaces.inject("vm2", udp_frame(eth_src="02:00:00:00:00:0b", eth_dst="02:00:00:00:00:0a"))

    world.h1.interfaces.on_frame("vm2", vm)
    world.h1.interfaces.inject("vm1", arp_request())
    assert received == [arp_request()]
    assert world.h1.interfaces.captured("vm2") == []
    assert world.h1.interfaces.take("vm1") == [udp_frame(eth_src="02:00:00:00:00:0b", eth_dst="02:00:00:00:00:0a")]
    world.h1.interfaces.on_frame("vm2", None)
    world.h1.interfaces.inject("vm1", arp_request())
    assert world.h1.interfaces.take("vm2") == [arp_request()]


def test_a_failing_callback_does_not_stop_the_other_outputs(world: World) -> None:
    world.dp1.install(Flow(FlowKey.of({"in_port": world.vm1.number}), (Output(world.vm2.number),
                                                                       Output(world.vm1.number))))

    def broken(frame: bytes) -> None:
        raise RuntimeError("fake VM bug")

    world.h1.interfaces.on_frame("vm2", broken)
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.h1.interfaces.take("vm1") == [udp_frame()]


def test_removing_an_interface_under_a_port_drops_its_output(world: World) -> None:
    forward(world, world.vm1.number, world.vm2.number)
    world.h1.interfaces.remove("vm2")
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.dp1.statistics().dropped(DropReason.NO_PORT) == 1
