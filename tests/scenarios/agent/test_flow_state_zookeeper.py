"""Flow state and NAT block leases over a real ZooKeeper: the L4-state topology (`gateway`) with the store an
ensemble; a SNAT'd connection's reply comes back by the other uplink of the stateful group, on a third host.

ZooKeeper watches travel through the server: the test waits with `cloud.wait_until` where the memory scenarios
`settle()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from midonet.agent.nat_leasing import TAKEN, table_name
from midonet.packets.flowmatch import FlowMatch
from midonet.store.zookeeper import ZooKeeperStore
from midonet.testing.fakehosts import FakeCloud, FakeVm
from midonet.topology.devices import Port, Router

from .gateway import INTERNET, SNAT_IP, VM_IP, gateway, received

pytestmark = pytest.mark.zookeeper


@pytest.fixture
def zk_cloud(zookeeper: str) -> Iterator[FakeCloud]:
    root = ZooKeeperStore(zookeeper, f"/flowstate-{uuid.uuid4().hex[:12]}", "root")
    try:
        with FakeCloud(store=root) as cloud:
            yield cloud
    finally:
        root.close()


def _wait_for(cloud: FakeCloud, vm: FakeVm) -> FlowMatch:
    got: list[FlowMatch] = []
    cloud.wait_until(lambda: got.extend(received(vm)) or got)
    [m] = got
    return m


def test_snat_reply_by_the_other_uplink_over_zookeeper(zk_cloud: FakeCloud) -> None:
    cloud = zk_cloud
    gw = gateway(cloud)
    cloud.wait_until(lambda: all(cloud.operator.get_state(Port, p.id, "active") for p in (gw.down, gw.up1, gw.up2)))
    cloud.wait_until(lambda: all(len(h.agent.tunnels.routes()) == 3 for h in gw.hosts.values()))
    gw.source_nat().only_replies_from_outside()
    cloud.wait_until(lambda: cloud.operator.get(Port, gw.up2.id).inbound_filter_id is not None)

    gw.vm.send(gw.from_vm(INTERNET))
    out = _wait_for(cloud, gw.ext1)
    assert out.ip_src == SNAT_IP and isinstance(out.tp_src, int)
    leases = cloud.operator.state_table(Router, gw.router.id, table_name(SNAT_IP)).snapshot()
    assert leases == {f"{TAKEN}{out.tp_src // 64}": gw.hosts["h1"].host_id}

    h3 = gw.hosts["h3"]
    cloud.wait_until(lambda: h3.agent.statistics().flow_state.keys_imported >= 3)
    gw.ext2.send(gw.from_ext2(INTERNET, SNAT_IP, sport=53, dport=out.tp_src))
    back = _wait_for(cloud, gw.vm)
    assert (back.ip_src, back.ip_dst, back.tp_dst) == (INTERNET, VM_IP, 5000)
