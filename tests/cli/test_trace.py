"""`midonet trace` end to end: the spec's two-subnet router (section 11) built through the API, then packets traced
against the live topology read back with `GET /topology_snapshot`.

    l1 l2 (10.0.1.1-2)                           r1 r2 (10.0.2.1-2)
        |                                           |
     [left] --- 10.0.1.254 [router] 10.0.2.254 --- [right]        left's inbound filter: chain "no-dns"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from midonet.cli.snapshot import SnapshotError, load
from midonet.client import Client
from midonet.testing.clock import FakeClock
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.devices import NextHop
from midonet.topology.record import to_dict

from .conftest import Cli

HOST = "7d1c0b38-1111-4d5b-9b0a-00000000000a"
ROUTER_MAC = {"left": "02:00:00:00:ff:01", "right": "02:00:00:00:ff:02"}
VM_MAC = {"l1": "02:00:00:00:01:01", "l2": "02:00:00:00:01:02", "r1": "02:00:00:00:02:01",
          "r2": "02:00:00:00:02:02"}
VM_IP = {"l1": "10.0.1.1", "l2": "10.0.1.2", "r1": "10.0.2.1", "r2": "10.0.2.2"}


@dataclass
class Net:
    router: str
    bridges: dict[str, str] = field(default_factory=dict)
    router_ports: dict[str, str] = field(default_factory=dict)
    vms: dict[str, str] = field(default_factory=dict)         # name -> port id
    chain: str = ""
    drop_rule: str = ""


@pytest.fixture
def net(admin: Client) -> Net:
    """The two-subnet router, built through the API as an operator would."""
    admin.create("hosts", {"id": HOST, "name": "hypervisor"})
    n = Net(admin.create("routers", {"name": "edge", "tenantId": "acme"})["id"])
    for side, subnet in (("left", 1), ("right", 2)):
        bridge = n.bridges[side] = admin.create("bridges", {"name": side, "tenantId": "acme"})["id"]
        rport = n.router_ports[side] = admin.create_child("routers", n.router, "ports", {
            "portAddress": f"10.0.{subnet}.254", "networkAddress": f"10.0.{subnet}.0", "networkLength": 24,
            "portMac": ROUTER_MAC[side]})["id"]
        link = admin.create_child("bridges", bridge, "ports", {})["id"]
        admin.request("POST", f"{admin.url}/ports/{rport}/link", body={"peerId": link})
        admin.create_child("routers", n.router, "routes", {
            "type": "Normal", "srcNetworkAddr": "0.0.0.0", "srcNetworkLength": 0,
            "dstNetworkAddr": f"10.0.{subnet}.0", "dstNetworkLength": 24, "nextHopPort": rport, "weight": 100})
        for i in (1, 2):
            name = f"{side[0]}{i}"
            port = n.vms[name] = admin.create_child("bridges", bridge, "ports", {})["id"]
            admin.create_child("hosts", HOST, "ports", {"portId": port, "interfaceName": f"tap-{name}"})
    n.chain = admin.create("chains", {"name": "no-dns", "tenantId": "acme"})["id"]
    admin.create_child("chains", n.chain, "rules", {"type": "accept", "nwProto": 6})
    n.drop_rule = admin.create_child("chains", n.chain, "rules", {
        "type": "drop", "nwProto": 17, "tpDst": {"start": 53, "end": 53}, "position": 2})["id"]
    admin.update("bridges", n.bridges["left"], {"inboundFilterId": n.chain})
    return n


def udp(src: str, dst: str, dst_ip: str | None = None, extra: str = "") -> str:
    """A UDP spec from VM `src` to VM `dst` (its MAC, or the router's for another subnet)."""
    return (f"eth_src={VM_MAC[src]},eth_dst={VM_MAC.get(dst, dst)},ip_src={VM_IP[src]},"
            f"ip_dst={dst_ip or VM_IP[dst]}{extra}")


def trace(cli: Cli, net: Net, *steps: tuple[str, str], as_json: bool = True) -> Any:
    args = ["trace"] + (["--json"] if as_json else [])
    for vm, spec in steps:
        args += ["--step", f"{net.vms[vm]}:{spec}"]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if as_json else result.stdout


def test_l2_unicast_after_learning(cli: Cli, net: Net) -> None:
    first, reply = trace(cli, net, ("l1", udp("l1", "l2")), ("l2", udp("l2", "l1")))
    assert first["result"] == "forward" and any("flood" in s for s in first["steps"])
    assert [o["port_id"] for o in first["outputs"]] == [net.vms["l2"]]
    assert reply["result"] == "forward" and [o["port_id"] for o in reply["outputs"]] == [net.vms["l1"]]
    assert not any("flood" in s for s in reply["steps"])
    assert reply["devices"] == [net.vms["l2"], net.bridges["left"], net.vms["l1"]]
    assert reply["outputs"][0]["packet"]["ip_dst"] == "10.0.1.1"


def test_routing_across_subnets_with_tables_seeded_through_the_api(cli: Cli, net: Net, admin: Client) -> None:
    right = net.bridges["right"]
    admin.request("POST", f"{admin.url}/bridges/{right}/arp_table", body={"ip": "10.0.2.1", "mac": VM_MAC["r1"]})
    admin.request("POST", f"{admin.url}/bridges/{right}/mac_table",
                  body={"macAddr": VM_MAC["r1"], "portId": net.vms["r1"]})
    (step,) = trace(cli, net, ("l1", udp("l1", ROUTER_MAC["left"], "10.0.2.1", ",ip_ttl=64")))
    assert step["result"] == "forward"
    (out,) = step["outputs"]
    assert out["port_id"] == net.vms["r1"]
    assert (out["packet"]["eth_src"], out["packet"]["eth_dst"], out["packet"]["ip_ttl"]) == (
        ROUTER_MAC["right"], VM_MAC["r1"], 63)
    assert (out["packet"]["ip_src"], out["packet"]["ip_dst"]) == ("10.0.1.1", "10.0.2.1")
    assert step["devices"] == [net.vms["l1"], net.bridges["left"], step["devices"][2], net.router_ports["left"],
                               net.router, net.router_ports["right"], step["devices"][6], right, net.vms["r1"]]


def test_routing_waits_for_arp_then_a_reply_step_resolves_it(cli: Cli, net: Net) -> None:
    arp_reply = (f"arp_op=reply,eth_src={VM_MAC['r1']},arp_spa=10.0.2.1,arp_tha={ROUTER_MAC['right']},"
                 "arp_tpa=10.0.2.254")
    waits, answered, routed = trace(cli, net, ("l1", udp("l1", ROUTER_MAC["left"], "10.0.2.1")),
                                    ("r1", arp_reply), ("l1", udp("l1", ROUTER_MAC["left"], "10.0.2.1")))
    assert waits["result"] == "postponed" and waits["reason"] == f"waiting for arp {net.router}/10.0.2.1"
    assert {g["port_id"] for g in waits["generated"]} == {net.vms["r1"], net.vms["r2"]}
    assert all(g["packet"]["arp_op"] == "request" and g["packet"]["arp_tpa"] == "10.0.2.1" for g in waits["generated"])
    assert answered["result"] == "consumed"
    assert routed["result"] == "forward" and [o["port_id"] for o in routed["outputs"]] == [net.vms["r1"]]
    assert routed["outputs"][0]["packet"]["ip_ttl"] == 63


def test_no_route_generates_icmp_net_unreachable(cli: Cli, net: Net) -> None:
    (step,) = trace(cli, net, ("l1", udp("l1", ROUTER_MAC["left"], "192.168.7.7")))
    assert step["result"] == "temporary_drop" and step["drop_reason"] == "no route to 192.168.7.7"
    (icmp,) = step["generated"]
    assert icmp["port_id"] == net.vms["l1"] and icmp["from_port"] == net.router_ports["left"]
    packet = icmp["packet"]
    assert (packet["ip_src"], packet["ip_dst"], packet["ip_proto"]) == ("10.0.1.254", "10.0.1.1", "icmp")
    assert (packet["icmp_type"], packet["icmp_code"]) == (3, 0)
    assert step["outputs"] == []


def test_chain_drop_names_the_rule(cli: Cli, net: Net) -> None:
    dns, web = trace(cli, net, ("l1", udp("l1", "l2", extra=",tp_dst=53")),
                     ("l1", udp("l1", "l2", extra=",ip_proto=tcp,tp_dst=443")))
    assert dns["result"] == "drop" and dns["drop_reason"] == "bridge inbound filter: drop"
    matched = [s for s in dns["steps"] if "matched" in s]
    assert len(matched) == 1 and 'chain "no-dns"' in matched[0] and f"[rule {net.drop_rule}]" in matched[0]
    assert dns["outputs"] == [] and net.chain not in dns["devices"]
    assert web["result"] == "forward"


def test_arp_request_to_the_router_port_is_answered(cli: Cli, net: Net) -> None:
    (step,) = trace(cli, net, ("l1", f"eth_src={VM_MAC['l1']},arp_spa=10.0.1.1,arp_tpa=10.0.1.254"))
    assert step["packet"]["eth_dst"] == "ff:ff:ff:ff:ff:ff" and step["packet"]["arp_op"] == "request"
    assert step["result"] == "consumed" and step["outputs"] == []
    (reply,) = step["generated"]
    assert reply["port_id"] == net.vms["l1"]
    assert (reply["packet"]["arp_op"], reply["packet"]["arp_spa"], reply["packet"]["arp_sha"]) == (
        "reply", "10.0.1.254", ROUTER_MAC["left"])


def test_readable_trace_has_device_and_rule_lines(cli: Cli, net: Net) -> None:
    text = trace(cli, net, ("l1", udp("l1", "l2", extra=",tp_dst=53")),
                 ("l1", udp("l1", ROUTER_MAC["left"], "192.168.7.7")), as_json=False)
    assert f"step 1: in port {net.vms['l1'][:8]} of bridge \"left\" [tap-l1]" in text
    assert "udp 10.0.1.1:10000 > 10.0.1.2:53 ttl 64" in text
    assert '\n  bridge "left"\n' in text
    assert "bridge inbound filter" in text and f"[rule {net.drop_rule}]" in text
    assert "=> drop: bridge inbound filter: drop" in text
    assert "step 2:" in text and 'of router "edge" 10.0.1.254/24' in text
    assert "=> temporary_drop: no route to 192.168.7.7" in text
    assert "generated at port" in text and "icmp 10.0.1.254 > 10.0.1.1 type 3 code 0" in text


def snat(admin: Client, net: Net) -> None:
    """Traffic leaving by the right router port is SNAT-ed to 10.0.2.100 (dynamic: ports 1024-65535); traffic to
    10.0.2.100 is reverse-SNAT-ed. Both VMs' MACs are known (ARP and MAC tables seeded through the API)."""
    for side, ip, vm in (("left", "10.0.1.1", "l1"), ("right", "10.0.2.1", "r1")):
        admin.request("POST", f"{admin.url}/bridges/{net.bridges[side]}/arp_table", body={"ip": ip, "mac": VM_MAC[vm]})
        admin.request("POST", f"{admin.url}/bridges/{net.bridges[side]}/mac_table",
                      body={"macAddr": VM_MAC[vm], "portId": net.vms[vm]})
    outbound = admin.create("chains", {"name": "snat-out", "tenantId": "acme"})["id"]
    admin.create_child("chains", outbound, "rules", {
        "type": "snat", "flowAction": "accept", "outPorts": [net.router_ports["right"]],
        "natTargets": [{"addressFrom": "10.0.2.100", "addressTo": "10.0.2.100", "portFrom": 1024, "portTo": 65535}]})
    inbound = admin.create("chains", {"name": "snat-in", "tenantId": "acme"})["id"]
    admin.create_child("chains", inbound, "rules", {"type": "rev_snat", "flowAction": "accept",
                                                    "nwDstAddress": "10.0.2.100", "nwDstLength": 32})
    admin.update("routers", net.router, {"inboundFilterId": inbound, "outboundFilterId": outbound})


def test_snat_ping_and_its_reply_share_nat_state(cli: Cli, net: Net, admin: Client) -> None:
    snat(admin, net)
    ping = f"eth_src={VM_MAC['l1']},eth_dst={ROUTER_MAC['left']},ip_src=10.0.1.1,ip_dst=10.0.2.1,icmp_id=7"
    pong = (f"eth_src={VM_MAC['r1']},eth_dst={ROUTER_MAC['right']},ip_src=10.0.2.1,ip_dst=10.0.2.100,"
            "icmp_type=0,icmp_id=7")
    out, back = trace(cli, net, ("l1", ping), ("r1", pong))
    assert out["result"] == "forward" and [o["port_id"] for o in out["outputs"]] == [net.vms["r1"]]
    assert (out["outputs"][0]["packet"]["ip_src"], out["outputs"][0]["packet"]["icmp_id"]) == ("10.0.2.100", 7)
    assert back["result"] == "forward" and [o["port_id"] for o in back["outputs"]] == [net.vms["l1"]]
    packet = back["outputs"][0]["packet"]
    assert (packet["ip_src"], packet["ip_dst"], packet["icmp_type"], packet["eth_dst"]) == (
        "10.0.2.1", "10.0.1.1", 0, VM_MAC["l1"])


def test_reply_step_through_dynamic_snat(cli: Cli, net: Net, admin: Client) -> None:
    snat(admin, net)
    request, reply = trace(cli, net, ("l1", udp("l1", ROUTER_MAC["left"], "10.0.2.1", ",tp_src=5353,tp_dst=5000")),
                           ("r1", "reply=1"))
    sent = request["outputs"][0]["packet"]
    assert sent["ip_src"] == "10.0.2.100" and 1024 <= sent["tp_src"] <= 65535
    assert (reply["packet"]["ip_dst"], reply["packet"]["tp_dst"], reply["packet"]["eth_dst"]) == (
        "10.0.2.100", sent["tp_src"], ROUTER_MAC["right"])
    assert reply["result"] == "forward" and [o["port_id"] for o in reply["outputs"]] == [net.vms["l1"]]
    back = reply["outputs"][0]["packet"]
    assert (back["ip_src"], back["tp_src"], back["ip_dst"], back["tp_dst"]) == ("10.0.2.1", 5000, "10.0.1.1", 5353)


def test_dhcp_discover_is_answered_with_an_offer(cli: Cli, net: Net, admin: Client) -> None:
    left = net.bridges["left"]
    admin.create_child("bridges", left, "dhcp", {"subnetPrefix": "10.0.1.0", "subnetLength": 24,
                                                 "defaultGateway": "10.0.1.254", "serverAddr": "10.0.1.253"})
    admin.request("POST", f"{admin.url}/bridges/{left}/dhcp/10.0.1.0_24/hosts",
                  body={"macAddr": VM_MAC["l1"], "ipAddr": "10.0.1.1"})
    (step,) = trace(cli, net, ("l1", f"eth_src={VM_MAC['l1']},dhcp=discover"))
    assert step["packet"]["dhcp"] == "discover" and step["result"] == "consumed"
    (offer,) = step["generated"]
    assert offer["port_id"] == net.vms["l1"]
    assert (offer["packet"]["dhcp"], offer["packet"]["dhcp_yiaddr"], offer["packet"]["tp_dst"]) == (
        "offer", "10.0.1.1", 68)


# ---- errors ----

def test_bad_spec_names_the_key(cli: Cli, net: Net) -> None:
    result = cli("trace", "--step", f"{net.vms['l1']}:ip_dst=10.0.1.2", "--step", f"{net.vms['l1']}:ttl=3")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --step 2 ('{net.vms['l1']}:ttl=3'): ttl: unknown key; the keys are eth_src, eth_dst, vlan, "
        "eth_type, arp_op, arp_sha, arp_spa, arp_tha, arp_tpa, ip_src, ip_dst, ip_proto, ip_ttl, ip_frag, tp_src, "
        "tp_dst, icmp_type, icmp_code, icmp_id, dhcp, payload_len, reply"]
    bad_value = cli("trace", "--step", f"{net.vms['l1']}:ip_ttl=300")
    assert bad_value.exit_code == 1 and "ip_ttl: must be between 0 and 255, not 300" in bad_value.stderr


