"""`midonet list | show | create | update | delete` and `host register`, in-process against a real API."""

from __future__ import annotations

import json
import uuid

import pytest

from midonet.cli.output import columns
from midonet.cli.resources import parse_fields
from midonet.client import Client

from .conftest import Cli


def as_json(out: str) -> object:
    return json.loads(out)


def test_create_list_show_delete_bridge(cli: Cli, admin: Client) -> None:
    created = cli("create", "bridge", "name=front", "tenant_id=acme", "--json")
    assert created.exit_code == 0, created.stderr
    bridge = as_json(created.stdout)
    assert isinstance(bridge, dict)
    assert bridge["name"] == "front" and bridge["tenantId"] == "acme"
    assert admin.get("bridges", bridge["id"])["name"] == "front"

    listed = cli("list", "bridges", "--json")
    assert [b["id"] for b in as_json(listed.stdout)] == [bridge["id"]]  # type: ignore[union-attr]

    table = cli("list", "bridges")
    assert table.exit_code == 0 and bridge["id"] in table.stdout and "front" in table.stdout

    shown = cli("show", "bridges", bridge["id"])
    assert shown.exit_code == 0 and "tenantId" in shown.stdout and "acme" in shown.stdout
    assert "http://" not in shown.stdout                 # links are left out of tables

    deleted = cli("delete", "bridge", bridge["id"])
    assert deleted.exit_code == 0 and f"deleted bridge {bridge['id']}" in deleted.stdout
    assert admin.list("bridges") == []
    assert "no bridges" in cli("list", "bridge").stdout


def test_update(cli: Cli, admin: Client) -> None:
    bridge = admin.create("bridges", {"name": "a", "tenantId": "acme"})
    result = cli("update", "bridge", bridge["id"], "name=b", "adminStateUp=false", "--json")
    assert result.exit_code == 0, result.stderr
    after = admin.get("bridges", bridge["id"])
    assert (after["name"], after["adminStateUp"], after["tenantId"]) == ("b", False, "acme")


def test_ports_under_bridge_and_router(cli: Cli, admin: Client) -> None:
    bridge = admin.create("bridges", {"name": "net"})
    router = admin.create("routers", {"name": "edge"})
    bport = as_json(cli("create", "port", "--bridge", bridge["id"], "vlanId=7", "--json").stdout)
    rport = as_json(cli("create", "ports", "--router", router["id"], "portAddress=10.0.0.1",
                        "networkAddress=10.0.0.0", "networkLength=24", "--json").stdout)
    assert isinstance(bport, dict) and isinstance(rport, dict)
    assert bport["deviceId"] == bridge["id"] and bport["vlanId"] == 7
    assert rport["type"] == "Router" and rport["networkLength"] == 24

    of_bridge = as_json(cli("list", "ports", "--bridge", bridge["id"], "--json").stdout)
    assert [p["id"] for p in of_bridge] == [bport["id"]]  # type: ignore[union-attr]
    assert {p["id"] for p in admin.list("ports")} == {bport["id"], rport["id"]}

    assert cli("delete", "port", bport["id"], rport["id"]).exit_code == 0
    assert admin.list("ports") == []


def test_rules_under_a_chain(cli: Cli, admin: Client) -> None:
    chain = admin.create("chains", {"name": "in"})
    result = cli("create", "rule", "--chain", chain["id"], "type=accept", "nwProto=6",
                 'tpDst={"start": 80, "end": 80}', "--json")
    assert result.exit_code == 0, result.stderr
    rule = as_json(result.stdout)
    assert isinstance(rule, dict)
    assert rule["type"] == "accept" and rule["nwProto"] == 6 and rule["tpDst"] == {"start": 80, "end": 80}
    listed = as_json(cli("list", "rules", "--chain", chain["id"], "--json").stdout)
    assert [r["id"] for r in listed] == [rule["id"]]  # type: ignore[union-attr]
    assert cli("show", "rule", rule["id"]).exit_code == 0


def test_route_under_a_router(cli: Cli, admin: Client) -> None:
    router = admin.create("routers", {"name": "edge"})
    port = admin.create_child("routers", router["id"], "ports",
                              {"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0", "networkLength": 24})
    result = cli("create", "route", "--router", router["id"], "type=Normal", "srcNetworkAddr=0.0.0.0",
                 "srcNetworkLength=0", "dstNetworkAddr=0.0.0.0", "dstNetworkLength=0",
                 f"nextHopPort={port['id']}", "nextHopGateway=10.0.0.254", "weight=100", "--json")
    assert result.exit_code == 0, result.stderr
    route = as_json(result.stdout)
    assert isinstance(route, dict) and route["nextHopGateway"] == "10.0.0.254"
    routes = admin.list_children("routers", router["id"], "routes")
    assert route["id"] in {r["id"] for r in routes}


