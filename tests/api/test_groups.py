"""Port groups (and their members) and IP address groups, through the real midonetclient and plain HTTP.

Every test runs against both store backends. Rejected requests are checked to leave the store unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MISSING = "2b7b2a4e-0000-4000-8000-000000000000"
PG = "application/vnd.org.midonet.PortGroup-v1+json"
PG_PORTS = "application/vnd.org.midonet.collection.PortGroupPort-v1+json"
ADDR = "application/vnd.org.midonet.IpAddrGroupAddr-v1+json"


def _id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def _bridge_port(client: httpx.Client, tenant: str) -> tuple[str, str]:
    bridge = _id(client.post("/bridges", json={"name": "b", "tenantId": tenant}))
    return bridge, _id(client.post(f"/bridges/{bridge}/ports", json={}))


# --- port groups ---------------------------------------------------------------------------------------

def test_port_group_crud_with_the_client(api: Api) -> None:
    mido = api.mido()
    pg = mido.add_port_group().name("uplinks").tenant_id("tenant-a").stateful(True).create()
    got = mido.get_port_group(pg.get_id())
    assert (got.get_name(), got.get_tenant_id(), got.is_stateful()) == ("uplinks", "tenant-a", True)
    assert got.get_uri().endswith(f"/port_groups/{pg.get_id()}")
    assert [p.get_id() for p in mido.get_port_groups()] == [pg.get_id()]
    got.name("renamed").stateful(False).update()
    got = mido.get_port_group(pg.get_id())
    assert (got.get_name(), got.is_stateful()) == ("renamed", False)
    mido.delete_port_group(pg.get_id())
    assert list(mido.get_port_groups()) == []


def test_port_group_members_with_the_client(api: Api, admin: httpx.Client) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    p1, p2 = bridge.add_port().create(), bridge.add_port().create()
    pg = mido.add_port_group().name("pg").tenant_id("tenant-a").create()
    for p in (p1, p2):
        member = pg.add_port_group_port().port_id(p.get_id()).create()
        assert (member.get_port_group_id(), member.get_port_id()) == (pg.get_id(), p.get_id())
    assert sorted(m.get_port_id() for m in pg.get_ports()) == sorted([p1.get_id(), p2.get_id()])
    groups = list(mido.get_port(p1.get_id()).get_port_groups())
    assert [(g.get_port_group_id(), g.get_port_id()) for g in groups] == [(pg.get_id(), p1.get_id())]
    assert admin.get(f"/ports/{p1.get_id()}").json()["portGroupIds"] == [pg.get_id()]

    r = admin.get(f"/port_groups/{pg.get_id()}/ports", headers={"Accept": PG_PORTS})
    assert r.headers["content-type"] == PG_PORTS
    one = admin.get(f"/port_groups/{pg.get_id()}/ports/{p2.get_id()}").json()
    assert one["portId"] == p2.get_id() and one["port"].endswith(f"/ports/{p2.get_id()}")

    # Remove one member through its DTO's uri; deleting the other port drops it from the group.
    next(m for m in pg.get_ports() if m.get_port_id() == p1.get_id()).delete()
    assert admin.get(f"/ports/{p1.get_id()}").json()["portGroupIds"] == []
    mido.delete_port(p2.get_id())
    assert list(pg.get_ports()) == []
    # Deleting the group clears the memberships of its ports.
    pg.add_port_group_port().port_id(p1.get_id()).create()
    mido.delete_port_group(pg.get_id())
    assert admin.get(f"/ports/{p1.get_id()}").json()["portGroupIds"] == []


def test_port_group_member_errors(api: Api, admin: httpx.Client) -> None:
    _, port = _bridge_port(admin, "tenant-a")
    pg = _id(admin.post("/port_groups", json={"name": "pg", "tenantId": "tenant-a"}))
    assert admin.post(f"/port_groups/{pg}/ports", json={"portId": port}).status_code == 201
    before = snapshot(api.store)
    rejected(api, admin.post(f"/port_groups/{pg}/ports", json={"portId": port}), before, 409)
    rejected(api, admin.post(f"/port_groups/{pg}/ports", json={}), before, 400, "portId")
    rejected(api, admin.post(f"/port_groups/{pg}/ports", json={"portId": "nope"}), before, 400, "portId")
    rejected(api, admin.post(f"/port_groups/{pg}/ports", json={"portId": MISSING}), before, 404)
    rejected(api, admin.post(f"/port_groups/{MISSING}/ports", json={"portId": port}), before, 404)
    rejected(api, admin.get(f"/port_groups/{pg}/ports/{MISSING}"), before, 404)
    rejected(api, admin.delete(f"/port_groups/{pg}/ports/{MISSING}"), before, 404)
    rejected(api, admin.delete(f"/port_groups/{pg}/ports/not-a-uuid"), before, 404)
    rejected(api, admin.get(f"/ports/{MISSING}/port_groups"), before, 404)
    rejected(api, admin.post("/port_groups", json={"stateful": "yes"}), before, 400, "stateful")
    rejected(api, admin.post("/port_groups", json={"name": "x" * 256}), before, 400, "name")
    rejected(api, admin.post("/port_groups", json={"name": 3}), before, 400, "name")
    rejected(api, admin.put(f"/port_groups/{pg}", json={"stateful": 1}), before, 400, "stateful")


def test_port_group_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol:
        _, a_port = _bridge_port(alice, "tenant-a")
        _, b_port = _bridge_port(bob, "tenant-b")
        pg = _id(alice.post("/port_groups", json={"name": "pg", "tenantId": "tenant-a"}))
        assert alice.post("/port_groups", json={"name": "x", "tenantId": "tenant-b"}).status_code == 403
        assert [g["id"] for g in alice.get("/port_groups").json()] == [pg]
        assert bob.get("/port_groups").json() == []
        assert bob.get(f"/port_groups/{pg}").status_code == 403
        assert bob.put(f"/port_groups/{pg}", json={"name": "mine"}).status_code == 403
        assert bob.delete(f"/port_groups/{pg}").status_code == 403
        # Membership needs write rights on both the group and the port.
        assert bob.post(f"/port_groups/{pg}/ports", json={"portId": b_port}).status_code == 403
        assert alice.post(f"/port_groups/{pg}/ports", json={"portId": b_port}).status_code == 403
        assert alice.post(f"/port_groups/{pg}/ports", json={"portId": a_port}).status_code == 201
        assert bob.get(f"/port_groups/{pg}/ports").status_code == 403
        assert bob.get(f"/ports/{a_port}/port_groups").status_code == 403
        assert bob.delete(f"/port_groups/{pg}/ports/{a_port}").status_code == 403
        # A tenant user reads but does not write.
        assert [m["portId"] for m in carol.get(f"/port_groups/{pg}/ports").json()] == [a_port]
        assert carol.get(f"/port_groups/{pg}").json()["name"] == "pg"
        assert carol.delete(f"/port_groups/{pg}/ports/{a_port}").status_code == 403
        assert carol.put(f"/port_groups/{pg}", json={"name": "z"}).status_code == 403
        assert alice.get(f"/port_groups/{pg}", headers={"Accept": PG}).json()["name"] == "pg"


# --- IP address groups ---------------------------------------------------------------------------------

def test_ip_addr_group_with_the_client(api: Api, admin: httpx.Client) -> None:
    mido = api.mido()
    group = mido.add_ip_addr_group().name("web").create()
    assert mido.get_ip_addr_group(group.get_id()).get_name() == "web"
    v4 = group.add_ipv4_addr().addr("10.0.0.1").create()
    v6 = group.add_ipv6_addr().addr("2001:DB8::1").create()
    assert (v4.get_addr(), v4.get_version(), v4.get_ip_addr_group_id()) == ("10.0.0.1", 4, group.get_id())
    assert (v6.get_addr(), v6.get_version()) == ("2001:db8::1", 6)
    assert sorted(a.get_addr() for a in group.get_addrs()) == ["10.0.0.1", "2001:db8::1"]
    r = admin.get(f"/ip_addr_groups/{group.get_id()}/versions/6/ip_addrs/2001:db8::1", headers={"Accept": ADDR})
    assert r.status_code == 200 and r.json()["addr"] == "2001:db8::1"
    assert r.headers["content-type"] == ADDR
    for addr in group.get_addrs():
        addr.delete()
    assert list(group.get_addrs()) == []
    group.add_ipv4_addr().addr("10.0.0.2").create()
    assert [g.get_id() for g in mido.get_ip_addr_groups()] == [group.get_id()]
    mido.delete_ip_addr_group(group.get_id())
    assert list(mido.get_ip_addr_groups()) == []


def test_ip_addr_group_rename_and_errors(api: Api, admin: httpx.Client) -> None:
    group = _id(admin.post("/ip_addr_groups", json={"name": "g", "tenantId": "tenant-a"}))
    assert admin.put(f"/ip_addr_groups/{group}", json={"name": "h", "tenantId": "tenant-b"}).status_code == 204
    dto = admin.get(f"/ip_addr_groups/{group}").json()
    assert (dto["name"], dto["tenantId"]) == ("h", "tenant-a")
    assert dto["addrs"].endswith(f"/ip_addr_groups/{group}/ip_addrs")
    assert admin.post(f"/ip_addr_groups/{group}/ip_addrs", json={"addr": "10.0.0.1", "version": 4}).status_code == 201
    before = snapshot(api.store)
    addrs = f"/ip_addr_groups/{group}/ip_addrs"
    rejected(api, admin.post(addrs, json={"addr": "10.0.0.1", "version": 4}), before, 409)
    rejected(api, admin.post(addrs, json={"addr": "10.0.0.300", "version": 4}), before, 400, "addr")
    rejected(api, admin.post(addrs, json={"version": 4}), before, 400, "addr")
    rejected(api, admin.post(addrs, json={"addr": "10.0.0.2", "version": 6}), before, 400, "addr")
    rejected(api, admin.post(addrs, json={"addr": "10.0.0.2", "version": 5}), before, 400, "version")
    rejected(api, admin.post(f"/ip_addr_groups/{MISSING}/ip_addrs", json={"addr": "10.0.0.2"}), before, 404)
    rejected(api, admin.get(f"/ip_addr_groups/{group}/versions/4/ip_addrs/10.0.0.9"), before, 404)
    rejected(api, admin.get(f"/ip_addr_groups/{group}/versions/6/ip_addrs/10.0.0.1"), before, 404)
    rejected(api, admin.delete(f"/ip_addr_groups/{group}/versions/4/ip_addrs/10.0.0.9"), before, 404)
    rejected(api, admin.delete(f"/ip_addr_groups/{group}/versions/4/ip_addrs/junk"), before, 404)
    rejected(api, admin.post("/ip_addr_groups", json={}), before, 400, "name")
    rejected(api, admin.post("/ip_addr_groups", json={"name": ""}), before, 400, "name")
    rejected(api, admin.put(f"/ip_addr_groups/{group}", json={"name": None}), before, 400, "name")
    rejected(api, admin.get(f"/ip_addr_groups/{MISSING}"), before, 404)


def test_ip_addr_group_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol:
        group = _id(alice.post("/ip_addr_groups", json={"name": "g", "tenantId": "tenant-a"}))
        addrs = f"/ip_addr_groups/{group}/ip_addrs"
        assert alice.post(addrs, json={"addr": "10.0.0.1", "version": 4}).status_code == 201
        assert bob.get("/ip_addr_groups").json() == []
        assert bob.get(addrs).status_code == 403
        assert bob.post(addrs, json={"addr": "10.0.0.2", "version": 4}).status_code == 403
        assert bob.delete(f"/ip_addr_groups/{group}/versions/4/ip_addrs/10.0.0.1").status_code == 403
        assert [a["addr"] for a in carol.get(addrs).json()] == ["10.0.0.1"]
        assert carol.post(addrs, json={"addr": "10.0.0.2", "version": 4}).status_code == 403
        assert alice.post("/ip_addr_groups", json={"name": "x", "tenantId": "tenant-b"}).status_code == 403


def test_adding_addresses_concurrently_loses_none(api: Api, admin: httpx.Client) -> None:
    """Each addition is an UpdateWith on the stored group: parallel POSTs all land."""
    from concurrent.futures import ThreadPoolExecutor

    group = _id(admin.post("/ip_addr_groups", json={"name": "g"}))
    token = admin.headers["X-Auth-Token"]

    def add(i: int) -> int:
        with httpx.Client(base_url=api.url, headers={"X-Auth-Token": token}, timeout=30) as c:
            return c.post(f"/ip_addr_groups/{group}/ip_addrs", json={"addr": f"10.1.0.{i}", "version": 4}).status_code
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(add, range(1, 17))) == {201}
    got: list[Any] = admin.get(f"/ip_addr_groups/{group}/ip_addrs").json()
    assert sorted(a["addr"] for a in got) == sorted(f"10.1.0.{i}" for i in range(1, 17))
