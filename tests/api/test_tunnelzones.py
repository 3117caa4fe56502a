"""Tunnel zones and their member hosts, through the real midonetclient and plain HTTP, on both backends."""

from __future__ import annotations

import httpx
import pytest

from midonet.topology.hosts import Host
from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

HOST_A = "7d1c0b38-3333-4d5b-9b0a-00000000000a"
HOST_B = "7d1c0b38-3333-4d5b-9b0a-00000000000b"
MISSING = "2b7b2a4e-0000-4000-8000-000000000000"
GRE_HOSTS = "application/vnd.org.midonet.collection.GreTunnelZoneHost-v1+json"
TZ_HOSTS = "application/vnd.org.midonet.collection.TunnelZoneHost-v1+json"


def _id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


@pytest.fixture
def hosts(admin: httpx.Client) -> tuple[str, str]:
    for host_id, name in ((HOST_A, "host-a"), (HOST_B, "host-b")):
        assert admin.post("/hosts", json={"id": host_id, "name": name}).status_code == 201
    return HOST_A, HOST_B


def test_tunnel_zone_crud_with_the_client(api: Api, hosts: tuple[str, str]) -> None:
    mido = api.mido()
    vxlan = mido.add_vxlan_tunnel_zone().name("overlay").create()
    gre = mido.add_gre_tunnel_zone().name("legacy").create()
    vtep = mido.add_vtep_tunnel_zone().name("vteps").create()
    assert [(z.get_name(), z.get_type()) for z in (vxlan, gre, vtep)] == [
        ("overlay", "vxlan"), ("legacy", "gre"), ("vteps", "vtep")]
    assert sorted(z.get_id() for z in mido.get_tunnel_zones()) == sorted(z.get_id() for z in (vxlan, gre, vtep))
    got = mido.get_tunnel_zone(vxlan.get_id())
    got.name("underlay").update()
    assert mido.get_tunnel_zone(vxlan.get_id()).get_name() == "underlay"
    vtep.delete()
    assert sorted(z.get_id() for z in mido.get_tunnel_zones()) == sorted([vxlan.get_id(), gre.get_id()])


