"""VTEPs and their bindings (spec 7.3 VTEP-v2 / VTEPBinding-v2, 5.2) over HTTP and the real midonetclient,
on both store backends: the bridge's VNI and VXLAN port, idempotence, conflicts, bad input, admin-only writes.
"""

from __future__ import annotations

import httpx
import pytest

from midonet.api.vteps import vxlan_port_id
from midonet.topology.devices import Bridge
from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _zone(client: httpx.Client, kind: str = "vtep") -> str:
    return _id(client.post("/tunnel_zones", json={"name": f"tz-{kind}", "type": kind}))


def _vtep(client: httpx.Client, ip: str = "10.9.0.1") -> str:
    return _id(client.post("/vteps", json={"managementIp": ip, "managementPort": 6632, "tunnelZoneId": _zone(client),
                                           "description": "tor-1"}))


def test_vtep_crud(api: Api, admin: httpx.Client) -> None:
    zone = _zone(admin)
    vtep = _id(admin.post("/vteps", json={"managementIp": "10.9.0.1", "tunnelZoneId": zone, "name": "sw"}))
    r = admin.get(f"/vteps/{vtep}")
    assert r.headers["content-type"] == "application/vnd.org.midonet.VTEP-v2+json"
    v = r.json()
    assert (v["managementIp"], v["managementPort"], v["tunnelZoneId"], v["name"], v["connectionState"],
            v["tunnelIpAddrs"]) == ("10.9.0.1", 6632, zone, "sw", "disconnected", [])
    assert v["bindings"].endswith(f"/vteps/{vtep}/bindings")
    assert [x["id"] for x in admin.get("/vteps").json()] == [vtep]
    assert admin.get(f"/vteps/{vtep}/ports").json() == []
    # VTEPs are not updated in place (as in the original).
    assert admin.put(f"/vteps/{vtep}", json={}).status_code == 405
    assert admin.delete(f"/vteps/{vtep}").status_code == 204
    assert admin.get(f"/vteps/{vtep}").status_code == 404


