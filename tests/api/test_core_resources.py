"""Bridges, routers, ports, links, routes, chains and rules through the real midonetclient and plain HTTP.

Every test runs against both store backends (the `api` fixture). Objects are read back and compared field
by field with what was written.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _two_subnet_router(mido: Any, tenant: str) -> dict[str, Any]:
    """The spec's reference topology: a router with two /24 ports, each linked to its own bridge."""
    router = mido.add_router().name(f"{tenant}-r").tenant_id(tenant).create()
    out: dict[str, Any] = {"router": router, "bridges": [], "rports": [], "bports": []}
    for i in (1, 2):
        bridge = mido.add_bridge().name(f"{tenant}-br{i}").tenant_id(tenant).create()
        rport = (router.add_port().port_address(f"10.0.{i}.254").network_address(f"10.0.{i}.0")
                 .network_length(24).create())
        bport = bridge.add_port().create()
        rport.link(bport.get_id())
        router.add_route().type("Normal").src_network_addr("0.0.0.0").src_network_length(0) \
            .dst_network_addr(f"10.0.{i}.0").dst_network_length(24).next_hop_port(rport.get_id()) \
            .weight(100).create()
        out["bridges"].append(bridge)
        out["rports"].append(rport)
        out["bports"].append(bport)
    return out


def test_router_bridge_topology_round_trips(api: Api) -> None:
    mido = api.mido()
    topo = _two_subnet_router(mido, "tenant-a")
    router = mido.get_router(topo["router"].get_id())
    assert router.get_name() == "tenant-a-r"
    assert router.get_tenant_id() == "tenant-a"

    rports = sorted(router.get_ports(), key=lambda p: p.get_port_address())
    assert [p.get_port_address() for p in rports] == ["10.0.1.254", "10.0.2.254"]
    for rport, bport, bridge in zip(rports, topo["bports"], topo["bridges"], strict=True):
        assert rport.get_type() == "Router"
        assert rport.get_network_address() == rport.get_port_address().rsplit(".", 1)[0] + ".0"
        assert rport.get_network_length() == 24
        assert rport.get_port_mac().startswith("ac:ca:ba:")
        assert rport.get_peer_id() == bport.get_id()
        assert rport.get_device_id() == router.get_id()
        peer = mido.get_port(bport.get_id())
        assert peer.get_peer_id() == rport.get_id()
        assert peer.get_type() == "Bridge"
        assert peer.get_device_id() == bridge.get_id()
        assert [p.get_id() for p in bridge.get_peer_ports()] == [rport.get_id()]

    routes = list(router.get_routes())
    local = [r for r in routes if r.get_type() == "Local"]
    normal = [r for r in routes if r.get_type() == "Normal"]
    # Each router port brings its LOCAL /32 route; the test added one subnet route per port.
    assert sorted((r.get_dst_network_addr(), r.get_dst_network_length()) for r in local) == [
        ("10.0.1.254", 32), ("10.0.2.254", 32)]
    assert sorted((r.get_dst_network_addr(), r.get_weight()) for r in normal) == [
        ("10.0.1.0", 100), ("10.0.2.0", 100)]


def test_every_port_gets_a_distinct_tunnel_key(api: Api, admin: Any) -> None:
    mido = api.mido()
    topo = _two_subnet_router(mido, "tenant-a")
    keys = [admin.get(f"/ports/{p.get_id()}").json()["tunnelKey"] for p in topo["rports"] + topo["bports"]]
    assert all(k > 0 for k in keys)
    assert len(set(keys)) == len(keys)