def test_unknown_port_and_missing_steps(cli: Cli, net: Net) -> None:
    missing = "2b7b2a4e-0000-4000-8000-000000000000"
    result = cli("trace", "--step", f"{missing}:ip_dst=10.0.1.2")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: --step 1: unknown port '{missing}': no such port in the topology"
    assert cli("trace").exit_code != 0
    forward = cli("trace", "--step", f"{net.vms['l1']}:reply=1")
    assert forward.exit_code == 1 and "reply: must name an earlier step, not 1" in forward.stderr
    nothing = cli("trace", "--step", f"{net.vms['l1']}:" + udp("l1", ROUTER_MAC["left"], "192.168.7.7"),
                  "--step", f"{net.vms['l2']}:reply=1")
    assert nothing.exit_code == 1 and nothing.stderr.strip() == (
        "error: --step 2: reply: step 1 sent nothing out to reply to")


def test_a_tenant_cannot_read_the_snapshot(cli: Cli, net: Net) -> None:
    result = cli("trace", "--step", f"{net.vms['l1']}:", env={"MIDONET_USERNAME": "alice",
                                                             "MIDONET_PASSWORD": "alice-pw"})
    assert result.exit_code == 1 and "HTTP 403" in result.stderr and "only admins" in result.stderr


# ---- the snapshot, rebuilt (no server needed) ----

