"""The kernel program's actions give the same bytes as the Python interpreter (`execute`), checksums included.

The conformance suite checks rewrites through `execute` (Python); here the same actions run as an installed flow
in the tc-BPF program, and every output must equal, byte for byte, what `memory.actions.interpret` makes of the
frame. Also: flows the kernel cannot express run in userspace, and probes stay invisible.
"""

from __future__ import annotations

import time

import pytest

from midonet.datapath.base import (
    Action,
    DropReason,
    Flow,
    FlowKey,
    Output,
    PopVlan,
    PushVlan,
    SetFields,
    Upcall,
)
from midonet.datapath.linux import LinuxDatapath
from midonet.datapath.memory.actions import Emit, interpret
from midonet.packets import FlowMatch, frame, ipv4
from midonet.testing.datapath_conformance import (
    MAC_C,
    Upcalls,
    arp_request,
    assert_checksums_valid,
    tcp_frame,
    udp_frame,
)
from midonet.testing.linux_rig import LinuxRig

ALL_FIELDS = SetFields((("eth_src", "02:00:00:00:00:fe"), ("eth_dst", "02:00:00:00:00:ef"), ("ip_src", "172.16.0.1"),
                        ("ip_dst", "172.16.0.2"), ("tp_src", 5555), ("tp_dst", 6666), ("ip_ttl", 9), ("ip_tos", 0x10)))
NAT = SetFields((("ip_dst", "10.1.2.3"), ("tp_dst", 8080)))
TTL = SetFields((("ip_ttl", 63),))


def icmp_echo() -> bytes:
    spec = FlowMatch(eth_src="02:00:00:00:00:0a", eth_dst="02:00:00:00:00:0b", ip_src="192.168.1.10",
                     ip_dst="192.168.1.11", ip_proto=ipv4.PROTO_ICMP, tp_src=8, tp_dst=0, icmp_id=77)
    return frame.build(spec, b"ping-data")


def fragment(kind: str) -> bytes:
    spec = FlowMatch(eth_src="02:00:00:00:00:0a", eth_dst="02:00:00:00:00:0b", ip_src="192.168.1.10",
                     ip_dst="192.168.1.11", ip_proto=ipv4.PROTO_UDP, tp_src=1000, tp_dst=2000, ip_frag=kind)
    return frame.build(spec, b"x" * 40)


