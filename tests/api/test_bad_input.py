"""Bad input gets a 4xx with MidoNet's error body and changes nothing.

Each case snapshots the whole store, sends the bad request, checks the status and the body, and checks the
store is exactly as before.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api


@pytest.fixture
def base(admin: httpx.Client) -> dict[str, str]:
    """A bridge, a router with a port, a chain: something for bad requests to refer to."""
    ids = {}
    ids["bridge"] = admin.post("/bridges", json={"name": "b", "tenantId": "t"}).headers["location"].rsplit("/", 1)[1]
    ids["router"] = admin.post("/routers", json={"name": "r", "tenantId": "t"}).headers["location"].rsplit("/", 1)[1]
    r = admin.post(f"/routers/{ids['router']}/ports",
                   json={"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0", "networkLength": 24})
    ids["rport"] = r.headers["location"].rsplit("/", 1)[1]
    ids["bport"] = admin.post(f"/bridges/{ids['bridge']}/ports", json={}).headers["location"].rsplit("/", 1)[1]
    ids["chain"] = admin.post("/chains", json={"name": "c", "tenantId": "t"}).headers["location"].rsplit("/", 1)[1]
    return ids


def test_malformed_json(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    before = snapshot(api.store)
    r = admin.post("/bridges", content=b'{"name": "x",', headers={"Content-Type": "application/json"})
    rejected(api, r, before, 400)
    r = admin.put(f"/bridges/{base['bridge']}", content=b"[1, 2", headers={"Content-Type": "application/json"})
    rejected(api, r, before, 400)
    r = admin.post("/bridges", json=["not", "an", "object"])
    rejected(api, r, before, 400)


@pytest.mark.parametrize(("path", "body", "prop"), [
    ("/bridges", {"name": 5}, "name"),
    ("/bridges", {"adminStateUp": "yes"}, "adminStateUp"),
    ("/bridges", {"inboundFilterId": "not-a-uuid"}, "inboundFilterId"),
    ("/routers", {"asNumber": "x"}, "asNumber"),
    ("/chains", {"name": ["x"]}, "name"),
])
def test_wrong_types_name_the_property(api: Api, admin: httpx.Client, base: dict[str, str], path: str,
                                       body: dict[str, Any], prop: str) -> None:
    before = snapshot(api.store)
    rejected(api, admin.post(path, json=body), before, 400, prop)


def test_invalid_cidr_mac_and_port_range(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    before = snapshot(api.store)
    router = base["router"]
    r = admin.post(f"/routers/{router}/ports", json={"portAddress": "10.0.0.300", "networkAddress": "10.0.0.0",
                                                     "networkLength": 24})
    rejected(api, r, before, 400, "portAddress")
    r = admin.post(f"/routers/{router}/ports", json={"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0",
                                                     "networkLength": 33})
    rejected(api, r, before, 400, "networkAddress")
    r = admin.post(f"/routers/{router}/ports", json={"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0",
                                                     "networkLength": 24, "portMac": "zz:00:00:00:00:01"})
    rejected(api, r, before, 400, "portMac")
    r = admin.post(f"/routers/{router}/routes", json={"type": "Normal", "dstNetworkAddr": "10.1.0.0",
                                                      "dstNetworkLength": 40, "nextHopPort": base["rport"]})
    rejected(api, r, before, 400, "dstNetworkAddr")
    chain = base["chain"]
    r = admin.post(f"/chains/{chain}/rules", json={"type": "accept", "tpDst": {"start": 90, "end": 80}})
    rejected(api, r, before, 400, "tpDst")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "accept", "tpSrc": {"start": 1, "end": 70000}})
    rejected(api, r, before, 400, "tpSrc")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "drop", "dlSrc": "01:02:03"})
    rejected(api, r, before, 400, "dlSrc")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "accept", "nwSrcAddress": "1.2.3", "nwSrcLength": 8})
    rejected(api, r, before, 400, "nwSrcAddress")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "explode"})
    rejected(api, r, before, 400, "type")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "accept", "position": 5})
    rejected(api, r, before, 400, "position")
    r = admin.post(f"/chains/{chain}/rules", json={"type": "snat", "flowAction": "accept",
                                                   "natTargets": [{"addressFrom": "1.1.1.1", "addressTo": "1.1.1.1",
                                                                   "portFrom": 10, "portTo": 5}]})
    rejected(api, r, before, 400)


def test_unknown_ids(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    before = snapshot(api.store)
    missing = "2b7b2a4e-0000-4000-8000-000000000000"
    rejected(api, admin.get(f"/bridges/{missing}"), before, 404)
    rejected(api, admin.get("/bridges/not-even-a-uuid"), before, 404)
    rejected(api, admin.delete(f"/routers/{missing}"), before, 404)
    rejected(api, admin.post(f"/bridges/{missing}/ports", json={}), before, 404)
    rejected(api, admin.put(f"/bridges/{base['bridge']}", json={"inboundFilterId": missing}), before, 404)
    rejected(api, admin.post(f"/chains/{base['chain']}/rules", json={"type": "jump", "jumpChainId": missing}),
             before, 404)
    rejected(api, admin.post(f"/ports/{base['bport']}/link", json={"peerId": missing}), before, 404)
    rejected(api, admin.get("/no_such_collection"), before, 404)


def test_linking_already_linked_ports(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    assert admin.post(f"/ports/{base['rport']}/link", json={"peerId": base["bport"]}).status_code == 201
    other = admin.post(f"/bridges/{base['bridge']}/ports", json={}).headers["location"].rsplit("/", 1)[1]
    r2 = admin.post(f"/routers/{base['router']}/ports",
                    json={"portAddress": "10.0.1.1", "networkAddress": "10.0.1.0", "networkLength": 24})
    rport2 = r2.headers["location"].rsplit("/", 1)[1]
    before = snapshot(api.store)
    rejected(api, admin.post(f"/ports/{rport2}/link", json={"peerId": base["bport"]}), before, 409)
    rejected(api, admin.post(f"/ports/{base['rport']}/link", json={"peerId": other}), before, 409)
    rejected(api, admin.post(f"/ports/{other}/link", json={"peerId": base["bport"]}), before, 400)


def test_wrong_verbs(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    before = snapshot(api.store)
    rejected(api, admin.put(f"/chains/{base['chain']}", json={"name": "x"}), before, 405)
    rejected(api, admin.post("/tenants", json={"name": "x"}), before, 405)


def test_delete_refused_by_an_error_binding(api: Api, admin: httpx.Client, base: dict[str, str]) -> None:
    """Router.load_balancer_id is an ERROR binding: a router with a load balancer cannot be deleted."""
    from midonet.store.base import Create, Update
    from midonet.topology.devices import Router
    from midonet.topology.ids import new_id
    from midonet.topology.l4lb import LoadBalancer
    lb = LoadBalancer(id=new_id())
    api.store.multi([Create(lb)])
    router = api.store.get(Router, base["router"])
    api.store.multi([Update(router.replace(load_balancer_id=lb.id))])
    before = snapshot(api.store)
    rejected(api, admin.delete(f"/routers/{base['router']}"), before, 409)


def test_authentication_failures(api: Api) -> None:
    import base64
    bad = base64.b64encode(b"admin:wrong").decode()
    r = httpx.post(f"{api.url}/login", headers={"Authorization": f"Basic {bad}"})
    assert r.status_code == 401 and r.json()["code"] == 401
    assert "www-authenticate" in r.headers
    assert httpx.post(f"{api.url}/login").status_code == 401
    assert httpx.get(f"{api.url}/bridges").status_code == 401
    assert httpx.get(f"{api.url}/bridges", headers={"X-Auth-Token": "forged"}).status_code == 401