def test_members_with_the_client(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    mido = api.mido()
    zones = (mido.add_vxlan_tunnel_zone().name("vx").create(), mido.add_gre_tunnel_zone().name("gre").create())
    for zone in zones:
        a = zone.add_tunnel_zone_host().host_id(HOST_A).ip_address("192.168.0.1").create()
        assert (a.get_tunnel_zone_id(), a.get_host_id(), a.get_ip_address()) == (zone.get_id(), HOST_A, "192.168.0.1")
        zone.add_tunnel_zone_host().host_id(HOST_B).ip_address("fd00::2").create()
        zone = mido.get_tunnel_zone(zone.get_id())
        assert sorted((h.get_host_id(), h.get_ip_address()) for h in zone.get_hosts()) == [
            (HOST_A, "192.168.0.1"), (HOST_B, "fd00::2")]
        one = admin.get(f"/tunnel_zones/{zone.get_id()}/hosts/{HOST_B}").json()
        assert (one["ipAddress"], one["tunnelZoneId"]) == ("fd00::2", zone.get_id())
        assert one["uri"].endswith(f"/tunnel_zones/{zone.get_id()}/hosts/{HOST_B}")
        assert zone.get_id() in api.store.get(Host, HOST_A).tunnel_zone_ids
        next(h for h in zone.get_hosts() if h.get_host_id() == HOST_A).delete()
        assert [h.get_host_id() for h in zone.get_hosts()] == [HOST_B]
        assert zone.get_id() not in api.store.get(Host, HOST_A).tunnel_zone_ids
    r = admin.get(f"/tunnel_zones/{zone.get_id()}/hosts", headers={"Accept": GRE_HOSTS})
    # Either name of the member type is accepted; the answer is in the name asked for.
    assert r.status_code == 200 and r.headers["content-type"] == GRE_HOSTS
    r = admin.get(f"/tunnel_zones/{zone.get_id()}/hosts", headers={"Accept": TZ_HOSTS})
    assert r.status_code == 200 and r.headers["content-type"] == TZ_HOSTS
    # Deleting a zone takes it off its members.
    assert api.store.get(Host, HOST_B).tunnel_zone_ids == tuple(z.get_id() for z in zones)
    zone.delete()
    assert api.store.get(Host, HOST_B).tunnel_zone_ids == (zones[0].get_id(),)


def test_member_conflicts_and_bad_input(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    zone = _id(admin.post("/tunnel_zones", json={"name": "tz", "type": "vxlan"}))
    members = f"/tunnel_zones/{zone}/hosts"
    assert admin.post(members, json={"hostId": HOST_A, "ipAddress": "10.0.0.1"}).status_code == 201
    before = snapshot(api.store)
    rejected(api, admin.post(members, json={"hostId": HOST_A, "ipAddress": "10.0.0.9"}), before, 409)
    rejected(api, admin.post(members, json={"hostId": MISSING, "ipAddress": "10.0.0.2"}), before, 404)
    rejected(api, admin.post(f"/tunnel_zones/{MISSING}/hosts", json={"hostId": HOST_B, "ipAddress": "10.0.0.2"}),
             before, 404)
    rejected(api, admin.post(members, json={"ipAddress": "10.0.0.2"}), before, 400, "hostId")
    rejected(api, admin.post(members, json={"hostId": "b", "ipAddress": "10.0.0.2"}), before, 400, "hostId")
    rejected(api, admin.post(members, json={"hostId": HOST_B}), before, 400, "ipAddress")
    rejected(api, admin.post(members, json={"hostId": HOST_B, "ipAddress": "10.0.0"}), before, 400, "ipAddress")
    rejected(api, admin.get(f"{members}/{HOST_B}"), before, 404)
    rejected(api, admin.delete(f"{members}/{HOST_B}"), before, 404)
    rejected(api, admin.delete(f"{members}/junk"), before, 404)
    rejected(api, admin.post("/tunnel_zones", json={"type": "vxlan"}), before, 400, "name")
    rejected(api, admin.post("/tunnel_zones", json={"name": "", "type": "vxlan"}), before, 400, "name")
    rejected(api, admin.post("/tunnel_zones", json={"name": "x"}), before, 400, "type")
    rejected(api, admin.post("/tunnel_zones", json={"name": "x", "type": "capwap"}), before, 400, "type")
    rejected(api, admin.put(f"/tunnel_zones/{zone}", json={"type": "ipip"}), before, 400, "type")
    rejected(api, admin.get(f"/tunnel_zones/{MISSING}"), before, 404)
    rejected(api, admin.delete(f"/tunnel_zones/{MISSING}"), before, 404)


def test_put_keeps_the_members(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    zone = _id(admin.post("/tunnel_zones", json={"name": "tz", "type": "gre"}))
    assert admin.post(f"/tunnel_zones/{zone}/hosts", json={"hostId": HOST_A, "ipAddress": "10.0.0.1"}).status_code \
        == 201
    assert admin.put(f"/tunnel_zones/{zone}", json={"name": "tz2", "type": "VXLAN"}).status_code == 204
    dto = admin.get(f"/tunnel_zones/{zone}").json()
    assert (dto["name"], dto["type"]) == ("tz2", "vxlan")
    assert [h["hostId"] for h in admin.get(f"/tunnel_zones/{zone}/hosts").json()] == [HOST_A]


def test_tunnel_zones_are_admin_only(api: Api, admin: httpx.Client, hosts: tuple[str, str]) -> None:
    zone = _id(admin.post("/tunnel_zones", json={"name": "tz", "type": "vxlan"}))
    assert admin.post(f"/tunnel_zones/{zone}/hosts", json={"hostId": HOST_A, "ipAddress": "10.0.0.1"}).status_code \
        == 201
    for user in ("alice", "carol"):
        with api.http(user) as c:
            before = snapshot(api.store)
            for r in (c.get("/tunnel_zones"), c.get(f"/tunnel_zones/{zone}"),
                      c.post("/tunnel_zones", json={"name": "mine", "type": "vxlan"}),
                      c.put(f"/tunnel_zones/{zone}", json={"name": "mine", "type": "vxlan"}),
                      c.delete(f"/tunnel_zones/{zone}"), c.get(f"/tunnel_zones/{zone}/hosts"),
                      c.get(f"/tunnel_zones/{zone}/hosts/{HOST_A}"),
                      c.post(f"/tunnel_zones/{zone}/hosts", json={"hostId": HOST_B, "ipAddress": "10.0.0.2"}),
                      c.delete(f"/tunnel_zones/{zone}/hosts/{HOST_A}")):
                rejected(api, r, before, 403)
