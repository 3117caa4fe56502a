"""Topology changes through the store reach flows that are already installed; bad packets never stop an agent.

`l2` (conftest): bridge `net`, VM ports vm1 vm2 vm3 on hosts h1 h2 h3.
"""

from __future__ import annotations

from midonet.agent.metrics import AgentDrop
from midonet.datapath.base import DropReason, Output, SetTunnel, Upcall
from midonet.packets.ethernet import BROADCAST
from midonet.packets.flowmatch import parse_frame
from midonet.testing import frames
from midonet.topology.chains import RuleAction
from midonet.topology.devices import Bridge, Port

from .conftest import L2Cloud


def _flowing(l2: L2Cloud) -> bytes:
    """vm1 -> vm2 established: both MACs learned, h1's unicast flow installed and hit once."""
    h1, h2, _ = l2.hosts
    to_vm2 = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1], dport=80)
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    h2.inject("vm2", frames.udp(l2.macs[1], l2.macs[0], l2.ips[1], l2.ips[0]))
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    for host, name in ((h1, "vm1"), (h2, "vm2"), (l2.host(3), "vm3")):
        host.take(name)
    return to_vm2


def _forwarding_flows(l2: L2Cloud, frame: bytes) -> list[str]:
    """The hosts whose datapath holds a flow that would forward `frame` (from vm1's port) somewhere."""
    out = []
    h1 = l2.host(1)
    binding = h1.agent.bindings.binding(l2.ports[0].id)
    assert binding is not None
    match = parse_frame(frame, binding.dp_port)
    for flow, _ in h1.datapath.flows():
        if all(match.peek(name) == value for name, value in flow.key.fields if name != "tunnel_id") and any(
                isinstance(a, (Output, SetTunnel)) for a in flow.actions):
            out.append(h1.name)
    return out


def test_a_drop_rule_added_through_the_store_stops_a_flowing_flow_at_once(l2: L2Cloud) -> None:
    to_vm2 = _flowing(l2)
    h1, h2, _ = l2.hosts
    topo = l2.cloud.topology
    chain = topo.chain("filter")
    topo.filters(Bridge, l2.net.id, inbound=chain)          # an empty chain: flows are re-simulated, still pass
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()                                        # h1 loads the chain first
    assert h2.take("vm2") == [to_vm2]
    assert _forwarding_flows(l2, to_vm2) == ["h1"]

    topo.rule(chain, RuleAction.DROP, nw_dst_ip="10.1.0.2/32")
    l2.cloud.settle()                                        # one invalidation: the chain's tag
    assert _forwarding_flows(l2, to_vm2) == []               # no stale flow survives
    h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == []
    assert h1.agent.statistics().dropped(AgentDrop.DROP) == 1
    h1.inject("vm1", to_vm2)                                 # now dropped by the drop flow, in the datapath
    assert h1.agent.statistics().dropped(AgentDrop.DROP) == 1

    other = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], "10.1.0.9")   # not matched by the rule
    h1.inject("vm1", other)
    assert h2.take("vm2") == [other]


def test_deleting_the_rule_lets_traffic_through_again(l2: L2Cloud) -> None:
    to_vm2 = _flowing(l2)
    h1, h2, _ = l2.hosts
    topo = l2.cloud.topology
    chain = topo.chain("filter")
    rule = topo.rule(chain, RuleAction.DROP, nw_dst_ip="10.1.0.2/32")
    topo.filters(Bridge, l2.net.id, inbound=chain)
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h2.take("vm2") == []
    topo.delete(type(rule), rule.id)
    l2.cloud.settle()
    h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == [to_vm2]


def test_deleting_a_port_removes_its_binding_and_its_flows(l2: L2Cloud) -> None:
    to_vm2 = _flowing(l2)
    h1, h2, _ = l2.hosts
    l2.cloud.topology.delete(Port, l2.ports[1].id)
    l2.cloud.settle()
    assert h2.agent.bindings.active() == {}
    assert _forwarding_flows(l2, to_vm2) == []
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h2.take("vm2") == []


def test_a_malformed_packet_is_dropped_and_counted_and_the_agent_keeps_running(l2: L2Cloud) -> None:
    to_vm2 = _flowing(l2)
    h1, h2, _ = l2.hosts
    runt = to_vm2[:20]                                       # cut inside the IPv4 header
    h1.inject("vm1", runt)                                   # the datapath parses it first: dropped there
    assert h1.datapath.statistics().dropped(DropReason.MALFORMED) == 1
    binding = h1.agent.bindings.binding(l2.ports[0].id)
    assert binding is not None
    h1.agent.workflow.handle_upcall(Upcall(binding.dp_port, runt))      # and if one reaches the agent
    h1.agent.workflow.handle_upcall(Upcall(binding.dp_port, b""))
    stats = h1.agent.statistics()
    assert stats.dropped(AgentDrop.MALFORMED) == 2
    assert stats.dropped(AgentDrop.INTERNAL_ERROR) == 0
    fresh = frames.udp(l2.macs[0], BROADCAST, l2.ips[0], "10.1.0.255")
    h1.inject("vm1", fresh)                                  # a new flow is still simulated and forwarded
    assert h2.take("vm2") == [fresh] and l2.host(3).take("vm3") == [fresh]
    assert h1.agent.statistics().simulations == stats.simulations + 1


def test_a_tunnel_packet_for_an_unknown_key_is_dropped_with_a_short_flow(l2: L2Cloud) -> None:
    h2 = l2.host(2)
    vxlan = h2.agent.bindings.vxlan_port
    assert vxlan is not None
    frame = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1])
    h2.agent.workflow.handle_upcall(Upcall(vxlan, frame, tunnel_id=0xABCDE, tunnel_src="10.0.0.1"))
    stats = h2.agent.statistics()
    assert stats.dropped(AgentDrop.UNKNOWN_TUNNEL_KEY) == 1
    [entry] = [e for e in h2.agent.flows.entries() if e.key.get("tunnel_id") == 0xABCDE]
    assert entry.actions == () and entry.expiry.value == 5.0
