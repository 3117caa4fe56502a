"""One bridge over three fake hosts: flooding, learning across hosts, MAC moves, links going down and up.

Every check is on captured packets (what the VMs received, what crossed the underlay) and on counters; the agents
see the topology through the store. `l2` (conftest): bridge `net`, VM ports vm1 vm2 vm3 on hosts h1 h2 h3.
"""

from __future__ import annotations

from midonet.agent.metrics import AgentDrop
from midonet.datapath.base import OVERLAY_UDP_PORT
from midonet.packets.ethernet import BROADCAST
from midonet.packets.vxlan import decapsulate
from midonet.testing import frames
from midonet.topology.devices import Bridge, Port

from .conftest import L2Cloud


def _warm(l2: L2Cloud) -> tuple[bytes, bytes]:
    """vm1 -> vm2 (flooded), vm2 -> vm1 (learned): both MACs known everywhere. The two frames."""
    h1, h2, h3 = l2.hosts
    to_vm2 = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1])
    to_vm1 = frames.udp(l2.macs[1], l2.macs[0], l2.ips[1], l2.ips[0])
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    h2.inject("vm2", to_vm1)
    l2.cloud.settle()
    for host, name in ((h1, "vm1"), (h2, "vm2"), (h3, "vm3")):
        host.take(name)
    return to_vm2, to_vm1


def test_unknown_destination_floods_to_every_host_then_the_learned_mac_is_unicast(l2: L2Cloud) -> None:
    h1, h2, h3 = l2.hosts
    to_vm2 = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1])
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()                      # the first packet waited for h1's agent to load the bridge
    assert h2.take("vm2") == [to_vm2]      # flooded: both other hosts get it, unchanged
    assert h3.take("vm3") == [to_vm2]
    assert h1.take("vm1") == []            # never back out of the ingress port

    to_vm1 = frames.udp(l2.macs[1], l2.macs[0], l2.ips[1], l2.ips[0])
    h2.inject("vm2", to_vm1)
    l2.cloud.settle()
    assert h1.take("vm1") == [to_vm1]      # h2 learned vm1's MAC from h1, through the store
    assert h3.take("vm3") == []

    h1.inject("vm1", to_vm2)               # h1's flood flow was invalidated when h2 learned vm2's MAC
    l2.cloud.settle()
    assert h2.take("vm2") == [to_vm2]
    assert h3.take("vm3") == []            # the second packet does not reach the third host


def test_broadcast_reaches_every_other_host_once(l2: L2Cloud) -> None:
    h1, h2, h3 = l2.hosts
    bcast = frames.udp(l2.macs[0], BROADCAST, l2.ips[0], "10.1.0.255")
    h1.inject("vm1", bcast)
    l2.cloud.settle()
    assert h2.take("vm2") == [bcast]
    assert h3.take("vm3") == [bcast]


def test_flooded_copies_cross_the_underlay_as_vxlan_with_each_ports_tunnel_key(l2: L2Cloud) -> None:
    seen: list[bytes] = []
    l2.cloud.underlay.observe(seen.append)
    frame = frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1])
    l2.host(1).inject("vm1", frame)
    l2.cloud.settle()
    decaps = sorted((d.outer_ip_src, d.outer_ip_dst, d.vni, d.inner)
                    for d in (decapsulate(f, port=OVERLAY_UDP_PORT) for f in seen))
    assert decaps == [("10.0.0.1", "10.0.0.2", l2.ports[1].tunnel_key, frame),
                      ("10.0.0.1", "10.0.0.3", l2.ports[2].tunnel_key, frame)]


