"""Tenant isolation: a tenant sees and changes only its own tenant's objects; a tenant user only reads."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api


def _bridge(client: httpx.Client, tenant: str, name: str = "b") -> str:
    r = client.post("/bridges", json={"name": name, "tenantId": tenant})
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def test_tenant_admin_sees_only_its_tenant(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob:
        a = _bridge(alice, "tenant-a")
        b = _bridge(bob, "tenant-b")
        assert [x["id"] for x in alice.get("/bridges").json()] == [a]
        assert [x["id"] for x in bob.get("/bridges").json()] == [b]
        assert alice.get(f"/bridges/{b}").status_code == 403
        assert alice.put(f"/bridges/{b}", json={"name": "mine now"}).status_code == 403
        assert alice.delete(f"/bridges/{b}").status_code == 403
        assert alice.post(f"/bridges/{b}/ports", json={}).status_code == 403
        assert [t["id"] for t in alice.get("/tenants").json()] == ["tenant-a"]
        assert alice.get("/tenants/tenant-b").status_code == 403
    with api.http("admin") as admin:
        assert admin.get(f"/bridges/{b}").json()["name"] == "b"


def test_tenant_admin_cannot_create_in_another_tenant(api: Api) -> None:
    with api.http("alice") as alice:
        r = alice.post("/bridges", json={"name": "x", "tenantId": "tenant-b"})
        assert r.status_code == 403
        r = alice.post("/routers", json={"name": "x"})   # no tenant: only an admin may
        assert r.status_code == 403
    with api.http("admin") as admin:
        assert admin.get("/bridges").json() == []


def test_ports_routes_and_rules_follow_their_device(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob:
        router = alice.post("/routers", json={"name": "r", "tenantId": "tenant-a"}).headers["location"]
        port = alice.post(f"{router}/ports", json={"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0",
                                                   "networkLength": 24}).headers["location"]
        chain = alice.post("/chains", json={"name": "c", "tenantId": "tenant-a"}).headers["location"]
        rule = alice.post(f"{chain}/rules", json={"type": "drop"}).headers["location"]
        routes = alice.get(f"{router}/routes").json()
        assert len(routes) == 1
        for uri in (port, rule, routes[0]["uri"]):
            assert bob.get(uri).status_code == 403
            assert bob.delete(uri).status_code == 403
        assert bob.get("/ports").json() == []
        assert bob.put(port, json={"adminStateUp": False}).status_code == 403
        assert alice.get(port).json()["adminStateUp"] is True


def test_tenant_user_reads_but_cannot_write(api: Api) -> None:
    with api.http("alice") as alice, api.http("carol") as carol:
        a = _bridge(alice, "tenant-a")
        assert carol.get(f"/bridges/{a}").status_code == 200
        assert [x["id"] for x in carol.get("/bridges").json()] == [a]
        assert carol.put(f"/bridges/{a}", json={"name": "z"}).status_code == 403
        assert carol.delete(f"/bridges/{a}").status_code == 403
        assert carol.post("/bridges", json={"name": "z", "tenantId": "tenant-a"}).status_code == 403
        assert alice.get(f"/bridges/{a}").json()["name"] == "b"
