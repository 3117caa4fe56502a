"""Mirrors (spec 7.3 Mirror-v1, 3.9): CRUD over HTTP and midonetclient, attachment through devices' mirror
ids, the CLEAR and CASCADE bindings, bad input and tenancy, on both store backends.
"""

from __future__ import annotations

import httpx

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _bridge_with_port(client: httpx.Client, tenant: str) -> tuple[str, str]:
    bridge = _id(client.post("/bridges", json={"name": "b", "tenantId": tenant}))
    return bridge, _id(client.post(f"/bridges/{bridge}/ports", json={}))


def test_crud_and_conditions(api: Api, admin: httpx.Client) -> None:
    _, port = _bridge_with_port(admin, "tenant-a")
    mirror = _id(admin.post("/mirrors", json={
        "toPortId": port,
        "conditions": [{"nwProto": 6, "tpDst": {"start": 80, "end": 80}},
                       {"nwSrcAddress": "10.0.0.0", "nwSrcLength": 8, "invNwSrc": True}]}))
    r = admin.get(f"/mirrors/{mirror}")
    assert r.headers["content-type"] == "application/vnd.org.midonet.Mirror-v1+json"
    body = r.json()
    assert body["toPortId"] == port and body["uri"].endswith(f"/mirrors/{mirror}")
    first, second = body["conditions"]
    assert (first["nwProto"], first["tpDst"]) == (6, {"start": 80, "end": 80})
    assert (second["nwSrcAddress"], second["nwSrcLength"], second["invNwSrc"]) == ("10.0.0.0", 8, True)
    assert [m["id"] for m in admin.get("/mirrors").json()] == [mirror]

    # PUT replaces the condition list; an absent list keeps it.
    assert admin.put(f"/mirrors/{mirror}", json={"conditions": [{"dlType": 0x800}]}).status_code == 204
    assert [c["dlType"] for c in admin.get(f"/mirrors/{mirror}").json()["conditions"]] == [0x800]
    _, port2 = _bridge_with_port(admin, "tenant-a")
    assert admin.put(f"/mirrors/{mirror}", json={"toPortId": port2}).status_code == 204
    body = admin.get(f"/mirrors/{mirror}").json()
    assert body["toPortId"] == port2 and len(body["conditions"]) == 1
    # An empty condition list is a mirror of everything.
    assert admin.put(f"/mirrors/{mirror}", json={"conditions": []}).status_code == 204
    assert admin.get(f"/mirrors/{mirror}").json()["conditions"] == []

    assert admin.delete(f"/mirrors/{mirror}").status_code == 204
    assert admin.get(f"/mirrors/{mirror}").status_code == 404


def test_attach_and_delete_clears_devices(api: Api, admin: httpx.Client) -> None:
    bridge, port = _bridge_with_port(admin, "tenant-a")
    _, to_port = _bridge_with_port(admin, "tenant-a")
    router = _id(admin.post("/routers", json={"name": "r", "tenantId": "tenant-a"}))
    m1 = _id(admin.post("/mirrors", json={"toPortId": to_port}))
    m2 = _id(admin.post("/mirrors", json={"toPortId": to_port}))
    assert admin.put(f"/bridges/{bridge}", json={"inboundMirrorIds": [m1, m2], "outboundMirrorIds": [m1]}) \
        .status_code == 204
    assert admin.put(f"/routers/{router}", json={"outboundMirrorIds": [m2]}).status_code == 204
    assert admin.put(f"/ports/{port}", json={"postInFilterMirrorIds": [m1], "preOutFilterMirrorIds": [m2]}) \
        .status_code == 204

    # Deleting a mirror clears it from every device that used it (CLEAR).
    assert admin.delete(f"/mirrors/{m1}").status_code == 204
    b = admin.get(f"/bridges/{bridge}").json()
    assert (b["inboundMirrorIds"], b["outboundMirrorIds"]) == ([m2], [])
    p = admin.get(f"/ports/{port}").json()
    assert (p["postInFilterMirrorIds"], p["preOutFilterMirrorIds"]) == ([], [m2])

    # Deleting the to-port deletes the mirror (CASCADE), which clears it everywhere.
    assert admin.delete(f"/ports/{to_port}").status_code == 204
    assert admin.get(f"/mirrors/{m2}").status_code == 404
    assert admin.get(f"/bridges/{bridge}").json()["inboundMirrorIds"] == []
    assert admin.get(f"/routers/{router}").json()["outboundMirrorIds"] == []
    assert admin.get(f"/ports/{port}").json()["preOutFilterMirrorIds"] == []

    # Attaching a mirror that does not exist is a 404 that changes nothing.
    before = snapshot(api.store)
    rejected(api, admin.put(f"/bridges/{bridge}", json={"inboundMirrorIds": [MISSING]}), before, 404)


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    port = bridge.add_port().create()
    to_port = bridge.add_port().create()
    cond = mido.add_mirror().add_condition().nw_proto(17).tp_dst({"start": 53, "end": 53})
    mirror = mido.add_mirror().to_port(to_port.get_id()).set_conditions([cond.dto]).create()
    assert mirror.get_to_port() == to_port.get_id()
    assert [c["nwProto"] for c in mirror.get_conditions()] == [17]
    assert mido.get_mirror(mirror.get_id()).get_to_port() == to_port.get_id()
    assert [m.get_id() for m in mido.get_mirrors()] == [mirror.get_id()]

    bridge.inbound_mirrors([mirror.get_id()]).update()
    port.outbound_mirrors([mirror.get_id()]).update()
    assert mido.get_bridge(bridge.get_id()).get_inbound_mirrors() == [mirror.get_id()]
    assert mido.get_port(port.get_id()).get_outbound_mirrors() == [mirror.get_id()]

    mirror.set_conditions([]).update()
    assert mido.get_mirror(mirror.get_id()).get_conditions() == []

    mido.delete_mirror(mirror.get_id())
    assert list(mido.get_mirrors()) == []
    assert mido.get_bridge(bridge.get_id()).get_inbound_mirrors() == []
    assert mido.get_port(port.get_id()).get_outbound_mirrors() == []