def test_the_second_packet_of_a_flow_never_reaches_the_agent(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, _h3 = l2.hosts
    h1.inject("vm1", to_vm2)               # installs h1's unicast flow (and h2's tunnel flow)
    assert h2.take("vm2") == [to_vm2]
    before1, before2 = h1.agent.statistics(), h2.agent.statistics()
    for _ in range(5):
        h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == [to_vm2] * 5
    after1, after2 = h1.agent.statistics(), h2.agent.statistics()
    assert (after1.upcalls, after2.upcalls) == (before1.upcalls, before2.upcalls)
    assert after1.datapath.hits - before1.datapath.hits == 5          # vm1 -> tunnel, in h1's datapath
    assert after2.datapath.hits - before2.datapath.hits == 5          # tunnel -> vm2, in h2's datapath
    assert after1.simulations == before1.simulations


def test_a_mac_moving_to_another_port_redirects_traffic(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, h3 = l2.hosts
    h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == [to_vm2]
    # vm2's MAC shows up behind vm3's port on h3 (the VM migrated, or a duplicate MAC)
    garp = frames.garp(l2.macs[1], l2.ips[1])
    h3.inject("vm3", garp)
    l2.cloud.settle()
    assert h1.take("vm1") == [garp] and h2.take("vm2") == [garp]     # flooded (userspace-only: no flow)
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h3.take("vm3") == [to_vm2]
    assert h2.take("vm2") == []
    assert h1.agent.statistics().flows_invalidated >= 1


def test_a_port_whose_interface_goes_down_stops_traffic_and_comes_back_with_it(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, _h3 = l2.hosts
    cloud, port2 = l2.cloud, l2.ports[1]
    h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == [to_vm2]

    h2.set_link("vm2", False)
    cloud.settle()
    assert cloud.operator.get_state(Port, port2.id, "active") is None     # h2 withdrew the binding
    assert [p.name for p in h2.datapath.ports()] == ["tnvxlan-overlay"]
    delivered = cloud.underlay.statistics().delivered
    h1.inject("vm1", to_vm2)
    cloud.settle()
    assert cloud.underlay.statistics().delivered == delivered             # h1 no longer tunnels to h2
    assert h1.agent.statistics().dropped(AgentDrop.NO_DESTINATION) == 1

    h2.set_link("vm2", True)
    cloud.settle()
    assert cloud.operator.get_state(Port, port2.id, "active") is not None
    h1.inject("vm1", to_vm2)
    cloud.settle()
    assert h2.take("vm2") == [to_vm2]


def test_unbinding_a_port_stops_traffic_to_it(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, _h3 = l2.hosts
    l2.cloud.topology.unbind(l2.ports[1])
    l2.cloud.settle()
    assert h2.agent.bindings.active() == {}
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h2.take("vm2") == []
    assert h1.agent.statistics().dropped(AgentDrop.TEMPORARY_DROP) == 1   # to an unplugged port: 5 s, untagged
    l2.cloud.topology.bind(l2.ports[1], h2.host_id, "vm2")
    l2.cloud.tick(5.0)                     # ... so it outlives the binding coming back, until it expires
    h1.inject("vm1", to_vm2)
    l2.cloud.settle()
    assert h2.take("vm2") == [to_vm2]


def test_flows_expire_then_learned_macs_age_out_and_the_bridge_floods_again(l2: L2Cloud) -> None:
    to_vm2, _ = _warm(l2)
    h1, h2, h3 = l2.hosts
    cloud, net = l2.cloud, l2.net
    h1.inject("vm1", to_vm2)
    assert h2.take("vm2") == [to_vm2] and h3.take("vm3") == []
    cloud.tick(14.0)
    assert all(len(h.agent.flows) for h in (h1, h2))              # idle for 14 s only: kept
    cloud.tick(1.0)                                              # 15 s: h1's flows saw no packet after the first
    assert len(h1.agent.flows) == 0
    table = cloud.operator.state_table(Bridge, net.id, "mac_table:0")
    assert table.snapshot() != {}                                # unreferenced since h1's flows went ...
    for _ in range(15):                                          # a tick a second, as the agent's timer runs
        cloud.tick(1.0)
    assert table.snapshot() == {}                                # ... and gone 15 s later
    assert [len(h.agent.flows) for h in l2.hosts] == [0, 0, 0]   # h2's tunnel flow, seen used at 15 s: by 30 s
    assert all(h.datapath.flows() == [] for h in l2.hosts)
    h1.inject("vm1", to_vm2)
    cloud.settle()
    assert h2.take("vm2") == [to_vm2] and h3.take("vm3") == [to_vm2]   # unknown again: flooded
