"""NAT on the reference topology (spec 3.7, 11): floating IPs, port forwarding (dynamic DNAT), source NAT with
leased ports, ICMP echo and errors translated both ways, and what the flows carry.

    l1 l2 l3 (10.0.1.1-3)            r1 r2 r3 (10.0.2.1-3)
        |                                  |
     [left] --- 10.0.1.254 [router] 10.0.2.254 --- [right]

The router's inbound filter ("pre") and outbound filter ("post") hold the rules, as MidoNet's pre- and
post-routing chains do; every NAT key is scoped by the router. Frames come in through `SimulatedNetwork`, which
applies the state writes (and releases a flow's references when asked), and leave rewritten as the agent would.
"""

from __future__ import annotations

import pytest

from midonet.packets import ethernet, icmp
from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.results import Consumed, Drop, Forward, Postponed
from midonet.state.conntrack import ConnTracked
from midonet.state.nat import NatBinding, NatBound, NatKey, NatKeyType
from midonet.testing import frames
from midonet.testing.network import Delivery, SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC, TopologyBuilder, TwoSubnetRouter, Vm
from midonet.testing.topologies import two_subnet_router as reference
from midonet.topology.chains import Chain
from midonet.topology.ids import BridgeId, PortId, RouterId

FIP = "192.0.2.10"            # l1's floating IP
SERVICE = "10.0.2.100"        # a port-forwarded service address, DNAT'd to r1:5353
GATEWAY = "10.0.2.254"        # the router's right port: the left subnet's SNAT address


class Nat:
    """The reference topology with "pre" / "post" chains on the router, every VM resolved (MAC and ARP)."""

    def __init__(self) -> None:
        self.b = TopologyBuilder()
        self.t: TwoSubnetRouter = reference(3, builder=self.b)
        self.pre: Chain = self.b.chain("pre")
        self.post: Chain = self.b.chain("post")
        self.b.filters(self.t.router, inbound=self.pre, outbound=self.post)

    @property
    def router(self) -> str:
        return self.t.router.id

    def vm(self, name: str) -> Vm:
        return self.t.vms[name]

    def net(self, *, async_nat_leases: bool = False) -> SimulatedNetwork:
        net = SimulatedNetwork(self.b.topology(), async_nat_leases=async_nat_leases)
        for vm in self.t.vms.values():
            net.tables.arp_cache.learn(RouterId(self.router), vm.ip, vm.mac)
            bridge = self.t.left if vm.port.network_id == self.t.left.id else self.t.right
            net.tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
        return net

    def floating_ip(self) -> Nat:
        """FIP <-> l1, as Neutron writes it: static DNAT in, static SNAT out through the right port."""
        self.b.nat(self.pre, "dnat", self.vm("l1").ip, nw_dst_ip=f"{FIP}/32")
        self.b.nat(self.post, "snat", FIP, nw_src_ip=f"{self.vm('l1').ip}/32",
                   out_port_ids=(self.t.right_router_port.id,))
        return self

    def port_forwarding(self) -> Nat:
        """SERVICE:53 (UDP) and SERVICE (ping) -> r1 (:5353), with the reverse rule on the way out."""
        r1 = self.vm("r1").ip
        self.b.nat(self.pre, "dnat", (r1, r1, 5353, 5353), nw_dst_ip=f"{SERVICE}/32", nw_proto=17, tp_dst=(53, 53))
        self.b.nat(self.pre, "dnat", (r1, r1, 1, 65535), nw_dst_ip=f"{SERVICE}/32", nw_proto=1)
        self.b.nat(self.post, "rev_dnat", nw_src_ip=f"{r1}/32")
        return self

    def source_nat(self, ports: tuple[int, int] = (1024, 65535)) -> Nat:
        """The left subnet leaves by the right port as GATEWAY (leased ports); replies to GATEWAY come back."""
        self.b.nat(self.post, "snat", (GATEWAY, GATEWAY, *ports), nw_src_ip="10.0.1.0/24",
                   out_port_ids=(self.t.right_router_port.id,))
        self.b.nat(self.pre, "rev_snat", nw_dst_ip=f"{GATEWAY}/32")
        return self


def to_router(vm: Vm, dst: str, *, sport: int = 10000, dport: int = 80) -> bytes:
    """A UDP datagram from `vm` through its router port."""
    router_mac = LEFT_ROUTER_MAC if vm.ip.startswith("10.0.1.") else RIGHT_ROUTER_MAC
    return frames.udp(vm.mac, router_mac, vm.ip, dst, sport=sport, dport=dport)


