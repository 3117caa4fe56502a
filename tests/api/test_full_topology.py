"""The foundation's acceptance scenario, driven by the real midonetclient 5.2.0 against both store backends.

Two tenants each build: two bridges behind a router (linked interior ports), exterior ports bound to a
host's interfaces, routes, chains with literal, jump, NAT (all four kinds) and return rules at given
positions, a port group, an IP address group, DHCP subnets with hosts, BGP peers and networks, a mirror;
plus (admin) a tunnel zone with members and a load balancer with a pool, members, a VIP and a health
monitor. Everything is read back and compared field by field, updated, and the router deleted to check
the cascade.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

HOST_A = "7d1c0b38-1111-4d5b-9b0a-00000000000a"
HOST_B = "7d1c0b38-1111-4d5b-9b0a-00000000000b"


def build_tenant(mido: Any, tenant: str, host: Any, n: int) -> dict[str, Any]:
    t: dict[str, Any] = {}
    router = t["router"] = mido.add_router().name(f"{tenant}-router").tenant_id(tenant).create()
    t["bridges"], t["rports"], t["vm_ports"] = [], [], []
    for i in (1, 2):
        bridge = mido.add_bridge().name(f"{tenant}-br{i}").tenant_id(tenant).create()
        rport = router.add_port().port_address(f"10.{n}.{i}.254").network_address(f"10.{n}.{i}.0") \
            .network_length(24).port_mac(f"02:00:00:00:{n:02x}:{i:02x}").create()
        link = bridge.add_port().create()
        rport.link(link.get_id())
        router.add_route().type("Normal").src_network_addr("0.0.0.0").src_network_length(0) \
            .dst_network_addr(f"10.{n}.{i}.0").dst_network_length(24).next_hop_port(rport.get_id()) \
            .weight(100).create()
        vm = bridge.add_port().create()
        host.add_host_interface_port().port_id(vm.get_id()).interface_name(f"{tenant}-vm{i}").create()
        dhcp = bridge.add_dhcp_subnet().subnet_prefix(f"10.{n}.{i}.0").subnet_length(24) \
            .default_gateway(f"10.{n}.{i}.254").server_addr(f"10.{n}.{i}.253").dns_server_addrs(["8.8.8.8"]) \
            .interface_mtu(1450).opt121_routes([{"destinationPrefix": "169.254.169.254", "destinationLength": 32,
                                                 "gatewayAddr": f"10.{n}.{i}.1"}]).create()
        dhcp.add_dhcp_host().mac_addr(f"aa:bb:cc:00:{n:02x}:{i:02x}").ip_addr(f"10.{n}.{i}.10") \
            .name(f"vm{i}").create()
        t["bridges"].append(bridge)
        t["rports"].append(rport)
        t["vm_ports"].append(vm)
    # Chains: inbound filter with rules placed at explicit positions.
    inbound = t["inbound"] = mido.add_chain().name(f"{tenant}-in").tenant_id(tenant).create()
    sub = t["sub"] = mido.add_chain().name(f"{tenant}-sub").tenant_id(tenant).create()
    sub.add_rule().type("return").nw_proto(1).create()
    t["rules"] = [
        inbound.add_rule().type("rev_dnat").flow_action("accept").position(1).create(),
        inbound.add_rule().type("rev_snat").flow_action("accept").position(1).create(),
        inbound.add_rule().type("dnat").flow_action("accept").position(3).nw_dst_address(f"200.{n}.0.10")
        .nw_dst_length(32).nat_targets([{"addressFrom": f"10.{n}.1.10", "addressTo": f"10.{n}.1.10",
                                         "portFrom": 0, "portTo": 0}]).create(),
        inbound.add_rule().type("jump").jump_chain_id(sub.get_id()).position(4).create(),
        inbound.add_rule().type("drop").position(5).nw_src_address("192.168.0.0").nw_src_length(16).create(),
    ]
    outbound = t["outbound"] = mido.add_chain().name(f"{tenant}-out").tenant_id(tenant).create()
    outbound.add_rule().type("snat").flow_action("accept").out_ports([t["rports"][0].get_id()]) \
        .nat_targets([{"addressFrom": f"200.{n}.0.1", "addressTo": f"200.{n}.0.1", "portFrom": 1024,
                       "portTo": 65535}]).create()
    router.inbound_filter_id(inbound.get_id()).outbound_filter_id(outbound.get_id()).update()
    # Groups.
    pg = t["port_group"] = mido.add_port_group().name(f"{tenant}-pg").tenant_id(tenant).stateful(True).create()
    for port in t["rports"]:
        pg.add_port_group_port().port_id(port.get_id()).create()
    ipg = t["ip_group"] = mido.add_ip_addr_group().name(f"{tenant}-ipg").create()
    ipg.add_ipv4_addr().addr(f"10.{n}.1.10").create()
    # BGP.
    router.asn(64512 + n).update()
    t["bgp_peer"] = router.add_bgp_peer().asn(65000 + n).address(f"172.16.{n}.1").create()
    t["bgp_net"] = router.add_bgp_network().subnet_address(f"10.{n}.0.0").subnet_length(16).create()
    # Mirror of ICMP on bridge 1 to the second VM port.
    t["mirror"] = mido.add_mirror().to_port(t["vm_ports"][1].get_id()).set_conditions([{"nwProto": 1}]).create()
    t["bridges"][0].inbound_mirrors([t["mirror"].get_id()]).update()
    return t


def test_two_tenants_full_topology(api: Api, admin: Any) -> None:
    for host_id, name in ((HOST_A, "host-a"), (HOST_B, "host-b")):
        assert admin.post("/hosts", json={"id": host_id, "name": name}).status_code == 201
    mido = api.mido()
    host_a = mido.get_host(HOST_A)
    tenants = {"tenant-a": build_tenant(mido, "tenant-a", host_a, 1),
               "tenant-b": build_tenant(mido, "tenant-b", host_a, 2)}

    tz = mido.add_vxlan_tunnel_zone().name("tz").create()
    tz.add_tunnel_zone_host().host_id(HOST_A).ip_address("192.168.100.1").create()
    tz.add_tunnel_zone_host().host_id(HOST_B).ip_address("192.168.100.2").create()

    router_a = tenants["tenant-a"]["router"]
    lb = mido.add_load_balancer().create()
    router_a.load_balancer_id(lb.get_id()).update()
    hm = mido.add_health_monitor().type("TCP").delay(5).timeout(10).max_retries(3).create()
    pool = lb.add_pool().lb_method("ROUND_ROBIN").protocol("TCP").health_monitor_id(hm.get_id()).create()
    members = [pool.add_pool_member().address(f"10.1.1.{i}").protocol_port(80).weight(i).create() for i in (1, 2)]
    vip = pool.add_vip().address("200.1.0.100").protocol_port(80).session_persistence("SOURCE_IP").create()

    # --- read everything back -------------------------------------------------------------------
    for tenant, n in (("tenant-a", 1), ("tenant-b", 2)):
        t = tenants[tenant]
        router = mido.get_router(t["router"].get_id())
        assert (router.get_name(), router.get_tenant_id()) == (f"{tenant}-router", tenant)
        assert (router.get_inbound_filter_id(), router.get_outbound_filter_id()) == (
            t["inbound"].get_id(), t["outbound"].get_id())
        assert router.get_asn() == 64512 + n
        ports = {p.get_port_address(): p for p in router.get_ports()}
        for i in (1, 2):
            p = ports[f"10.{n}.{i}.254"]
            assert (p.get_network_address(), p.get_network_length()) == (f"10.{n}.{i}.0", 24)
            assert p.get_port_mac() == f"02:00:00:00:{n:02x}:{i:02x}"
            assert p.get_peer_id() is not None
        routes = sorted((r.get_type(), r.get_dst_network_addr(), r.get_dst_network_length(), r.get_weight())
                        for r in router.get_routes())
        assert routes == sorted([("Local", f"10.{n}.1.254", 32, 0), ("Local", f"10.{n}.2.254", 32, 0),
                                 ("Normal", f"10.{n}.1.0", 24, 100), ("Normal", f"10.{n}.2.0", 24, 100)])
        rules = list(mido.get_chain(t["inbound"].get_id()).get_rules())
        assert [r.get_type() for r in rules] == ["rev_snat", "rev_dnat", "dnat", "jump", "drop"]
        assert [r.get_position() for r in rules] == [1, 2, 3, 4, 5]
        assert rules[2].get_nat_targets()[0]["addressFrom"] == f"10.{n}.1.10"
        assert rules[3].get_jump_chain_id() == t["sub"].get_id()
        assert (rules[4].get_nw_src_address(), rules[4].get_nw_src_length()) == ("192.168.0.0", 16)
        snat = next(iter(mido.get_chain(t["outbound"].get_id()).get_rules()))
        assert snat.get_type() == "snat" and snat.get_out_ports() == [t["rports"][0].get_id()]
        assert snat.get_nat_targets()[0]["portFrom"] == 1024
        for i, bridge in enumerate(t["bridges"], start=1):
            b = mido.get_bridge(bridge.get_id())
            assert b.get_name() == f"{tenant}-br{i}"
            subnet = b.get_dhcp_subnet(f"10.{n}.{i}.0_24")
            assert subnet.get_default_gateway() == f"10.{n}.{i}.254"
            assert subnet.get_server_addr() == f"10.{n}.{i}.253"
            assert subnet.get_dns_server_addrs() == ["8.8.8.8"]
            assert subnet.get_interface_mtu() == 1450
            assert subnet.get_opt121_routes()[0]["destinationPrefix"] == "169.254.169.254"
            hosts = list(subnet.get_dhcp_hosts())
            assert [(h.get_mac_addr(), h.get_ip_addr()) for h in hosts] == [
                (f"aa:bb:cc:00:{n:02x}:{i:02x}", f"10.{n}.{i}.10")]
        pg = mido.get_port_group(t["port_group"].get_id())
        assert pg.is_stateful() if hasattr(pg, "is_stateful") else pg.dto["stateful"]
        assert sorted(p.get_port_id() for p in pg.get_ports()) == sorted(p.get_id() for p in t["rports"])
        ipg = mido.get_ip_addr_group(t["ip_group"].get_id())
        assert [a.get_addr() for a in ipg.get_addrs()] == [f"10.{n}.1.10"]
        peers = list(router.get_bgp_peers())
        assert [(p.get_asn(), p.get_address()) for p in peers] == [(65000 + n, f"172.16.{n}.1")]
        nets = list(router.get_bgp_networks())
        assert [(x.get_subnet_address(), x.get_subnet_length()) for x in nets] == [(f"10.{n}.0.0", 16)]
        mirror = mido.get_mirror(t["mirror"].get_id())
        assert mirror.get_to_port() == t["vm_ports"][1].get_id()
        assert mirror.get_conditions()[0]["nwProto"] == 1
        assert mido.get_bridge(t["bridges"][0].get_id()).get_inbound_mirrors() == [t["mirror"].get_id()]

    bound = {(p.get_port_id(), p.get_interface_name()) for p in mido.get_host(HOST_A).get_ports()}
    assert bound == {(vm.get_id(), f"{tenant}-vm{i}") for tenant, t in tenants.items()
                     for i, vm in enumerate(t["vm_ports"], start=1)}
    vm = mido.get_port(tenants["tenant-a"]["vm_ports"][0].get_id())
    assert (vm.get_host_id(), vm.get_interface_name()) == (HOST_A, "tenant-a-vm1")

    tz = mido.get_tunnel_zone(tz.get_id())
    assert tz.get_type() == "vxlan"
    assert sorted((h.get_host_id(), h.get_ip_address()) for h in tz.get_hosts()) == [
        (HOST_A, "192.168.100.1"), (HOST_B, "192.168.100.2")]

    lb = mido.get_load_balancer(lb.get_id())
    assert lb.get_router_id() == router_a.get_id()
    pool = mido.get_pool(pool.get_id())
    assert (pool.get_load_balancer_id(), pool.get_health_monitor_id()) == (lb.get_id(), hm.get_id())
    assert sorted((m.get_address(), m.get_weight()) for m in pool.get_pool_members()) == [
        ("10.1.1.1", 1), ("10.1.1.2", 2)]
    got_vip = mido.get_vip(vip.get_id())
    assert (got_vip.get_address(), got_vip.get_protocol_port(), got_vip.get_session_persistence()) == (
        "200.1.0.100", 80, "SOURCE_IP")
    assert got_vip.get_load_balancer_id() == lb.get_id()
    assert mido.get_health_monitor(hm.get_id()).get_delay() == 5

    # --- update ---------------------------------------------------------------------------------------
    members[0].weight(7).update()
    assert mido.get_pool_member(members[0].get_id()).get_weight() == 7
    b1 = mido.get_bridge(tenants["tenant-b"]["bridges"][0].get_id())
    b1.name("renamed").admin_state_up(False).update()
    b1 = mido.get_bridge(b1.get_id())
    assert (b1.get_name(), b1.get_admin_state_up()) == ("renamed", False)

    # --- delete the router: ports, routes, BGP go; the linked bridge ports are unlinked -------------
    t = tenants["tenant-b"]
    router_id = t["router"].get_id()
    port_ids = [p.get_id() for p in t["rports"]]
    route_ids = [r.get_id() for r in t["router"].get_routes()]
    mido.delete_router(router_id)
    assert admin.get(f"/routers/{router_id}").status_code == 404
    for pid in port_ids:
        assert admin.get(f"/ports/{pid}").status_code == 404
    for rid in route_ids:
        assert admin.get(f"/routes/{rid}").status_code == 404
    assert admin.get(f"/bgp_peers/{t['bgp_peer'].get_id()}").status_code == 404
    assert admin.get(f"/bgp_networks/{t['bgp_net'].get_id()}").status_code == 404
    pg = admin.get(f"/port_groups/{t['port_group'].get_id()}/ports").json()
    assert pg == []
    for bridge in t["bridges"]:
        for port in admin.get(f"/bridges/{bridge.get_id()}/ports").json():
            assert port["peerId"] is None
    # Tenant A is untouched.
    assert len(list(mido.get_router(tenants["tenant-a"]["router"].get_id()).get_ports())) == 2
