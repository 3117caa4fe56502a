"""Flow state across hosts (spec 4.3-4.4) on the L4-state topology (`gateway`, spec 11): NAT'd connections whose
replies are simulated by another host than the one that translated them, and the state that makes that work,
sent in-band before the packet, imported, and expired 60 s after its last flow on every host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from midonet.agent.flowstate_wire import FLOW_STATE_TUNNEL_KEY, frame
from midonet.agent.metrics import AgentDrop
from midonet.datapath.base import OVERLAY_UDP_PORT, Output, SetTunnel
from midonet.packets.flowmatch import parse_frame
from midonet.packets.vxlan import decapsulate
from midonet.state.nat import NAT_IDLE
from midonet.testing.fakehosts import FakeCloud

from .gateway import EXT1_IP, FLOATING_IP, INTERNET, SERVICE_IP, SNAT_IP, VM_IP, Gateway, gateway, received


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with FakeCloud() as cloud:
        yield gateway(cloud)


def _first_leg(gw: Gateway) -> int:
    """The VM opens a connection to INTERNET:53 through up1; the SNAT port the Internet sees."""
    gw.vm.send(gw.from_vm(INTERNET))
    gw.cloud.settle()
    [out] = received(gw.ext1)
    assert (out.ip_src, out.ip_dst, out.tp_dst) == (SNAT_IP, INTERNET, 53)
    assert isinstance(out.tp_src, int) and 1024 <= out.tp_src <= 65535
    return out.tp_src


def test_snat_reply_comes_back_through_the_uplinks_host(gw: Gateway) -> None:
    gw.source_nat()
    port = _first_leg(gw)
    h2 = gw.hosts["h2"]
    gw.ext1.send(gw.from_ext1(INTERNET, SNAT_IP, sport=53, dport=port))     # h2 simulates the reply
    gw.cloud.settle()
    [back] = received(gw.vm)
    assert (back.ip_src, back.ip_dst, back.tp_src, back.tp_dst) == (INTERNET, VM_IP, 53, 5000)
    assert h2.agent.statistics().flow_state.received >= 1
    assert gw.hosts["h1"].agent.statistics().flow_state.sent == 2          # one message to h2 and one to h3
    assert 'midonet_agent_flow_state_keys_imported_total{host="' in h2.agent.metrics()


def test_the_reply_returns_by_the_other_uplink_of_a_stateful_port_group(gw: Gateway) -> None:
    gw.source_nat().only_replies_from_outside()
    port = _first_leg(gw)
    h3 = gw.hosts["h3"]
    assert h3.agent.counters.get("flow_state_received") >= 1              # up2 shares up1's state
    gw.ext2.send(gw.from_ext2(INTERNET, SNAT_IP, sport=53, dport=port))     # back by up2, on h3
    gw.cloud.settle()
    [back] = received(gw.vm)
    assert (back.ip_src, back.ip_dst, back.tp_src, back.tp_dst) == (INTERNET, VM_IP, 53, 5000)
    gw.ext2.send(gw.from_ext2(INTERNET, SNAT_IP, sport=53, dport=port + 1))  # nobody's connection
    gw.cloud.settle()
    assert received(gw.vm) == []
    assert h3.agent.statistics().dropped(AgentDrop.DROP) == 1


def test_without_a_stateful_group_the_other_uplink_knows_nothing() -> None:
    with FakeCloud() as cloud:
        gw = gateway(cloud, stateful=False).source_nat().only_replies_from_outside()
        port = _first_leg(gw)
        assert gw.hosts["h3"].agent.counters.get("flow_state_received") == 0
        gw.ext2.send(gw.from_ext2(INTERNET, SNAT_IP, sport=53, dport=port))
        cloud.settle()
        assert received(gw.vm) == []


def test_the_state_reaches_the_peers_before_the_packet(gw: Gateway) -> None:
    gw.source_nat()
    underlay: list[bytes] = []
    gw.cloud.underlay.observe(underlay.append)
    port = _first_leg(gw)
    inner = [decapsulate(f, port=OVERLAY_UDP_PORT) for f in underlay]
    state = [i for i, d in enumerate(inner) if d.vni == FLOW_STATE_TUNNEL_KEY]
    data = [i for i, d in enumerate(inner) if parse_frame(d.inner).ip_dst == INTERNET]
    assert data and state and max(state) < min(data)
    assert {inner[i].outer_ip_dst for i in state} == {gw.hosts["h2"].underlay_ip, gw.hosts["h3"].underlay_ip}
    # the flow's second packet is forwarded by h1's datapath alone: no state sent again
    before = len(underlay)
    gw.vm.send(gw.from_vm(INTERNET))
    [again] = received(gw.ext1)
    assert again.tp_src == port
    assert [decapsulate(f, port=OVERLAY_UDP_PORT).vni for f in underlay[before:]] == [gw.up1.tunnel_key]
    assert [inner[i].vni for i in data] == [gw.up1.tunnel_key]


def test_port_forwarding_reply_is_translated_by_the_vms_host(gw: Gateway) -> None:
    gw.port_forwarding()
    gw.ext1.send(gw.from_ext1(EXT1_IP, SERVICE_IP, sport=40000, dport=80))  # h2 translates (DNAT)
    gw.cloud.settle()
    [inbound] = received(gw.vm)
    assert (inbound.ip_src, inbound.ip_dst, inbound.tp_dst) == (EXT1_IP, VM_IP, 8080)
    gw.vm.send(gw.from_vm(EXT1_IP, sport=8080, dport=40000))                # h1 needs h2's REV_DNAT key
    gw.cloud.settle()
    [reply] = received(gw.ext1)
    assert (reply.ip_src, reply.tp_src, reply.ip_dst, reply.tp_dst) == (SERVICE_IP, 80, EXT1_IP, 40000)


def test_floating_ip_both_ways_across_hosts(gw: Gateway) -> None:
    gw.floating_ip()
    gw.ext1.send(gw.from_ext1(EXT1_IP, FLOATING_IP, sport=40000, dport=22))
    gw.cloud.settle()
    [inbound] = received(gw.vm)
    assert (inbound.ip_dst, inbound.tp_dst) == (VM_IP, 22)
    gw.vm.send(gw.from_vm(EXT1_IP, sport=22, dport=40000))
    gw.cloud.settle()
    [reply] = received(gw.ext1)
    assert (reply.ip_src, reply.tp_src) == (FLOATING_IP, 22)


def test_imported_keys_expire_60_s_after_the_last_flow_on_every_host(gw: Gateway) -> None:
    gw.source_nat()
    port = _first_leg(gw)
    h1, h2 = gw.hosts["h1"], gw.hosts["h2"]
    assert len(h2.agent.tables.nat) == 2 and len(h1.agent.tables.nat) == 2
    gw.cloud.tick(31)                       # h1's stateful flow is gone (30 s): its keys have 60 s left
    gw.cloud.tick(NAT_IDLE - 31)            # h2 imported them 60 s ago: gone there
    assert len(h2.agent.tables.nat) == 0 and len(h1.agent.tables.nat) == 2
    gw.ext1.send(gw.from_ext1(INTERNET, SNAT_IP, sport=53, dport=port))
    gw.cloud.settle()
    assert received(gw.vm) == []            # the connection is forgotten where the reply enters
    gw.cloud.tick(31)
    assert len(h1.agent.tables.nat) == 0


def test_a_live_connection_is_pushed_again_before_its_state_can_expire(gw: Gateway) -> None:
    gw.source_nat()
    port = _first_leg(gw)
    for _ in range(4):                      # two minutes of traffic, a packet every 20 s
        gw.cloud.tick(20)
        gw.vm.send(gw.from_vm(INTERNET))
        assert [m.tp_src for m in received(gw.ext1)] == [port]
    gw.ext1.send(gw.from_ext1(INTERNET, SNAT_IP, sport=53, dport=port))
    gw.cloud.settle()
    assert [m.ip_dst for m in received(gw.vm)] == [VM_IP]


def test_a_malformed_flow_state_message_is_dropped_and_counted(gw: Gateway) -> None:
    h1, h2 = gw.hosts["h1"], gw.hosts["h2"]
    tunnel = (SetTunnel(FLOW_STATE_TUNNEL_KEY, h1.underlay_ip, h2.underlay_ip), Output(h1.agent.bindings.vxlan_port
                                                                                       or 0))
    for junk in (frame(b"\x01garbage"), frame(b"\x09" + bytes(40)), b"\x00" * 60):
        h1.datapath.execute(junk, tunnel)
    gw.cloud.settle()
    assert h2.agent.statistics().dropped(AgentDrop.FLOW_STATE) == 3
    assert len(h2.agent.flows) == 0 and len(h2.agent.tables.nat) == 0
