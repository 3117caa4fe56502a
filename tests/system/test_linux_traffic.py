"""Real traffic through the Linux datapath: ping, TCP with offloads, VXLAN between hosts, restart of the agent."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from midonet.datapath.base import Flow, FlowKey, Output, PortKind, SetTunnel
from midonet.datapath.linux import LinuxDatapath
from midonet.datapath.linux.loader import SOURCE, compile_command
from midonet.testing.linux_rig import LinuxRig
from midonet.testing.traffic import ping, tcp_transfer
from tests.system.switch import LearningSwitch

UL1, UL2 = "10.99.0.1", "10.99.0.2"
TUNNEL = "tnvxlan-overlay"


def one_host(rig: LinuxRig) -> LinuxDatapath:
    dp = rig.add_linux_host("h1", UL1, ["a", "b"], {"a": "10.0.0.1/24", "b": "10.0.0.2/24"})
    dp.add_port("a")
    dp.add_port("b")
    return dp


def test_ping_goes_through_the_kernel_once_flows_are_installed(rig: LinuxRig) -> None:
    dp = one_host(rig)
    switch = LearningSwitch(dp)
    assert ping(rig.vm("h1", "a"), "10.0.0.2") == 1        # ARP and the first echo come up and are executed
    assert len(switch.installed) == 2                      # a -> b and b -> a
    before = dp.statistics()
    assert ping(rig.vm("h1", "a"), "10.0.0.2", count=3) == 3
    after = dp.statistics()
    assert after.upcalls == before.upcalls, "a packet of an installed flow came up"
    assert after.hits - before.hits == 6
    stats = {flow.key: s for flow, s in dp.flows()}
    assert all(stats[flow.key].packets >= 3 for flow in switch.installed), stats
    assert all(dp.in_kernel(flow.key) for flow in switch.installed)


def test_tcp_with_checksum_offload_first_packets_through_userspace(rig: LinuxRig) -> None:
    """The SYN and SYN-ACK are checksum-partial (veth offloads on): they come up and go out again valid."""
    dp = one_host(rig)
    switch = LearningSwitch(dp, l4=True)
    data = os.urandom(1 << 20)
    got = tcp_transfer(rig.vm("h1", "a"), rig.vm("h1", "b"), "10.0.0.2", data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert dp.channel_statistics().completed >= 2, "no checksum-partial packet came up"
    tcp_flows = [f for f in switch.installed if f.key.get("ip_proto") == 6]
    assert len(tcp_flows) == 2
    stats = {flow.key: s for flow, s in dp.flows()}
    assert sum(stats[f.key].bytes for f in tcp_flows) > len(data), "the transfer did not use the kernel flows"


def test_tcp_entirely_through_userspace_segments_gso_packets(rig: LinuxRig) -> None:
    """No flow installed: every packet, TSO super-packets included, is finished in Python and executed."""
    dp = one_host(rig)
    switch = LearningSwitch(dp, install=False)
    data = os.urandom(300_000)
    got = tcp_transfer(rig.vm("h1", "a"), rig.vm("h1", "b"), "10.0.0.2", data, timeout=20)
    assert got == data
    assert switch.upcalls > 50 and dp.flows() == []
    assert dp.channel_statistics().segmented > 0, "no GSO packet came up"


def two_hosts(rig: LinuxRig) -> tuple[LinuxDatapath, LinuxDatapath]:
    """VM a (10.0.0.1) on h1 and VM c (10.0.0.2) on h2, joined by static tunnel flows (keys 100 and 200)."""
    dp1 = rig.add_linux_host("h1", UL1, ["a"], {"a": "10.0.0.1/24"})
    dp2 = rig.add_linux_host("h2", UL2, ["c"], {"c": "10.0.0.2/24"})
    a, vx1 = dp1.add_port("a"), dp1.add_port(TUNNEL, PortKind.VXLAN)
    c, vx2 = dp2.add_port("c"), dp2.add_port(TUNNEL, PortKind.VXLAN)
    dp1.install(Flow(FlowKey.of({"in_port": a.number}), (SetTunnel(200, UL1, UL2), Output(vx1.number))))
    dp1.install(Flow(FlowKey.of({"in_port": vx1.number, "tunnel_id": 100}), (Output(a.number),)))
    dp2.install(Flow(FlowKey.of({"in_port": c.number}), (SetTunnel(100, UL2, UL1), Output(vx2.number))))
    dp2.install(Flow(FlowKey.of({"in_port": vx2.number, "tunnel_id": 200}), (Output(c.number),)))
    return dp1, dp2


def test_vxlan_between_two_hosts(rig: LinuxRig) -> None:
    dp1, dp2 = two_hosts(rig)
    assert ping(rig.vm("h1", "a"), "10.0.0.2", count=3) == 3
    data = os.urandom(1 << 20)
    assert tcp_transfer(rig.vm("h2", "c"), rig.vm("h1", "a"), "10.0.0.1", data) == data
    for dp in (dp1, dp2):
        stats = dp.statistics()
        assert (stats.misses, stats.upcalls, stats.dropped()) == (0, 0, 0), stats
        assert all(s.packets > 3 for _, s in dp.flows()), dp.flows()


def test_flows_keep_forwarding_across_an_agent_restart(rig: LinuxRig) -> None:
    """release() leaves the kernel forwarding; a new datapath on the same state finds ports, flows and stats."""
    dp1, _ = two_hosts(rig)
    assert ping(rig.vm("h1", "a"), "10.0.0.2", count=2) == 2
    flows_before = dict(dp1.flows())
    ports_before = dp1.ports()
    dp1.release()
    assert ping(rig.vm("h1", "a"), "10.0.0.2", count=2) == 2, "flows stopped when the agent stopped"
    dp1 = rig.reopen("h1")
    assert dp1.reattached
    assert dp1.ports() == ports_before
    flows_after = dict(dp1.flows())
    assert flows_after.keys() == flows_before.keys()
    assert all(flows_after[f].packets >= flows_before[f].packets + 2 for f in flows_before), flows_after
    assert ping(rig.vm("h1", "a"), "10.0.0.2") == 1
    assert dp1.statistics().upcalls == 0
    a = next(p for p in dp1.ports() if p.name == "a")
    dp1.remove_port(a.number)
    assert dp1.add_port("a").number > max(p.number for p in ports_before), "a port number was reused"


def test_an_agent_of_another_build_replaces_the_programs_and_keeps_the_flows(rig: LinuxRig, tmp_path: Path) -> None:
    """An upgrade: the datapath reattaches with another program object (here the same source with other debug
    information: other bytes). Its programs replace the old ones on every interface, the old pins go, and the
    flows installed before keep forwarding in the kernel."""
    dp1, _ = two_hosts(rig)
    assert ping(rig.vm("h1", "a"), "10.0.0.2", count=2) == 2
    progs = dp1.state_dir / "progs"
    before = sorted(p.name for p in progs.iterdir())
    other = tmp_path / "dp.o"
    command = compile_command(SOURCE, other)
    subprocess.run([*command[:3], "-gdwarf-4", *command[3:]], check=True)   # other debug information: other bytes
    dp1 = rig.reopen("h1", bpf_object=other)
    after = sorted(p.name for p in progs.iterdir())
    assert after and not set(after) & set(before), (before, after)
    shown = subprocess.run(["tc", "-n", rig.host_netns("h1"), "filter", "show", "dev", "a", "ingress"],
                           capture_output=True, text=True).stdout
    pinned_id = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "pinned", str(progs / after[0])],
                                          capture_output=True, text=True).stdout)["id"]
    assert f" id {pinned_id} " in shown, shown           # the new program runs on the VM's interface
    assert ping(rig.vm("h1", "a"), "10.0.0.2") == 1
    assert dp1.statistics().upcalls == 0, "the flows from before the upgrade were lost"
