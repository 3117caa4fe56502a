"""QoS policies and rules (spec 7.3 QOSPolicy-v1, QOSRuleBWLimit-v1, QOSRuleDSCP-v1) over HTTP, on both
store backends: rules as sub-resources and inline (Neutron-style), cascades, bad input, tenancy.
(midonetclient 5.2.0 has no QoS calls.)
"""

from __future__ import annotations

import httpx

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


def _id(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def test_policy_and_rule_crud(api: Api, admin: httpx.Client) -> None:
    policy = _id(admin.post("/qos_policies", json={"name": "gold", "description": "d", "tenantId": "tenant-a"}))
    r = admin.get(f"/qos_policies/{policy}")
    assert r.headers["content-type"] == "application/vnd.org.midonet.QOSPolicy-v1+json"
    p = r.json()
    assert (p["name"], p["description"], p["shared"], p["tenantId"], p["tenant_id"], p["rules"]) == (
        "gold", "d", False, "tenant-a", "tenant-a", [])
    assert p["bwLimitRules"].endswith(f"/qos_policies/{policy}/qos_bw_limit_rules")

    bw = _id(admin.post(p["bwLimitRules"].split("/midonet-api", 1)[1], json={"maxKbps": 1000, "maxBurstKb": 100}))
    dscp = _id(admin.post(f"/qos_policies/{policy}/qos_dscp_rules", json={"dscpMark": 46}))
    r = admin.get(f"/qos_bw_limit_rules/{bw}")
    assert r.headers["content-type"] == "application/vnd.org.midonet.QOSRuleBWLimit-v1+json"
    assert (r.json()["maxKbps"], r.json()["maxBurstKb"], r.json()["policyId"]) == (1000, 100, policy)
    assert admin.get(f"/qos_dscp_rules/{dscp}").json()["dscpMark"] == 46
    assert [x["id"] for x in admin.get(f"/qos_policies/{policy}/qos_bw_limit_rules").json()] == [bw]
    assert [x["id"] for x in admin.get(f"/qos_policies/{policy}/qos_dscp_rules").json()] == [dscp]
    assert admin.get(f"/qos_policies/{policy}").json()["rules"] == [
        {"id": bw, "type": "bandwidth_limit", "max_kbps": 1000, "max_burst_kbps": 100, "dscp_mark": None},
        {"id": dscp, "type": "dscp_marking", "max_kbps": None, "max_burst_kbps": None, "dscp_mark": 46}]

    assert admin.put(f"/qos_bw_limit_rules/{bw}", json={"maxKbps": 2000}).status_code == 204
    assert admin.get(f"/qos_bw_limit_rules/{bw}").json()["maxKbps"] == 2000
    assert admin.put(f"/qos_dscp_rules/{dscp}", json={"dscpMark": 10}).status_code == 204
    assert admin.put(f"/qos_policies/{policy}", json={"shared": True, "name": "silver"}).status_code == 204
    p = admin.get(f"/qos_policies/{policy}").json()
    assert (p["shared"], p["name"], len(p["rules"])) == (True, "silver", 2)

    assert admin.delete(f"/qos_dscp_rules/{dscp}").status_code == 204
    assert admin.get(f"/qos_policies/{policy}/qos_dscp_rules").json() == []
    assert [x["id"] for x in admin.get("/qos_policies").json()] == [policy]


def test_inline_rules(api: Api, admin: httpx.Client) -> None:
    rule_id = "11111111-2222-3333-4444-555555555555"
    policy = _id(admin.post("/qos_policies", json={"name": "n", "tenant_id": "tenant-b", "rules": [
        {"id": rule_id, "type": "bandwidth_limit", "max_kbps": 500, "max_burst_kbps": 50},
        {"type": "dscp_marking", "dscp_mark": 8}]}))
    p = admin.get(f"/qos_policies/{policy}").json()
    assert p["tenantId"] == "tenant-b"
    assert [(r["type"], r["max_kbps"], r["dscp_mark"]) for r in p["rules"]] == [
        ("bandwidth_limit", 500, None), ("dscp_marking", None, 8)]
    dscp_id = p["rules"][1]["id"]
    assert admin.get(f"/qos_bw_limit_rules/{rule_id}").json()["maxBurstKb"] == 50

    # A PUT with rules makes them exactly those: update one, drop one, add one.
    new = [{"id": rule_id, "type": "bandwidth_limit", "max_kbps": 700, "max_burst_kbps": 70},
           {"type": "dscp_marking", "dscp_mark": 16}]
    assert admin.put(f"/qos_policies/{policy}", json={"rules": new}).status_code == 204
    p = admin.get(f"/qos_policies/{policy}").json()
    assert [(r["type"], r["max_kbps"], r["dscp_mark"]) for r in p["rules"]] == [
        ("bandwidth_limit", 700, None), ("dscp_marking", None, 16)]
    assert admin.get(f"/qos_dscp_rules/{dscp_id}").status_code == 404
    # A PUT without rules leaves them alone; an empty list removes them.
    assert admin.put(f"/qos_policies/{policy}", json={"name": "m"}).status_code == 204
    assert len(admin.get(f"/qos_policies/{policy}").json()["rules"]) == 2
    assert admin.put(f"/qos_policies/{policy}", json={"rules": []}).status_code == 204
    assert admin.get(f"/qos_policies/{policy}").json()["rules"] == []
    assert admin.get(f"/qos_bw_limit_rules/{rule_id}").status_code == 404


def test_policy_delete_cascades_and_clears_users(api: Api, admin: httpx.Client) -> None:
    policy = _id(admin.post("/qos_policies", json={"name": "p", "tenantId": "tenant-a"}))
    bw = _id(admin.post(f"/qos_policies/{policy}/qos_bw_limit_rules", json={"maxKbps": 1}))
    dscp = _id(admin.post(f"/qos_policies/{policy}/qos_dscp_rules", json={"dscpMark": 1}))
    bridge = _id(admin.post("/bridges", json={"name": "b", "tenantId": "tenant-a", "qosPolicyId": policy}))
    port = _id(admin.post(f"/bridges/{bridge}/ports", json={}))
    assert admin.put(f"/ports/{port}", json={"qosPolicyId": policy}).status_code == 204
    assert admin.delete(f"/qos_policies/{policy}").status_code == 204
    assert admin.get(f"/qos_bw_limit_rules/{bw}").status_code == 404
    assert admin.get(f"/qos_dscp_rules/{dscp}").status_code == 404
    assert admin.get(f"/bridges/{bridge}").json()["qosPolicyId"] is None
    assert admin.get(f"/ports/{port}").json()["qosPolicyId"] is None


def test_bad_input_changes_nothing(api: Api, admin: httpx.Client) -> None:
    policy = _id(admin.post("/qos_policies", json={"name": "p", "tenantId": "tenant-a"}))
    bw = _id(admin.post(f"/qos_policies/{policy}/qos_bw_limit_rules", json={"maxKbps": 1}))
    dscp = _id(admin.post(f"/qos_policies/{policy}/qos_dscp_rules", json={"dscpMark": 1}))
    before = snapshot(api.store)
    cases: list[tuple[str, str, object, int, str | None]] = [
        ("post", "/qos_policies", {"shared": "yes"}, 400, "shared"),
        ("post", "/qos_policies", {"name": 3}, 400, "name"),
        ("post", "/qos_policies", {"rules": {}}, 400, "rules"),
        ("post", "/qos_policies", {"rules": [{"type": "minimum_bandwidth"}]}, 400, "rules[0].type"),
        ("post", "/qos_policies", {"rules": [{"type": "dscp_marking", "dscp_mark": 64}]}, 400, "rules[0].dscp_mark"),
        ("post", "/qos_policies", {"rules": [{"type": "bandwidth_limit", "max_kbps": 1}, "x"]}, 400, "rules[1]"),
        ("post", "/qos_policies", {"rules": [{"type": "bandwidth_limit", "max_burst_kbps": -1}]}, 400,
         "rules[0].max_burst_kbps"),
        ("put", f"/qos_policies/{policy}", {"rules": [{"id": bw, "type": "dscp_marking", "dscp_mark": 3}]}, 400,
         "rules"),
        ("post", f"/qos_policies/{policy}/qos_dscp_rules", {"dscpMark": 64}, 400, "dscpMark"),
        ("post", f"/qos_policies/{policy}/qos_dscp_rules", {"dscpMark": "ef"}, 400, "dscpMark"),
        ("post", f"/qos_policies/{policy}/qos_bw_limit_rules", {"maxKbps": -5}, 400, "maxKbps"),
        ("post", f"/qos_policies/{policy}/qos_bw_limit_rules", {"maxBurstKb": 1.5}, 400, "maxBurstKb"),
        ("put", f"/qos_dscp_rules/{dscp}", {"dscpMark": -1}, 400, "dscpMark"),
        ("post", f"/qos_policies/{MISSING}/qos_dscp_rules", {"dscpMark": 1}, 404, None),
        ("get", f"/qos_policies/{MISSING}", None, 404, None),
        ("delete", f"/qos_bw_limit_rules/{MISSING}", None, 404, None),
        ("put", f"/qos_dscp_rules/{MISSING}", {}, 404, None),
        ("get", f"/qos_policies/{MISSING}/qos_bw_limit_rules", None, 404, None),
        # A rule id that already exists elsewhere conflicts.
        ("post", "/qos_policies", {"rules": [{"id": bw, "type": "bandwidth_limit"}]}, 409, None),
    ]
    for verb, path, body, status, prop in cases:
        kwargs = {"json": body} if body is not None else {}
        rejected(api, admin.request(verb.upper(), path, **kwargs), before, status, prop)


def test_tenancy(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol, \
            api.http("admin") as admin:
        private = _id(alice.post("/qos_policies", json={"name": "private"}))
        shared = _id(alice.post("/qos_policies", json={"name": "shared", "shared": True}))
        rule = _id(alice.post(f"/qos_policies/{private}/qos_dscp_rules", json={"dscpMark": 1}))
        shared_rule = _id(alice.post(f"/qos_policies/{shared}/qos_dscp_rules", json={"dscpMark": 2}))
        assert alice.get(f"/qos_policies/{private}").json()["tenantId"] == "tenant-a"
        assert sorted(p["id"] for p in carol.get("/qos_policies").json()) == sorted([private, shared])
        assert [p["id"] for p in bob.get("/qos_policies").json()] == [shared]
        assert bob.get(f"/qos_policies/{private}").status_code == 403
        assert bob.get(f"/qos_dscp_rules/{rule}").status_code == 403
        assert bob.get(f"/qos_dscp_rules/{shared_rule}").status_code == 200
        assert [p["id"] for p in admin.get("/qos_policies", params={"tenant_id": "tenant-b"}).json()] == []

        before = snapshot(api.store)
        for client in (bob, carol):
            rejected(api, client.put(f"/qos_policies/{shared}", json={"name": "mine"}), before, 403)
            rejected(api, client.delete(f"/qos_policies/{private}"), before, 403)
            rejected(api, client.post(f"/qos_policies/{shared}/qos_bw_limit_rules", json={"maxKbps": 1}), before, 403)
            rejected(api, client.put(f"/qos_dscp_rules/{shared_rule}", json={"dscpMark": 9}), before, 403)
            rejected(api, client.delete(f"/qos_dscp_rules/{rule}"), before, 403)
        rejected(api, alice.post("/qos_policies", json={"name": "x", "tenantId": "tenant-b"}), before, 403)
        rejected(api, carol.post("/qos_policies", json={"name": "x"}), before, 403)
