"""Trace requests (spec 7.3 TraceRequest-v1, 3.14) over HTTP and the real midonetclient, on both store
backends: devices of every type, the nested condition, what PUT may change, cascades, bad input, tenancy.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _devices(client: httpx.Client, tenant: str) -> dict[str, str]:
    ids = {"BRIDGE": _id(client.post("/bridges", json={"name": "b", "tenantId": tenant})),
           "ROUTER": _id(client.post("/routers", json={"name": "r", "tenantId": tenant}))}
    ids["PORT"] = _id(client.post(f"/bridges/{ids['BRIDGE']}/ports", json={}))
    return ids


def test_crud_over_http(api: Api, admin: httpx.Client) -> None:
    devices = _devices(admin, "tenant-a")
    start = int(time.time() * 1000)
    traces = {}
    for kind, device in devices.items():
        traces[kind] = _id(admin.post("/traces", json={
            "name": f"t-{kind}", "deviceType": kind, "deviceId": device, "limit": 10,
            "condition": {"nwProto": 6, "tpDst": {"start": 22, "end": 22}, "nwDstAddress": "10.0.0.0",
                          "nwDstLength": 24}}))
        r = admin.get(f"/traces/{traces[kind]}")
        assert r.headers["content-type"] == "application/vnd.org.midonet.TraceRequest-v1+json"
        t = r.json()
        assert (t["name"], t["deviceType"], t["deviceId"], t["limit"], t["enabled"]) == (
            f"t-{kind}", kind, device, 10, False)
        cond = t["condition"]
        assert (cond["nwProto"], cond["tpDst"], cond["nwDstAddress"], cond["nwDstLength"]) == (
            6, {"start": 22, "end": 22}, "10.0.0.0", 24)
        assert start <= t["creationTimestampMs"] <= int(time.time() * 1000)
    assert sorted(t["id"] for t in admin.get("/traces").json()) == sorted(traces.values())

    # PUT changes name, enabled and limit; the device and the condition stay.
    tid = traces["PORT"]
    created = admin.get(f"/traces/{tid}").json()
    body = created | {"name": "renamed", "enabled": True, "limit": 3, "deviceType": "ROUTER",
                      "deviceId": devices["ROUTER"], "condition": {"nwProto": 17}}
    assert admin.put(f"/traces/{tid}", json=body).status_code == 204
    t = admin.get(f"/traces/{tid}").json()
    assert (t["name"], t["enabled"], t["limit"], t["deviceType"], t["deviceId"], t["condition"]["nwProto"],
            t["creationTimestampMs"]) == ("renamed", True, 3, "PORT", devices["PORT"], 6,
                                          created["creationTimestampMs"])

    # A trace without a limit traces without end; without a condition, everything.
    bare = _id(admin.post("/traces", json={"name": "all", "deviceType": "BRIDGE", "deviceId": devices["BRIDGE"]}))
    t = admin.get(f"/traces/{bare}").json()
    assert t["limit"] == 2 ** 63 - 1 and t["condition"]["nwProto"] is None

    assert admin.delete(f"/traces/{bare}").status_code == 204
    assert admin.get(f"/traces/{bare}").status_code == 404


def test_deleting_the_device_deletes_its_traces(api: Api, admin: httpx.Client) -> None:
    devices = _devices(admin, "tenant-a")
    traces = {kind: _id(admin.post("/traces", json={"name": kind, "deviceType": kind, "deviceId": device}))
              for kind, device in devices.items()}
    assert admin.delete(f"/bridges/{devices['BRIDGE']}").status_code == 204   # and its port
    assert admin.get(f"/traces/{traces['BRIDGE']}").status_code == 404
    assert admin.get(f"/traces/{traces['PORT']}").status_code == 404
    assert admin.delete(f"/routers/{devices['ROUTER']}").status_code == 204
    assert admin.get("/traces").json() == []


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    port = bridge.add_port().create()
    trace = mido.add_tracerequest().set_name("ssh").set_port(port.get_id()).nw_proto(6) \
        .tp_dst({"start": 22, "end": 22}).set_limit(100).create()
    assert (trace.get_name(), trace.get_port(), trace.get_limit(), trace.get_enabled()) == (
        "ssh", port.get_id(), 100, False)
    assert trace.get_nw_proto() == 6
    got = mido.get_tracerequest(trace.get_id())
    assert got.get_tp_dst() == {"start": 22, "end": 22}
    got.set_enabled(True).update()
    assert mido.get_tracerequest(trace.get_id()).get_enabled() is True
    router = mido.add_router().name("r").tenant_id("tenant-a").create()
    t2 = mido.add_tracerequest().set_name("r").set_router(router.get_id()).create()
    assert t2.get_router() == router.get_id()
    assert sorted(t.get_id() for t in mido.get_tracerequests({})) == sorted([trace.get_id(), t2.get_id()])
    mido.delete_tracerequest(trace.get_id())
    assert [t.get_id() for t in mido.get_tracerequests({})] == [t2.get_id()]


@pytest.mark.parametrize(("body", "status", "prop"), [
    ({"deviceType": "PORT", "deviceId": "{PORT}"}, 400, "name"),
    ({"name": "t", "deviceId": "{PORT}"}, 400, "deviceType"),
    ({"name": "t", "deviceType": "HOST", "deviceId": "{PORT}"}, 400, "deviceType"),
    ({"name": "t", "deviceType": "PORT"}, 400, "deviceId"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "port-1"}, 400, "deviceId"),
    ({"name": "t", "deviceType": "PORT", "deviceId": MISSING}, 404, None),
    ({"name": "t", "deviceType": "BRIDGE", "deviceId": "{ROUTER}"}, 404, None),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "limit": -1}, 400, "limit"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "limit": "10"}, 400, "limit"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "enabled": "yes"}, 400, "enabled"),
    ({"name": 5, "deviceType": "PORT", "deviceId": "{PORT}"}, 400, "name"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "condition": [1]}, 400, "condition"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "condition": {"nwProto": 300}}, 400,
     "condition.nwProto"),
    ({"name": "t", "deviceType": "PORT", "deviceId": "{PORT}", "condition": {"nwSrcAddress": "1.2.3"}}, 400,
     "condition.nwSrcAddress"),
])
def test_bad_input_changes_nothing(api: Api, admin: httpx.Client, body: dict[str, Any], status: int,
                                   prop: str | None) -> None:
    devices = _devices(admin, "tenant-a")
    body = {k: v.format(**devices) if isinstance(v, str) else v for k, v in body.items()}
    before = snapshot(api.store)
    rejected(api, admin.post("/traces", json=body), before, status, prop)


def test_bad_updates_and_unknown_ids(api: Api, admin: httpx.Client) -> None:
    devices = _devices(admin, "tenant-a")
    trace = _id(admin.post("/traces", json={"name": "t", "deviceType": "ROUTER", "deviceId": devices["ROUTER"]}))
    before = snapshot(api.store)
    rejected(api, admin.put(f"/traces/{trace}", json={"enabled": 1}), before, 400, "enabled")
    rejected(api, admin.put(f"/traces/{trace}", json={"limit": -5}), before, 400, "limit")
    rejected(api, admin.put(f"/traces/{trace}", json={"name": None}), before, 400, "name")
    for verb in ("get", "delete"):
        rejected(api, getattr(admin, verb)(f"/traces/{MISSING}"), before, 404)
        rejected(api, getattr(admin, verb)("/traces/not-a-uuid"), before, 404)
    rejected(api, admin.put(f"/traces/{MISSING}", json={"enabled": True}), before, 404)


def test_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol, \
            api.http("admin") as admin:
        a = _devices(alice, "tenant-a")
        b = _devices(bob, "tenant-b")
        trace = _id(alice.post("/traces", json={"name": "t", "deviceType": "PORT", "deviceId": a["PORT"]}))
        bobs = _id(bob.post("/traces", json={"name": "t", "deviceType": "ROUTER", "deviceId": b["ROUTER"]}))
        assert carol.get(f"/traces/{trace}").status_code == 200
        assert bob.get(f"/traces/{trace}").status_code == 403
        assert [t["id"] for t in bob.get("/traces").json()] == [bobs]
        assert [t["id"] for t in carol.get("/traces").json()] == [trace]
        assert [t["id"] for t in admin.get("/traces", params={"tenant_id": "tenant-b"}).json()] == [bobs]
        before = snapshot(api.store)
        rejected(api, bob.post("/traces", json={"name": "x", "deviceType": "BRIDGE", "deviceId": a["BRIDGE"]}),
                 before, 403)
        rejected(api, carol.post("/traces", json={"name": "x", "deviceType": "BRIDGE", "deviceId": a["BRIDGE"]}),
                 before, 403)
        rejected(api, bob.put(f"/traces/{trace}", json={"enabled": True}), before, 403)
        rejected(api, carol.put(f"/traces/{trace}", json={"enabled": True}), before, 403)
        rejected(api, bob.delete(f"/traces/{trace}"), before, 403)
        assert alice.put(f"/traces/{trace}", json={"enabled": True}).status_code == 204
