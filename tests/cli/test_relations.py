"""`midonet link | unlink | bind | unbind | tunnel-zone-host` against a real API server."""

from __future__ import annotations

from midonet.client import Client
from tests.cli.conftest import Cli

HOST = "5f0c7d1e-2222-4c33-8d44-0000000000aa"


def _router_and_bridge_ports(admin: Client) -> tuple[str, str]:
    router = admin.create("routers", {"name": "r", "tenantId": "t"})
    bridge = admin.create("bridges", {"name": "b", "tenantId": "t"})
    rport = admin.create_child("routers", router["id"], "ports",
                               {"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0", "networkLength": 24})
    bport = admin.create_child("bridges", bridge["id"], "ports", {})
    return rport["id"], bport["id"]


def test_link_and_unlink(cli: Cli, admin: Client) -> None:
    rport, bport = _router_and_bridge_ports(admin)
    result = cli("link", rport, bport)
    assert result.exit_code == 0, result.output
    assert admin.get("ports", rport)["peerId"] == bport
    assert admin.get("ports", bport)["peerId"] == rport
    again = cli("link", rport, bport)
    assert again.exit_code == 1 and "already linked" in again.output
    assert cli("unlink", bport).exit_code == 0
    assert admin.get("ports", rport)["peerId"] is None


def test_bind_unbind_and_tunnel_zone_membership(cli: Cli, admin: Client) -> None:
    admin.create("hosts", {"id": HOST, "name": "h1"})
    _, bport = _router_and_bridge_ports(admin)
    result = cli("bind", HOST, bport, "tap0", "--json")
    assert result.exit_code == 0, result.output
    port = admin.get("ports", bport)
    assert (port["hostId"], port["interfaceName"]) == (HOST, "tap0")
    clash = cli("bind", HOST, admin.create_child("bridges", port["deviceId"], "ports", {})["id"], "tap0")
    assert clash.exit_code == 1 and "tap0" in clash.output
    assert cli("unbind", HOST, bport).exit_code == 0
    assert admin.get("ports", bport)["hostId"] is None

    zone = admin.create("tunnel_zones", {"name": "tz", "type": "vxlan"})
    assert cli("tunnel-zone-host", zone["id"], HOST, "192.0.2.1").exit_code == 0
    members = admin.list_children("tunnel_zones", zone["id"], "hosts")
    assert [(m["hostId"], m["ipAddress"]) for m in members] == [(HOST, "192.0.2.1")]
    bad = cli("tunnel-zone-host", zone["id"], HOST, "not-an-ip")
    assert bad.exit_code == 1 and "ipAddress" in bad.output
