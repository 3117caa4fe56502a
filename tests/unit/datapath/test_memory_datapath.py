"""`MemoryDatapath` beyond the conformance suite: clock, port numbering, close, counted failures, threads."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from midonet.datapath.base import (
    DatapathError,
    DatapathStatistics,
    DropReason,
    Flow,
    FlowKey,
    Output,
    PopVlan,
    PortKind,
    SetFields,
    SetTunnel,
    Upcall,
    Userspace,
)
from midonet.datapath.memory import InterfaceDrop, MemoryDatapath, runloop
from midonet.testing.datapath_conformance import arp_request, tcp_frame, udp_frame
from tests.unit.datapath.conftest import IP1, World


def on_port(port: int, *actions: Output | PopVlan | SetFields | SetTunnel | Userspace) -> Flow:
    return Flow(FlowKey.of({"in_port": port}), actions)


def test_last_used_comes_from_the_injected_clock(world: World) -> None:
    world.dp1.install(on_port(world.vm1.number, Output(world.vm2.number)))
    world.clock.advance(5)
    world.h1.interfaces.inject("vm1", udp_frame())
    ((_, stats),) = world.dp1.flows()
    assert stats.last_used == world.clock.now()
    world.clock.advance(30)
    assert world.dp1.flows()[0][1].last_used == world.clock.now() - 30


def test_port_numbers_are_never_reused(world: World) -> None:
    assert [(p.name, p.kind) for p in world.dp1.ports()] == [
        ("vm1", PortKind.NETDEV), ("vm2", PortKind.NETDEV), ("tnvxlan-overlay", PortKind.VXLAN)]
    world.dp1.remove_port(world.vm2.number)
    again = world.dp1.add_port("vm2")
    assert again.number > world.vx1.number
    with pytest.raises(DatapathError, match="already has a port"):
        world.dp1.add_port("tnvxlan-overlay", PortKind.VXLAN)


def test_a_flow_to_a_port_removed_and_added_again_does_not_follow_it(world: World) -> None:
    world.dp1.install(on_port(world.vm1.number, Output(world.vm2.number)))
    world.dp1.remove_port(world.vm2.number)
    world.dp1.add_port("vm2")
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.h1.interfaces.take("vm2") == []
    assert world.dp1.statistics().dropped(DropReason.NO_PORT) == 1


def test_close_detaches_everything_and_refuses_later_calls(world: World) -> None:
    world.dp1.install(on_port(world.vm1.number, Output(world.vm2.number)))
    world.dp1.close()
    world.dp1.close()
    assert world.dp1.ports() == [] and world.dp1.flows() == []
    world.h1.interfaces.inject("vm1", udp_frame())
    assert world.h1.interfaces.statistics("vm1").dropped(InterfaceDrop.NOT_ATTACHED) == 1
    for call in (lambda: world.dp1.add_port("vm1"), lambda: world.dp1.install(on_port(1)),
                 lambda: world.dp1.execute(udp_frame(), [])):
        with pytest.raises(DatapathError, match="closed"):
            call()
    fresh = MemoryDatapath("again", world.h1)           # the interfaces and the overlay port are free again
    fresh.add_port("vm1")
    fresh.add_port("tnvxlan-overlay", PortKind.VXLAN)


def test_an_action_that_does_not_apply_stops_the_list_and_is_counted(world: World) -> None:
    vm1, vm2 = world.vm1.number, world.vm2.number
    world.dp1.execute(udp_frame(), [Output(vm2), PopVlan(), Output(vm2)], in_port=vm1)
    assert world.h1.interfaces.take("vm2") == [udp_frame()]
    world.dp1.execute(arp_request(), [SetFields((("tp_dst", 9),)), Output(vm2)], in_port=vm1)
    assert world.h1.interfaces.take("vm2") == []
    world.dp1.execute(udp_frame(), [SetTunnel(1 << 24, IP1, "10.0.0.2"), Output(world.vx1.number)])
    assert world.dp1.statistics().dropped(DropReason.ACTION_FAILED) == 3


def test_set_fields_agrees_with_scapy(world: World) -> None:
    """scapy, told to recompute every checksum of our output, gets our bytes back."""
    changes = (("ip_src", "1.2.3.4"), ("ip_dst", "5.6.7.8"), ("tp_src", 1), ("tp_dst", 65535), ("ip_ttl", 1))
    for packet, l4 in ((udp_frame(), UDP), (tcp_frame(), TCP)):
        world.dp1.execute(packet, [SetFields(changes), Output(world.vm2.number)], in_port=world.vm1.number)
        (out,) = world.h1.interfaces.take("vm2")
        pkt = Ether(out)
        assert (pkt[IP].src, pkt[IP].dst, pkt[l4].sport, pkt[l4].dport, pkt[IP].ttl) == (
            "1.2.3.4", "5.6.7.8", 1, 65535, 1)
        del pkt[IP].chksum, pkt[l4].chksum
        assert bytes(Ether(bytes(pkt))) == out


def test_userspace_needs_an_in_port_when_executed(world: World) -> None:
    world.dp1.execute(udp_frame(), [Userspace()])
    assert world.dp1.statistics().dropped(DropReason.ACTION_FAILED) == 1
    world.dp1.execute(udp_frame(), [Userspace()], in_port=world.vm2.number)
    assert world.upcalls1 == [Upcall(world.vm2.number, udp_frame())]


def test_a_miss_without_a_handler_is_a_counted_drop(world: World) -> None:
    dp = MemoryDatapath("bare", world.h2)
    world.dp2.close()
    dp.add_port("vm3")
    world.h2.interfaces.inject("vm3", udp_frame())
    stats = dp.statistics()
    assert (stats.misses, stats.upcalls, stats.dropped(DropReason.NO_HANDLER)) == (1, 0, 1)


def test_statistics_are_a_frozen_record(world: World) -> None:
    world.h1.interfaces.inject("vm1", b"\x01\x02")
    stats = world.dp1.statistics()
    assert stats == DatapathStatistics(0, 0, 0, ((DropReason.MALFORMED, 1),))
    assert stats.dropped() == 1 and hash(stats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.hits = 5  # type: ignore[misc]


def test_masks_are_listed_in_lookup_order(world: World) -> None:
    world.dp1.install(Flow(FlowKey.of({"in_port": 1, "eth_dst": "02:00:00:00:00:0b"}), ()))
    world.dp1.install(Flow(FlowKey.of({"in_port": 2}), ()))
    world.dp1.install(Flow(FlowKey.of({"in_port": 3, "eth_dst": "02:00:00:00:00:0c"}), ()))
    assert world.dp1.masks() == [("in_port", "eth_dst"), ("in_port",)]
    flow = world.dp1.flow(FlowKey.of({"in_port": 2}))
    assert flow is not None and flow[1].packets == 0


def test_a_tunnel_loop_is_cut_by_the_run_loop(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host tunnelling every overlay packet back to itself: inject still returns."""
    monkeypatch.setattr(runloop, "MAX_ITEMS", 200)
    world.dp1.install(on_port(world.vm1.number, SetTunnel(1, IP1, IP1), Output(world.vx1.number)))
    world.dp1.install(on_port(world.vx1.number, SetTunnel(1, IP1, IP1), Output(world.vx1.number)))
    before = runloop.discarded()
    world.h1.interfaces.inject("vm1", udp_frame())
    assert runloop.discarded() > before
    assert world.dp1.statistics().hits >= 100


def test_threads_injecting_and_installing_at_once(world: World) -> None:
    """Four senders and a thread churning unrelated flows: every packet is forwarded and counted exactly once."""
    world.dp1.install(on_port(world.vm1.number, Output(world.vm2.number)))
    per_thread, senders = 200, 4
    stop = threading.Event()

    def send(n: int) -> None:
        for i in range(per_thread):
            world.h1.interfaces.inject("vm1", udp_frame(tp_src=n, payload=i.to_bytes(2, "big")))

    def churn() -> None:
        i = 0
        while not stop.is_set():
            key = FlowKey.of({"in_port": 99, "tp_dst": i % 50})
            world.dp1.install(Flow(key, ()))
            world.dp1.remove(key)
            i += 1

    churner = threading.Thread(target=churn)
    churner.start()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    churner.join()
    total = per_thread * senders
    assert len(world.h1.interfaces.take("vm2")) == total
    assert world.dp1.statistics().hits == total
    assert world.dp1.flow(FlowKey.of({"in_port": world.vm1.number}))[1].packets == total  # type: ignore[index]
