"""A tenant router's subnets through the REST API, for the testbed's tests and benchmarks.

    router = client.create("routers", {"name": "r1", "tenantId": TENANT})["id"]
    bridge, router_port = routed_subnet(client, router, 1, "172.16.1", tenant=TENANT)
    port = bound_port(client, bridge, host_id, vm.interface)

May import: `midonet.client`.
"""

from __future__ import annotations

from midonet.client import Client


def routed_subnet(client: Client, router: str, n: int, subnet: str, *, tenant: str) -> tuple[str, str]:
    """Bridge `br<n>` joined to `router` as SUBNET.0/24: a router port at SUBNET.254 (MAC ac:ca:ba:00:0<n>:fe)
    linked to a bridge port, and the route to the subnet through it. (bridge id, router port id)."""
    bridge = str(client.create("bridges", {"name": f"br{n}", "tenantId": tenant})["id"])
    router_port = str(client.create_child("routers", router, "ports", {
        "portMac": f"ac:ca:ba:00:0{n}:fe", "portAddress": f"{subnet}.254", "networkAddress": f"{subnet}.0",
        "networkLength": 24})["id"])
    client.link(str(client.create_child("bridges", bridge, "ports", {})["id"]), router_port)
    client.create_child("routers", router, "routes", {
        "dstNetworkAddr": f"{subnet}.0", "dstNetworkLength": 24, "nextHopPort": router_port, "weight": 100})
    return bridge, router_port


def bound_port(client: Client, bridge: str, host_id: str, interface: str) -> str:
    """A new port of `bridge` bound to `interface` of host `host_id`; its id."""
    port = str(client.create_child("bridges", bridge, "ports", {})["id"])
    client.bind(host_id, port, interface)
    return port