def test_bad_input_changes_nothing(api: Api, admin: httpx.Client) -> None:
    _, port = _bridge_with_port(admin, "tenant-a")
    mirror = _id(admin.post("/mirrors", json={"toPortId": port}))
    before = snapshot(api.store)
    rejected(api, admin.post("/mirrors", json={}), before, 400, "toPortId")
    rejected(api, admin.post("/mirrors", json={"toPortId": "nope"}), before, 400, "toPortId")
    rejected(api, admin.post("/mirrors", json={"toPortId": MISSING}), before, 404)
    rejected(api, admin.post("/mirrors", json={"toPortId": port, "conditions": {"nwProto": 6}}), before, 400,
             "conditions")
    rejected(api, admin.post("/mirrors", json={"toPortId": port, "conditions": [{}, 5]}), before, 400,
             "conditions[1]")
    rejected(api, admin.post("/mirrors", json={"toPortId": port, "conditions": [{"nwProto": "tcp"}]}), before,
             400, "conditions[0].nwProto")
    rejected(api, admin.post("/mirrors", json={"toPortId": port, "conditions": [
        {}, {"nwSrcAddress": "10.0.0.300", "nwSrcLength": 8}]}), before, 400, "conditions[1].nwSrcAddress")
    rejected(api, admin.post("/mirrors", json={"toPortId": port, "conditions": [
        {"tpDst": {"start": 90, "end": 80}}]}), before, 400, "conditions[0].tpDst.start")
    rejected(api, admin.put(f"/mirrors/{mirror}", json={"toPortId": None}), before, 400, "toPortId")
    rejected(api, admin.put(f"/mirrors/{mirror}", json={"conditions": [{"dlSrcMask": "zz"}]}), before, 400,
             "conditions[0].dlSrcMask")
    for verb in ("get", "delete"):
        rejected(api, getattr(admin, verb)(f"/mirrors/{MISSING}"), before, 404)
    rejected(api, admin.put(f"/mirrors/{MISSING}", json={}), before, 404)


def test_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol, \
            api.http("admin") as admin:
        _, a_port = _bridge_with_port(alice, "tenant-a")
        _, b_port = _bridge_with_port(bob, "tenant-b")
        mirror = _id(alice.post("/mirrors", json={"toPortId": a_port}))
        assert alice.get(f"/mirrors/{mirror}").json()["tenantId"] == "tenant-a"
        assert carol.get(f"/mirrors/{mirror}").status_code == 200
        assert bob.get(f"/mirrors/{mirror}").status_code == 403
        assert bob.get("/mirrors").json() == []
        # An admin's mirror without a tenant belongs to its to-port's tenant.
        admins = _id(admin.post("/mirrors", json={"toPortId": b_port}))
        assert [m["id"] for m in bob.get("/mirrors").json()] == [admins]
        assert [m["id"] for m in admin.get("/mirrors", params={"tenant_id": "tenant-a"}).json()] == [mirror]

        before = snapshot(api.store)
        rejected(api, bob.put(f"/mirrors/{mirror}", json={"conditions": []}), before, 403)
        rejected(api, bob.delete(f"/mirrors/{mirror}"), before, 403)
        rejected(api, carol.post("/mirrors", json={"toPortId": a_port}), before, 403)
        rejected(api, carol.delete(f"/mirrors/{mirror}"), before, 403)
        # Mirroring to another tenant's port, or into another tenant, is refused.
        rejected(api, alice.post("/mirrors", json={"toPortId": b_port}), before, 403)
        rejected(api, alice.put(f"/mirrors/{mirror}", json={"toPortId": b_port}), before, 403)
        rejected(api, alice.post("/mirrors", json={"toPortId": a_port, "tenantId": "tenant-b"}), before, 403)
