"""A bridge's DHCP subnets and hosts, through the real midonetclient and plain HTTP, on both store backends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from midonet.topology.services import DhcpSubnet
from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

MISSING = "2b7b2a4e-0000-4000-8000-000000000000"
SUBNET = "application/vnd.org.midonet.DhcpSubnet-v2+json"
HOSTS = "application/vnd.org.midonet.collection.DhcpHost-v2+json"


def _bridge(client: httpx.Client, tenant: str = "tenant-a") -> str:
    r = client.post("/bridges", json={"name": "b", "tenantId": tenant})
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def _subnet(client: httpx.Client, bridge: str, prefix: str = "10.0.0.0", length: int = 24, **extra: Any) -> str:
    r = client.post(f"/bridges/{bridge}/dhcp", json={"subnetPrefix": prefix, "subnetLength": length, **extra})
    assert r.status_code == 201, r.text
    return str(r.headers["location"])


def test_subnets_and_hosts_with_the_client(api: Api, admin: httpx.Client) -> None:
    mido = api.mido()
    bridge = mido.add_bridge().name("b").tenant_id("tenant-a").create()
    # The client's own helper sends the length as a string.
    mido.add_bridge_dhcp(bridge, "10.0.0.1", "10.0.0.0/24", host_rts=[
        {"destination": "169.254.169.254/32", "nexthop": "10.0.0.2"}], dns_nservers=["8.8.8.8", "1.1.1.1"])
    sub = bridge.get_dhcp_subnet("10.0.0.0_24")
    assert (sub.get_subnet_prefix(), sub.get_subnet_length(), sub.get_default_gateway()) == ("10.0.0.0", 24,
                                                                                             "10.0.0.1")
    assert sub.get_dns_server_addrs() == ["8.8.8.8", "1.1.1.1"]
    assert sub.get_opt121_routes() == [{"destinationPrefix": "169.254.169.254", "destinationLength": 32,
                                        "gatewayAddr": "10.0.0.2"}]
    assert (sub.is_enabled(), sub.get_server_addr(), sub.get_interface_mtu()) == (True, None, None)
    assert sub.get_uri().endswith(f"/bridges/{bridge.get_id()}/dhcp/10.0.0.0_24")
    other = bridge.add_dhcp_subnet().subnet_prefix("10.1.0.0").subnet_length(16).server_addr("10.1.0.1") \
        .interface_mtu(1450).enabled(False).create()
    assert (other.get_server_addr(), other.get_interface_mtu(), other.is_enabled()) == ("10.1.0.1", 1450, False)
    assert sorted(s.get_subnet_prefix() for s in bridge.get_dhcp_subnets()) == ["10.0.0.0", "10.1.0.0"]

    mido.update_bridge_dhcp(bridge, "10.0.0.0/24", "10.0.0.254", dns_nservers=[], enabled=False)
    sub = bridge.get_dhcp_subnet("10.0.0.0_24")
    assert (sub.get_default_gateway(), sub.get_dns_server_addrs(), sub.is_enabled()) == ("10.0.0.254", None, False)
    assert len(sub.get_opt121_routes()) == 1

    h1 = sub.add_dhcp_host().mac_addr("AA-BB-CC-00-00-01").ip_addr("10.0.0.10").name("vm1").create()
    sub.add_dhcp_host().mac_addr("aa:bb:cc:00:00:02").ip_addr("10.0.0.11").name("vm2").create()
    assert (h1.get_mac_addr(), h1.get_ip_addr(), h1.get_name()) == ("aa:bb:cc:00:00:01", "10.0.0.10", "vm1")
    assert h1.get_uri().endswith("/dhcp/10.0.0.0_24/hosts/aa-bb-cc-00-00-01")
    assert sub.get_dhcp_host("10.0.0.11", "aa:bb:cc:00:00:02").get_name() == "vm2"
    h1.name("web").ip_addr("10.0.0.20").update()
    assert sub.get_dhcp_host("10.0.0.20", "aa:bb:cc:00:00:01").get_name() == "web"
    h1.delete()
    assert [h.get_mac_addr() for h in sub.get_dhcp_hosts()] == ["aa:bb:cc:00:00:02"]
    # Updating the subnet keeps its hosts.
    sub.default_gateway("10.0.0.1").update()
    assert [h.get_mac_addr() for h in sub.get_dhcp_hosts()] == ["aa:bb:cc:00:00:02"]
    sub.delete()
    assert [s.get_subnet_prefix() for s in bridge.get_dhcp_subnets()] == ["10.1.0.0"]
    # Deleting the bridge deletes its subnets.
    mido.delete_bridge(bridge.get_id())
    assert api.store.list(DhcpSubnet) == []


def test_http_shapes(api: Api, admin: httpx.Client) -> None:
    bridge = _bridge(admin)
    uri = _subnet(admin, bridge, "10.0.0.0", 24, defaultGateway="10.0.0.1")
    dto = admin.get(uri, headers={"Accept": SUBNET}).json()
    assert dto["hosts"] == f"{uri}/hosts" and dto["dnsServerAddrs"] is None and dto["opt121Routes"] == []
    host = admin.post(f"{uri}/hosts", json={"macAddr": "aa:bb:cc:00:00:01", "ipAddr": "10.0.0.5",
                                            "extraDhcpOpts": [{"optName": "mtu", "optValue": "1400"}]})
    assert host.status_code == 201 and host.headers["location"] == f"{uri}/hosts/aa-bb-cc-00-00-01"
    r = admin.get(f"{uri}/hosts", headers={"Accept": HOSTS})
    assert r.headers["content-type"] == HOSTS
    assert r.json()[0]["extraDhcpOpts"] == [{"optName": "mtu", "optValue": "1400"}]
    assert admin.get(f"{uri}/hosts/aa:bb:cc:00:00:01").json()["ipAddr"] == "10.0.0.5"
    # A subnet is found by its network: a host address in the URI names the same subnet.
    assert admin.get(f"/bridges/{bridge}/dhcp/10.0.0.77_24").json()["uri"] == uri
    # PUT of a host may change its MAC, not onto another host's.
    admin.post(f"{uri}/hosts", json={"macAddr": "aa:bb:cc:00:00:02"})
    before = snapshot(api.store)
    rejected(api, admin.put(f"{uri}/hosts/aa-bb-cc-00-00-01", json={"macAddr": "aa:bb:cc:00:00:02"}), before, 409)
    assert admin.put(f"{uri}/hosts/aa-bb-cc-00-00-01", json={"macAddr": "aa:bb:cc:00:00:03"}).status_code == 204
    assert sorted(h["macAddr"] for h in admin.get(f"{uri}/hosts").json()) == ["aa:bb:cc:00:00:02",
                                                                              "aa:bb:cc:00:00:03"]
    # A host PUT without a MAC keeps the one in the URI.
    assert admin.put(f"{uri}/hosts/aa-bb-cc-00-00-02", json={"ipAddr": "10.0.0.9"}).status_code == 204
    assert admin.get(f"{uri}/hosts/aa-bb-cc-00-00-02").json()["ipAddr"] == "10.0.0.9"


def test_conflicts_unknowns_and_bad_input(api: Api, admin: httpx.Client) -> None:
    bridge = _bridge(admin)
    uri = _subnet(admin, bridge, "10.0.0.0", 24)
    _subnet(admin, bridge, "10.2.0.0", 16)
    assert admin.post(f"{uri}/hosts", json={"macAddr": "aa:bb:cc:00:00:01"}).status_code == 201
    dhcp = f"/bridges/{bridge}/dhcp"
    before = snapshot(api.store)
    # The same network twice on a bridge; a PUT moving a subnet onto another's network.
    rejected(api, admin.post(dhcp, json={"subnetPrefix": "10.0.0.0", "subnetLength": 24}), before, 409)
    rejected(api, admin.post(dhcp, json={"subnetPrefix": "10.0.0.9", "subnetLength": 24}), before, 409)
    rejected(api, admin.put(uri, json={"subnetPrefix": "10.2.0.0", "subnetLength": 16}), before, 409)
    rejected(api, admin.post(f"{uri}/hosts", json={"macAddr": "AA:BB:CC:00:00:01"}), before, 409)
    # Unknown bridge, subnet, host.
    rejected(api, admin.get(f"/bridges/{MISSING}/dhcp"), before, 404)
    rejected(api, admin.post(f"/bridges/{MISSING}/dhcp", json={"subnetPrefix": "10.9.0.0", "subnetLength": 24}),
             before, 404)
    rejected(api, admin.get(f"{dhcp}/10.9.0.0_24"), before, 404)
    rejected(api, admin.get(f"{dhcp}/junk"), before, 404)
    rejected(api, admin.delete(f"{dhcp}/10.9.0.0_24"), before, 404)
    rejected(api, admin.put(f"{dhcp}/10.9.0.0_24", json={}), before, 404)
    rejected(api, admin.get(f"{dhcp}/10.9.0.0_24/hosts"), before, 404)
    rejected(api, admin.get(f"{uri}/hosts/aa-bb-cc-00-00-09"), before, 404)
    rejected(api, admin.put(f"{uri}/hosts/aa-bb-cc-00-00-09", json={}), before, 404)
    rejected(api, admin.delete(f"{uri}/hosts/aa-bb-cc-00-00-09"), before, 404)
    rejected(api, admin.delete(f"{uri}/hosts/not-a-mac"), before, 404)
    # Bad input names the property.
    for body, prop in (({"subnetLength": 24}, "subnetPrefix"),
                       ({"subnetPrefix": "10.0.0", "subnetLength": 24}, "subnetPrefix"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 33}, "subnetLength"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": "x"}, "subnetLength"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "defaultGateway": "x"}, "defaultGateway"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "serverAddr": "::1"}, "serverAddr"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "dnsServerAddrs": ["8.8.8"]},
                        "dnsServerAddrs[0]"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "dnsServerAddrs": "8.8.8.8"},
                        "dnsServerAddrs"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "interfaceMTU": 10}, "interfaceMTU"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "enabled": "yes"}, "enabled"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "opt121Routes": [{"destinationPrefix":
                         "1.2.3.0", "destinationLength": 24}]}, "opt121Routes[0].gatewayAddr"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "opt121Routes": [{"destinationPrefix":
                         "1.2.3", "destinationLength": 24, "gatewayAddr": "10.9.0.1"}]},
                        "opt121Routes[0].destinationPrefix"),
                       ({"subnetPrefix": "10.9.0.0", "subnetLength": 24, "opt121Routes": ["x"]}, "opt121Routes[0]")):
        rejected(api, admin.post(dhcp, json=body), before, 400, prop)
    rejected(api, admin.put(uri, json={"interfaceMTU": 70000}), before, 400, "interfaceMTU")
    for body, prop in (({}, "macAddr"), ({"macAddr": "aa:bb"}, "macAddr"),
                       ({"macAddr": "aa:bb:cc:00:00:05", "ipAddr": "10.0.0.300"}, "ipAddr"),
                       ({"macAddr": "aa:bb:cc:00:00:05", "extraDhcpOpts": [{"optName": "x"}]}, "extraDhcpOpts[0]"),
                       ({"macAddr": "aa:bb:cc:00:00:05", "extraDhcpOpts": {}}, "extraDhcpOpts")):
        rejected(api, admin.post(f"{uri}/hosts", json=body), before, 400, prop)
    rejected(api, admin.put(f"{uri}/hosts/aa-bb-cc-00-00-01", json={"ipAddr": "x"}), before, 400, "ipAddr")


def test_dhcp_follows_the_bridges_tenant(api: Api) -> None:
    with api.http("alice") as alice, api.http("bob") as bob, api.http("carol") as carol:
        bridge = _bridge(alice, "tenant-a")
        uri = _subnet(alice, bridge)
        assert alice.post(f"{uri}/hosts", json={"macAddr": "aa:bb:cc:00:00:01"}).status_code == 201
        before = snapshot(api.store)
        for r in (bob.get(f"/bridges/{bridge}/dhcp"), bob.get(uri), bob.get(f"{uri}/hosts"),
                  bob.get(f"{uri}/hosts/aa-bb-cc-00-00-01"),
                  bob.post(f"/bridges/{bridge}/dhcp", json={"subnetPrefix": "10.1.0.0", "subnetLength": 24}),
                  bob.put(uri, json={"enabled": False}), bob.delete(uri),
                  bob.post(f"{uri}/hosts", json={"macAddr": "aa:bb:cc:00:00:02"}),
                  bob.delete(f"{uri}/hosts/aa-bb-cc-00-00-01"),
                  carol.post(f"/bridges/{bridge}/dhcp", json={"subnetPrefix": "10.1.0.0", "subnetLength": 24}),
                  carol.put(uri, json={"enabled": False}), carol.delete(uri),
                  carol.put(f"{uri}/hosts/aa-bb-cc-00-00-01", json={"name": "x"})):
            rejected(api, r, before, 403)
        assert carol.get(uri).json()["subnetPrefix"] == "10.0.0.0"
        assert [h["macAddr"] for h in carol.get(f"{uri}/hosts").json()] == ["aa:bb:cc:00:00:01"]