def test_update_bridge_and_port_filters(api: Api) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    chain = mido.add_chain().name("in").tenant_id("tenant-a").create()
    bridge.name("renamed").inbound_filter_id(chain.get_id()).update()
    again = mido.get_bridge(bridge.get_id())
    assert again.get_name() == "renamed"
    assert again.get_inbound_filter_id() == chain.get_id()
    port = bridge.add_port().create()
    port.outbound_filter_id(chain.get_id()).update()
    assert mido.get_port(port.get_id()).get_outbound_filter_id() == chain.get_id()
    # Deleting the chain clears the filters that used it (CLEAR binding).
    mido.delete_chain(chain.get_id())
    assert mido.get_bridge(bridge.get_id()).get_inbound_filter_id() is None
    assert mido.get_port(port.get_id()).get_outbound_filter_id() is None


def test_rules_at_positions_with_literal_jump_nat_and_return(api: Api) -> None:
    mido = api.mido()
    chain = mido.add_chain().name("main").tenant_id("tenant-a").create()
    target = mido.add_chain().name("target").tenant_id("tenant-a").create()
    drop = chain.add_rule().type("drop").nw_proto(17).tp_dst({"start": 53, "end": 53}).create()
    accept = chain.add_rule().type("accept").position(1).nw_src_address("10.0.0.0").nw_src_length(8) \
        .inv_nw_src(True).create()
    jump = chain.add_rule().type("jump").jump_chain_id(target.get_id()).position(3).create()
    dnat = chain.add_rule().type("dnat").flow_action("accept").position(4).nw_dst_address("100.0.0.1") \
        .nw_dst_length(32).nat_targets([{"addressFrom": "10.0.1.1", "addressTo": "10.0.1.1",
                                         "portFrom": 0, "portTo": 0}]).create()
    snat = chain.add_rule().type("snat").flow_action("continue").position(5).nat_targets(
        [{"addressFrom": "200.0.0.1", "addressTo": "200.0.0.2", "portFrom": 1024, "portTo": 2047}]).create()
    rev_dnat = chain.add_rule().type("rev_dnat").flow_action("accept").position(6).create()
    rev_snat = chain.add_rule().type("rev_snat").flow_action("accept").position(7).create()
    ret = target.add_rule().type("return").match_return_flow(True).create()

    rules = list(mido.get_chain(chain.get_id()).get_rules())
    assert [r.get_id() for r in rules] == [accept.get_id(), drop.get_id(), jump.get_id(), dnat.get_id(),
                                           snat.get_id(), rev_dnat.get_id(), rev_snat.get_id()]
    assert [r.get_position() for r in rules] == [1, 2, 3, 4, 5, 6, 7]
    by_id = {r.get_id(): r for r in rules}
    got = by_id[drop.get_id()]
    assert got.get_type() == "drop" and got.get_nw_proto() == 17
    assert got.get_tp_dst() == {"start": 53, "end": 53}
    assert got.get_fragment_policy() == "header"      # L4 match without a policy -> header
    got = by_id[accept.get_id()]
    assert (got.get_nw_src_address(), got.get_nw_src_length(), got.is_inv_nw_src()) == ("10.0.0.0", 8, True)
    assert by_id[jump.get_id()].get_jump_chain_id() == target.get_id()
    got = by_id[dnat.get_id()]
    assert got.get_type() == "dnat" and got.get_flow_action() == "accept"
    assert got.get_nat_targets() == [{"addressFrom": "10.0.1.1", "addressTo": "10.0.1.1",
                                      "portFrom": 0, "portTo": 0}]
    got = by_id[snat.get_id()]
    assert got.get_flow_action() == "continue" and got.get_fragment_policy() == "unfragmented"
    assert by_id[rev_dnat.get_id()].get_type() == "rev_dnat"
    assert by_id[rev_snat.get_id()].get_type() == "rev_snat"
    assert [(r.get_id(), r.is_match_return_flow()) for r in target.get_rules()] == [(ret.get_id(), True)]

    # Deleting the jump target deletes the jump rule (CASCADE), the others keep their order.
    mido.delete_chain(target.get_id())
    left = [r.get_id() for r in mido.get_chain(chain.get_id()).get_rules()]
    assert left == [accept.get_id(), drop.get_id(), dnat.get_id(), snat.get_id(), rev_dnat.get_id(),
                    rev_snat.get_id()]


