"""What a scenario file says, as typed records: hosts, the topology as REST API bodies, VMs, and the traffic steps.

Role: the parsed, validated form of the format `docs/sandbox.md` describes (`parse.py` builds it). It says nothing
about how a deployment is made: `midonet sandbox` plays it on fake hosts (`midonet.testing.sandbox`), `midonet
testbed` will play the same records on network namespaces. Names stay names here; `deploy.py` turns them into ids
as it creates the objects through the API.

    Scenario
    ├── hosts      HostSpec(name, tunnel_ip)                    one tunnel zone holds them all
    ├── tenant     the default tenantId of the objects that have one
    ├── objects    ObjectSpec(kind, name, body, children ...)   in the file's order, a tree (a bridge's ports ...)
    ├── bindings   VmSpec(port, host, interface, mac, ip, gw)   a VM: a fake interface bound to a port
    └── steps      Send | ApiCall | SetLink | RestartAgent | Bind | Unbind | Wait

`REFERENCES` is the one table of the body members that hold another object's id (the file may give its name
instead), with the kinds they may name.

Places: every record keeps `where`, its path in the file (`("topology", "bridges", 0)`, rendered
`topology.bridges[0]`); `Places` maps paths to lines. `ScenarioError(message, path)` is every error about a file;
`located(places, source)` adds the file name and the line.

May import: nothing of ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PathItem = str | int
Path = tuple[PathItem, ...]


def render(path: Sequence[PathItem]) -> str:
    """`("topology", "bridges", 0, "name")` -> `topology.bridges[0].name`."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else item
    return out


class ScenarioError(Exception):
    """A scenario file that cannot be run: what is wrong, and where (the path, then the file and the line)."""

    def __init__(self, message: str, path: Sequence[PathItem] = (), *, source: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path: Path = tuple(path)
        self.source = source
        self.line = line
        super().__init__(str(self))

    def located(self, places: Places, source: str) -> ScenarioError:
        """The same error with the file name and the line of its path."""
        line = self.line if self.line is not None else places.line(self.path)
        return ScenarioError(self.message, self.path, source=source, line=line)

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}" if where else f"line {self.line}"
        at = render(self.path)
        prefix = ": ".join(p for p in (where, at) if p)
        return f"{prefix}: {self.message}" if prefix else self.message


@dataclass
class Places:
    """Lines (1-based) of the values of a document, by path."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Sequence[PathItem]) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


# The kinds of the topology section, in the order the file lists them (and the API's collection names).
TOP_KINDS = ("chains", "ip_addr_groups", "port_groups", "bridges", "routers", "load_balancers", "mirrors")

# Kinds whose REST body has a `name` (the file's `name` of the others is the file's own).
NAMED_KINDS = frozenset({"bridges", "routers", "chains", "port_groups", "ip_addr_groups"})

# Kinds whose REST body has a `tenantId` (the file's `tenant` fills it in when absent).
TENANT_KINDS = frozenset({"bridges", "routers", "chains", "port_groups", "ip_addr_groups", "mirrors"})

# The nested lists of each kind: key in the file -> the children's kind.
CHILDREN: Mapping[str, Mapping[str, str]] = {
    "chains": {"rules": "rules"},
    "bridges": {"ports": "ports"},
    "routers": {"ports": "ports", "routes": "routes"},
    "load_balancers": {"health_monitors": "health_monitors", "pools": "pools"},
    "pools": {"members": "pool_members", "vips": "vips"},
}

# The file's own members that are not REST body members, by kind: key -> what it holds.
EXTRAS: Mapping[str, Mapping[str, str]] = {
    "ports": {"link": "the name of the port to link to"},
    "port_groups": {"ports": "a list of port names"},
    "ip_addr_groups": {"addresses": "a list of IPv4 addresses"},
    "load_balancers": {"router": "the name of the router to attach it to"},
}

_CHAINS = ("chains",)
_PORTS = ("ports",)
_MIRRORS = ("mirrors",)

# Body members holding ids of other objects -> the kinds they may name. A list member holds a list of them.
REFERENCES: Mapping[str, tuple[str, ...]] = {
    "inboundFilterId": _CHAINS, "outboundFilterId": _CHAINS, "jumpChainId": _CHAINS,
    "localRedirectChainId": _CHAINS, "forwardChainId": _CHAINS,
    "inPorts": _PORTS, "outPorts": _PORTS, "nextHopPort": _PORTS, "toPortId": _PORTS, "targetPortId": _PORTS,
    "peerId": _PORTS, "portId": _PORTS,
    "portGroup": ("port_groups",), "inPortGroup": ("port_groups",), "outPortGroup": ("port_groups",),
    "ipAddrGroupSrc": ("ip_addr_groups",), "ipAddrGroupDst": ("ip_addr_groups",),
    "inboundMirrorIds": _MIRRORS, "outboundMirrorIds": _MIRRORS, "postInFilterMirrorIds": _MIRRORS,
    "preOutFilterMirrorIds": _MIRRORS,
    "loadBalancerId": ("load_balancers",), "poolId": ("pools",), "healthMonitorId": ("health_monitors",),
    "traversedDevice": ("bridges", "routers"), "deviceId": ("bridges", "routers"), "hostId": ("hosts",),
}

KIND_WORDS: Mapping[str, str] = {
    "chains": "chain", "ip_addr_groups": "IP address group", "port_groups": "port group", "bridges": "bridge",
    "routers": "router", "load_balancers": "load balancer", "mirrors": "mirror", "ports": "port",
    "routes": "route", "rules": "rule", "health_monitors": "health monitor", "pools": "pool",
    "pool_members": "pool member", "vips": "VIP", "hosts": "host",
}


def word(kind: str) -> str:
    """`port_groups` -> `port group` (for messages)."""
    return KIND_WORDS.get(kind, kind)


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    tunnel_ip: str
    where: Path


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """One object of the topology: its REST body as written (names where ids go), and what the file nests in it."""

    kind: str                                 # the API's collection: bridges, ports, rules, pool_members ...
    name: str | None
    body: Mapping[str, Any]                   # without `name` and without the file's own members (EXTRAS)
    where: Path
    children: tuple[ObjectSpec, ...] = ()
    link: str | None = None                   # ports: the port it is linked to
    members: tuple[str, ...] = ()             # port groups: port names; IP address groups: addresses
    router: str | None = None                 # load balancers: the router it is attached to

    def walk(self) -> list[ObjectSpec]:
        """This object and everything nested in it, parents first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass(frozen=True, slots=True)
