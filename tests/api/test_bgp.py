"""BGP peers and networks under routers (spec 7.3 BgpPeer-v1 / BgpNetwork-v1, 6), over HTTP and the real
midonetclient, on both store backends.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _router(client: httpx.Client, tenant: str = "tenant-a") -> str:
    return _id(client.post("/routers", json={"name": "r", "tenantId": tenant}))


def test_peers_and_networks_over_http(api: Api, admin: httpx.Client) -> None:
    router = _router(admin)
    assert admin.put(f"/routers/{router}", json={"asNumber": 64512}).status_code == 204
    body = admin.get(f"/routers/{router}").json()
    assert body["asNumber"] == 64512 and body["bgpPeers"].endswith(f"/routers/{router}/bgp_peers")

    peer = _id(admin.post(f"/routers/{router}/bgp_peers", json={
        "asNumber": 64513, "address": "30.0.0.2", "keepAlive": 10, "holdTime": 30, "connectRetry": 15,
        "password": "s3cret"}))
    r = admin.get(f"/bgp_peers/{peer}")
    assert r.headers["content-type"] == "application/vnd.org.midonet.BgpPeer-v1+json"
    p = r.json()
    assert (p["asNumber"], p["address"], p["keepAlive"], p["holdTime"], p["connectRetry"], p["password"],
            p["routerId"]) == (64513, "30.0.0.2", 10, 30, 15, "s3cret", router)
    assert admin.put(f"/bgp_peers/{peer}", json={"holdTime": 90, "routerId": MISSING}).status_code == 204
    p = admin.get(f"/bgp_peers/{peer}").json()
    assert (p["holdTime"], p["routerId"]) == (90, router)   # routerId is fixed at creation

    net = _id(admin.post(f"/routers/{router}/bgp_networks", json={"subnetAddress": "10.0.0.0", "subnetLength": 24}))
    n = admin.get(f"/bgp_networks/{net}").json()
    assert (n["subnetAddress"], n["subnetLength"], n["routerId"]) == ("10.0.0.0", 24, router)
    assert [x["id"] for x in admin.get(f"/routers/{router}/bgp_peers").json()] == [peer]
    assert [x["id"] for x in admin.get(f"/routers/{router}/bgp_networks").json()] == [net]

    assert admin.delete(f"/bgp_peers/{peer}").status_code == 204
    assert admin.get(f"/routers/{router}/bgp_peers").json() == []
    assert admin.delete(f"/bgp_networks/{net}").status_code == 204
    assert admin.get(f"/bgp_networks/{net}").status_code == 404
    # BGP networks are not updated in place (the original has no PUT).
    assert admin.put(f"/bgp_networks/{net}", json={}).status_code == 405


def test_deleting_the_router_cascades(api: Api, admin: httpx.Client) -> None:
    router = _router(admin)
    peer = _id(admin.post(f"/routers/{router}/bgp_peers", json={"asNumber": 1, "address": "1.1.1.1"}))
    net = _id(admin.post(f"/routers/{router}/bgp_networks", json={"subnetAddress": "10.1.0.0", "subnetLength": 16}))
    assert admin.delete(f"/routers/{router}").status_code == 204
    assert admin.get(f"/bgp_peers/{peer}").status_code == 404
    assert admin.get(f"/bgp_networks/{net}").status_code == 404


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    router = mido.add_router().name("r").tenant_id("tenant-a").create()
    router.asn(64512).update()
    assert mido.get_router(router.get_id()).get_asn() == 64512
    peer = router.add_bgp_peer().asn(64513).address("30.0.0.2").keep_alive(20).hold_time(60) \
        .connect_retry(30).create()
    assert (peer.get_asn(), peer.get_address(), peer.get_keep_alive(), peer.get_hold_time(),
            peer.get_connect_retry()) == (64513, "30.0.0.2", 20, 60, 30)
    net = router.add_bgp_network().subnet_address("10.0.0.0").subnet_length(24).create()
    assert (net.get_subnet_address(), net.get_subnet_length()) == ("10.0.0.0", 24)
    assert [p.get_id() for p in router.get_bgp_peers()] == [peer.get_id()]
    assert [n.get_id() for n in router.get_bgp_networks()] == [net.get_id()]
    assert mido.get_bgp_peer(peer.get_id()).get_address() == "30.0.0.2"
    assert mido.get_bgp_network(net.get_id()).get_subnet_length() == 24

    peer.password("pw").update()
    assert mido.get_bgp_peer(peer.get_id()).get_password() == "pw"
    mido.delete_bgp_peer(peer.get_id())
    mido.delete_bgp_network(net.get_id())
    assert list(router.get_bgp_peers()) == [] and list(router.get_bgp_networks()) == []


@pytest.mark.parametrize(("segment", "body", "prop"), [
    ("bgp_peers", {"address": "30.0.0.2"}, "asNumber"),
    ("bgp_peers", {"asNumber": 0, "address": "30.0.0.2"}, "asNumber"),
    ("bgp_peers", {"asNumber": "65000", "address": "30.0.0.2"}, "asNumber"),
    ("bgp_peers", {"asNumber": 65000}, "address"),
    ("bgp_peers", {"asNumber": 65000, "address": "30.0.0.256"}, "address"),
    ("bgp_peers", {"asNumber": 65000, "address": "30.0.0.2", "keepAlive": 4}, "keepAlive"),
    ("bgp_peers", {"asNumber": 65000, "address": "30.0.0.2", "holdTime": 7201}, "holdTime"),
    ("bgp_peers", {"asNumber": 65000, "address": "30.0.0.2", "connectRetry": "10"}, "connectRetry"),
    ("bgp_peers", {"asNumber": 65000, "address": "30.0.0.2", "password": 5}, "password"),
    ("bgp_networks", {"subnetLength": 24}, "subnetAddress"),
    ("bgp_networks", {"subnetAddress": "10.0.0.0"}, "subnetLength"),
    ("bgp_networks", {"subnetAddress": "10.0.0.0", "subnetLength": 33}, "subnetAddress"),
    ("bgp_networks", {"subnetAddress": "10.0.0.0", "subnetLength": "24"}, "subnetLength"),
    ("bgp_networks", {"subnetAddress": "ten", "subnetLength": 24}, "subnetAddress"),
])
def test_bad_input_changes_nothing(api: Api, admin: httpx.Client, segment: str, body: dict[str, Any],
                                   prop: str) -> None:
    router = _router(admin)
    before = snapshot(api.store)
    rejected(api, admin.post(f"/routers/{router}/{segment}", json=body), before, 400, prop)


def test_conflicts_and_unknown_ids(api: Api, admin: httpx.Client) -> None:
    router = _router(admin)
    peer = _id(admin.post(f"/routers/{router}/bgp_peers", json={"asNumber": 2, "address": "30.0.0.2"}))
    other = _id(admin.post(f"/routers/{router}/bgp_peers", json={"asNumber": 3, "address": "30.0.0.3"}))
    _id(admin.post(f"/routers/{router}/bgp_networks", json={"subnetAddress": "10.0.0.0", "subnetLength": 24}))
    before = snapshot(api.store)
    rejected(api, admin.post(f"/routers/{router}/bgp_peers", json={"asNumber": 9, "address": "30.0.0.2"}),
             before, 409)
    rejected(api, admin.put(f"/bgp_peers/{other}", json={"address": "30.0.0.2"}), before, 409)
    rejected(api, admin.post(f"/routers/{router}/bgp_networks", json={"subnetAddress": "10.0.0.0",
                                                                      "subnetLength": 24}), before, 409)
    rejected(api, admin.put(f"/bgp_peers/{peer}", json={"keepAlive": 0}), before, 400, "keepAlive")
    for path in (f"/bgp_peers/{MISSING}", f"/bgp_networks/{MISSING}", "/bgp_peers/nope"):
        rejected(api, admin.get(path), before, 404)
        rejected(api, admin.delete(path), before, 404)
    rejected(api, admin.put(f"/bgp_peers/{MISSING}", json={}), before, 404)
    rejected(api, admin.get(f"/routers/{MISSING}/bgp_peers"), before, 404)
    rejected(api, admin.post(f"/routers/{MISSING}/bgp_networks", json={"subnetAddress": "10.9.0.0",
                                                                       "subnetLength": 16}), before, 404)
    # A second router may peer with the same address.
    router2 = _router(admin)
    assert admin.post(f"/routers/{router2}/bgp_peers", json={"asNumber": 9, "address": "30.0.0.2"}).status_code == 201


def test_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol:
        router = _router(alice, "tenant-a")
        peer = _id(alice.post(f"/routers/{router}/bgp_peers", json={"asNumber": 5, "address": "1.1.1.1"}))
        net = _id(alice.post(f"/routers/{router}/bgp_networks", json={"subnetAddress": "10.0.0.0",
                                                                       "subnetLength": 8}))
        assert carol.get(f"/bgp_peers/{peer}").status_code == 200
        assert len(carol.get(f"/routers/{router}/bgp_networks").json()) == 1
        assert bob.get(f"/bgp_peers/{peer}").status_code == 403
        assert bob.get(f"/bgp_networks/{net}").status_code == 403
        assert bob.get(f"/routers/{router}/bgp_peers").status_code == 403
        before = snapshot(api.store)
        for client in (bob, carol):
            rejected(api, client.post(f"/routers/{router}/bgp_peers", json={"asNumber": 5, "address": "2.2.2.2"}),
                     before, 403)
            rejected(api, client.put(f"/bgp_peers/{peer}", json={"holdTime": 60}), before, 403)
            rejected(api, client.delete(f"/bgp_peers/{peer}"), before, 403)
            rejected(api, client.delete(f"/bgp_networks/{net}"), before, 403)