def test_bindings_make_the_vxlan_port(api: Api, admin: httpx.Client) -> None:
    vtep = _vtep(admin)
    vtep2 = _vtep(admin, "10.9.0.2")
    bridge = _id(admin.post("/bridges", json={"name": "b", "tenantId": "tenant-a"}))
    r = admin.post(f"/vteps/{vtep}/bindings", json={"portName": "eth0", "vlanId": 10, "networkId": bridge})
    assert r.status_code == 201 and r.headers["location"].endswith(f"/vteps/{vtep}/bindings/eth0/10")
    b = admin.get(r.headers["location"])
    assert b.headers["content-type"] == "application/vnd.org.midonet.VTEPBinding-v2+json"
    assert (b.json()["portName"], b.json()["vlanId"], b.json()["networkId"], b.json()["vtepId"]) == (
        "eth0", 10, bridge, vtep)

    port = vxlan_port_id(vtep, bridge)
    br = admin.get(f"/bridges/{bridge}").json()
    assert br["vxLanPortIds"] == [port]
    assert api.store.get(Bridge, bridge).vni == 10000   # the first of the VXLAN gateway's VNIs
    p = admin.get(f"/ports/{port}").json()
    assert (p["type"], p["vtepId"], p["deviceId"]) == ("Vxlan", vtep, bridge)

    # A second binding to the same bridge reuses the port; binding the same pair again is a no-op.
    assert admin.post(f"/vteps/{vtep}/bindings", json={"portName": "eth1", "networkId": bridge}).status_code == 201
    before = snapshot(api.store)
    assert admin.post(f"/vteps/{vtep}/bindings", json={"portName": "eth0", "vlanId": 10, "networkId": bridge}) \
        .status_code == 201
    assert snapshot(api.store) == before
    assert sorted((x["portName"], x["vlanId"]) for x in admin.get(f"/vteps/{vtep}/bindings").json()) == [
        ("eth0", 10), ("eth1", 0)]
    # Another VTEP bound to the same bridge gets its own port; the bridge keeps its VNI.
    assert admin.post(f"/vteps/{vtep2}/bindings", json={"portName": "p1", "networkId": bridge}).status_code == 201
    assert admin.get(f"/bridges/{bridge}").json()["vxLanPortIds"] == [port, vxlan_port_id(vtep2, bridge)]

    # The same pair to another bridge conflicts.
    other = _id(admin.post("/bridges", json={"name": "o", "tenantId": "tenant-a"}))
    before = snapshot(api.store)
    rejected(api, admin.post(f"/vteps/{vtep}/bindings", json={"portName": "eth0", "vlanId": 10,
                                                               "networkId": other}), before, 409)
    # A VTEP with bindings cannot go.
    rejected(api, admin.delete(f"/vteps/{vtep}"), before, 400)

    # Removing the last binding of the bridge removes the port; deleting an absent binding is a no-op.
    assert admin.delete(f"/vteps/{vtep}/bindings/eth0/10").status_code == 204
    assert admin.get(f"/ports/{port}").status_code == 200
    assert admin.delete(f"/vteps/{vtep}/bindings/eth1/0").status_code == 204
    assert admin.get(f"/ports/{port}").status_code == 404
    assert admin.get(f"/bridges/{bridge}").json()["vxLanPortIds"] == [vxlan_port_id(vtep2, bridge)]
    before = snapshot(api.store)
    assert admin.delete(f"/vteps/{vtep}/bindings/eth1/0").status_code == 204
    assert snapshot(api.store) == before
    rejected(api, admin.get(f"/vteps/{vtep}/bindings/eth1/0"), before, 404)
    assert admin.delete(f"/vteps/{vtep}").status_code == 204


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    zone = mido.add_vtep_tunnel_zone().name("tz").create()
    vtep = mido.add_vtep().management_ip("10.9.0.7").management_port(6633).tunnel_zone_id(zone.get_id()) \
        .description("tor").create()
    assert (vtep.get_management_ip(), vtep.get_management_port(), vtep.get_tunnel_zone_id(),
            vtep.get_description(), vtep.get_connection_state()) == (
        "10.9.0.7", 6633, zone.get_id(), "tor", "disconnected")
    assert [v.get_id() for v in mido.get_vteps()] == [vtep.get_id()]
    assert mido.get_vtep(vtep.get_id()).get_management_ip() == "10.9.0.7"
    assert list(vtep.get_ports()) == []

    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    binding = vtep.add_binding().port_name("eth0").vlan_id(5).network_id(bridge.get_id()).create()
    assert (binding.get_port_name(), binding.get_vlan_id(), binding.get_network_id(), binding.get_mgmt_ip()) == (
        "eth0", 5, bridge.get_id(), "10.9.0.7")
    assert [b.get_port_name() for b in vtep.get_bindings()] == ["eth0"]
    assert mido.get_bridge(bridge.get_id()).dto["vxLanPortIds"] == [vxlan_port_id(vtep.get_id(), bridge.get_id())]
    binding.delete()
    assert list(vtep.get_bindings()) == []
    mido.delete_vtep(vtep.get_id())
    assert list(mido.get_vteps()) == []


