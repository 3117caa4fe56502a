"""NAT'd connections that outlive their agent (spec 4.5): the agent restarts on the same data directory, or the VM's
port moves to another host; both keep translating the connection as before (MDTS `test_distributed_l4_port_binding`,
`test_port_migration.test_simple_port_migration`).

Two connections of the VM on h1 (`gateway`): one it started (dynamic SNAT: the Internet saw port P), one it
answers (port forwarding: the client talks to SERVICE_IP:80). After the restart or the move the VM's next packet of
the first must leave as port P again (the forward key, else a new port is drawn), and its answer on the second
must come from SERVICE_IP:80 (the reverse key, which only the VM's host had: h2 sent it there).
"""

from __future__ import annotations

from pathlib import Path

from midonet.agent.nat_leasing import TAKEN, table_name
from midonet.testing.fakehosts import FakeCloud
from midonet.topology.devices import Router

from .gateway import (
    EXT1_IP,
    INTERNET,
    SERVICE_IP,
    SNAT_IP,
    VM_IP,
    VM_MAC,
    Gateway,
    gateway,
    received,
)


def _connections(gw: Gateway) -> int:
    """Open both connections; the SNAT port of the first."""
    gw.vm.send(gw.from_vm(INTERNET))
    gw.cloud.settle()
    [out] = received(gw.ext1)
    gw.ext1.send(gw.from_ext1(EXT1_IP, SERVICE_IP, sport=40000, dport=80))
    gw.cloud.settle()
    [inbound] = received(gw.vm)
    assert (inbound.ip_dst, inbound.tp_dst) == (VM_IP, 8080)
    assert isinstance(out.tp_src, int)
    return out.tp_src


def _still_translated(gw: Gateway, port: int) -> None:
    gw.vm.send(gw.from_vm(INTERNET))                                   # the SNAT'd connection, again
    gw.cloud.settle()
    assert [(m.ip_src, m.tp_src) for m in received(gw.ext1)] == [(SNAT_IP, port)]
    gw.vm.send(gw.from_vm(EXT1_IP, sport=8080, dport=40000))           # the answer on the forwarded one
    gw.cloud.settle()
    assert [(m.ip_src, m.tp_src, m.tp_dst) for m in received(gw.ext1)] == [(SERVICE_IP, 80, 40000)]
    gw.ext1.send(gw.from_ext1(INTERNET, SNAT_IP, sport=53, dport=port))  # and the Internet's reply comes in
    gw.cloud.settle()
    assert [(m.ip_dst, m.tp_dst) for m in received(gw.vm)] == [(VM_IP, 5000)]


def test_a_restarted_agent_keeps_its_nat_connections(tmp_path: Path) -> None:
    with FakeCloud(data_dir=tmp_path) as cloud:
        gw = gateway(cloud).port_forwarding().source_nat()
        port = _connections(gw)
        h1 = gw.hosts["h1"]
        h1.restart()
        cloud.settle()
        assert h1.agent.counters.get("flow_state_keys_imported") >= 4    # read back from h1's own disk
        leases = cloud.operator.state_table(Router, gw.router.id, table_name(SNAT_IP)).snapshot()
        assert leases[f"{TAKEN}{port // 64}"] == h1.host_id              # its block, leased again
        _still_translated(gw, port)
        assert (tmp_path / "h1" / "flowstate.log").stat().st_size > 0


def test_without_its_data_directory_a_restarted_agent_forgets() -> None:
    with FakeCloud() as cloud:
        gw = gateway(cloud).port_forwarding().source_nat()
        _connections(gw)
        gw.hosts["h1"].restart()
        cloud.settle()
        gw.vm.send(gw.from_vm(EXT1_IP, sport=8080, dport=40000))
        cloud.settle()
        [m] = received(gw.ext1)
        assert m.ip_src == SNAT_IP and m.tp_src != 80        # not the service's answer: a new SNAT'd connection


def test_a_port_moved_to_a_third_host_keeps_its_nat_connections() -> None:
    with FakeCloud() as cloud:
        gw = gateway(cloud).port_forwarding().source_nat()
        port = _connections(gw)
        h1, h4 = gw.hosts["h1"], gw.hosts["h4"]
        cloud.topology.unbind(gw.down)                                # the VM migrates: off h1 ...
        cloud.settle()
        gw.vm = cloud.vm(h4, "down", VM_MAC, VM_IP)                   # ... onto h4
        moved = cloud.topology.bind(gw.down, h4.host_id, "down")
        assert moved.previous_host_id == h1.host_id
        cloud.settle()
        assert h4.agent.counters.get("flow_state_fetches_done") == 1
        assert h1.agent.counters.get("flow_state_requests_answered") == 1
        assert h4.agent.flow_state.pending_fetches() == []
        _still_translated(gw, port)


def test_a_fetch_nobody_answers_is_given_up_after_three_attempts() -> None:
    with FakeCloud() as cloud:
        gw = gateway(cloud).source_nat()
        h1, h4 = gw.hosts["h1"], gw.hosts["h4"]
        cloud.topology.unbind(gw.down)
        cloud.settle()
        h1.stop()                                                     # the previous host is gone
        gw.vm = cloud.vm(h4, "down", VM_MAC, VM_IP)
        cloud.topology.bind(gw.down, h4.host_id, "down")
        cloud.settle()
        assert h4.agent.flow_state.pending_fetches() == [gw.down.id]
        for _ in range(3):
            cloud.tick(1.0)
        assert h4.agent.counters.get("flow_state_fetches_sent") == 3
        assert h4.agent.counters.get("flow_state_fetches_failed") == 1
        assert h4.agent.flow_state.pending_fetches() == []
