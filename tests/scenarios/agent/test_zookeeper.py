"""The agents over a real ZooKeeper: the same fake hosts, the store an ensemble instead of the embedded one.

ZooKeeper watches travel through the server, so these tests wait for what they expect with `cloud.wait_until`
(a deadline poll) where the memory scenarios `settle()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from midonet.store.zookeeper import ZooKeeperStore
from midonet.testing import frames
from midonet.testing.fakehosts import FakeCloud
from midonet.topology.devices import Port
from midonet.topology.ids import BridgeId

pytestmark = pytest.mark.zookeeper


@pytest.fixture
def zk_cloud(zookeeper: str) -> Iterator[FakeCloud]:
    root = ZooKeeperStore(zookeeper, f"/agent-{uuid.uuid4().hex[:12]}", "root")
    try:
        with FakeCloud(store=root) as cloud:
            yield cloud
    finally:
        root.close()


def test_flood_learn_and_unicast_across_three_hosts_over_zookeeper(zk_cloud: FakeCloud) -> None:
    cloud = zk_cloud
    hosts = [cloud.add_host(f"h{i}", interfaces=[f"vm{i}"]) for i in (1, 2, 3)]
    net = cloud.topology.bridge("net")
    ports = [cloud.topology.port(net, host_id=h.host_id, interface=f"vm{i}") for i, h in enumerate(hosts, 1)]
    cloud.wait_until(lambda: all(cloud.operator.get_state(Port, p.id, "active") for p in ports))
    cloud.wait_until(lambda: all(len(h.agent.tunnels.routes()) == 2 for h in hosts))
    h1, h2, h3 = hosts
    m1, m2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
    to_vm2 = frames.udp(m1, m2, "10.1.0.1", "10.1.0.2")
    h1.inject("vm1", to_vm2)
    cloud.wait_until(lambda: h2.memory.interfaces.captured("vm2") and h3.memory.interfaces.captured("vm3"))
    assert h2.take("vm2") == [to_vm2] and h3.take("vm3") == [to_vm2]

    to_vm1 = frames.udp(m2, m1, "10.1.0.2", "10.1.0.1")
    h2.inject("vm2", to_vm1)
    cloud.wait_until(lambda: h1.memory.interfaces.captured("vm1"))
    assert h1.take("vm1") == [to_vm1] and h3.take("vm3") == []

    # h1 hears of vm2's MAC through ZooKeeper: its flood flow goes, the next packet is unicast
    cloud.wait_until(lambda: m2 in h1.agent.tables.mac_table.entries(BridgeId(net.id)))
    h1.inject("vm1", to_vm2)
    cloud.wait_until(lambda: h2.memory.interfaces.captured("vm2"))
    assert h2.take("vm2") == [to_vm2] and h3.take("vm3") == []