def ping(vm: Vm, dst: str, ident: int = 7) -> bytes:
    router_mac = LEFT_ROUTER_MAC if vm.ip.startswith("10.0.1.") else RIGHT_ROUTER_MAC
    return frames.ping(vm.mac, router_mac, vm.ip, dst, ident=ident)


def reply_ping(vm: Vm, dst: str, ident: int = 7) -> bytes:
    """An echo reply from `vm` to `dst`."""
    router_mac = LEFT_ROUTER_MAC if vm.ip.startswith("10.0.1.") else RIGHT_ROUTER_MAC
    return frames.pong(vm.mac, router_mac, vm.ip, dst, ident=ident)


def port_unreachable(vm: Vm, about: FlowMatch) -> bytes:
    """`vm` answering the UDP datagram it received (`about`, as it arrived) with ICMP port unreachable."""
    sent = frames.udp(str(about.eth_src), str(about.eth_dst), str(about.ip_src), str(about.ip_dst),
                      sport=int(about.tp_src or 0), dport=int(about.tp_dst or 0), ttl=int(about.ip_ttl or 64))
    _, datagram = ethernet.parse(sent)
    router_mac = LEFT_ROUTER_MAC if vm.ip.startswith("10.0.1.") else RIGHT_ROUTER_MAC
    return frames.icmp_error(vm.mac, router_mac, vm.ip, str(about.ip_src), icmp.embedded_bytes(datagram),
                             code=icmp.CODE_PORT_UNREACHABLE)


def one(out: Delivery) -> FlowMatch:
    [(_, sent)] = out.matches()
    return sent


# ---- floating IP (static NAT) ----

def test_floating_ip_translates_both_ways_without_state() -> None:
    s = Nat().floating_ip()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    inbound = net.send(to_router(r1, FIP, dport=80), r1.port.id)
    assert inbound.ports() == [l1.port.id]
    assert (one(inbound).ip_dst, one(inbound).tp_dst) == (l1.ip, 80)
    assert not any(isinstance(w, (NatBound, ConnTracked)) for w in inbound.result.state_writes)
    assert not inbound.result.stateful and inbound.result.expiration == 60.0
    back = net.send(to_router(l1, r1.ip, sport=80, dport=10000), l1.port.id)
    assert back.ports() == [r1.port.id]
    assert (one(back).ip_src, one(back).tp_src) == (FIP, 80)
    assert not any(isinstance(t, tuple) and t[0] == "nat" for t in back.result.tags)


def test_floating_ip_ping_and_reply() -> None:
    s = Nat().floating_ip()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    request = net.send(ping(r1, FIP), r1.port.id)
    assert (one(request).ip_dst, one(request).icmp_id) == (l1.ip, 7)
    assert not request.result.userspace_only          # static NAT never reads the identifier
    reply = net.send(reply_ping(l1, r1.ip), l1.port.id)
    assert (one(reply).ip_src, one(reply).ip_dst, one(reply).tp_src) == (FIP, r1.ip, icmp.TYPE_ECHO_REPLY)


def test_icmp_error_from_behind_a_floating_ip_quotes_the_floating_ip() -> None:
    s = Nat().floating_ip()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    arrived = one(net.send(to_router(r1, FIP, dport=53), r1.port.id))
    error = net.send(port_unreachable(l1, arrived), l1.port.id)
    got = one(error)
    assert (got.ip_src, got.ip_dst, got.tp_src, got.tp_dst) == (FIP, r1.ip, icmp.TYPE_UNREACHABLE, 3)
    quoted = icmp.parse_embedded(got.icmp_data or b"")
    assert (quoted.ip_src, quoted.tp_src, quoted.ip_dst, quoted.tp_dst) == (r1.ip, 10000, FIP, 53)


def test_echo_reply_from_a_dnated_router_address_leaves_by_its_static_snat() -> None:
    """Spec 3.4: the router's own replies go through its outbound filter, so the static SNAT applies."""
    s = Nat()
    s.b.nat(s.pre, "dnat", "10.0.1.254", nw_dst_ip=f"{FIP}/32")
    s.b.nat(s.post, "snat", FIP, nw_src_ip="10.0.1.254/32")
    net, r1 = s.net(), s.vm("r1")
    out = net.send(ping(r1, FIP, ident=42), r1.port.id)
    assert out.result.verdict == Consumed("ICMP echo request to 10.0.1.254 answered by the router")
    [reply] = out.replies_at(r1.port.id)
    assert (reply.ip_src, reply.ip_dst, reply.tp_src, reply.icmp_id) == (FIP, r1.ip, icmp.TYPE_ECHO_REPLY, 42)
    assert (reply.eth_src, reply.eth_dst) == (RIGHT_ROUTER_MAC, r1.mac)