@pytest.mark.parametrize(("body", "status", "prop"), [
    ({"tunnelZoneId": "{zone}"}, 400, "managementIp"),
    ({"managementIp": "10.1.1", "tunnelZoneId": "{zone}"}, 400, "managementIp"),
    ({"managementIp": "10.1.1.1"}, 400, "tunnelZoneId"),
    ({"managementIp": "10.1.1.1", "tunnelZoneId": MISSING}, 400, "tunnelZoneId"),
    ({"managementIp": "10.1.1.1", "tunnelZoneId": "{vxlan_zone}"}, 400, "tunnelZoneId"),
    ({"managementIp": "10.1.1.1", "tunnelZoneId": "zone"}, 400, "tunnelZoneId"),
    ({"managementIp": "10.1.1.1", "tunnelZoneId": "{zone}", "managementPort": 0}, 400, "managementPort"),
    ({"managementIp": "10.1.1.1", "tunnelZoneId": "{zone}", "managementPort": "6632"}, 400, "managementPort"),
    ({"managementIp": "10.9.0.1", "tunnelZoneId": "{zone}"}, 409, None),   # taken by the fixture's VTEP
])
def test_bad_vteps_change_nothing(api: Api, admin: httpx.Client, body: dict[str, object], status: int,
                                  prop: str | None) -> None:
    _vtep(admin, "10.9.0.1")
    ids = {"zone": _zone(admin), "vxlan_zone": _zone(admin, "vxlan")}
    body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    before = snapshot(api.store)
    rejected(api, admin.post("/vteps", json=body), before, status, prop)


def test_bad_bindings_change_nothing(api: Api, admin: httpx.Client) -> None:
    vtep = _vtep(admin)
    bridge = _id(admin.post("/bridges", json={"name": "b", "tenantId": "tenant-a"}))
    before = snapshot(api.store)
    url = f"/vteps/{vtep}/bindings"
    rejected(api, admin.post(url, json={"vlanId": 1, "networkId": bridge}), before, 400, "portName")
    rejected(api, admin.post(url, json={"portName": "", "networkId": bridge}), before, 400, "portName")
    rejected(api, admin.post(url, json={"portName": "eth0"}), before, 400, "networkId")
    rejected(api, admin.post(url, json={"portName": "eth0", "networkId": "b"}), before, 400, "networkId")
    rejected(api, admin.post(url, json={"portName": "eth0", "networkId": bridge, "vlanId": 4096}), before, 400,
             "vlanId")
    rejected(api, admin.post(url, json={"portName": "eth0", "networkId": bridge, "vlanId": "1"}), before, 400,
             "vlanId")
    rejected(api, admin.post(url, json={"portName": "eth0", "networkId": MISSING}), before, 404)
    rejected(api, admin.post(f"/vteps/{MISSING}/bindings", json={"portName": "eth0", "networkId": bridge}),
             before, 404)
    for path in (f"/vteps/{MISSING}", f"/vteps/{MISSING}/bindings", f"/vteps/{MISSING}/ports",
                 f"/vteps/{vtep}/bindings/eth0/0", f"/vteps/{vtep}/bindings/eth0/x"):
        rejected(api, admin.get(path), before, 404)
    rejected(api, admin.delete(f"/vteps/{MISSING}"), before, 404)
    rejected(api, admin.delete(f"/vteps/{MISSING}/bindings/eth0/0"), before, 404)


def test_admin_only_writes(api: Api) -> None:
    with api.http("admin") as admin, api.http("alice") as alice, api.http("carol") as carol:
        vtep = _vtep(admin)
        zone = _zone(admin)
        bridge = _id(alice.post("/bridges", json={"name": "b", "tenantId": "tenant-a"}))
        assert admin.post(f"/vteps/{vtep}/bindings", json={"portName": "eth9", "networkId": bridge}) \
            .status_code == 201
        assert carol.get(f"/vteps/{vtep}").status_code == 200
        assert [v["id"] for v in alice.get("/vteps").json()] == [vtep]
        assert len(carol.get(f"/vteps/{vtep}/bindings").json()) == 1
        before = snapshot(api.store)
        for client in (alice, carol):
            rejected(api, client.post("/vteps", json={"managementIp": "10.2.2.2", "tunnelZoneId": zone}), before, 403)
            rejected(api, client.post(f"/vteps/{vtep}/bindings", json={"portName": "eth0", "networkId": bridge}),
                     before, 403)
            rejected(api, client.delete(f"/vteps/{vtep}/bindings/eth9/0"), before, 403)
            rejected(api, client.delete(f"/vteps/{vtep}"), before, 403)
