"""Load balancers, pools, pool members, VIPs and health monitors (spec 7.3, 3.8), over plain HTTP and the
real midonetclient, on both store backends.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _lb_topology(client: httpx.Client, tenant: str) -> dict[str, str]:
    """A router of `tenant` with a load balancer, one pool, one member and one VIP."""
    ids = {"router": _id(client.post("/routers", json={"name": "r", "tenantId": tenant}))}
    ids["lb"] = _id(client.post("/load_balancers", json={}))
    r = client.get(f"/routers/{ids['router']}")
    assert client.put(f"/routers/{ids['router']}", json=r.json() | {"loadBalancerId": ids["lb"]}).status_code == 204
    ids["pool"] = _id(client.post(f"/load_balancers/{ids['lb']}/pools", json={"lbMethod": "ROUND_ROBIN"}))
    ids["member"] = _id(client.post(f"/pools/{ids['pool']}/pool_members",
                                    json={"address": "10.0.0.10", "protocolPort": 80, "weight": 2}))
    ids["vip"] = _id(client.post(f"/pools/{ids['pool']}/vips",
                                 json={"address": "192.168.0.100", "protocolPort": 80}))
    return ids


def test_crud_over_http(api: Api, admin: httpx.Client) -> None:
    ids = _lb_topology(admin, "tenant-a")
    lb = admin.get(f"/load_balancers/{ids['lb']}")
    assert lb.headers["content-type"] == "application/vnd.org.midonet.LoadBalancer-v1+json"
    assert lb.json()["routerId"] == ids["router"]
    assert lb.json()["adminStateUp"] is True
    assert admin.get(f"/routers/{ids['router']}").json()["loadBalancerId"] == ids["lb"]

    pool = admin.get(f"/pools/{ids['pool']}").json()
    assert (pool["loadBalancerId"], pool["protocol"], pool["lbMethod"], pool["status"]) == (
        ids["lb"], "TCP", "ROUND_ROBIN", "ACTIVE")
    assert pool["healthMonitorId"] is None
    member = admin.get(f"/pool_members/{ids['member']}").json()
    assert (member["poolId"], member["address"], member["protocolPort"], member["weight"], member["status"]) == (
        ids["pool"], "10.0.0.10", 80, 2, "ACTIVE")
    vip = admin.get(f"/vips/{ids['vip']}").json()
    assert (vip["poolId"], vip["loadBalancerId"], vip["address"], vip["protocolPort"]) == (
        ids["pool"], ids["lb"], "192.168.0.100", 80)
    assert vip["sessionPersistence"] is None

    # Collections, top level and under their parents, with collection media types.
    r = admin.get("/pools", headers={"Accept": "application/vnd.org.midonet.collection.Pool-v1+json"})
    # (case-insensitive: media types are, and the negotiator answers in lower case)
    assert r.headers["content-type"].lower() == "application/vnd.org.midonet.collection.pool-v1+json"
    assert [p["id"] for p in r.json()] == [ids["pool"]]
    assert [p["id"] for p in admin.get(f"/load_balancers/{ids['lb']}/pools").json()] == [ids["pool"]]
    assert [v["id"] for v in admin.get(f"/load_balancers/{ids['lb']}/vips").json()] == [ids["vip"]]
    assert [v["id"] for v in admin.get(f"/pools/{ids['pool']}/vips").json()] == [ids["vip"]]
    assert [m["id"] for m in admin.get(f"/pools/{ids['pool']}/pool_members").json()] == [ids["member"]]
    assert [m["id"] for m in admin.get("/pool_members").json()] == [ids["member"]]
    assert [v["id"] for v in admin.get("/vips").json()] == [ids["vip"]]

    # A top-level VIP and member, naming their pool.
    vip2 = _id(admin.post("/vips", json={"poolId": ids["pool"], "address": "192.168.0.101", "protocolPort": 443,
                                         "sessionPersistence": "SOURCE_IP"}))
    assert admin.get(f"/vips/{vip2}").json()["sessionPersistence"] == "SOURCE_IP"
    # A VIP under the load balancer, naming one of its pools.
    vip3 = _id(admin.post(f"/load_balancers/{ids['lb']}/vips",
                          json={"poolId": ids["pool"], "address": "192.168.0.102", "protocolPort": 8080}))
    assert admin.get(f"/vips/{vip3}").json()["loadBalancerId"] == ids["lb"]

    # Updates merge; status stays the health monitor's.
    assert admin.put(f"/pool_members/{ids['member']}", json={"weight": 5, "adminStateUp": False}).status_code == 204
    member = admin.get(f"/pool_members/{ids['member']}").json()
    assert (member["weight"], member["adminStateUp"], member["address"]) == (5, False, "10.0.0.10")
    assert admin.put(f"/pools/{ids['pool']}", json={"status": "INACTIVE", "adminStateUp": False}).status_code == 204
    pool = admin.get(f"/pools/{ids['pool']}").json()
    assert (pool["status"], pool["adminStateUp"]) == ("ACTIVE", False)
    assert admin.put(f"/vips/{ids['vip']}", json={"sessionPersistence": "SOURCE_IP"}).status_code == 204
    assert admin.get(f"/vips/{ids['vip']}").json()["sessionPersistence"] == "SOURCE_IP"
    assert admin.put(f"/load_balancers/{ids['lb']}", json={"adminStateUp": False}).status_code == 204
    assert admin.get(f"/load_balancers/{ids['lb']}").json()["adminStateUp"] is False

    # Deleting a VIP and a member.
    assert admin.delete(f"/vips/{vip2}").status_code == 204
    assert admin.get(f"/vips/{vip2}").status_code == 404


def test_health_monitor_and_pools(api: Api, admin: httpx.Client) -> None:
    ids = _lb_topology(admin, "tenant-a")
    hm = _id(admin.post("/health_monitors", json={"type": "TCP", "delay": 2, "timeout": 3, "maxRetries": 4}))
    body = admin.get(f"/health_monitors/{hm}").json()
    assert (body["type"], body["delay"], body["timeout"], body["maxRetries"], body["adminStateUp"],
            body["status"]) == ("TCP", 2, 3, 4, True, "ACTIVE")
    assert admin.put(f"/pools/{ids['pool']}", json={"healthMonitorId": hm}).status_code == 204
    assert [p["id"] for p in admin.get(f"/health_monitors/{hm}/pools").json()] == [ids["pool"]]
    assert [p["id"] for p in admin.get("/pools", params={"hm_id": hm}).json()] == [ids["pool"]]
    assert admin.get(f"/pools/{ids['pool']}").json()["healthMonitor"].endswith(f"/health_monitors/{hm}")
    assert admin.put(f"/health_monitors/{hm}", json={"delay": 7}).status_code == 204
    assert admin.get(f"/health_monitors/{hm}").json()["delay"] == 7
    # Deleting the monitor clears the pool's reference.
    assert admin.delete(f"/health_monitors/{hm}").status_code == 204
    assert admin.get(f"/pools/{ids['pool']}").json()["healthMonitorId"] is None


def test_delete_cascades_and_router_is_protected(api: Api, admin: httpx.Client) -> None:
    ids = _lb_topology(admin, "tenant-a")
    before = snapshot(api.store)
    rejected(api, admin.delete(f"/routers/{ids['router']}"), before, 409)

    assert admin.delete(f"/pools/{ids['pool']}").status_code == 204
    assert admin.get(f"/pool_members/{ids['member']}").status_code == 404
    assert admin.get(f"/vips/{ids['vip']}").status_code == 404

    ids2 = _lb_topology(admin, "tenant-a")
    assert admin.delete(f"/load_balancers/{ids2['lb']}").status_code == 204
    for path in (f"/pools/{ids2['pool']}", f"/pool_members/{ids2['member']}", f"/vips/{ids2['vip']}"):
        assert admin.get(path).status_code == 404
    assert admin.get(f"/routers/{ids2['router']}").json()["loadBalancerId"] is None
    assert admin.delete(f"/routers/{ids2['router']}").status_code == 204


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    router = mido.add_router().name("r").tenant_id("tenant-a").create()
    lb = mido.add_load_balancer().create()
    router.load_balancer_id(lb.get_id()).update()
    assert mido.get_load_balancer(lb.get_id()).get_router_id() == router.get_id()
    assert mido.get_router(router.get_id()).get_load_balancer_id() == lb.get_id()

    hm = mido.add_health_monitor().type("TCP").delay(5).timeout(10).max_retries(3).create()
    pool = lb.add_pool().lb_method("ROUND_ROBIN").protocol("TCP").health_monitor_id(hm.get_id()).create()
    assert pool.get_load_balancer_id() == lb.get_id()
    assert pool.get_health_monitor_id() == hm.get_id()
    member = pool.add_pool_member().address("10.0.0.1").protocol_port(8080).weight(3).create()
    assert (member.get_pool_id(), member.get_address(), member.get_protocol_port(), member.get_weight(),
            member.get_status()) == (pool.get_id(), "10.0.0.1", 8080, 3, "ACTIVE")
    vip = pool.add_vip().address("172.16.0.1").protocol_port(80).session_persistence("SOURCE_IP").create()
    assert (vip.get_load_balancer_id(), vip.get_pool_id(), vip.get_session_persistence()) == (
        lb.get_id(), pool.get_id(), "SOURCE_IP")

    assert [p.get_id() for p in lb.get_pools()] == [pool.get_id()]
    assert [v.get_id() for v in lb.get_vips()] == [vip.get_id()]
    assert [v.get_id() for v in pool.get_vips()] == [vip.get_id()]
    assert [m.get_id() for m in pool.get_pool_members()] == [member.get_id()]
    assert [p.get_id() for p in hm.get_pools()] == [pool.get_id()]
    assert [x.get_id() for x in mido.get_load_balancers()] == [lb.get_id()]
    assert [x.get_id() for x in mido.get_pools()] == [pool.get_id()]
    assert [x.get_id() for x in mido.get_pool_members()] == [member.get_id()]
    assert [x.get_id() for x in mido.get_vips()] == [vip.get_id()]
    assert [x.get_id() for x in mido.get_health_monitors()] == [hm.get_id()]
    assert mido.get_pool(pool.get_id()).get_lb_method() == "ROUND_ROBIN"
    assert mido.get_vip(vip.get_id()).get_address() == "172.16.0.1"
    assert mido.get_health_monitor(hm.get_id()).get_max_retries() == 3

    member.weight(7).update()
    assert mido.get_pool_member(member.get_id()).get_weight() == 7
    hm.delay(9).update()
    assert mido.get_health_monitor(hm.get_id()).get_delay() == 9

    mido.delete_pool_member(member.get_id())
    assert list(pool.get_pool_members()) == []
    mido.delete_load_balancer(lb.get_id())
    assert list(mido.get_pools()) == [] and list(mido.get_vips()) == []
    mido.delete_health_monitor(hm.get_id())
    assert list(mido.get_health_monitors()) == []


@pytest.mark.parametrize(("path", "body", "status", "prop"), [
    ("/load_balancers", {"adminStateUp": "yes"}, 400, "adminStateUp"),
    ("/load_balancers", {"routerId": "{router}"}, 400, "routerId"),
    ("/pools", {"lbMethod": "ROUND_ROBIN"}, 400, "loadBalancerId"),
    ("/pools", {"loadBalancerId": "not-a-uuid"}, 400, "loadBalancerId"),
    ("/pools", {"loadBalancerId": "{lb}", "lbMethod": "LEAST_CONN"}, 400, "lbMethod"),
    ("/pools", {"loadBalancerId": "{lb}", "protocol": "UDP"}, 400, "protocol"),
    ("/pools", {"loadBalancerId": "{lb}", "healthMonitorId": 7}, 400, "healthMonitorId"),
    ("/pools", {"loadBalancerId": "00000000-0000-0000-0000-00000000abcd"}, 404, None),
    ("/pool_members", {"poolId": "{pool}", "address": "10.0.0.300", "protocolPort": 80}, 400, "address"),
    ("/pool_members", {"poolId": "{pool}", "protocolPort": 80}, 400, "address"),
    ("/pool_members", {"poolId": "{pool}", "address": "10.0.0.3", "protocolPort": 70000}, 400, "protocolPort"),
    ("/pool_members", {"poolId": "{pool}", "address": "10.0.0.3", "weight": 0}, 400, "weight"),
    ("/pool_members", {"address": "10.0.0.3"}, 400, "poolId"),
    ("/pool_members", {"poolId": "00000000-0000-0000-0000-00000000abcd", "address": "10.0.0.3"}, 404, None),
    ("/vips", {"poolId": "{pool}", "address": "1.2.3.4", "sessionPersistence": "COOKIE"}, 400,
     "sessionPersistence"),
    ("/vips", {"poolId": "{pool}", "address": "1.2.3"}, 400, "address"),
    ("/vips", {"poolId": "{pool}", "address": "1.2.3.4", "protocolPort": -1}, 400, "protocolPort"),
    ("/vips", {"address": "1.2.3.4"}, 400, "poolId"),
    ("/health_monitors", {"type": "HTTP"}, 400, "type"),
    ("/health_monitors", {"delay": 0}, 400, "delay"),
    ("/health_monitors", {"maxRetries": "3"}, 400, "maxRetries"),
])
def test_bad_input_changes_nothing(api: Api, admin: httpx.Client, path: str, body: dict[str, Any], status: int,
                                   prop: str | None) -> None:
    ids = _lb_topology(admin, "tenant-a")
    body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    before = snapshot(api.store)
    rejected(api, admin.post(path, json=body), before, status, prop)


def test_bad_updates_and_unknown_ids(api: Api, admin: httpx.Client) -> None:
    ids = _lb_topology(admin, "tenant-a")
    other = _lb_topology(admin, "tenant-a")
    before = snapshot(api.store)
    rejected(api, admin.put(f"/pool_members/{ids['member']}", json={"weight": -3}), before, 400, "weight")
    rejected(api, admin.put(f"/vips/{ids['vip']}", json={"address": "x"}), before, 400, "address")
    rejected(api, admin.put(f"/pools/{ids['pool']}", json={"healthMonitorId": "00000000-0000-0000-0000-00000000abcd"}),
             before, 404)
    # A VIP created under a load balancer must use one of its pools.
    rejected(api, admin.post(f"/load_balancers/{ids['lb']}/vips",
                             json={"poolId": other["pool"], "address": "1.1.1.1"}), before, 400, "poolId")
    # A load balancer is attached once: a second router cannot take it.
    r2 = _id(admin.post("/routers", json={"name": "r2", "tenantId": "tenant-a"}))
    before = snapshot(api.store)
    rejected(api, admin.put(f"/routers/{r2}", json={"loadBalancerId": ids["lb"]}), before, 409)
    missing = "00000000-0000-0000-0000-00000000abcd"
    for path in ("/load_balancers", "/pools", "/pool_members", "/vips", "/health_monitors"):
        rejected(api, admin.get(f"{path}/{missing}"), before, 404)
        rejected(api, admin.put(f"{path}/{missing}", json={}), before, 404)
        rejected(api, admin.delete(f"{path}/{missing}"), before, 404)
        rejected(api, admin.get(f"{path}/not-an-id"), before, 404)
    rejected(api, admin.get(f"/load_balancers/{missing}/pools"), before, 404)
    rejected(api, admin.post(f"/load_balancers/{missing}/pools", json={}), before, 404)
    rejected(api, admin.post(f"/pools/{missing}/pool_members", json={"address": "1.1.1.1"}), before, 404)


def test_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol, \
            api.http("admin") as admin:
        # An unattached load balancer is everyone's to see and any tenant admin's to change.
        lb = _id(alice.post("/load_balancers", json={}))
        assert bob.get(f"/load_balancers/{lb}").status_code == 200
        assert carol.post("/load_balancers", json={}).status_code == 403

        ids = _lb_topology(alice, "tenant-a")
        assert bob.get(f"/load_balancers/{ids['lb']}").status_code == 403
        assert [x["id"] for x in bob.get("/load_balancers").json()] == [lb]
        assert sorted(x["id"] for x in alice.get("/load_balancers").json()) == sorted([lb, ids["lb"]])
        assert [x["id"] for x in admin.get("/load_balancers", params={"tenant_id": "tenant-a"}).json()] == [ids["lb"]]
        for path in (f"/pools/{ids['pool']}", f"/pool_members/{ids['member']}", f"/vips/{ids['vip']}"):
            assert bob.get(path).status_code == 403
            assert carol.get(path).status_code == 200
            assert alice.get(path).status_code == 200
        for path in ("/pools", "/vips", "/pool_members"):
            assert bob.get(path).json() == []
        assert len(carol.get("/pools").json()) == 1

        before = snapshot(api.store)
        for client, status in ((bob, 403), (carol, 403)):
            rejected(api, client.post(f"/load_balancers/{ids['lb']}/pools", json={}), before, status)
            rejected(api, client.post("/pools", json={"loadBalancerId": ids["lb"]}), before, status)
            rejected(api, client.post(f"/pools/{ids['pool']}/pool_members", json={"address": "1.1.1.1"}),
                     before, status)
            rejected(api, client.put(f"/vips/{ids['vip']}", json={"protocolPort": 1}), before, status)
            rejected(api, client.delete(f"/pool_members/{ids['member']}"), before, status)
            rejected(api, client.delete(f"/load_balancers/{ids['lb']}"), before, status)
        # Bob cannot move his own pool into Alice's load balancer either.
        bob_lb = _id(bob.post("/load_balancers", json={}))
        bob_pool = _id(bob.post(f"/load_balancers/{bob_lb}/pools", json={}))
        before = snapshot(api.store)
        rejected(api, bob.put(f"/pools/{bob_pool}", json={"loadBalancerId": ids["lb"]}), before, 403)

        # Health monitors: everyone reads, only admins write.
        rejected(api, alice.post("/health_monitors", json={}), before, 403)
        hm = _id(admin.post("/health_monitors", json={}))
        assert bob.get(f"/health_monitors/{hm}").status_code == 200
        assert [h["id"] for h in carol.get("/health_monitors").json()] == [hm]
        before = snapshot(api.store)
        rejected(api, alice.put(f"/health_monitors/{hm}", json={"delay": 9}), before, 403)
        rejected(api, alice.delete(f"/health_monitors/{hm}"), before, 403)
        # ... but a tenant may use one on its pool.
        assert alice.put(f"/pools/{ids['pool']}", json={"healthMonitorId": hm}).status_code == 204
