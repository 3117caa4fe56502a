"""Fake hypervisors for the agent scenarios: a `FakeCloud` per test, and the two topologies the scenarios share.

Topology is written through the store (`cloud.topology`, `midonet.testing.store_topology`), as the API would write
it; the agents see it through their watches. After a topology change, or a first packet that has to wait for the
agents to load devices, tests call `cloud.settle()` (no sleeps).

    l2_cloud     one bridge `net`, three hosts h1 h2 h3, one VM port each (vm1 vm2 vm3)
    routed_cloud the reference topology (spec 11) spread over hosts: router 10.0.1.254 / 10.0.2.254 between
                 bridges `left` (l1 on h1, l2 on h3) and `right` (r1 on h2); each VM answers ARP (`FakeVm`)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from midonet.testing.fakehosts import FakeCloud, FakeHost, FakeVm
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC
from midonet.topology.devices import Bridge, Port, Router


@pytest.fixture
def cloud() -> Iterator[FakeCloud]:
    with FakeCloud() as c:
        yield c


@dataclass
class L2Cloud:
    cloud: FakeCloud
    net: Bridge
    hosts: list[FakeHost]
    ports: list[Port]
    macs: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)

    def host(self, i: int) -> FakeHost:
        return self.hosts[i - 1]


@pytest.fixture
def l2(cloud: FakeCloud) -> L2Cloud:
    hosts = [cloud.add_host(f"h{i}", interfaces=[f"vm{i}"]) for i in (1, 2, 3)]
    net = cloud.topology.bridge("net")
    ports = [cloud.topology.port(net, host_id=h.host_id, interface=f"vm{i}") for i, h in enumerate(hosts, 1)]
    cloud.settle()
    macs = [f"02:00:00:00:00:0{i}" for i in (1, 2, 3)]
    ips = [f"10.1.0.{i}" for i in (1, 2, 3)]
    return L2Cloud(cloud, net, hosts, ports, macs, ips)


@dataclass
class RoutedCloud:
    cloud: FakeCloud
    router: Router
    left: Bridge
    right: Bridge
    vms: dict[str, FakeVm]
    ports: dict[str, Port]


@pytest.fixture
def routed(cloud: FakeCloud) -> RoutedCloud:
    t = cloud.topology
    h1, h2, h3 = (cloud.add_host(name) for name in ("h1", "h2", "h3"))
    router = t.router("router")
    left, right = t.bridge("left"), t.bridge("right")
    lrp = t.router_port(router, "10.0.1.254/24", LEFT_ROUTER_MAC)
    rrp = t.router_port(router, "10.0.2.254/24", RIGHT_ROUTER_MAC)
    t.link(lrp, t.port(left))
    t.link(rrp, t.port(right))
    t.route(router, "10.0.1.0/24", lrp)
    t.route(router, "10.0.2.0/24", rrp)
    vms = {
        "l1": cloud.vm(h1, "l1", "02:00:00:00:01:01", "10.0.1.1"),
        "l2": cloud.vm(h3, "l2", "02:00:00:00:01:02", "10.0.1.2"),
        "r1": cloud.vm(h2, "r1", "02:00:00:00:02:01", "10.0.2.1"),
    }
    ports = {
        "l1": t.port(left, host_id=h1.host_id, interface="l1"),
        "l2": t.port(left, host_id=h3.host_id, interface="l2"),
        "r1": t.port(right, host_id=h2.host_id, interface="r1"),
    }
    cloud.settle()
    return RoutedCloud(cloud, router, left, right, vms, ports)
