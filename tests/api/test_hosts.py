"""Hosts, their interfaces (from the agent's state keys), weights, deletion rules, and port bindings.

Every test runs against both store backends. The agent's state (`alive`, `interfaces`) is written straight
into the store, as an agent would.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from midonet.topology.hosts import Host
from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

HOST_A = "7d1c0b38-2222-4d5b-9b0a-00000000000a"
HOST_B = "7d1c0b38-2222-4d5b-9b0a-00000000000b"
MISSING = "2b7b2a4e-0000-4000-8000-000000000000"
INTERFACES = [
    {"name": "eth0", "mac": "52:54:00:12:34:56", "mtu": 1500, "status": 3, "type": "Physical",
     "addresses": ["10.0.0.5", "fe80::5054:ff:fe12:3456"], "endpoint": "PHYSICAL", "portType": None},
    {"name": "tap1", "mac": "fe:16:3e:00:00:01", "mtu": 1450, "status": 1, "type": "Virtual",
     "addresses": ["10.0.0.5", "192.168.7.1"], "endpoint": "VM"},
]


def _id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


@pytest.fixture
def hosts(admin: httpx.Client) -> tuple[str, str]:
    for host_id, name in ((HOST_A, "host-a"), (HOST_B, "host-b")):
        assert admin.post("/hosts", json={"id": host_id, "name": name}).status_code == 201
    return HOST_A, HOST_B


def _bridge_ports(client: httpx.Client, n: int, tenant: str = "tenant-a") -> list[str]:
    bridge = _id(client.post("/bridges", json={"name": "b", "tenantId": tenant}))
    return [_id(client.post(f"/bridges/{bridge}/ports", json={})) for _ in range(n)]


# --- hosts ---------------------------------------------------------------------------------------------

def test_registered_host_reads_back(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    mido = api.mido()
    host = mido.get_host(HOST_A)
    assert (host.get_id(), host.get_name(), host.is_alive(), host.get_addresses()) == (HOST_A, "host-a", False, [])
    assert (host.get_flooding_proxy_weight(), host.get_container_weight(), host.get_container_limit(),
            host.get_enforce_container_limit()) == (1, 1, -1, False)
    assert list(host.get_interfaces()) == [] and list(host.get_ports()) == []
    assert sorted(h.get_id() for h in mido.get_hosts()) == [HOST_A, HOST_B]
    created = mido.add_host().id("7d1c0b38-2222-4d5b-9b0a-00000000000c").name("host-c").create()
    assert created.get_name() == "host-c"
    before = snapshot(api.store)
    rejected(api, admin.post("/hosts", json={"id": HOST_A, "name": "again"}), before, 409)
    rejected(api, admin.post("/hosts", json={"id": "x", "name": "bad"}), before, 400, "id")
    rejected(api, admin.post("/hosts", json={"floodingProxyWeight": -1}), before, 400, "floodingProxyWeight")
    rejected(api, admin.get(f"/hosts/{MISSING}"), before, 404)


def test_alive_and_interfaces_come_from_the_agents_state(api: Api, admin: httpx.Client,
                                                         hosts: tuple[str, str]) -> None:
    api.store.set_state(Host, HOST_A, "alive", "1")
    api.store.set_state(Host, HOST_A, "interfaces", json.dumps(INTERFACES))
    mido = api.mido()
    host = mido.get_host(HOST_A)
    assert host.is_alive() is True
    assert host.get_addresses() == ["10.0.0.5", "fe80::5054:ff:fe12:3456", "192.168.7.1"]
    ifaces = sorted(host.get_interfaces(), key=lambda i: i.get_name())
    assert [(i.get_name(), i.get_mac(), i.get_mtu(), i.get_status(), i.get_type(), i.get_endpoint(),
             i.get_host_id()) for i in ifaces] == [
        ("eth0", "52:54:00:12:34:56", 1500, 3, "Physical", "PHYSICAL", HOST_A),
        ("tap1", "fe:16:3e:00:00:01", 1450, 1, "Virtual", "VM", HOST_A)]
    assert ifaces[1].get_addresses() == ["10.0.0.5", "192.168.7.1"]
    one = admin.get(f"/hosts/{HOST_A}/interfaces/tap1")
    assert one.status_code == 200 and one.json()["endpoint"] == "VM"
    assert one.json()["uri"].endswith(f"/hosts/{HOST_A}/interfaces/tap1")
    assert admin.get(f"/hosts/{HOST_A}/interfaces/eth9").status_code == 404
    assert admin.get(f"/hosts/{MISSING}/interfaces").status_code == 404
    # The agent goes away: its keys go with it; a malformed value reads as no interfaces.
    api.store.delete_state(Host, HOST_A, "alive")
    api.store.set_state(Host, HOST_A, "interfaces", "not json")
    dto = admin.get(f"/hosts/{HOST_A}").json()
    assert (dto["alive"], dto["hostInterfaces"], dto["addresses"]) == (False, [], [])


def test_put_changes_only_the_weights(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    mido = api.mido()
    host = mido.get_host(HOST_A)
    host.flooding_proxy_weight(5).container_weight(3).container_limit(10).enforce_container_limit(True)
    host.name("renamed").update()
    host = mido.get_host(HOST_A)
    assert (host.get_name(), host.get_flooding_proxy_weight(), host.get_container_weight(),
            host.get_container_limit(), host.get_enforce_container_limit()) == ("host-a", 5, 3, 10, True)
    before = snapshot(api.store)
    rejected(api, admin.put(f"/hosts/{HOST_A}", json={"containerWeight": 2}), before, 400, "floodingProxyWeight")
    rejected(api, admin.put(f"/hosts/{HOST_A}", json={"floodingProxyWeight": 70000}), before, 400,
             "floodingProxyWeight")
    rejected(api, admin.put(f"/hosts/{HOST_A}", json={"floodingProxyWeight": 1, "containerLimit": -2}), before,
             400, "containerLimit")
    rejected(api, admin.put(f"/hosts/{HOST_A}", json={"floodingProxyWeight": "high"}), before, 400,
             "floodingProxyWeight")
    rejected(api, admin.put(f"/hosts/{MISSING}", json={"floodingProxyWeight": 1}), before, 404)


def test_delete_refused_while_alive_or_bound(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    (port,) = _bridge_ports(admin, 1)
    zone = _id(admin.post("/tunnel_zones", json={"name": "tz", "type": "vxlan"}))
    assert admin.post(f"/tunnel_zones/{zone}/hosts", json={"hostId": HOST_A, "ipAddress": "10.9.0.1"}).status_code \
        == 201
    api.store.set_state(Host, HOST_A, "alive", "1")
    before = snapshot(api.store)
    rejected(api, admin.delete(f"/hosts/{HOST_A}"), before, 403)
    api.store.delete_state(Host, HOST_A, "alive")
    assert admin.post(f"/hosts/{HOST_A}/ports", json={"portId": port, "interfaceName": "tap0"}).status_code == 201
    before = snapshot(api.store)
    rejected(api, admin.delete(f"/hosts/{HOST_A}"), before, 403)
    assert admin.delete(f"/hosts/{HOST_A}/ports/{port}").status_code == 204
    assert admin.delete(f"/hosts/{HOST_A}").status_code == 204
    assert admin.get(f"/hosts/{HOST_A}").status_code == 404
    assert admin.get(f"/tunnel_zones/{zone}/hosts").json() == []
    assert admin.delete(f"/hosts/{HOST_A}").status_code == 404


def test_hosts_are_admin_only(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    (port,) = _bridge_ports(admin, 1)
    for user in ("alice", "carol"):
        with api.http(user) as c:
            before = snapshot(api.store)
            for r in (c.get("/hosts"), c.get(f"/hosts/{HOST_A}"), c.get(f"/hosts/{HOST_A}/interfaces"),
                      c.get(f"/hosts/{HOST_A}/ports"), c.post("/hosts", json={"name": "mine"}),
                      c.put(f"/hosts/{HOST_A}", json={"floodingProxyWeight": 3}), c.delete(f"/hosts/{HOST_A}"),
                      c.post(f"/hosts/{HOST_A}/ports", json={"portId": port, "interfaceName": "tap0"}),
                      c.delete(f"/hosts/{HOST_A}/ports/{port}")):
                rejected(api, r, before, 403)


# --- port bindings -------------------------------------------------------------------------------------

def test_bind_and_unbind_with_the_client(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    router = mido.add_router().name("r").tenant_id("tenant-a").create()
    vm = bridge.add_port().create()
    uplink = router.add_port().port_address("192.0.2.1").network_address("192.0.2.0").network_length(24).create()
    host = mido.get_host(HOST_A)
    binding = mido.add_host_interface_port(host, vm.get_id(), "tap-vm")
    assert (binding.get_host_id(), binding.get_port_id(), binding.get_interface_name()) == (
        HOST_A, vm.get_id(), "tap-vm")
    host.add_host_interface_port().port_id(uplink.get_id()).interface_name("eth1").create()
    assert sorted((b.get_port_id(), b.get_interface_name()) for b in host.get_ports()) == sorted(
        [(vm.get_id(), "tap-vm"), (uplink.get_id(), "eth1")])
    port = mido.get_port(vm.get_id())
    assert (port.get_host_id(), port.get_interface_name()) == (HOST_A, "tap-vm")
    one = admin.get(f"/hosts/{HOST_A}/ports/{vm.get_id()}").json()
    assert one["interfaceName"] == "tap-vm" and one["port"].endswith(f"/ports/{vm.get_id()}")
    assert admin.get(f"/ports/{vm.get_id()}").json()["hostInterfacePort"] == one["uri"]

    # The same binding again changes nothing.
    before = snapshot(api.store)
    r = admin.post(f"/hosts/{HOST_A}/ports", json={"portId": vm.get_id(), "interfaceName": "tap-vm"})
    assert r.status_code == 201 and r.headers["location"] == one["uri"]
    assert snapshot(api.store) == before

    # Unbind through the binding's uri, then move the port to host B: it remembers host A.
    next(b for b in host.get_ports() if b.get_port_id() == vm.get_id()).delete()
    dto = admin.get(f"/ports/{vm.get_id()}").json()
    assert (dto["hostId"], dto["interfaceName"], dto["previousHostId"]) == (None, None, HOST_A)
    assert [b.get_port_id() for b in host.get_ports()] == [uplink.get_id()]
    mido.add_host_interface_port(mido.get_host(HOST_B), vm.get_id(), "tap-vm")
    dto = admin.get(f"/ports/{vm.get_id()}").json()
    assert (dto["hostId"], dto["interfaceName"], dto["previousHostId"]) == (HOST_B, "tap-vm", HOST_A)
    # Deleting a bound port removes it from its host.
    mido.delete_port(vm.get_id())
    assert admin.get(f"/hosts/{HOST_B}/ports").json() == []


def test_binding_conflicts_and_bad_input(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    p1, p2, p3 = _bridge_ports(admin, 3)
    router = _id(admin.post("/routers", json={"name": "r", "tenantId": "tenant-a"}))
    rport = _id(admin.post(f"/routers/{router}/ports", json={"portAddress": "10.0.0.1",
                                                             "networkAddress": "10.0.0.0", "networkLength": 24}))
    assert admin.post(f"/ports/{rport}/link", json={"peerId": p3}).status_code == 201
    a, b = f"/hosts/{HOST_A}/ports", f"/hosts/{HOST_B}/ports"
    assert admin.post(a, json={"portId": p1, "interfaceName": "tap1"}).status_code == 201
    before = snapshot(api.store)
    # The interface is taken on this host; the port is bound elsewhere or to another interface.
    rejected(api, admin.post(a, json={"portId": p2, "interfaceName": "tap1"}), before, 409)
    rejected(api, admin.post(b, json={"portId": p1, "interfaceName": "tap1"}), before, 409)
    rejected(api, admin.post(a, json={"portId": p1, "interfaceName": "tap2"}), before, 409)
    # Interior (linked) ports cannot be bound.
    rejected(api, admin.post(a, json={"portId": p3, "interfaceName": "tap3"}), before, 409)
    rejected(api, admin.post(a, json={"portId": rport, "interfaceName": "tap3"}), before, 409)
    # Unknown host or port.
    rejected(api, admin.post(f"/hosts/{MISSING}/ports", json={"portId": p2, "interfaceName": "tap9"}), before, 404)
    rejected(api, admin.post(a, json={"portId": MISSING, "interfaceName": "tap9"}), before, 404)
    # Bad input.
    rejected(api, admin.post(a, json={"interfaceName": "tap9"}), before, 400, "portId")
    rejected(api, admin.post(a, json={"portId": "p2", "interfaceName": "tap9"}), before, 400, "portId")
    rejected(api, admin.post(a, json={"portId": p2}), before, 400, "interfaceName")
    rejected(api, admin.post(a, json={"portId": p2, "interfaceName": ""}), before, 400, "interfaceName")
    rejected(api, admin.post(a, json={"portId": p2, "interfaceName": 7}), before, 400, "interfaceName")
    rejected(api, admin.post(a, content=b"{", headers={"Content-Type": "application/json"}), before, 400)
    # Unbinding what is not bound here.
    rejected(api, admin.delete(f"{b}/{p1}"), before, 404)
    rejected(api, admin.delete(f"{a}/{p2}"), before, 404)
    rejected(api, admin.get(f"{a}/{p2}"), before, 404)
    rejected(api, admin.get(f"{a}/junk"), before, 404)
    rejected(api, admin.delete(f"/hosts/{MISSING}/ports/{p1}"), before, 404)


def test_a_linked_port_cannot_be_bound_and_a_bound_port_cannot_be_linked(api: Api, admin: httpx.Client,
                                                                         hosts: tuple[str, str]) -> None:
    (port,) = _bridge_ports(admin, 1)
    router = _id(admin.post("/routers", json={"name": "r"}))
    rport = _id(admin.post(f"/routers/{router}/ports", json={"portAddress": "10.0.0.1",
                                                             "networkAddress": "10.0.0.0", "networkLength": 24}))
    assert admin.post(f"/hosts/{HOST_A}/ports", json={"portId": port, "interfaceName": "tap0"}).status_code == 201
    assert admin.post(f"/ports/{rport}/link", json={"peerId": port}).status_code == 409
    got: dict[str, Any] = admin.get(f"/ports/{port}").json()
    assert got["peerId"] is None and got["hostId"] == HOST_A
