"""`GET /topology_snapshot` (our admin-only extension behind `midonet trace`), on both store backends: who may
read it, and that it gives back every record exactly, the state tables and the active ports."""

from __future__ import annotations

import httpx
import pytest

from midonet.topology.devices import Port
from midonet.topology.record import from_dict, to_dict
from midonet.topology.registry import BY_KIND, RECORD_TYPES
from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

HOST = "7d1c0b38-1111-4d5b-9b0a-00000000000a"
MEDIA = "application/vnd.org.midonet.TopologySnapshot-v1+json"


def _id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def build(admin: httpx.Client) -> dict[str, str]:
    """A router with a port linked to a bridge, a bound VM port, a route, a filter chain with rules, a port
    group, an IP address group, and MAC / ARP table entries."""
    assert admin.post("/hosts", json={"id": HOST, "name": "h"}).status_code == 201
    t = {"bridge": _id(admin.post("/bridges", json={"name": "b", "tenantId": "tenant-a"})),
         "router": _id(admin.post("/routers", json={"name": "r", "tenantId": "tenant-a"})),
         "chain": _id(admin.post("/chains", json={"name": "in", "tenantId": "tenant-a"}))}
    t["rport"] = _id(admin.post(f"/routers/{t['router']}/ports", json={
        "portAddress": "10.0.1.254", "networkAddress": "10.0.1.0", "networkLength": 24,
        "portMac": "02:00:00:00:ff:01"}))
    t["link"] = _id(admin.post(f"/bridges/{t['bridge']}/ports", json={}))
    assert admin.post(f"/ports/{t['rport']}/link", json={"peerId": t["link"]}).status_code == 201
    t["vm"] = _id(admin.post(f"/bridges/{t['bridge']}/ports", json={}))
    assert admin.post(f"/hosts/{HOST}/ports", json={"portId": t["vm"], "interfaceName": "tap0"}).status_code == 201
    _id(admin.post(f"/routers/{t['router']}/routes", json={
        "type": "Normal", "srcNetworkAddr": "0.0.0.0", "srcNetworkLength": 0, "dstNetworkAddr": "10.0.1.0",
        "dstNetworkLength": 24, "nextHopPort": t["rport"], "weight": 100}))
    _id(admin.post(f"/chains/{t['chain']}/rules", json={"type": "drop", "nwProto": 17,
                                                         "tpDst": {"start": 53, "end": 53}}))
    _id(admin.post(f"/chains/{t['chain']}/rules", json={"type": "accept", "position": 2}))
    assert admin.put(f"/bridges/{t['bridge']}", json={"inboundFilterId": t["chain"]}).status_code == 204
    group = _id(admin.post("/port_groups", json={"name": "pg", "tenantId": "tenant-a"}))
    assert admin.post(f"/port_groups/{group}/ports", json={"portId": t["vm"]}).status_code == 201
    ipg = _id(admin.post("/ip_addr_groups", json={"name": "ipg"}))
    assert admin.post(f"/ip_addr_groups/{ipg}/ip_addrs", json={"addr": "10.0.1.7", "version": 4}).status_code == 201
    assert admin.post(f"/bridges/{t['bridge']}/mac_table", json={
        "macAddr": "02:00:00:00:01:01", "portId": t["vm"]}).status_code == 201
    assert admin.post(f"/bridges/{t['bridge']}/arp_table", json={
        "ip": "10.0.1.1", "mac": "02:00:00:00:01:01"}).status_code == 201
    return t


def test_admin_only(api: Api) -> None:
    assert httpx.get(f"{api.url}/topology_snapshot").status_code == 401
    for user in ("alice", "carol"):                         # a tenant admin, a tenant user
        with api.http(user) as client:
            denied = client.get("/topology_snapshot")
        assert denied.status_code == 403
        assert "only admins" in denied.json()["message"]


def test_records_round_trip_exactly(api: Api, admin: httpx.Client) -> None:
    build(admin)
    answer = admin.get("/topology_snapshot")
    assert answer.status_code == 200 and answer.headers["content-type"] == MEDIA
    records = answer.json()["records"]
    for cls in RECORD_TYPES:
        stored = api.store.list(cls)
        got = [from_dict(BY_KIND[cls.kind()], item) for item in records.get(cls.kind(), [])]
        assert got == stored, cls.kind()
        assert [to_dict(r) for r in got] == records.get(cls.kind(), [])
    assert set(records) <= set(BY_KIND)
    assert {"Bridge", "Router", "Port", "Route", "Chain", "Rule", "PortGroup", "IPAddrGroup", "Host"} <= set(records)


def test_tables_and_port_state(api: Api, admin: httpx.Client) -> None:
    t = build(admin)
    body = admin.get("/topology_snapshot", headers={"Accept": MEDIA}).json()
    assert body["tables"][f"Bridge/{t['bridge']}/mac_table:0"] == {"02:00:00:00:01:01": t["vm"]}
    assert body["tables"][f"Bridge/{t['bridge']}/ip4_mac_table"] == {"10.0.1.1": "02:00:00:00:01:01"}
    assert body["port_state"] == {}
    api.store.set_state(Port, t["vm"], "active", HOST)
    assert admin.get("/topology_snapshot").json()["port_state"] == {t["vm"]: {"active": True, "host": "api"}}


def test_an_empty_topology_and_a_wrong_accept(admin: httpx.Client) -> None:
    assert admin.get("/topology_snapshot").json() == {"records": {}, "tables": {}, "port_state": {}}
    refused = admin.get("/topology_snapshot", headers={"Accept": "application/vnd.org.midonet.Bridge-v4+json"})
    assert refused.status_code == 406
