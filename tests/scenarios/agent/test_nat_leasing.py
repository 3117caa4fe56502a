"""SNAT port blocks leased through the store by several agents (spec 3.7): two hosts translating to the same address
never hand out the same block, so no two connections to one destination share a source port; a dead agent's blocks
are free again.

`routed` (conftest): l1 (h1) and l2 (h3) on the left are SNAT'd to GATEWAY when they leave by the router's right
port, over a range of four 64-port blocks; r1 (h2) on the right is the destination of every connection.
"""

from __future__ import annotations

from collections import Counter

from midonet.agent.metrics import AgentDrop
from midonet.agent.nat_leasing import TAKEN, table_name
from midonet.packets.flowmatch import parse_frame
from midonet.testing import frames
from midonet.testing.fakehosts import FakeVm
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC
from midonet.topology.devices import Port, Router

from .conftest import RoutedCloud

GATEWAY = "192.0.2.1"
FIRST, LAST = 1024, 1024 + 4 * 64 - 1


def _source_nat(routed: RoutedCloud) -> None:
    t = routed.cloud.topology
    router = t.get(Router, routed.router.id)
    right = next(p for p in t.store.list(Port, router.port_ids) if p.port_address == "10.0.2.254")
    pre, post = t.chain("pre"), t.chain("post")
    t.nat(post, "snat", (GATEWAY, GATEWAY, FIRST, LAST), nw_src_ip="10.0.1.0/24", out_port_ids=(right.id,))
    t.nat(pre, "rev_snat", nw_dst_ip=f"{GATEWAY}/32")
    t.filters(Router, router.id, inbound=pre, outbound=post)
    routed.cloud.settle()


def _open(routed: RoutedCloud, vm: FakeVm, sports: range) -> list[int]:
    """Connections from `vm` to r1:53, one per source port; the SNAT ports r1 saw."""
    r1 = routed.vms["r1"]
    for sport in sports:
        vm.send(frames.udp(vm.mac, LEFT_ROUTER_MAC, vm.ip, r1.ip, sport=sport, dport=53))
    routed.cloud.settle()
    seen = [parse_frame(f) for f in r1.take()]
    assert all(m.ip_src == GATEWAY for m in seen if m.peek("eth_type") == 0x0800)
    return [int(m.tp_src or 0) for m in seen if m.peek("eth_type") == 0x0800]


def _leases(routed: RoutedCloud) -> dict[str, str]:
    return routed.cloud.operator.state_table(Router, routed.router.id, table_name(GATEWAY)).snapshot()


def test_two_agents_never_hand_out_the_same_block(routed: RoutedCloud) -> None:
    _source_nat(routed)
    l1, l2 = routed.vms["l1"], routed.vms["l2"]
    h1, h3 = l1.host, l2.host
    from_l1 = _open(routed, l1, range(10000, 10100))      # 100 connections to one destination: two blocks
    from_l2 = _open(routed, l2, range(10000, 10100))
    assert len(from_l1) == len(from_l2) == 100
    assert len(set(from_l1) | set(from_l2)) == 200          # no source port used twice towards r1:53
    blocks_l1, blocks_l2 = {p // 64 for p in from_l1}, {p // 64 for p in from_l2}
    assert len(blocks_l1) == len(blocks_l2) == 2 and not blocks_l1 & blocks_l2
    leases = _leases(routed)
    assert Counter(leases[k] for k in leases if k.startswith(TAKEN)) == {h1.host_id: 2, h3.host_id: 2}
    assert {int(k[len(TAKEN):]) for k, v in leases.items() if v == h1.host_id} == blocks_l1

    more = _open(routed, l1, range(20000, 20030))            # h1's two blocks have 28 ports left, then none
    assert len(more) == 28 and {p // 64 for p in more} <= blocks_l1
    assert h1.agent.statistics().dropped(AgentDrop.DROP) == 2

    r1 = routed.vms["r1"]                                     # replies find their way back through the leases
    r1.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, GATEWAY, sport=53, dport=from_l2[0]))
    routed.cloud.settle()
    [back] = [parse_frame(f) for f in l2.take() if parse_frame(f).peek("eth_type") == 0x0800]
    assert (back.ip_dst, back.tp_dst) == (l2.ip, 10000)


def test_a_dead_agents_blocks_go_to_the_living(routed: RoutedCloud) -> None:
    _source_nat(routed)
    l1, l2 = routed.vms["l1"], routed.vms["l2"]
    _open(routed, l1, range(10000, 10200))                  # 200 connections: h1 leases all four blocks
    assert len({v for k, v in _leases(routed).items() if k.startswith(TAKEN)}) == 1
    assert _open(routed, l2, range(10000, 10001)) == []     # nothing left for h3
    l1.host.stop()
    routed.cloud.settle()
    assert [k for k in _leases(routed) if k.startswith(TAKEN)] == []
    assert len(_open(routed, l2, range(10001, 10002))) == 1     # a new connection: h3 leases a freed block