def test_outbound_filter_dropping_router_replies_silences_them() -> None:
    s = Nat()
    s.b.rule(s.post, "drop", nw_src_ip="10.0.2.254/32", nw_proto=1)
    net, r1 = s.net(), s.vm("r1")
    out = net.send(ping(r1, "10.0.2.254"), r1.port.id)
    assert isinstance(out.result.verdict, Consumed)
    assert out.replies == []
    assert any("not sent" in line.text for line in out.result.trace)


# ---- port forwarding (dynamic DNAT) ----

def test_dnat_to_a_server_and_its_reply_translated_back() -> None:
    s = Nat().port_forwarding()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    out = net.send(to_router(l1, SERVICE, dport=53), l1.port.id)
    got = one(out)
    assert (got.ip_src, got.tp_src, got.ip_dst, got.tp_dst) == (l1.ip, 10000, r1.ip, 5353)
    fwd = NatKey(NatKeyType.FWD_DNAT, l1.ip, 10000, SERVICE, 53, 17, s.router)
    rev = NatKey(NatKeyType.REV_DNAT, r1.ip, 5353, l1.ip, 10000, 17, s.router)
    assert {("nat", fwd), ("nat", rev)} <= out.result.tags
    assert out.result.stateful and out.result.expiration == 30.0
    assert net.tables.nat.get(fwd) == NatBinding(r1.ip, 5353) and net.tables.nat.get(rev) == NatBinding(SERVICE, 53)
    back = one(net.send(to_router(r1, l1.ip, sport=5353, dport=10000), r1.port.id))
    assert (back.ip_src, back.tp_src, back.ip_dst, back.tp_dst) == (SERVICE, 53, l1.ip, 10000)


def test_the_same_connection_keeps_its_binding() -> None:
    s = Nat().port_forwarding()
    net, l1 = s.net(), s.vm("l1")
    first = net.send(to_router(l1, SERVICE, dport=53), l1.port.id)
    again = net.send(to_router(l1, SERVICE, dport=53), l1.port.id)
    assert first.matches() == again.matches()
    assert net.tables.nat.references(NatKey(NatKeyType.FWD_DNAT, l1.ip, 10000, SERVICE, 53, 17, s.router)) == 2


def test_port_unreachable_from_the_server_quotes_the_original_tuple() -> None:
    s = Nat().port_forwarding()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    arrived = one(net.send(to_router(l1, SERVICE, dport=53), l1.port.id))
    error = net.send(port_unreachable(r1, arrived), r1.port.id)
    assert error.ports() == [l1.port.id]
    got = one(error)
    assert (got.ip_src, got.ip_dst, got.tp_src, got.tp_dst) == (SERVICE, l1.ip, icmp.TYPE_UNREACHABLE, 3)
    quoted = icmp.parse_embedded(got.icmp_data or b"")
    assert (quoted.ip_src, quoted.tp_src, quoted.ip_dst, quoted.tp_dst) == (l1.ip, 10000, SERVICE, 53)
    assert error.result.userspace_only                 # the quoted datagram was read: matched in userspace


def test_ping_through_dnat_is_matched_in_userspace_and_answered_from_the_service_address() -> None:
    s = Nat().port_forwarding()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    out = net.send(ping(l1, SERVICE, ident=99), l1.port.id)
    got = one(out)
    assert (got.ip_dst, got.icmp_id) == (r1.ip, 99)       # ICMP keeps its identifier
    assert out.result.userspace_only and not out.result.installs_flow
    reply = one(net.send(reply_ping(r1, l1.ip, ident=99), r1.port.id))
    assert (reply.ip_src, reply.ip_dst, reply.icmp_id) == (SERVICE, l1.ip, 99)


def test_nat_keys_idle_out_once_the_flows_are_gone() -> None:
    s = Nat().port_forwarding()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    net.send(to_router(l1, SERVICE, dport=53), l1.port.id)
    net.remove_flows()
    net.clock.advance(59)
    net.expire()
    assert one(net.send(to_router(r1, l1.ip, sport=5353, dport=10000), r1.port.id)).ip_src == SERVICE
    net.clock.advance(1)                               # 60 s since the last flow went
    net.expire()
    untranslated = one(net.send(to_router(r1, l1.ip, sport=5353, dport=10000), r1.port.id))
    assert untranslated.ip_src == r1.ip


