"""The L4 load balancer on the reference topology (spec 3.8; MDTS `test_load_balancing`,
`test_disabling_topology_loadbalancing`): clients on the left, a VIP off both subnets, backends on the right.

    l1 l2 l3 (clients)  --[left]-- [router + load balancer] --[right]--  r1 r2 r3 (backends, :8080)
                                     VIP 192.0.2.100:80 -> pool {r1 w1, r2 w2, r3 w3}

Draws come from a seeded `random.Random` handed to the tables, so the distribution is reproducible.
"""

from __future__ import annotations

import random
from collections import Counter

from midonet.simulation.results import Drop, TemporaryDrop, TemporaryDropKind
from midonet.state.nat import NatDeleted, NatKey, NatKeyType
from midonet.testing import frames
from midonet.testing.network import Delivery, SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC, TopologyBuilder, Vm
from midonet.testing.topologies import two_subnet_router as reference
from midonet.topology.ids import BridgeId, PortId, RouterId
from midonet.topology.l4lb import LBStatus, PoolMember

VIP = "192.0.2.100"


class Lb:
    def __init__(self, *, sticky: bool = False, weights: tuple[int, int, int] = (1, 2, 3)) -> None:
        self.b = TopologyBuilder()
        self.t = reference(3, builder=self.b)
        self.lb = self.b.load_balancer(self.t.router, "lb")
        self.pool = self.b.pool(self.lb, "pool")
        self.members = {f"r{i}": self.b.member(self.pool, self.t.vms[f"r{i}"].ip, 8080, weight=w)
                        for i, w in enumerate(weights, start=1)}
        self.vip = self.b.vip(self.pool, VIP, 80, sticky=sticky)

    def vm(self, name: str) -> Vm:
        return self.t.vms[name]

    def net(self, seed: int = 1) -> SimulatedNetwork:
        net = SimulatedNetwork(self.b.topology(), rng=random.Random(seed))
        for vm in self.t.vms.values():
            net.tables.arp_cache.learn(RouterId(self.t.router.id), vm.ip, vm.mac)
            bridge = self.t.left if vm.port.network_id == self.t.left.id else self.t.right
            net.tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
        return net

    def member(self, name: str, **changes: object) -> None:
        self.b.update(self.members[name], **changes)

    def backend(self, out: Delivery) -> str:
        """The backend VM a connection went to."""
        [(port, sent)] = out.matches()
        assert sent.tp_dst == 8080
        return next(name for name, vm in self.t.vms.items() if vm.port.id == port and vm.ip == sent.ip_dst)


def connect(net: SimulatedNetwork, client: Vm, sport: int) -> Delivery:
    return net.send(frames.tcp(client.mac, LEFT_ROUTER_MAC, client.ip, VIP, sport=sport, dport=80), client.port.id)


def answer(net: SimulatedNetwork, backend: Vm, client: Vm, sport: int) -> Delivery:
    return net.send(frames.tcp(backend.mac, RIGHT_ROUTER_MAC, backend.ip, client.ip, sport=8080, dport=sport),
                    backend.port.id)


def test_vip_traffic_goes_to_a_member_and_the_reply_comes_from_the_vip() -> None:
    s = Lb()
    net, l1 = s.net(), s.vm("l1")
    out = connect(net, l1, 40000)
    backend = s.vm(s.backend(out))
    fwd = NatKey(NatKeyType.FWD_DNAT, l1.ip, 40000, VIP, 80, 6, s.lb.id)
    assert ("nat", fwd) in out.result.tags and {s.lb.id, s.pool.id} <= out.result.tags
    assert out.result.stateful
    reply = answer(net, backend, l1, 40000)
    assert reply.ports() == [l1.port.id]
    [(_, sent)] = reply.matches()
    assert (sent.ip_src, sent.tp_src, sent.ip_dst, sent.tp_dst) == (VIP, 80, l1.ip, 40000)
    assert any(line.stage.label == "router LB outbound" for line in reply.result.trace)


def test_members_are_drawn_by_weight() -> None:
    s = Lb(weights=(1, 2, 3))
    net, l1 = s.net(seed=7), s.vm("l1")
    counts = Counter(s.backend(connect(net, l1, 20000 + i)) for i in range(600))
    assert counts["r1"] < counts["r2"] < counts["r3"]
    for name, weight in (("r1", 1), ("r2", 2), ("r3", 3)):
        assert abs(counts[name] / 600 - weight / 6) < 0.06, counts


def test_the_draws_follow_the_seed() -> None:
    s = Lb()
    runs = [[s.backend(connect(net, s.vm("l1"), 30000 + i)) for i in range(20)] for net in (s.net(3), s.net(3))]
    assert runs[0] == runs[1]


def test_sticky_vip_keeps_one_backend_per_client_address() -> None:
    s = Lb(sticky=True)
    net = s.net()
    for name in ("l1", "l2", "l3"):
        client = s.vm(name)
        chosen = {s.backend(connect(net, client, 50000 + i)) for i in range(25)}
        assert len(chosen) == 1, (name, chosen)
    out = connect(net, s.vm("l1"), 50999)
    assert ("nat", NatKey(NatKeyType.FWD_STICKY_DNAT, s.vm("l1").ip, 0, VIP, 80, 6, s.lb.id)) in out.result.tags
    backend = s.vm(s.backend(out))
    [(_, reply)] = answer(net, backend, s.vm("l1"), 50999).matches()
    assert (reply.ip_src, reply.tp_src) == (VIP, 80)


