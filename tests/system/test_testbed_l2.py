"""The testbed end to end: real `midonet agent` processes on two host namespaces, a ZooKeeper and `midonet api`;
a topology made through the API; `ping` between VM namespaces.

Skips, saying why, when not root or without clang, BPF or ZooKeeper (`midonet.testbed.unavailable`). The
fixture removes every namespace, link, mount and process of the testbed, even when the test fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from midonet.client import Client
from midonet.testbed import Host, Testbed, Vm, unavailable
from midonet.testing.routed import bound_port, routed_subnet

from .testbed_support import WAIT, assert_kernel_forwards, fresh_testbed, kernel_counters, logs, tunnel_zone, wait_alive

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

TENANT = "tenant-a"


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    with fresh_testbed() as bed:
        yield bed


def ping_until(bed: Testbed, vm_from: Vm, ip: str) -> None:
    """Ping until one round answers (the agents learn the bindings asynchronously)."""
    deadline = time.monotonic() + WAIT
    while True:
        result = vm_from.ping(ip, count=1, wait=1)
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, f"no answer from {ip}: {result.stdout}\n{logs(bed)}"


def one_bridge(testbed: Testbed) -> tuple[Client, Host, Host, Vm, Vm]:
    """Two hosts, a VM on each (10.0.0.1, 10.0.0.2), both bound to one bridge."""
    h1, h2 = testbed.add_host(), testbed.add_host()
    vm1 = testbed.add_vm(h1, "10.0.0.1/24")
    vm2 = testbed.add_vm(h2, "10.0.0.2/24")
    client = Client(testbed.api_url, "admin", testbed.password)
    wait_alive(testbed, client)
    tunnel_zone(testbed, client)
    bridge = str(client.create("bridges", {"name": "br", "tenantId": TENANT})["id"])
    for host, vm in ((h1, vm1), (h2, vm2)):
        bound_port(client, bridge, host.host_id, vm.interface)
    return client, h1, h2, vm1, vm2


def test_ping_across_two_hosts_on_one_bridge(testbed: Testbed) -> None:
    _, h1, h2, vm1, vm2 = one_bridge(testbed)

    # Static neighbours: no ARP re-validation during the count below, so every packet counted is an ICMP one.
    vm1.run("ip", "neigh", "replace", vm2.ip, "lladdr", vm2.mac, "dev", "eth0", "nud", "permanent", check=True)
    vm2.run("ip", "neigh", "replace", vm1.ip, "lladdr", vm1.mac, "dev", "eth0", "nud", "permanent", check=True)
    ping_until(testbed, vm1, vm2.ip)
    assert_kernel_forwards(testbed, vm1, vm2.ip, (h1, h2))


def test_ping_across_two_hosts_through_a_router(testbed: Testbed) -> None:
    h1, h2 = testbed.add_host(), testbed.add_host()
    vm1 = testbed.add_vm(h1, "172.16.1.1/24", gateway="172.16.1.254")
    vm2 = testbed.add_vm(h2, "172.16.2.1/24", gateway="172.16.2.254")
    client = Client(testbed.api_url, "admin", testbed.password)
    wait_alive(testbed, client)
    tunnel_zone(testbed, client)
    router = str(client.create("routers", {"name": "r1", "tenantId": TENANT})["id"])
    for n, (vm, host) in enumerate(((vm1, h1), (vm2, h2)), start=1):
        bridge, rport = routed_subnet(client, router, n, f"172.16.{n}", tenant=TENANT)
        bound_port(client, bridge, host.host_id, vm.interface)
        # The gateway's MAC is known: the VMs send no ARP during the count below (the router's own ARP for the
        # far VM happens during the first ping).
        mac = client.get("ports", rport)["portMac"]
        vm.run("ip", "neigh", "replace", f"172.16.{n}.254", "lladdr", mac, "dev", "eth0", "nud", "permanent",
               check=True)

    ping_until(testbed, vm1, vm2.ip)
    assert_kernel_forwards(testbed, vm1, vm2.ip, (h1, h2))


def test_an_agent_stops_on_sigterm_keeping_its_kernel_datapath_and_restarts(testbed: Testbed) -> None:
    client, h1, h2, vm1, vm2 = one_bridge(testbed)
    ping_until(testbed, vm1, vm2.ip)

    assert h1.stop_agent() == 0, logs(testbed)
    assert "stopping" in h1.log_tail()
    # The store session is closed: the host is not alive any more (its ephemeral key went with the session).
    deadline = time.monotonic() + WAIT
    while client.get("hosts", h1.host_id).get("alive"):
        assert time.monotonic() < deadline, "the stopped agent's host is still alive"
        time.sleep(0.2)
    # The kernel side stays: the pinned maps open, the program is still on the VM's interface.
    assert (Path(h1.bpffs) / "tc" / "globals" / "mn_flows").exists()
    hits, misses = kernel_counters(h1)
    assert hits + misses > 0
    assert "bpf" in h1.run("tc", "filter", "show", "dev", vm1.interface, "ingress").stdout
    assert h2.alive()

    # Started again on the same bpffs, it reattaches and the VMs talk again.
    testbed.start_agent(h1)
    wait_alive(testbed, client)
    ping_until(testbed, vm1, vm2.ip)