def document(b: TopologyBuilder, tables: dict[str, dict[str, str]] | None = None,
             active: tuple[str, ...] = ()) -> dict[str, Any]:
    records: dict[str, list[dict[str, Any]]] = {}
    for record in b.records.values():
        records.setdefault(record.kind(), []).append(to_dict(record))
    return {"records": records, "tables": tables or {},
            "port_state": {p: {"active": True, "host": HOST} for p in active}}


def test_load_keeps_routes_of_inactive_exterior_ports_only_when_assumed_active() -> None:
    b = TopologyBuilder()
    router = b.router("r")
    uplink = b.router_port(router, "192.0.2.1/24", "02:00:00:00:aa:01", host_id=HOST, interface_name="eth1")
    b.route(router, "0.0.0.0/0", uplink, gateway="192.0.2.254")

    def routes(doc: dict[str, Any], **kw: bool) -> int:
        table = load(doc, FakeClock(), **kw).topology.get_router(router.id).routing_table
        return sum(1 for route in table.routes if route.next_hop is NextHop.PORT)

    assert routes(document(b)) == 0
    assert routes(document(b, active=(uplink.id,))) == 1
    assert routes(document(b), assume_active=True) == 1


def test_load_seeds_tables_and_skips_what_it_does_not_know() -> None:
    b = TopologyBuilder()
    bridge, router = b.bridge("br"), b.router("r")
    vm = b.exterior_port(bridge, "vm")
    doc = document(b, {
        f"Bridge/{bridge.id}/mac_table:0": {"02:00:00:00:00:0a": vm.id, "junk": vm.id},
        f"Bridge/{bridge.id}/mac_table:7": {"02:00:00:00:00:0b": vm.id},
        f"Bridge/{bridge.id}/ip4_mac_table": {"10.0.0.10": "02:00:00:00:00:0a", "10.0.0.11": "not-a-mac"},
        f"Router/{router.id}/arp_table": {"10.0.0.10": "02:00:00:00:00:0a"},
        f"Port/{vm.id}/peering_table": {"10.0.0.12": "02:00:00:00:00:0c"},
        f"Bridge/{router.id}/ip4_mac_table": {"10.0.0.13": "02:00:00:00:00:0d"},    # kind does not match
    })
    doc["records"]["Gizmo"] = [{"id": "x"}]
    world = load(doc, FakeClock())
    assert world.skipped == ["Gizmo"]
    assert world.tables.mac_table.entries(bridge.id, 0) == {"02:00:00:00:00:0a": vm.id}
    assert world.tables.mac_table.entries(bridge.id, 7) == {"02:00:00:00:00:0b": vm.id}
    assert world.tables.ip4_mac.lookup(bridge.id, "10.0.0.10") == "02:00:00:00:00:0a"
    assert world.tables.ip4_mac.lookup(bridge.id, "10.0.0.11") is None
    assert world.tables.arp_cache.entries(router.id) == {"10.0.0.10": "02:00:00:00:00:0a"}
    assert world.port(vm.id) == vm and world.port(bridge.id) is None


@pytest.mark.parametrize(("doc", "words"), [
    ({}, "no `records`"),
    ({"records": {"Bridge": {}}}, "not a list"),
    ({"records": {"Bridge": [{"id": "not-a-uuid"}]}}, "Bridge record 0 is not valid"),
])
def test_load_refuses_a_malformed_document(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(SnapshotError, match=words):
        load(doc, FakeClock())