def test_deleting_a_router_cascades_to_ports_and_routes_and_unlinks_peers(api: Api) -> None:
    mido = api.mido()
    topo = _two_subnet_router(mido, "tenant-a")
    router_id = topo["router"].get_id()
    route_ids = [r.get_id() for r in topo["router"].get_routes()]
    mido.delete_router(router_id)
    for rport in topo["rports"]:
        with pytest.raises(Exception) as e:
            mido.get_port(rport.get_id())
        assert getattr(e.value, "code", None) == 404
    for bport in topo["bports"]:
        assert mido.get_port(bport.get_id()).get_peer_id() is None
    admin = api.http()
    for rid in route_ids:
        assert admin.get(f"/routes/{rid}").status_code == 404
    assert admin.get(f"/routers/{router_id}").status_code == 404
    # The bridges survive, with their own ports.
    for bridge in topo["bridges"]:
        assert len(list(mido.get_bridge(bridge.get_id()).get_ports())) == 1


def test_unlink_clears_both_sides(api: Api) -> None:
    mido = api.mido()
    topo = _two_subnet_router(mido, "tenant-a")
    rport = mido.get_port(topo["rports"][0].get_id())
    rport.unlink()
    assert mido.get_port(rport.get_id()).get_peer_id() is None
    assert mido.get_port(topo["bports"][0].get_id()).get_peer_id() is None


def test_application_root_lists_every_collection(api: Api, admin: Any) -> None:
    r = admin.get("/", headers={"Accept": "application/vnd.org.midonet.Application-v5+json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.org.midonet.Application-v5+json"
    body = r.json()
    assert body["version"] == "5"
    for key in ("bridges", "routers", "ports", "chains", "portGroups", "ipAddrGroups", "hosts", "tunnelZones",
                "tenants", "loadBalancers", "pools", "poolMembers", "vips", "healthMonitors", "mirrors", "vteps",
                "traceRequests", "qosPolicies", "systemState"):
        assert body[key].startswith(api.url + "/"), key
    for key in ("bridgeTemplate", "routerTemplate", "portTemplate", "ruleTemplate", "routeTemplate",
                "bgpPeerTemplate", "bgpNetworkTemplate", "tunnelZoneTemplate", "hostTemplate"):
        assert body[key].endswith("/{id}"), key


def test_vendor_media_types_and_locations(api: Api, admin: Any) -> None:
    r = admin.post("/bridges", json={"name": "x", "tenantId": "tenant-a"},
                   headers={"Content-Type": "application/vnd.org.midonet.Bridge-v4+json"})
    assert r.status_code == 201
    location = r.headers["location"]
    got = admin.get(location, headers={"Accept": "application/vnd.org.midonet.Bridge-v4+json"})
    assert got.headers["content-type"] == "application/vnd.org.midonet.Bridge-v4+json"
    assert got.json()["uri"] == location
    listed = admin.get("/bridges", headers={"Accept": "application/vnd.org.midonet.collection.Bridge-v4+json"})
    assert listed.headers["content-type"] == "application/vnd.org.midonet.collection.Bridge-v4+json"
    assert [b["id"] for b in listed.json()] == [got.json()["id"]]
    assert admin.get(location, headers={"Accept": "application/vnd.org.midonet.Router-v3+json"}).status_code == 406
    assert admin.put(location, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert admin.delete(location).status_code == 204
    assert admin.get(location).status_code == 404


def test_tenant_filter_on_lists(api: Api, admin: Any) -> None:
    for tenant in ("tenant-a", "tenant-b", "tenant-b"):
        assert admin.post("/bridges", json={"name": tenant, "tenantId": tenant}).status_code == 201
    assert len(admin.get("/bridges").json()) == 3
    assert len(admin.get("/bridges", params={"tenant_id": "tenant-b"}).json()) == 2
    tenants = sorted(t["id"] for t in admin.get("/tenants").json())
    assert tenants == ["tenant-a", "tenant-b"]
