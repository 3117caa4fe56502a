"""A bridge's IPv4 DHCP subnets and their static hosts (spec 3.11, 7.3: DhcpSubnet-v2, DhcpHost-v2).

    /bridges/{id}/dhcp                               GET, POST
    /bridges/{id}/dhcp/{prefix}_{length}             GET, PUT, DELETE
    /bridges/{id}/dhcp/{prefix}_{length}/hosts       GET, POST
    /bridges/{id}/dhcp/{prefix}_{length}/hosts/{mac} GET, PUT, DELETE   (':' in the MAC written as '-')

DhcpSubnet-v2: {subnetPrefix, subnetLength, defaultGateway, serverAddr, dnsServerAddrs, interfaceMTU,
opt121Routes [{destinationPrefix, destinationLength, gatewayAddr}], enabled, uri, hosts}.
DhcpHost-v2: {macAddr, ipAddr, name, extraDhcpOpts [{optName, optValue}], uri}.

A subnet is a `DhcpSubnet` record bound to its bridge through `network_id` (deleting the bridge deletes its
subnets). A subnet is named in URIs by its address as given ("10.0.0.0_24") and found by its network, so
"10.0.0.1_24" names the same subnet; a second subnet for the same network on a bridge is a 409. Its hosts are
a list on the record, changed with `UpdateWith` so concurrent changes do not lose each other; a MAC listed
twice is a 409. Lengths may be sent as numeric strings (the real client's `add_bridge_dhcp` does).
DHCP follows its bridge's tenant.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`, `api.devices`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from midonet.api.devices import BRIDGES
from midonet.api.errors import bad_request, conflict, from_topology_error, not_found
from midonet.api.members import Members, Params, add_members, mac_uri
from midonet.api.resource import Ctx, Dto, Resource
from midonet.store.base import Create, Delete, Op, UpdateWith
from midonet.topology import validate as v
from midonet.topology.devices import Bridge
from midonet.topology.errors import ConflictError, NotFoundError, TopologyError
from midonet.topology.record import Record, from_dict
from midonet.topology.services import DhcpHost, DhcpSubnet

HOST_MEDIA = ("DhcpHost",)
HOST_RENAME = {"mac": "macAddr", "ip_address": "ipAddr", "extra_dhcp_opts": "extraDhcpOpts", "name": "name"}


def int_in(value: Any, prop: str, low: int, high: int) -> int:
    """An integer member (or a string of digits, as Jackson accepts); a 400 naming `prop` otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"must be an integer, not {value!r}", prop)
    if not low <= value <= high:
        raise bad_request(f"must be between {low} and {high}, not {value}", prop)
    return value


def subnet_in(addr: Any, length: Any, addr_prop: str, len_prop: str) -> str:
    """'a.b.c.d/n' from an IPv4 address member and a length member."""
    if addr is None:
        raise bad_request("is required", addr_prop)
    try:
        ip = ipaddress.IPv4Address(str(addr))
    except ValueError:
        raise bad_request(f"is not a valid IPv4 address: {addr!r}", addr_prop) from None
    return f"{ip}/{int_in(length, len_prop, 0, 32)}"


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