class VmSpec:
    """A VM: interface `interface` on host `host`, bound to port `port`; its own stack answers ARP and echo for
    `ip`, and sends to other subnets through `gw`."""

    port: str
    host: str
    interface: str
    where: Path
    mac: str | None = None
    ip: ipaddress.IPv4Interface | None = None
    gw: str | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    """A packet that must arrive at VM `at`, with these spec items (the fields that must match)."""

    at: str
    items: Mapping[str, str]
    text: str
    where: Path


@dataclass(frozen=True, slots=True)
class Send:
    vm: str
    items: Mapping[str, str]                  # the packet spec's items as written (defaults come from the VM)
    text: str
    where: Path
    expect: tuple[Expect, ...] = ()
    expect_none_at: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    path: str                                 # may hold {name} references
    where: Path
    body: Any = None


@dataclass(frozen=True, slots=True)
class SetLink:
    vm: str
    up: bool
    where: Path


@dataclass(frozen=True, slots=True)
class RestartAgent:
    host: str
    where: Path


@dataclass(frozen=True, slots=True)
class Bind:
    vm: VmSpec
    where: Path


@dataclass(frozen=True, slots=True)
class Unbind:
    port: str
    where: Path


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float
    where: Path


Step = Send | ApiCall | SetLink | RestartAgent | Bind | Unbind | Wait


@dataclass(frozen=True, slots=True)
class Scenario:
    source: str
    hosts: tuple[HostSpec, ...]
    tenant: str | None
    objects: tuple[ObjectSpec, ...]
    bindings: tuple[VmSpec, ...]
    steps: tuple[Step, ...]
    names: Mapping[str, str]                  # every name of the file (objects and hosts) -> its kind
    places: Places = field(default_factory=Places)

    def line(self, where: Path) -> int | None:
        return self.places.line(where)

    def all_objects(self) -> list[ObjectSpec]:
        return [o for top in self.objects for o in top.walk()]

    def vms(self) -> dict[str, VmSpec]:
        """Every VM the file makes (bindings, then `bind` steps), by interface name; the first making wins."""
        out = {vm.interface: vm for vm in self.bindings}
        for step in self.steps:
            if isinstance(step, Bind):
                out.setdefault(step.vm.interface, step.vm)
        return out


def describe(step: Step) -> str:
    """One line saying what a step does (its name in reports)."""
    match step:
        case Send(vm, _, text):
            return f"send from {vm}: {text}"
        case ApiCall(method, path):
            return f"api {method} {path}"
        case SetLink(vm, up):
            return f"interface {vm} {'up' if up else 'down'}"
        case RestartAgent(host):
            return f"restart the agent of {host}"
        case Bind(vm):
            return f"bind {vm.port} to {vm.interface} on {vm.host}"
        case Unbind(port):
            return f"unbind {port}"
        case Wait(seconds):
            return f"wait {seconds:g} s"
    raise AssertionError(step)


__all__ = ["CHILDREN", "EXTRAS", "NAMED_KINDS", "REFERENCES", "TENANT_KINDS", "TOP_KINDS", "ApiCall", "Bind",
           "Expect", "HostSpec", "ObjectSpec", "Path", "PathItem", "Places", "RestartAgent", "Scenario",
           "ScenarioError", "Send", "SetLink", "Step", "Unbind", "VmSpec", "Wait", "describe", "render", "word"]
