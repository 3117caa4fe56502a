"""Make what a scenario describes through the REST API, with the project's typed client: names become ids.

Role: the part of running a scenario that talks only to the API, so that every runner shares it (`midonet sandbox`
over fake hosts, `midonet testbed` over namespaces). `Deployment(client, scenario, host_ids)`:

    register_hosts()   POST /hosts {id, name}                       (admin: the hosts exist before their agents)
    tunnel_zone()      POST /tunnel_zones {vxlan}, then every host with its tunnel_ip
    build()            the topology, in an order where what is named exists (below)
    bind(vm)           POST /hosts/{id}/ports {portId, interfaceName}
    unbind(port)       DELETE /hosts/{id}/ports/{portId}
    call(step)         an API step: `{name}` in the path and the body, and names where ids go, become ids

The order of `build`: chains, IP address groups (with their addresses), port groups, health monitors, load
balancers; bridges and routers with their ports; links; routes; port group members; rules (in the file's order,
each appended unless it gives `position`); load balancers attached to their routers, pools with members and VIPs;
mirrors; last, the references a device or port makes to something made after it (a mirror), with a PUT.

Bodies get `name` (kinds whose API objects have one) and `tenantId` (the file's `tenant`, for kinds that have one)
unless they give them. The API ignores members it does not know, so after each create the members sent are
compared with the object the API answered: one it does not have is a mistake in the file (`inboundFiltreId`).

Errors: a `ScenarioError` at the object's place in the file (the API's message, e.g. a refused address).

May import: `midonet.client`, `testing.scenario.*`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from midonet.client import ApiError, Client, ClientError
from midonet.testing.scenario.model import (
    NAMED_KINDS,
    REFERENCES,
    TENANT_KINDS,
    ApiCall,
    ObjectSpec,
    Path,
    Scenario,
    ScenarioError,
    VmSpec,
    word,
)
from midonet.testing.scenario.parse import is_uuid, template_names

T = TypeVar("T")
PUT_KINDS = frozenset({"bridges", "routers", "ports"})     # what a deferred reference is PUT on
ZONE_NAME = "scenario"


class _Later(Exception):
    """A reference to an object not made yet."""


class Deployment:
    """See the module docstring."""

    def __init__(self, client: Client, scenario: Scenario, host_ids: Mapping[str, str]) -> None:
        self.client = client
        self.scenario = scenario
        self.ids: dict[str, str] = {h.name: host_ids[h.name] for h in scenario.hosts}
        self.port_hosts: dict[str, str] = {}         # port name -> the host name it is bound to
        self.made: dict[Path, str] = {}               # an object's place in the file -> its id
        self._deferred: list[tuple[ObjectSpec, str, str, Any]] = []   # (object, its id, member, value)

    # ---- hosts ----

    def register_hosts(self) -> None:
        for host in self.scenario.hosts:
            self._api(host.where, "register the host", self.client.create, "hosts",
                      {"id": self.ids[host.name], "name": host.name})

    def tunnel_zone(self) -> str:
        """One VXLAN tunnel zone holding every host at its tunnel_ip; its id."""
        zone = self._api(("hosts",), "create the tunnel zone", self.client.create, "tunnel_zones",
                         {"name": ZONE_NAME, "type": "vxlan"})
        for host in self.scenario.hosts:
            self._api((*host.where, "tunnel_ip"), "add the host to the tunnel zone",
                      self.client.add_tunnel_zone_host, zone["id"], self.ids[host.name], host.tunnel_ip)
        return str(zone["id"])

    # ---- topology ----

    def build(self) -> None:
        tops = self.scenario.objects
        by_kind = {kind: [o for o in tops if o.kind == kind] for kind in {o.kind for o in tops}}
        for chain in by_kind.get("chains", []):
            self.create(chain, "chains")
        for group in by_kind.get("ip_addr_groups", []):
            gid = self.create(group, "ip_addr_groups")
            for i, address in enumerate(group.members):
                self._api((*group.where, "addresses", i), "add the address", self.client.create_child,
                          "ip_addr_groups", gid, "ip_addrs", {"addr": address, "version": 4})
        for group in by_kind.get("port_groups", []):
            self.create(group, "port_groups")
        balancers = by_kind.get("load_balancers", [])
        for lb in balancers:
            for monitor in (c for c in lb.children if c.kind == "health_monitors"):
                self.create(monitor, "health_monitors")
        for lb in balancers:
            self.create(lb, "load_balancers")
        devices = by_kind.get("bridges", []) + by_kind.get("routers", [])
        for device in devices:
            did = self.create(device, device.kind)
            for port in (c for c in device.children if c.kind == "ports"):
                self.create(port, "ports", parent=(device.kind, did))
        self._links([p for d in devices for p in d.children if p.kind == "ports"])
        for router in by_kind.get("routers", []):
            for route in (c for c in router.children if c.kind == "routes"):
                self.create(route, "routes", parent=("routers", self.ids_of(router)))
        for group in by_kind.get("port_groups", []):
            for i, member in enumerate(group.members):
                self._api((*group.where, "ports", i), "add the port to the group", self.client.create_child,
                          "port_groups", self.ids_of(group), "ports", {"portId": self.id_of(member)})
        for chain in by_kind.get("chains", []):
            for position, rule in enumerate((c for c in chain.children if c.kind == "rules"), 1):
                self.create(rule, "rules", parent=("chains", self.ids_of(chain)),
                            extra={} if "position" in rule.body else {"position": position})
        for lb in balancers:
            self._balancer(lb)
        for mirror in by_kind.get("mirrors", []):
            self.create(mirror, "mirrors")
        for obj, ident, member, value in self._deferred:
            self._api((*obj.where, member), f"set {member}", self.client.update, obj.kind, ident,
                      {member: self.resolve(value, member)})
        self._deferred.clear()

    def _links(self, ports: list[ObjectSpec]) -> None:
        done: set[frozenset[str]] = set()
        for port in ports:
            if port.link is None:
                continue
            pair = frozenset({self.ids_of(port), self.id_of(port.link)})
            if pair in done:
                continue
            done.add(pair)
            self._api((*port.where, "link"), f"link it to {port.link}", self.client.link, self.ids_of(port),
                      self.id_of(port.link))

    def _balancer(self, lb: ObjectSpec) -> None:
        lb_id = self.ids_of(lb)
        if lb.router is not None:
            self._api((*lb.where, "router"), f"attach it to {lb.router}", self.client.update, "routers",
                      self.id_of(lb.router), {"loadBalancerId": lb_id})
        for pool in (c for c in lb.children if c.kind == "pools"):
            pool_id = self.create(pool, "pools", parent=("load_balancers", lb_id))
            for child in pool.children:
                self.create(child, child.kind, parent=("pools", pool_id))

    def create(self, obj: ObjectSpec, collection: str, *, parent: tuple[str, str] | None = None,
               extra: Mapping[str, Any] | None = None) -> str:
        """Create one object (under `parent`, a (collection, id), when given); its id."""
        body: dict[str, Any] = {}
        later: list[tuple[str, Any]] = []
        for key, value in obj.body.items():
            try:
                body[key] = self.resolve(value, key)
            except _Later:
                if obj.kind not in PUT_KINDS:
                    raise ScenarioError(f"{key} names an object made after this {word(obj.kind)}",
                                        (*obj.where, key)) from None
                later.append((key, value))
        if obj.kind in NAMED_KINDS and obj.name is not None:
            body.setdefault("name", obj.name)
        if obj.kind in TENANT_KINDS and self.scenario.tenant is not None:
            body.setdefault("tenantId", self.scenario.tenant)
        body |= extra or {}
        what = f"create the {word(obj.kind)}"
        if parent is None:
            dto = self._api(obj.where, what, self.client.create, collection, body)
        else:
            dto = self._api(obj.where, what, self.client.create_child, parent[0], parent[1], collection, body)
        unknown = [key for key in body if key not in dto]
        if unknown:
            known = ", ".join(k for k, v in dto.items() if not (isinstance(v, str) and v.startswith("http")))
            raise ScenarioError(f"a {word(obj.kind)} has no member {unknown[0]!r}; the API's {word(obj.kind)} has: "
                                f"{known}", (*obj.where, unknown[0]))
        ident = str(dto["id"])
        self._deferred.extend((obj, ident, key, value) for key, value in later)
        self.made[obj.where] = ident
        if obj.name is not None:
            self.ids[obj.name] = ident
        return ident

    # ---- names -> ids ----

    def id_of(self, name: str) -> str:
        if is_uuid(name):
            return name
        ident = self.ids.get(name)
        if ident is None:
            raise _Later(name)
        return ident

    def ids_of(self, obj: ObjectSpec) -> str:
        """The id of an object this deployment made."""
        return self.made[obj.where]

    def resolve(self, value: Any, member: str | None = None) -> Any:
        """`value` with `{name}` references and names in id members (`REFERENCES`) replaced by ids."""
        if isinstance(value, str):
            for name in template_names(value):
                if name in self.scenario.names:
                    value = value.replace(f"{{{name}}}", self.id_of(name))
            return self.id_of(value) if member in REFERENCES else value
        if isinstance(value, list):
            return [self.resolve(v, member) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, k) for k, v in value.items()}
        return value

    # ---- bindings and API steps ----

    def bind(self, vm: VmSpec) -> None:
        self._api(vm.where, f"bind {vm.port} to {vm.interface} on {vm.host}", self.client.bind, self.ids[vm.host],
                  self.id_of(vm.port), vm.interface)
        self.port_hosts[vm.port] = vm.host

    def unbind(self, port: str, where: Path) -> None:
        host = self.port_hosts.pop(port, None)
        if host is None:
            dto = self._api(where, f"read {port}", self.client.get, "ports", self.id_of(port))
            host_id = dto.get("hostId")
            if not host_id:
                raise ScenarioError(f"port {port} is not bound", where)
        else:
            host_id = self.ids[host]
        self._api(where, f"unbind {port}", self.client.unbind, str(host_id), self.id_of(port))

    def call(self, step: ApiCall) -> Any:
        """Send an API step; its answer (None when empty). ApiError when the API refuses it."""
        path = self.resolve(step.path)
        body = None if step.body is None else self.resolve(step.body)
        return self.client.request(step.method, self.client.url + path, body=body)

    def _api(self, where: Path, what: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, an API error becoming a ScenarioError about `where`."""
        try:
            return fn(*args)
        except _Later as e:
            raise ScenarioError(f"cannot {what}: {e.args[0]!r} is made later", where) from None
        except ApiError as e:
            raise ScenarioError(f"the API refused to {what}: {e}", where) from None
        except ClientError as e:
            raise ScenarioError(f"cannot {what}: {e}", where) from None


__all__ = ["Deployment"]
