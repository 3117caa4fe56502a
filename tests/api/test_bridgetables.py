"""A bridge's MAC and ARP tables and a router port's peering table (store state tables), on both backends.

The real client has calls for the peering table only; the MAC and ARP tables are driven over plain HTTP.
Rejected requests are checked to change neither the records nor the tables.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from midonet.api.auth import Authenticator
from midonet.testing.apiserver import ApiServer
from midonet.topology.devices import Bridge, Port
from tests.api.checks import rejected, snapshot
from tests.api.conftest import USERS, Api, second_session

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MISSING = "2b7b2a4e-0000-4000-8000-000000000000"
MAC1, MAC2 = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"


def _id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def tables(api: Api) -> dict[str, Any]:
    """The records and every table these tests touch."""
    out: dict[str, Any] = {"records": snapshot(api.store)}
    for bridge in api.store.list(Bridge):
        for name in ("mac_table:0", "mac_table:10", "ip4_mac_table"):
            out[f"{bridge.id}/{name}"] = api.store.state_table(Bridge, bridge.id, name).snapshot()
    for port in api.store.list(Port):
        out[f"{port.id}/peering_table"] = api.store.state_table(Port, port.id, "peering_table").snapshot()
    return out


def refused(api: Api, response: httpx.Response, before: dict[str, Any], status: int, prop: str | None = None) -> None:
    rejected(api, response, before["records"], status, prop)
    assert tables(api) == before, "a rejected request changed a table"


@pytest.fixture
def topo(admin: httpx.Client) -> dict[str, str]:
    """A bridge of tenant-a with an untagged port and a VLAN-10 port, a second bridge, a router port."""
    t = {"bridge": _id(admin.post("/bridges", json={"name": "b", "tenantId": "tenant-a"})),
         "other": _id(admin.post("/bridges", json={"name": "o", "tenantId": "tenant-a"})),
         "router": _id(admin.post("/routers", json={"name": "r", "tenantId": "tenant-a"}))}
    t["p0"] = _id(admin.post(f"/bridges/{t['bridge']}/ports", json={}))
    t["p1"] = _id(admin.post(f"/bridges/{t['bridge']}/ports", json={}))
    t["p10"] = _id(admin.post(f"/bridges/{t['bridge']}/ports", json={"vlanId": 10}))
    t["elsewhere"] = _id(admin.post(f"/bridges/{t['other']}/ports", json={}))
    t["rport"] = _id(admin.post(f"/routers/{t['router']}/ports", json={
        "portAddress": "10.0.0.1", "networkAddress": "10.0.0.0", "networkLength": 24}))
    return t


# --- MAC table -----------------------------------------------------------------------------------------

def test_mac_table_entries(api: Api, admin: httpx.Client, topo: dict[str, str]) -> None:
    b = topo["bridge"]
    r = admin.post(f"/bridges/{b}/mac_table", json={"macAddr": "AA-BB-CC-00-00-01", "portId": topo["p0"]})
    assert r.status_code == 201
    uri = r.headers["location"]
    assert uri.endswith(f"/bridges/{b}/mac_table/aa-bb-cc-00-00-01_{topo['p0']}")
    assert admin.get(uri).json() == {"macAddr": MAC1, "portId": topo["p0"], "vlanId": 0, "uri": uri}
    r = admin.post(f"/bridges/{b}/vlans/10/mac_table", json={"macAddr": MAC2, "portId": topo["p10"]})
    vlan_uri = r.headers["location"]
    assert vlan_uri.endswith(f"/bridges/{b}/vlans/10/mac_table/aa-bb-cc-00-00-02_{topo['p10']}")
    assert admin.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC1, "portId": topo["p10"], "vlanId": 10}) \
        .status_code == 201
    every = admin.get(f"/bridges/{b}/mac_table").json()
    assert sorted((e["vlanId"], e["macAddr"], e["portId"]) for e in every) == [
        (0, MAC1, topo["p0"]), (10, MAC1, topo["p10"]), (10, MAC2, topo["p10"])]
    assert [e["macAddr"] for e in admin.get(f"/bridges/{b}/vlans/0/mac_table").json()] == [MAC1]
    assert admin.get(vlan_uri).json()["vlanId"] == 10
    # The entries live in the state tables agents read (and write learned entries into).
    assert api.store.state_table(Bridge, b, "mac_table:0").snapshot() == {MAC1: topo["p0"]}
    api.store.state_table(Bridge, b, "mac_table:0").put(MAC2, topo["p1"])
    assert admin.get(f"/bridges/{b}/mac_table/aa-bb-cc-00-00-02_{topo['p1']}").status_code == 200
    # One port per MAC: a POST for a known MAC replaces its port; an identical POST changes nothing.
    assert admin.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC1, "portId": topo["p1"]}).status_code == 201
    assert admin.get(uri).status_code == 404
    before = tables(api)
    assert admin.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC1, "portId": topo["p1"]}).status_code == 201
    assert tables(api) == before
    # Delete.
    assert admin.delete(vlan_uri).status_code == 204
    assert admin.get(vlan_uri).status_code == 404
    assert admin.delete(f"/bridges/{b}/mac_table/aa:bb:cc:00:00:01_{topo['p1']}").status_code == 204
    assert [e["macAddr"] for e in admin.get(f"/bridges/{b}/vlans/0/mac_table").json()] == [MAC2]


def test_mac_table_bad_requests(api: Api, admin: httpx.Client, topo: dict[str, str]) -> None:
    b = topo["bridge"]
    table = f"/bridges/{b}/mac_table"
    assert admin.post(table, json={"macAddr": MAC1, "portId": topo["p0"]}).status_code == 201
    before = tables(api)
    refused(api, admin.post(table, json={"portId": topo["p0"]}), before, 400, "macAddr")
    refused(api, admin.post(table, json={"macAddr": "aa:bb:cc", "portId": topo["p0"]}), before, 400, "macAddr")
    refused(api, admin.post(table, json={"macAddr": MAC2}), before, 400, "portId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": "p0"}), before, 400, "portId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["elsewhere"]}), before, 400, "portId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["rport"]}), before, 400, "portId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": MISSING}), before, 404)
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["p10"]}), before, 400, "vlanId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["p0"], "vlanId": 7}), before, 400,
            "vlanId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["p0"], "vlanId": 5000}), before, 400,
            "vlanId")
    refused(api, admin.post(table, json={"macAddr": MAC2, "portId": topo["p0"], "vlanId": "10"}), before, 400,
            "vlanId")
    refused(api, admin.post(f"/bridges/{b}/vlans/7/mac_table", json={"macAddr": MAC2, "portId": topo["p0"]}),
            before, 404)
    refused(api, admin.post(f"/bridges/{MISSING}/mac_table", json={"macAddr": MAC2, "portId": topo["p0"]}),
            before, 404)
    refused(api, admin.get(f"/bridges/{MISSING}/mac_table"), before, 404)
    refused(api, admin.get(f"/bridges/{b}/vlans/7/mac_table"), before, 404)
    refused(api, admin.get(f"/bridges/{b}/vlans/x/mac_table"), before, 404)
    refused(api, admin.get(f"{table}/aa-bb-cc-00-00-01_{topo['p1']}"), before, 404)
    refused(api, admin.delete(f"{table}/aa-bb-cc-00-00-01_{topo['p1']}"), before, 404)
    refused(api, admin.delete(f"{table}/aa-bb-cc-00-00-02_{topo['p0']}"), before, 404)
    refused(api, admin.delete(f"{table}/junk"), before, 404)
    refused(api, admin.delete(f"{table}/aa-bb-cc-00-00-01_junk"), before, 404)


# --- ARP table -----------------------------------------------------------------------------------------

def test_arp_table(api: Api, admin: httpx.Client, topo: dict[str, str]) -> None:
    b = topo["bridge"]
    table = f"/bridges/{b}/arp_table"
    r = admin.post(table, json={"ip": "10.0.0.5", "mac": "AA:BB:CC:00:00:01"})
    assert r.status_code == 201
    uri = r.headers["location"]
    assert uri.endswith(f"/bridges/{b}/arp_table/10.0.0.5_aa-bb-cc-00-00-01")
    assert admin.get(uri).json() == {"ip": "10.0.0.5", "mac": MAC1, "uri": uri}
    admin.post(table, json={"ip": "10.0.0.6", "mac": MAC2})
    assert [(e["ip"], e["mac"]) for e in admin.get(table).json()] == [("10.0.0.5", MAC1), ("10.0.0.6", MAC2)]
    assert api.store.state_table(Bridge, b, "ip4_mac_table").snapshot() == {"10.0.0.5": MAC1, "10.0.0.6": MAC2}
    before = tables(api)
    refused(api, admin.post(table, json={"mac": MAC1}), before, 400, "ip")
    refused(api, admin.post(table, json={"ip": "10.0.0.300", "mac": MAC1}), before, 400, "ip")
    refused(api, admin.post(table, json={"ip": "fd00::1", "mac": MAC1}), before, 400, "ip")
    refused(api, admin.post(table, json={"ip": "10.0.0.7"}), before, 400, "mac")
    refused(api, admin.post(table, json={"ip": "10.0.0.7", "mac": "x"}), before, 400, "mac")
    refused(api, admin.post(f"/bridges/{MISSING}/arp_table", json={"ip": "10.0.0.7", "mac": MAC1}), before, 404)
    refused(api, admin.get(f"{table}/10.0.0.5_aa-bb-cc-00-00-02"), before, 404)
    refused(api, admin.delete(f"{table}/10.0.0.9_aa-bb-cc-00-00-02"), before, 404)
    refused(api, admin.delete(f"{table}/10.0.0.5"), before, 404)
    assert admin.delete(uri).status_code == 204
    assert [e["ip"] for e in admin.get(table).json()] == ["10.0.0.6"]


# --- peering table -------------------------------------------------------------------------------------

def test_peering_table_with_the_client(api: Api, admin: httpx.Client, topo: dict[str, str]) -> None:
    mido = api.mido()
    port = mido.get_port(topo["rport"])
    peer = port.add_remote_peer().ip("192.0.2.7").mac("aa-bb-cc-00-00-01").create()
    assert (peer.get_ip(), peer.get_mac()) == ("192.0.2.7", MAC1)
    port.add_remote_peer().ip("192.0.2.8").mac(MAC2).create()
    assert sorted((p.get_ip(), p.get_mac()) for p in port.get_remote_peers()) == [
        ("192.0.2.7", MAC1), ("192.0.2.8", MAC2)]
    assert api.store.state_table(Port, topo["rport"], "peering_table").get("192.0.2.7") == MAC1
    peer.delete()
    assert [p.get_ip() for p in port.get_remote_peers()] == ["192.0.2.8"]
    before = tables(api)
    table = f"/ports/{topo['rport']}/peering_table"
    refused(api, admin.post(table, json={"ip": "192.0.2.9"}), before, 400, "mac")
    refused(api, admin.post(table, json={"ip": "x", "mac": MAC1}), before, 400, "ip")
    refused(api, admin.post(f"/ports/{topo['p0']}/peering_table", json={"ip": "192.0.2.9", "mac": MAC1}), before,
            404)
    refused(api, admin.get(f"/ports/{topo['p0']}/peering_table"), before, 404)
    refused(api, admin.get(f"/ports/{MISSING}/peering_table"), before, 404)
    refused(api, admin.delete(f"{table}/192.0.2.7_aa-bb-cc-00-00-01"), before, 404)


# --- tenancy -------------------------------------------------------------------------------------------

def test_tables_follow_the_tenant_of_their_device(api: Api, admin: httpx.Client, topo: dict[str, str]) -> None:
    b = topo["bridge"]
    mac_uri = admin.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC1, "portId": topo["p0"]}) \
        .headers["location"]
    arp_uri = admin.post(f"/bridges/{b}/arp_table", json={"ip": "10.0.0.5", "mac": MAC1}).headers["location"]
    peer_uri = admin.post(f"/ports/{topo['rport']}/peering_table", json={"ip": "10.0.0.9", "mac": MAC1}) \
        .headers["location"]
    with api.http("bob") as bob, api.http("carol") as carol, api.http("alice") as alice:
        before = tables(api)
        for r in (bob.get(f"/bridges/{b}/mac_table"), bob.get(mac_uri), bob.delete(mac_uri),
                  bob.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC2, "portId": topo["p0"]}),
                  bob.get(f"/bridges/{b}/arp_table"), bob.get(arp_uri), bob.delete(arp_uri),
                  bob.get(f"/ports/{topo['rport']}/peering_table"), bob.delete(peer_uri),
                  carol.delete(mac_uri), carol.delete(arp_uri), carol.delete(peer_uri),
                  carol.post(f"/bridges/{b}/arp_table", json={"ip": "10.0.0.6", "mac": MAC2}),
                  carol.post(f"/ports/{topo['rport']}/peering_table", json={"ip": "10.0.0.8", "mac": MAC2})):
            refused(api, r, before, 403)
        assert carol.get(mac_uri).status_code == 200
        assert [e["ip"] for e in carol.get(f"/bridges/{b}/arp_table").json()] == ["10.0.0.5"]
        assert [e["ip"] for e in carol.get(f"/ports/{topo['rport']}/peering_table").json()] == ["10.0.0.9"]
        assert alice.delete(mac_uri).status_code == 204


# --- persistence ---------------------------------------------------------------------------------------

def test_api_entries_outlive_the_api_session_learned_ones_do_not(api: Api, admin: httpx.Client,
                                                                 topo: dict[str, str]) -> None:
    """Entries the API writes are persistent; an agent's learned entries go with the agent's session."""
    b = topo["bridge"]
    agent, other_api = second_session(api, "agent-host"), second_session(api, "api-2")
    agent.state_table(Bridge, b, "mac_table:0").put(MAC2, topo["p1"])
    with ApiServer(other_api, Authenticator(USERS)) as server:
        token = httpx.post(f"{server.url}/login", auth=("admin", "admin-pw")).json()["key"]
        with httpx.Client(base_url=server.url, headers={"X-Auth-Token": token}) as c:
            assert c.post(f"/bridges/{b}/mac_table", json={"macAddr": MAC1, "portId": topo["p0"]}).status_code == 201
            assert c.post(f"/bridges/{b}/arp_table", json={"ip": "10.0.0.5", "mac": MAC1}).status_code == 201
            assert c.post(f"/ports/{topo['rport']}/peering_table", json={"ip": "10.0.0.9", "mac": MAC1}) \
                .status_code == 201
    other_api.close()
    agent.close()
    assert [(e["macAddr"], e["portId"]) for e in admin.get(f"/bridges/{b}/mac_table").json()] == [(MAC1, topo["p0"])]
    assert [e["ip"] for e in admin.get(f"/bridges/{b}/arp_table").json()] == ["10.0.0.5"]
    assert [e["ip"] for e in admin.get(f"/ports/{topo['rport']}/peering_table").json()] == ["10.0.0.9"]