def test_children_need_their_parent(cli: Cli) -> None:
    port = cli("create", "port", "vlanId=1")
    assert port.exit_code == 1 and "--bridge ID or --router ID" in port.stderr
    rules = cli("list", "rules")
    assert rules.exit_code == 1 and "--chain ID" in rules.stderr
    two = cli("list", "ports", "--bridge", "x", "--router", "y")
    assert two.exit_code == 1 and "only one parent" in two.stderr


@pytest.mark.parametrize("spelling", ["port-group", "port_groups", "portGroups", "port-groups"])
def test_kind_spellings(cli: Cli, admin: Client, spelling: str) -> None:
    result = cli("create", spelling, "name=web", "stateful=true", "--json")
    assert result.exit_code == 0, result.stderr
    group = as_json(result.stdout)
    assert isinstance(group, dict) and group["stateful"] is True
    assert [g["id"] for g in admin.list("port_groups")] == [group["id"]]


def test_bad_field_value_names_the_field(cli: Cli) -> None:
    result = cli("create", "bridge", "name=front", "adminStateUp=maybe")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: adminStateUp")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_unknown_id_is_404(cli: Cli) -> None:
    missing = str(uuid.uuid4())
    result = cli("show", "router", missing)
    assert result.exit_code == 1
    assert f"Router {missing} does not exist (HTTP 404)" in result.stderr
    result = cli("delete", "port", missing)
    assert result.exit_code == 1 and "HTTP 404" in result.stderr


def test_wrong_password(cli: Cli) -> None:
    result = cli("list", "bridges", "--password", "wrong")
    assert result.exit_code == 1
    assert result.stderr == "error: login as 'admin' refused: wrong user name or password (HTTP 401)\n"


def test_unreachable_and_bad_url(cli: Cli) -> None:
    refused = cli("list", "bridges", "--api", "http://127.0.0.1:9/midonet-api")
    assert refused.exit_code == 1 and "connection refused" in refused.stderr
    bad = cli("--api", "not-a-url", "list", "bridges")
    assert bad.exit_code == 1 and "bad API URL 'not-a-url'" in bad.stderr


def test_unknown_kind_and_bad_pair(cli: Cli) -> None:
    unknown = cli("list", "frobs")
    assert unknown.exit_code == 1 and "unknown resource 'frobs'" in unknown.stderr and "bridges" in unknown.stderr
    bad = cli("create", "bridge", "name")
    assert bad.exit_code == 1 and "expected KEY=VALUE" in bad.stderr


def test_tenant_admin_is_refused_other_tenants(cli: Cli) -> None:
    alice = {"MIDONET_USERNAME": "alice", "MIDONET_PASSWORD": "alice-pw"}
    result = cli("create", "bridge", "name=x", "tenantId=tenant-b", env=alice)
    assert result.exit_code == 1 and "HTTP 403" in result.stderr
    assert cli("create", "bridge", "name=x", "tenantId=tenant-a", env=alice).exit_code == 0


def test_host_register(cli: Cli, admin: Client) -> None:
    host_id = str(uuid.uuid4())
    result = cli("host", "register", "--id", host_id, "--name", "compute-1", "--json")
    assert result.exit_code == 0, result.stderr
    host = as_json(result.stdout)
    assert isinstance(host, dict) and host["id"] == host_id and host["name"] == "compute-1"
    assert admin.get("hosts", host_id)["name"] == "compute-1"
    listed = cli("host", "list", "--json")
    assert [h["id"] for h in as_json(listed.stdout)] == [host_id]  # type: ignore[union-attr]
    again = cli("host", "register", "--id", host_id, "--name", "compute-1")
    assert again.exit_code == 1 and "HTTP 409" in again.stderr
    alice = cli("host", "register", "--id", str(uuid.uuid4()), "--name", "h",
                env={"MIDONET_USERNAME": "alice", "MIDONET_PASSWORD": "alice-pw"})
    assert alice.exit_code == 1 and "HTTP 403" in alice.stderr


def test_parse_fields() -> None:
    assert parse_fields(["name=front", "tenant_id=acme", "vlan_id=7", "adminStateUp=false", "x=null",
                         "ids=[1, 2]", "empty=", "text=a b", "quoted=\"42\"", "nan=NaN"]) == {
        "name": "front", "tenantId": "acme", "vlanId": 7, "adminStateUp": False, "x": None, "ids": [1, 2],
        "empty": "", "text": "a b", "quoted": "42", "nan": "NaN"}


def test_table_columns_fit_the_width() -> None:
    ports = [{"id": "a" * 36, "uri": "http://h/ports/a", "type": "Router", "deviceId": "d" * 36,
              "portAddress": "10.0.0.1", "hostId": None, "tunnelKey": 7}]
    assert columns(ports, "ports", 200) == ["id", "type", "deviceId", "portAddress", "tunnelKey"]
    assert columns(ports, "ports", 64) == ["id", "type", "portAddress"]
    assert columns(ports, "ports", 10) == ["id"]
