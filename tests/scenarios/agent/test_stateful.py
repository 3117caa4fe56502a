"""Connection tracking through port filters, on one host and across hosts (the reply's host got the key from the
connection's host before the first packet arrived: flow-state replication, spec 4.4).

vm1's port lets out only connections vm1 started: inbound filter `ACCEPT forward flows` (the lookup writes the
return key when the packet leaves), outbound filter `ACCEPT return flows, DROP the rest`.
"""

from __future__ import annotations

from midonet.agent.flow_table import ExpiryClass
from midonet.agent.metrics import AgentDrop
from midonet.testing import frames
from midonet.topology.chains import RuleAction
from midonet.topology.devices import Port

from .conftest import L2Cloud

VM4_MAC, VM4_IP = "02:00:00:00:00:04", "10.1.0.4"


def _guard_vm1(l2: L2Cloud) -> None:
    topo = l2.cloud.topology
    out_chain, in_chain = topo.chain("vm1-out"), topo.chain("vm1-in")
    topo.rule(in_chain, RuleAction.ACCEPT, match_forward_flow=True)
    topo.rule(out_chain, RuleAction.ACCEPT, match_return_flow=True)
    topo.rule(out_chain, RuleAction.DROP)
    topo.filters(Port, l2.ports[0].id, inbound=in_chain, outbound=out_chain)
    l2.cloud.settle()


def test_a_connection_started_by_vm1_is_let_back_in_on_the_same_host(l2: L2Cloud) -> None:
    h1 = l2.host(1)
    h1.add_interface("vm4")
    l2.cloud.topology.port(l2.net, host_id=h1.host_id, interface="vm4")
    _guard_vm1(l2)
    out = frames.udp(l2.macs[0], VM4_MAC, l2.ips[0], VM4_IP, sport=5000, dport=53)
    back = frames.udp(VM4_MAC, l2.macs[0], VM4_IP, l2.ips[0], sport=53, dport=5000)
    stranger = frames.udp(VM4_MAC, l2.macs[0], VM4_IP, l2.ips[0], sport=53, dport=6000)
    h1.inject("vm1", out)
    l2.cloud.settle()
    assert h1.take("vm4") == [out]
    forward = [e for e in h1.agent.flows.entries() if any(isinstance(t, tuple) and t[0] == "conntrack"
                                                          for t in e.tags)]
    assert [e.expiry for e in forward] == [ExpiryClass.STATEFUL]     # touched flow state: 30 s
    h1.inject("vm4", back)
    l2.cloud.settle()
    assert h1.take("vm1") == [back]
    h1.inject("vm4", stranger)                          # a connection nobody started: vm1's outbound filter
    assert h1.take("vm1") == []
    assert h1.agent.statistics().dropped(AgentDrop.DROP) == 1


def test_a_connection_started_by_vm1_is_let_back_in_from_another_host(l2: L2Cloud) -> None:
    h1, h2, _ = l2.hosts
    _guard_vm1(l2)
    out = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1], sport=5000, dport=53)
    back = frames.udp(l2.macs[1], l2.macs[0], l2.ips[1], l2.ips[0], sport=53, dport=5000)
    h1.inject("vm1", out)
    l2.cloud.settle()
    assert h2.take("vm2") == [out]
    h2.inject("vm2", back)                              # h2 simulates the reply: it needs h1's conntrack key
    l2.cloud.settle()
    assert h1.take("vm1") == [back]
