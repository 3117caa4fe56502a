"""A load-balanced VIP across hosts (spec 3.8, 4.4): the client's host draws the backend and DNATs, the backend's host
answers from the VIP with the keys it was sent before the first packet arrived.

`routed` (conftest): r1 (h2) is the client on the right; the backends l1 (h1) and l2 (h3) on the left, :8080,
behind VIP 192.0.2.100:80 on the router's load balancer.
"""

from __future__ import annotations

from midonet.packets.ethernet import ETH_TYPE_IPV4
from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.testing import frames
from midonet.testing.fakehosts import FakeVm
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC

from .conftest import RoutedCloud

VIP = "192.0.2.100"


def _balanced(routed: RoutedCloud, *, sticky: bool = False) -> None:
    t = routed.cloud.topology
    pool = t.pool(t.load_balancer(routed.router))
    for name in ("l1", "l2"):
        t.member(pool, routed.vms[name].ip, 8080)
    t.vip(pool, VIP, 80, sticky=sticky)
    routed.cloud.settle()


def _take(vm: FakeVm) -> list[FlowMatch]:
    """The IPv4 packets `vm` received (not the router's ARP requests for its neighbours, flooded to it)."""
    return [m for m in (parse_frame(f) for f in vm.take()) if m.peek("eth_type") == ETH_TYPE_IPV4]


def _connect(routed: RoutedCloud, sport: int) -> tuple[str, FakeVm]:
    """r1 opens a connection to the VIP: the backend that got it (its name and VM)."""
    r1 = routed.vms["r1"]
    r1.send(frames.tcp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, VIP, sport=sport, dport=80))
    routed.cloud.settle()
    got = [(name, routed.vms[name], ms) for name in ("l1", "l2") if (ms := _take(routed.vms[name]))]
    [(name, backend, [m])] = got
    assert (m.ip_src, m.ip_dst, m.tp_src, m.tp_dst) == (r1.ip, backend.ip, sport, 8080)
    return name, backend


def _answer(routed: RoutedCloud, backend: FakeVm, sport: int) -> FlowMatch:
    r1 = routed.vms["r1"]
    backend.send(frames.tcp(backend.mac, LEFT_ROUTER_MAC, backend.ip, r1.ip, sport=8080, dport=sport))
    routed.cloud.settle()
    [back] = _take(r1)
    return back


def test_every_backend_host_answers_from_the_vip(routed: RoutedCloud) -> None:
    _balanced(routed)
    answered: set[str] = set()
    for sport in range(20000, 20064):
        name, backend = _connect(routed, sport)
        back = _answer(routed, backend, sport)
        assert (back.ip_src, back.tp_src, back.ip_dst, back.tp_dst) == (VIP, 80, routed.vms["r1"].ip, sport)
        answered.add(name)
        if answered == {"l1", "l2"}:
            break
    assert answered == {"l1", "l2"}                     # both backends' hosts translated their answers
    for host in (routed.vms["l1"].host, routed.vms["l2"].host):
        assert host.agent.counters.get("flow_state_received") >= 1


def test_a_sticky_vip_keeps_a_client_on_its_backend_across_connections(routed: RoutedCloud) -> None:
    _balanced(routed, sticky=True)
    first, backend = _connect(routed, 30000)
    assert _answer(routed, backend, 30000).ip_src == VIP
    for sport in range(30001, 30006):
        name, _ = _connect(routed, sport)
        assert name == first
        assert _answer(routed, backend, sport).tp_src == 80
