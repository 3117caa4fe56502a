"""What the agents write about their hosts and ports, read back through the store and through the REST API.

The agents register their hosts, keep `alive`, publish their interfaces and mark their bound ports active (spec
1.4, 1.5); the REST API reads exactly those keys (`midonet.api.hosts`, `/ports/{id}` `active`).
"""

from __future__ import annotations

import base64
import json

import httpx

from midonet.agent.metrics import AgentDrop
from midonet.api.auth import Authenticator, Role, User
from midonet.testing import frames
from midonet.testing.apiserver import ApiServer
from midonet.testing.fakehosts import FakeCloud, host_id_for
from midonet.topology.devices import Port
from midonet.topology.hosts import Host

from .conftest import L2Cloud


def test_an_agent_registers_its_host_and_keeps_it_alive_until_it_stops(cloud: FakeCloud) -> None:
    h1 = cloud.add_host("h1", interfaces=["vm1"])
    host = cloud.operator.get(Host, h1.host_id)
    assert host.name == "h1"
    assert cloud.operator.get_state(Host, h1.host_id, "alive") is not None
    h1.stop()
    assert cloud.operator.get_state(Host, h1.host_id, "alive") is None
    assert cloud.operator.get_state(Host, h1.host_id, "interfaces") is None
    assert cloud.operator.exists(Host, h1.host_id)           # the record stays; only its state went


def test_a_pre_registered_host_keeps_its_name(cloud: FakeCloud) -> None:
    cloud.operator.create(Host(id=host_id_for("h1"), name="rack-3-node-7"))
    h1 = cloud.add_host("h1")
    assert cloud.operator.get(Host, h1.host_id).name == "rack-3-node-7"


def test_interfaces_are_published_and_follow_their_links(cloud: FakeCloud) -> None:
    h1 = cloud.add_host("h1")
    mac = h1.add_interface("tap0")

    def published() -> dict[str, dict[str, object]]:
        state = cloud.operator.get_state(Host, h1.host_id, "interfaces")
        assert state is not None
        return {i["name"]: i for i in json.loads(state.value)}

    ifaces = published()
    assert ifaces["tap0"] == {"name": "tap0", "mac": mac, "mtu": 1500, "status": 3, "type": "Virtual",
                              "addresses": [], "endpoint": "TUNTAP", "portType": None}
    assert ifaces["eth0"]["addresses"] == [h1.underlay_ip] and ifaces["eth0"]["type"] == "Physical"
    h1.set_link("tap0", False)
    assert published()["tap0"]["status"] == 0
    h1.remove_interface("tap0")
    assert "tap0" not in published()


def test_a_bound_port_is_active_with_this_host_and_its_tunnel_key(l2: L2Cloud) -> None:
    store = l2.cloud.operator
    for host, port in zip(l2.hosts, l2.ports, strict=True):
        state = store.get_state(Port, port.id, "active")
        assert state is not None and state.owner == host.host_id
        assert json.loads(state.value) == {"host_id": host.host_id, "tunnel_key": port.tunnel_key}
    l2.host(3).stop()                                        # the session ends: its keys vanish
    assert store.get_state(Port, l2.ports[2].id, "active") is None


def test_a_stopped_agent_leaves_nothing_behind_in_its_datapath_or_the_store(l2: L2Cloud) -> None:
    h1 = l2.host(1)
    h1.inject("vm1", frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1]))
    l2.cloud.settle()
    assert h1.datapath.flows()
    h1.agent.stop()
    h1.agent.stop()                                          # twice is fine
    assert h1.datapath.flows() == [] and h1.datapath.ports() == []
    store = l2.cloud.operator                                # its session is still open: the agent cleaned up
    assert store.get_state(Port, l2.ports[0].id, "active") is None
    assert store.get_state(Host, h1.host_id, "alive") is None
    assert h1.agent.statistics().dropped(AgentDrop.INTERNAL_ERROR) == 0


def test_the_rest_api_shows_what_the_agents_wrote(l2: L2Cloud) -> None:
    users = [User("admin", "pw", Role.ADMIN)]
    h1 = l2.host(1)
    l2.host(1).inject("vm1", frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1]))
    l2.cloud.settle()
    with ApiServer(l2.cloud.operator, Authenticator(users)) as server:
        basic = base64.b64encode(b"admin:pw").decode()
        token = httpx.post(f"{server.url}/login", headers={"Authorization": f"Basic {basic}"}).json()["key"]
        with httpx.Client(base_url=server.url, headers={"X-Auth-Token": token}, timeout=30) as http:
            host = http.get(f"/hosts/{h1.host_id}").json()
            assert host["alive"] is True and host["name"] == "h1"
            names = {i["name"] for i in http.get(f"/hosts/{h1.host_id}/interfaces").json()}
            assert names == {"eth0", "vm1"}
            port = http.get(f"/ports/{l2.ports[0].id}").json()
            assert port["active"] is True and port["hostId"] == h1.host_id
            entries = http.get(f"/bridges/{l2.net.id}/mac_table").json()
            assert {(e["macAddr"], e["portId"]) for e in entries} == {(l2.macs[0], l2.ports[0].id)}


def test_each_agent_exports_its_counters_as_prometheus_text(l2: L2Cloud) -> None:
    h1 = l2.host(1)
    h1.inject("vm1", frames.udp(l2.macs[0], l2.macs[1], l2.ips[0], l2.ips[1]))
    l2.cloud.settle()
    text = h1.agent.metrics()
    assert f'midonet_agent_upcalls_total{{host="{h1.host_id}"}} 1.0' in text
    assert f'midonet_agent_flows{{host="{h1.host_id}"}} 1.0' in text
    assert f'midonet_datapath_misses_total{{host="{h1.host_id}"}} 1.0' in text


def test_state_keys_lost_with_the_session_are_written_again_on_the_next_tick(l2: L2Cloud) -> None:
    h1, store = l2.host(1), l2.cloud.operator
    h1.session.delete_state(Host, h1.host_id, "alive")               # as if the ZooKeeper session had expired
    h1.session.delete_state(Port, l2.ports[0].id, "active")
    l2.cloud.tick()
    assert store.get_state(Host, h1.host_id, "alive") is not None
    state = store.get_state(Port, l2.ports[0].id, "active")
    assert state is not None and json.loads(state.value)["host_id"] == h1.host_id