class DhcpSubnetResource(Resource[DhcpSubnet]):
    cls = DhcpSubnet
    path = "dhcp"
    media = ("DhcpSubnet",)
    version = 2
    fields = (("defaultGateway", "default_gateway"), ("serverAddr", "server_address"),
              ("interfaceMTU", "interface_mtu"), ("enabled", "enabled"))

    def subnet_uri(self, ctx: Ctx, obj: DhcpSubnet) -> str:
        return f"{BRIDGES.uri(ctx, obj.network_id or '')}/dhcp/{obj.subnet_address.replace('/', '_')}"

    def to_dto(self, obj: DhcpSubnet, ctx: Ctx) -> Dto:
        prefix, _, length = obj.subnet_address.partition("/")
        u = self.subnet_uri(ctx, obj)
        return {"subnetPrefix": prefix, "subnetLength": int(length), "defaultGateway": obj.default_gateway,
                "serverAddr": obj.server_address, "dnsServerAddrs": list(obj.dns_server_addresses) or None,
                "interfaceMTU": obj.interface_mtu, "enabled": obj.enabled,
                "opt121Routes": [{"destinationPrefix": r.dst_subnet.partition("/")[0],
                                  "destinationLength": int(r.dst_subnet.partition("/")[2]),
                                  "gatewayAddr": r.gateway} for r in obj.opt121_routes],
                "uri": u, "hosts": f"{u}/hosts"}

    def rename(self) -> dict[str, str]:
        return super().rename() | {"subnet_address": "subnetPrefix", "dns_server_addresses": "dnsServerAddrs",
                                   "opt121_routes": "opt121Routes"}

    def tenant_of(self, obj: DhcpSubnet, ctx: Ctx) -> str | None:
        bridge = ctx.store.find(Bridge, obj.network_id or "")
        return bridge.tenant_id if bridge is not None else None

    def dto_in(self, dto: Dto, data: dict[str, Any], old: DhcpSubnet | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if old is None:
            data["network_id"] = parent_id
        if old is None or "subnetPrefix" in dto or "subnetLength" in dto:
            data["subnet_address"] = subnet_in(dto.get("subnetPrefix"), dto.get("subnetLength"),
                                               "subnetPrefix", "subnetLength")
        if "dnsServerAddrs" in dto:
            dns = dto["dnsServerAddrs"]
            if dns is not None and not isinstance(dns, list):
                raise bad_request("must be a list of IPv4 addresses", "dnsServerAddrs")
            data["dns_server_addresses"] = dns or []
        if "opt121Routes" in dto:
            routes = [] if dto["opt121Routes"] is None else dto["opt121Routes"]
            if not isinstance(routes, list):
                raise bad_request("must be a list of {destinationPrefix, destinationLength, gatewayAddr}",
                                  "opt121Routes")
            data["opt121_routes"] = [self.route_in(r, i) for i, r in enumerate(routes)]
        if data.get("enabled") is None:
            data["enabled"] = True

    @staticmethod
    def route_in(route: Any, index: int) -> dict[str, str]:
        prop = f"opt121Routes[{index}]"
        if not isinstance(route, dict):
            raise bad_request("must be an object {destinationPrefix, destinationLength, gatewayAddr}", prop)
        dst = subnet_in(route.get("destinationPrefix"), route.get("destinationLength"),
                        f"{prop}.destinationPrefix", f"{prop}.destinationLength")
        gateway = route.get("gatewayAddr")
        if gateway is None:
            raise bad_request("is required", f"{prop}.gatewayAddr")
        try:
            return {"dst_subnet": dst, "gateway": str(ipaddress.IPv4Address(str(gateway)))}
        except ValueError:
            raise bad_request(f"is not a valid IPv4 address: {gateway!r}", f"{prop}.gatewayAddr") from None


SUBNETS = DhcpSubnetResource()


def host_dto(ctx: Ctx, subnet: DhcpSubnet, host: DhcpHost) -> Dto:
    return {"macAddr": host.mac, "ipAddr": host.ip_address, "name": host.name,
            "extraDhcpOpts": [{"optName": o.name, "optValue": o.value} for o in host.extra_dhcp_opts],
            "uri": f"{SUBNETS.subnet_uri(ctx, subnet)}/hosts/{mac_uri(host.mac)}"}


def host_in(dto: Any, mac: str | None = None) -> DhcpHost:
    """The DhcpHost a body describes (`mac` from the URI when the body has none); 400 naming the member."""
    if not isinstance(dto, dict):
        raise bad_request("the request body must be a JSON object")
    opts = dto.get("extraDhcpOpts")
    opts = [] if opts is None else opts
    if not isinstance(opts, list):
        raise bad_request("must be a list of {optName, optValue}", "extraDhcpOpts")
    options = []
    for i, opt in enumerate(opts):
        if not isinstance(opt, dict) or not isinstance(opt.get("optName"), str) \
                or not isinstance(opt.get("optValue"), str):
            raise bad_request("must be an object {optName, optValue} of strings", f"extraDhcpOpts[{i}]")
        options.append({"name": opt["optName"], "value": opt["optValue"]})
    data = {"mac": dto.get("macAddr", mac), "ip_address": dto.get("ipAddr"), "name": dto.get("name"),
            "extra_dhcp_opts": options}
    if data["mac"] is None:
        raise bad_request("is required", "macAddr")
    try:
        return from_dict(DhcpHost, data)
    except TopologyError as e:
        raise from_topology_error(e, HOST_RENAME) from None


def path_mac(raw: str) -> str:
    try:
        mac = v.mac("mac", raw)
    except TopologyError:
        raise not_found(f"{raw} is not a MAC address") from None
    assert mac is not None
    return mac


def _put_host(host: DhcpHost, replacing: str | None) -> Callable[[Record], Record]:
    """Add `host` (replacing the host of MAC `replacing`, when given) to a subnet."""
    def put(subnet: Record) -> Record:
        assert isinstance(subnet, DhcpSubnet)
        if replacing is not None and subnet.host(replacing) is None:
            raise NotFoundError("DhcpHost", replacing, f"the subnet has no host {replacing}")
        others = [h for h in subnet.hosts if h.mac != replacing]
        if any(h.mac == host.mac for h in others):
            raise ConflictError(f"subnet {subnet.subnet_address} already has a host with MAC {host.mac}")
        if replacing is None:
            return subnet.replace(hosts=(*others, host))
        return subnet.replace(hosts=tuple(host if h.mac == replacing else h for h in subnet.hosts))
    return put


def _drop_host(mac: str) -> Callable[[Record], Record]:
    def drop(subnet: Record) -> Record:
        assert isinstance(subnet, DhcpSubnet)
        if subnet.host(mac) is None:
            raise NotFoundError("DhcpHost", mac, f"the subnet has no host {mac}")
        return subnet.replace(hosts=tuple(h for h in subnet.hosts if h.mac != mac))
    return drop


def _put_subnet(new: DhcpSubnet) -> Callable[[Record], Record]:
    """Replace a subnet's settings, keeping the hosts as stored at commit time."""
    def put(stored: Record) -> Record:
        assert isinstance(stored, DhcpSubnet)
        return new.replace(hosts=stored.hosts)
    return put


def subnet_named(ctx: Ctx, bridge: Bridge, raw: str) -> DhcpSubnet | None:
    """The bridge's subnet named `raw` ("10.0.0.0_24", any address of its network); None if there is none."""
    addr, _, length = raw.partition("_")
    try:
        wanted = ipaddress.IPv4Network(f"{addr}/{int(length)}", strict=False)
    except ValueError:
        return None
    return next((s for s in ctx.store.list(DhcpSubnet, bridge.dhcp_ids) if network(s.subnet_address) == wanted),
                None)


def check_unique(ctx: Ctx, bridge: Bridge, subnet: DhcpSubnet) -> None:
    for other in ctx.store.list(DhcpSubnet, bridge.dhcp_ids):
        if other.id != subnet.id and network(other.subnet_address) == network(subnet.subnet_address):
            raise conflict(f"bridge {bridge.id} already has a DHCP subnet for {network(subnet.subnet_address)}")


class BridgeSubnets(Members[Bridge, str, DhcpSubnet]):
    """A bridge's DHCP subnets, by `{prefix}_{length}`."""

    parent = BRIDGES
    collection = "/bridges/{parent_id}/dhcp"
    item = "/bridges/{parent_id}/dhcp/{subnet}"
    media = SUBNETS.media
    version = 2

    def key(self, params: Params) -> str:
        return params["subnet"]

    def members(self, parent: Bridge, ctx: Ctx) -> Sequence[DhcpSubnet]:
        return ctx.store.list(DhcpSubnet, parent.dhcp_ids)

    def dto(self, parent: Bridge, member: DhcpSubnet, ctx: Ctx) -> Dto:
        return SUBNETS.to_dto(member, ctx)

    def find(self, parent: Bridge, key: str, ctx: Ctx) -> DhcpSubnet | None:
        return subnet_named(ctx, parent, key)

    def missing(self, parent: Bridge, key: str) -> str:
        return f"bridge {parent.id} has no DHCP subnet {key}"

    def add(self, parent: Bridge, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        subnet = SUBNETS.from_dto(body, None, ctx, parent.id)
        check_unique(ctx, parent, subnet)
        return [Create(subnet)], SUBNETS.subnet_uri(ctx, subnet)

    def update(self, parent: Bridge, member: DhcpSubnet, body: Any, ctx: Ctx) -> list[Op]:
        new = SUBNETS.from_dto(body, member, ctx)
        check_unique(ctx, parent, new)
        return [UpdateWith(DhcpSubnet, member.id, _put_subnet(new))]

    def remove(self, parent: Bridge, member: DhcpSubnet, ctx: Ctx) -> list[Op]:
        return [Delete(DhcpSubnet, member.id)]


BRIDGE_SUBNETS = BridgeSubnets()


class SubnetHosts(Members[DhcpSubnet, str, DhcpHost]):
    """A DHCP subnet's static hosts, by MAC; the subnet is a member of its bridge."""

    parent = SUBNETS
    collection = "/bridges/{parent_id}/dhcp/{subnet}/hosts"
    item = "/bridges/{parent_id}/dhcp/{subnet}/hosts/{mac}"
    media = HOST_MEDIA
    version = 2

    def owner(self, ctx: Ctx, params: Params, write: bool) -> DhcpSubnet:
        return BRIDGE_SUBNETS.load(ctx, params, write)[1]

    def key(self, params: Params) -> str:
        return path_mac(params["mac"])

    def members(self, parent: DhcpSubnet, ctx: Ctx) -> Sequence[DhcpHost]:
        return parent.hosts

    def dto(self, parent: DhcpSubnet, member: DhcpHost, ctx: Ctx) -> Dto:
        return host_dto(ctx, parent, member)

    def find(self, parent: DhcpSubnet, key: str, ctx: Ctx) -> DhcpHost | None:
        return parent.host(key)

    def missing(self, parent: DhcpSubnet, key: str) -> str:
        return f"subnet {parent.subnet_address} has no host {key}"

    def add(self, parent: DhcpSubnet, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        host = host_in(body)
        if parent.host(host.mac) is not None:
            raise conflict(f"subnet {parent.subnet_address} already has a host with MAC {host.mac}")
        return [UpdateWith(DhcpSubnet, parent.id, _put_host(host, None))], str(host_dto(ctx, parent, host)["uri"])

    def update(self, parent: DhcpSubnet, member: DhcpHost, body: Any, ctx: Ctx) -> list[Op]:
        host = host_in(body, member.mac)
        if host.mac != member.mac and parent.host(host.mac) is not None:
            raise conflict(f"subnet {parent.subnet_address} already has a host with MAC {host.mac}")
        return [UpdateWith(DhcpSubnet, parent.id, _put_host(host, member.mac))]

    def remove(self, parent: DhcpSubnet, member: DhcpHost, ctx: Ctx) -> list[Op]:
        return [UpdateWith(DhcpSubnet, parent.id, _drop_host(member.mac))]


def register(router: APIRouter) -> None:
    add_members(router, BRIDGE_SUBNETS, update=True)
    add_members(router, SubnetHosts(), update=True)


__all__ = ["SUBNETS", "register"]