def test_disabling_a_member_lets_its_connections_finish_and_sends_it_no_new_one() -> None:
    s = Lb()
    net, l1 = s.net(), s.vm("l1")
    busy = s.backend(connect(net, l1, 41000))
    s.member(busy, admin_state_up=False)
    net.topology = s.b.topology()
    assert s.backend(connect(net, l1, 41000)) == busy                   # the existing connection stays
    assert busy not in {s.backend(connect(net, l1, 42000 + i)) for i in range(40)}
    [(_, reply)] = answer(net, s.vm(busy), l1, 41000).matches()
    assert (reply.ip_src, reply.tp_src) == (VIP, 80)


def test_disabling_a_member_moves_its_sticky_clients() -> None:
    s = Lb(sticky=True)
    net, l1 = s.net(), s.vm("l1")
    first = s.backend(connect(net, l1, 41000))
    s.member(first, admin_state_up=False)
    net.topology = s.b.topology()
    late = answer(net, s.vm(first), l1, 41000)                # the old backend may no longer answer as the VIP
    assert late.result.verdict == Drop("load balancer: a reply from a backend that is no longer valid")
    moved = connect(net, l1, 41000)                           # the client's next packet: moved, key replaced
    assert s.backend(moved) != first
    assert any(isinstance(w, NatDeleted) for w in moved.result.state_writes)


def test_a_pool_without_active_member_refuses_new_connections_and_keeps_old_ones() -> None:
    s = Lb()
    net, l1 = s.net(), s.vm("l1")
    busy = s.backend(connect(net, l1, 43000))
    for name in s.members:
        s.member(name, status=LBStatus.INACTIVE if name != busy else LBStatus.ACTIVE, admin_state_up=name != busy)
    net.topology = s.b.topology()
    refused = connect(net, l1, 43001)
    assert refused.result.verdict == Drop("load balancer: no valid backend for the VIP")
    assert s.backend(connect(net, l1, 43000)) == busy


def test_health_monitor_status_takes_members_out() -> None:
    s = Lb(weights=(1, 1, 1))
    net, l1 = s.net(), s.vm("l1")
    net.topology = s.b.topology(member_status={s.members["r1"].id: LBStatus.INACTIVE,
                                               s.members["r2"].id: LBStatus.INACTIVE})
    assert {s.backend(connect(net, l1, 44000 + i)) for i in range(20)} == {"r3"}


def test_load_balanced_traffic_skips_the_router_filters() -> None:
    s = Lb()
    inbound, outbound = s.b.chain("in"), s.b.chain("out")
    s.b.rule(inbound, "drop", nw_dst_ip=f"{VIP}/32")
    s.b.rule(inbound, "drop", nw_dst_ip="10.0.2.0/24")
    s.b.rule(outbound, "drop", nw_src_ip="10.0.2.0/24")
    s.b.filters(s.t.router, inbound=inbound, outbound=outbound)
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    backend = s.vm(s.backend(connect(net, l1, 45000)))
    assert answer(net, backend, l1, 45000).ports() == [l1.port.id]
    direct = net.send(frames.tcp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, dport=8080), l1.port.id)
    assert direct.result.verdict == Drop("router inbound filter: drop")


def test_a_removed_vip_drops_its_backends_replies() -> None:
    s = Lb()
    net, l1 = s.net(), s.vm("l1")
    backend = s.vm(s.backend(connect(net, l1, 46000)))
    s.b.update(s.vip, admin_state_up=False)
    net.topology = s.b.topology()
    assert answer(net, backend, l1, 46000).result.verdict == Drop(
        "load balancer: a reply from a backend that is no longer valid")
    assert connect(net, l1, 46001).result.verdict == TemporaryDrop(f"no route to {VIP}", TemporaryDropKind.SHORT)


def test_a_load_balancer_down_leaves_vip_traffic_to_routing() -> None:
    s = Lb()
    s.b.update(s.lb, admin_state_up=False)
    net = s.net()
    out = connect(net, s.vm("l1"), 47000)
    assert out.result.verdict == TemporaryDrop(f"no route to {VIP}", TemporaryDropKind.SHORT)
    assert not any(line.stage.label == "router LB inbound" for line in out.result.trace)


def test_udp_to_the_vip_is_not_load_balanced() -> None:
    s = Lb()
    net, l1 = s.net(), s.vm("l1")
    out = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, VIP, dport=80), l1.port.id)
    assert out.result.verdict == TemporaryDrop(f"no route to {VIP}", TemporaryDropKind.SHORT)


def test_member_records_are_what_the_builder_made() -> None:
    s = Lb()
    member = s.b.get(PoolMember, s.members["r2"].id)
    assert (member.address, member.protocol_port, member.weight) == (s.vm("r2").ip, 8080, 2)