CASES: dict[str, tuple[bytes, tuple[Action, ...]]] = {
    "udp-all-fields": (udp_frame(), (ALL_FIELDS,)),
    "tcp-all-fields": (tcp_frame(), (ALL_FIELDS,)),
    "tcp-nat": (tcp_frame(), (NAT,)),
    "icmp-addresses-ttl": (icmp_echo(), (SetFields((("ip_src", "1.2.3.4"), ("ip_ttl", 1), ("ip_tos", 4))),)),
    "icmp-type-code": (icmp_echo(), (SetFields((("tp_src", 0), ("tp_dst", 3))),)),
    "udp-no-checksum": (frame.build(FlowMatch(eth_src="02:00:00:00:00:0a", eth_dst="02:00:00:00:00:0b",
                                              ip_src="10.0.0.1", ip_dst="10.0.0.2", ip_proto=17, tp_src=1,
                                              tp_dst=2), b"abc", udp_checksum=False), (NAT,)),
    "first-fragment": (fragment("first"), (NAT,)),
    "later-fragment": (fragment("later"), (SetFields((("ip_src", "9.9.9.9"),)),)),
    "push-then-rewrite": (udp_frame(), (PushVlan(100), NAT, TTL)),
    "tagged-rewrite-pop": (udp_frame(vlan_ids=(7,)), (NAT, PopVlan())),
    "qinq-push": (udp_frame(vlan_ids=(7,)), (PushVlan(300), TTL)),
    "arp-mac-rewrite": (arp_request(), (SetFields((("eth_dst", MAC_C),)),)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_rewrites_equal_python_rewrites(rig: LinuxRig, dp: LinuxDatapath, case: str) -> None:
    packet, actions = CASES[case]
    b = next(p.number for p in dp.ports() if p.name == "b")
    a = next(p.number for p in dp.ports() if p.name == "a")
    flow = Flow(FlowKey.of({"in_port": a}), (*actions, Output(b)))
    dp.install(flow)
    assert dp.in_kernel(flow.key)
    (expected,) = [e.frame for e in interpret(packet, flow.actions).effects if isinstance(e, Emit)]
    rig.inject("h1", "a", packet)
    (got,) = rig.wait_frames("h1", "b")
    assert got.hex() == expected.hex()
    if frame.parse(got).peek("ip_frag") in ("none", "first"):
        assert_checksums_valid(got)


def test_copies_between_outputs_in_the_kernel(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, c = (p.number for p in dp.ports())
    dp.install(Flow(FlowKey.of({"in_port": a}), (Output(b), NAT, PushVlan(5), Output(c))))
    packet = udp_frame()
    rig.inject("h1", "a", packet)
    assert rig.wait_frames("h1", "b") == [packet]
    assert rig.wait_frames("h1", "c") == [interpret(packet, (NAT, PushVlan(5), Output(c))).effects[0].frame]


def test_an_action_that_does_not_apply_drops_and_counts(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, _ = (p.number for p in dp.ports())
    dp.install(Flow(FlowKey.of({"in_port": a, "eth_type": 0x0806}), (NAT, Output(b))))
    dp.install(Flow(FlowKey.of({"in_port": a, "eth_type": 0x0800}), (PopVlan(), Output(b))))
    rig.inject("h1", "a", arp_request())      # an L3 rewrite on ARP
    rig.inject("h1", "a", udp_frame())        # a pop with no tag
    rig.quiesce()
    assert rig.take("h1", "b") == []
    assert dp.statistics().dropped(DropReason.ACTION_FAILED) == 2


def test_flows_the_kernel_cannot_express_run_in_userspace(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, _ = (p.number for p in dp.ports())
    upcalls = Upcalls()
    dp.on_upcall(upcalls)
    by_icmp_id = Flow(FlowKey.of({"in_port": a, "icmp_id": 77}), (Output(b),))
    dp.install(by_icmp_id)
    assert not dp.in_kernel(by_icmp_id.key)
    rig.inject("h1", "a", icmp_echo())
    assert rig.wait_frames("h1", "b") == [icmp_echo()]
    rig.quiesce()
    assert upcalls.items == []
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.upcalls) == (1, 0, 0), stats
    ((flow, flow_stats),) = dp.flows()
    assert flow == by_icmp_id and flow_stats.packets == 1
    rig.inject("h1", "a", udp_frame())         # no icmp_id: a miss as usual
    assert upcalls.wait(1)[0] == Upcall(a, udp_frame())


def test_masks_beyond_the_kernel_table_go_to_userspace(rig: LinuxRig, dp: LinuxDatapath) -> None:
    a, b, _ = (p.number for p in dp.ports())
    values = {"eth_src": "02:00:00:00:00:01", "ip_src": "10.9.9.9", "ip_dst": "10.9.9.9", "tp_src": 1, "tp_dst": 1,
              "ip_proto": 17, "ip_tos": 0}
    for i in range(40):   # 40 distinct masks, none matching in_port 999
        mask = {f: v for j, (f, v) in enumerate(values.items()) if (i + 1) >> j & 1}
        dp.install(Flow(FlowKey.of({"in_port": 999, **mask}), ()))
    assert len(dp.masks()) == 32
    late = Flow(FlowKey.of({"in_port": a, "eth_dst": "02:00:00:00:00:0b", "eth_type": 0x0800}), (Output(b),))
    dp.install(late)
    assert not dp.in_kernel(late.key)
    rig.inject("h1", "a", udp_frame())
    assert rig.wait_frames("h1", "b") == [udp_frame()]
    for flow, _ in dp.flows():
        dp.remove(flow.key)
    assert dp.masks() == {} and dp.flows() == []


def test_probes_are_never_counted_nor_upcalled(rig: LinuxRig, dp: LinuxDatapath) -> None:
    upcalls = Upcalls()
    dp.on_upcall(upcalls)
    rig.quiesce()
    rig.quiesce()
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.upcalls, upcalls.items) == (0, 0, 0, [])


def test_a_handler_may_close_its_own_datapath(rig: LinuxRig, dp: LinuxDatapath) -> None:
    closed = Upcalls(lambda upcall: dp.close())
    dp.on_upcall(closed)
    rig.inject("h1", "a", udp_frame())
    closed.wait(1)
    for _ in range(50):
        if not (rig.state_root / "h1").exists():
            break
        time.sleep(0.05)
    assert not (rig.state_root / "h1").exists(), "the bpffs is still there"