def test_match_nw_dst_rewritten_sees_dnat() -> None:
    s = Nat().port_forwarding()
    s.b.rule(s.post, "drop", match_nw_dst_rewritten=True, tp_dst=(5353, 5353))
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    dnated = net.send(to_router(l1, SERVICE, dport=53), l1.port.id)
    assert dnated.result.verdict == Drop("router outbound filter: drop")
    direct = net.send(to_router(l1, r1.ip, dport=5353), l1.port.id)
    assert direct.ports() == [r1.port.id]


# ---- source NAT ----

def test_snat_to_the_gateway_with_a_leased_port_and_the_reply_back() -> None:
    s = Nat().source_nat()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    out = one(net.send(to_router(l1, r1.ip, dport=53), l1.port.id))
    assert (out.ip_src, out.ip_dst, out.tp_dst) == (GATEWAY, r1.ip, 53)
    assert 1024 <= int(out.tp_src or 0) <= 65535
    back = one(net.send(to_router(r1, GATEWAY, sport=53, dport=int(out.tp_src or 0)), r1.port.id))
    assert (back.ip_src, back.tp_src, back.ip_dst, back.tp_dst) == (r1.ip, 53, l1.ip, 10000)


def test_snat_ports_are_unique_per_destination_and_shared_across_destinations() -> None:
    s = Nat().source_nat(ports=(2000, 2000))                      # one port only
    net, l1, l2, r1, r2 = s.net(), s.vm("l1"), s.vm("l2"), s.vm("r1"), s.vm("r2")
    first = one(net.send(to_router(l1, r1.ip, dport=53), l1.port.id))
    assert (first.ip_src, first.tp_src) == (GATEWAY, 2000)
    crowded = net.send(to_router(l2, r1.ip, dport=53), l2.port.id)   # the same destination: no port left
    assert crowded.result.verdict == Drop("router outbound filter: drop")
    elsewhere = one(net.send(to_router(l2, r2.ip, dport=53), l2.port.id))
    assert (elsewhere.ip_src, elsewhere.tp_src) == (GATEWAY, 2000)   # another destination: the port again


def test_snat_waits_for_a_port_block_to_be_leased() -> None:
    s = Nat().source_nat()
    net, l1, r1 = s.net(async_nat_leases=True), s.vm("l1"), s.vm("r1")
    waiting = net.send(to_router(l1, r1.ip, dport=53), l1.port.id)
    assert waiting.result.verdict == Postponed("nat_block", f"{s.router}/{GATEWAY}")
    assert waiting.ports() == [] and not waiting.result.installs_flow
    net.tables.nat_leaser.lease_pending()
    leased = net.send(to_router(l1, r1.ip, dport=53), l1.port.id)
    assert isinstance(leased.result.verdict, Forward)
    assert one(leased).ip_src == GATEWAY


def test_snat_of_a_ping_keeps_the_identifier_and_the_reply_comes_back() -> None:
    s = Nat().source_nat()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    out = one(net.send(ping(l1, r1.ip, ident=5), l1.port.id))
    assert (out.ip_src, out.icmp_id) == (GATEWAY, 5)
    reply = one(net.send(reply_ping(r1, GATEWAY, ident=5), r1.port.id))
    assert (reply.ip_src, reply.ip_dst, reply.icmp_id) == (r1.ip, l1.ip, 5)


def test_icmp_error_about_a_snated_packet_reaches_the_client_quoting_its_own_tuple() -> None:
    s = Nat().source_nat()
    net, l1, r1 = s.net(), s.vm("l1"), s.vm("r1")
    arrived = one(net.send(to_router(l1, r1.ip, dport=53), l1.port.id))
    error = one(net.send(port_unreachable(r1, arrived), r1.port.id))
    assert (error.ip_src, error.ip_dst) == (r1.ip, l1.ip)
    quoted = icmp.parse_embedded(error.icmp_data or b"")
    assert (quoted.ip_src, quoted.tp_src, quoted.ip_dst, quoted.tp_dst) == (l1.ip, 10000, r1.ip, 53)


@pytest.mark.parametrize("kind", ["rev_snat", "rev_dnat"])
def test_reverse_rule_without_a_key_does_not_apply_but_tags_the_flow(kind: str) -> None:
    s = Nat()
    s.b.nat(s.pre, kind)
    s.b.rule(s.pre, "drop", nw_proto=17)
    net, r1, l1 = s.net(), s.vm("r1"), s.vm("l1")
    out = net.send(to_router(r1, l1.ip, sport=53, dport=10000), r1.port.id)
    assert out.result.verdict == Drop("router inbound filter: drop")     # the rule went on to the next one
    key_type = NatKeyType.REV_SNAT if kind == "rev_snat" else NatKeyType.REV_DNAT
    assert ("nat", NatKey(key_type, r1.ip, 53, l1.ip, 10000, 17, s.router)) in out.result.tags
