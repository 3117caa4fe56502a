"""Read and check a scenario file: YAML text -> `model.Scenario`, or a `ScenarioError` naming the place.

Role: everything that can be known wrong before anything runs is found here, so a bad file fails in a second with
one line (`FILE:LINE: WHERE: what`): a YAML error, a missing or unknown section or member, a value of the wrong
type, a name given twice, an unknown name (or a name of the wrong kind) where an id goes, a packet spec that does
not parse, a VM used before it exists. What only the API can judge (an address the API refuses, a member a
kind does not have) is found by `deploy.py` at creation time, and reported at the same place.

YAML: composed into nodes first (PyYAML's safe loader, no tags beyond the standard ones), then turned into dicts,
lists and scalars with the line of each value recorded (`Places`), so that errors name their line; a key given twice
in one mapping is an error (YAML itself would keep the last one silently).

Names: one namespace for the hosts and the topology's objects (a `{name}` in an API step may name either);
another for VMs (their interface names).

May import: `testing.scenario.*`, `midonet.simulation.packetspec` (and PyYAML).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path as FilePath
from typing import Any, TypeVar

import yaml

from midonet.simulation.packetspec import SpecError, split_spec
from midonet.testing.scenario import checks
from midonet.testing.scenario.model import (
    CHILDREN,
    EXTRAS,
    REFERENCES,
    TOP_KINDS,
    ApiCall,
    Bind,
    Expect,
    HostSpec,
    ObjectSpec,
    Path,
    Places,
    RestartAgent,
    Scenario,
    ScenarioError,
    Send,
    SetLink,
    Step,
    Unbind,
    VmSpec,
    Wait,
    word,
)

T = TypeVar("T")
SECTIONS = ("hosts", "tenant", "topology", "bindings", "traffic")
VM_KEYS = ("port", "host", "interface", "mac", "ip", "gw")
METHODS = ("GET", "POST", "PUT", "DELETE")
DO_KINDS = ("api", "interface", "restart_agent", "bind", "unbind", "wait")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def read(path: FilePath) -> Scenario:
    """The scenario in file `path`."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ScenarioError(f"cannot read the file: {e.strerror or e}", source=str(path)) from None
    return parse(text, str(path))


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """The scenario in `text` (`source` names it in errors)."""
    document, places = load(text, source)
    try:
        return _Parser(places, source).scenario(document)
    except ScenarioError as e:
        raise e.located(places, source) from None


def load(text: str, source: str = "<scenario>") -> tuple[Any, Places]:
    """The document in `text` as plain values, and the lines of its parts. ScenarioError (with the line) for YAML
    that does not parse, or a mapping with a key given twice."""
    places = Places()
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            value = None if node is None else _value(loader, node, (), places)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(e.problem or e.context or "invalid YAML").split())
        raise ScenarioError(f"YAML error: {problem}", source=source, line=line) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"YAML error: {' '.join(str(e).split())}", source=source) from None
    except ScenarioError as e:
        raise e.located(places, source) from None
    return value, places


def _value(loader: yaml.SafeLoader, node: yaml.Node, path: Path, places: Places) -> Any:
    places.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)            # merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ScenarioError("a mapping key must be a plain value", path, line=key_node.start_mark.line + 1)
            if key in out:
                raise ScenarioError(f"{key!r} is given twice", path, line=key_node.start_mark.line + 1)
            out[key] = _value(loader, value_node, (*path, str(key)), places)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(loader, item, (*path, i), places) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def template_names(text: str) -> list[str]:
    """The `{name}` references in a string."""
    return _TEMPLATE.findall(text)


def _mapping(value: Any, where: Path, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{what} must be a mapping, not {_kind_of(value)}", where)
    return value


def _list(value: Any, where: Path, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{what} must be a list, not {_kind_of(value)}", where)
    return value


def _text(value: Any, where: Path, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{what} must be a non-empty string, not {_kind_of(value)}", where)
    return value.strip()


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"{value!r}", bool: f"{value}"}.get(type(value), repr(value))


def _only(data: Mapping[str, Any], allowed: tuple[str, ...], where: Path, what: str) -> None:
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"unknown member {key!r} of {what}; the members are {', '.join(allowed)}",
                                (*where, key))


def _required(data: Mapping[str, Any], key: str, where: Path, what: str) -> Any:
    if key not in data:
        raise ScenarioError(f"{what} needs {key!r}", where)
    return data[key]


class _Parser:
    def __init__(self, places: Places, source: str) -> None:
        self.places = places
        self.source = source
        self.names: dict[str, str] = {}             # name -> kind
        self.name_places: dict[str, Path] = {}
        self.vms: dict[str, VmSpec] = {}            # VMs made so far (in file order), by interface

    def scenario(self, document: Any) -> Scenario:
        data = _mapping(document, (), "a scenario file")
        _only(data, SECTIONS, (), "a scenario file")
        hosts = self.hosts(_required(data, "hosts", (), "a scenario file"))
        tenant = None if data.get("tenant") is None else _text(data["tenant"], ("tenant",), "tenant")
        objects = self.topology(data.get("topology") or {})
        for obj in (o for top in objects for o in top.walk()):
            self.check_references(obj)
        bindings = tuple(self.vm(item, ("bindings", i), "a binding")
                         for i, item in enumerate(_list(data.get("bindings") or [], ("bindings",), "bindings")))
        steps = tuple(self.step(item, ("traffic", i))
                      for i, item in enumerate(_list(data.get("traffic") or [], ("traffic",), "traffic")))
        return Scenario(self.source, hosts, tenant, objects, bindings, steps, dict(self.names), self.places)

    # ---- names ----

    def name(self, value: Any, kind: str, where: Path) -> str:
        name = _text(value, where, "a name")
        if "{" in name or "}" in name or "," in name:
            raise ScenarioError(f"a name may not hold braces or commas: {name!r}", where)
        if name in self.names:
            line = self.places.line(self.name_places[name])
            raise ScenarioError(f"the name {name!r} is given twice (first at line {line})", where)
        self.names[name] = kind
        self.name_places[name] = where
        return name

    def reference(self, value: Any, kinds: tuple[str, ...], where: Path, *, ids: bool = True) -> str:
        """A name of one of `kinds` (or, if `ids`, an id as it is)."""
        text = _text(value, where, f"a {word(kinds[0])}")
        if ids and is_uuid(text):
            return text
        kind = self.names.get(text)
        if kind is None:
            wanted = " or ".join(word(k) for k in kinds)
            raise ScenarioError(f"unknown name {text!r}: no {wanted} is called that", where)
        if kind not in kinds:
            wanted = " or ".join(word(k) for k in kinds)
            raise ScenarioError(f"{text!r} is a {word(kind)}, not a {wanted}", where)
        return text

    # ---- hosts and topology ----

    def hosts(self, value: Any) -> tuple[HostSpec, ...]:
        items = _list(value, ("hosts",), "hosts")
        if not items:
            raise ScenarioError("give at least one host", ("hosts",))
        out: list[HostSpec] = []
        ips: set[str] = set()
        for i, item in enumerate(items):
            where = ("hosts", i)
            data = _mapping(item, where, "a host")
            _only(data, ("name", "tunnel_ip"), where, "a host")
            name = self.name(_required(data, "name", where, "a host"), "hosts", (*where, "name"))
            ip = self.ipv4(_required(data, "tunnel_ip", where, "a host"), (*where, "tunnel_ip"))
            if ip in ips:
                raise ScenarioError(f"tunnel_ip {ip} is given to two hosts", (*where, "tunnel_ip"))
            ips.add(ip)
            out.append(HostSpec(name, ip, where))
        return tuple(out)

    def topology(self, value: Any) -> tuple[ObjectSpec, ...]:
        data = _mapping(value, ("topology",), "topology")
        _only(data, TOP_KINDS, ("topology",), "topology")
        out: list[ObjectSpec] = []
        for kind, value in data.items():               # in the file's order (names are registered in it)
            items = _list(value or [], ("topology", kind), kind)
            out.extend(self.obj(item, kind, ("topology", kind, i)) for i, item in enumerate(items))
        return tuple(out)

    def obj(self, value: Any, kind: str, where: Path) -> ObjectSpec:
        data = _mapping(value, where, f"a {word(kind)}")
        name = None if data.get("name") is None else self.name(data["name"], kind, (*where, "name"))
        nested, extras = CHILDREN.get(kind, {}), EXTRAS.get(kind, {})
        body: dict[str, Any] = {}
        for key, member in data.items():
            if not isinstance(key, str):
                raise ScenarioError(f"a member name must be a string, not {key!r}", where)
            if key != "name" and key not in nested and key not in extras:
                body[key] = member
        children: list[ObjectSpec] = []
        for key, child_kind in nested.items():
            items = _list(data.get(key) or [], (*where, key), key)
            children.extend(self.obj(item, child_kind, (*where, key, i)) for i, item in enumerate(items))
        link = None if data.get("link") is None else _text(data["link"], (*where, "link"), "link")
        members: tuple[str, ...] = ()
        if "ports" in extras:
            members = tuple(_text(p, (*where, "ports", i), "a port name")
                            for i, p in enumerate(_list(data.get("ports") or [], (*where, "ports"), "ports")))
        if "addresses" in extras:
            members = tuple(self.ipv4(a, (*where, "addresses", i)) for i, a in
                            enumerate(_list(data.get("addresses") or [], (*where, "addresses"), "addresses")))
        router = None if data.get("router") is None else _text(data["router"], (*where, "router"), "router")
        return ObjectSpec(kind, name, body, where, tuple(children), link, members, router)

    def check_references(self, obj: ObjectSpec) -> None:
        """Every name where an id goes names an object of the right kind (the whole file was read first)."""
        self.check_templates(obj.body, obj.where)
        self.check_body(obj.body, obj.where)
        if obj.link is not None:
            peer = self.reference(obj.link, ("ports",), (*obj.where, "link"), ids=False)
            if peer == obj.name:
                raise ScenarioError("a port cannot be linked to itself", (*obj.where, "link"))
        if obj.kind == "port_groups":
            for i, port in enumerate(obj.members):
                self.reference(port, ("ports",), (*obj.where, "ports", i))
        if obj.router is not None:
            self.reference(obj.router, ("routers",), (*obj.where, "router"))

    def check_body(self, body: Any, where: Path) -> None:
        """References in a REST body (and in the mappings nested in it: a mirror's conditions)."""
        if isinstance(body, list):
            for i, item in enumerate(body):
                self.check_body(item, (*where, i))
            return
        if not isinstance(body, dict):
            return
        for key, value in body.items():
            kinds = REFERENCES.get(key)
            if kinds is None or value is None:
                self.check_body(value, (*where, key))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if not _templated(item):
                        self.reference(item, kinds, (*where, key, i))
            elif not _templated(value):
                self.reference(value, kinds, (*where, key))

    def ipv4(self, value: Any, where: Path) -> str:
        try:
            return str(ipaddress.IPv4Address(_text(value, where, "an IPv4 address")))
        except ValueError:
            raise ScenarioError(f"not an IPv4 address: {value!r}", where) from None

    # ---- VMs ----

    def vm(self, value: Any, where: Path, what: str) -> VmSpec:
        data = _mapping(value, where, what)
        _only(data, VM_KEYS, where, what)
        port = self.reference(_required(data, "port", where, what), ("ports",), (*where, "port"), ids=False)
        host = self.reference(_required(data, "host", where, what), ("hosts",), (*where, "host"), ids=False)
        interface = _text(_required(data, "interface", where, what), (*where, "interface"), "interface")
        mac = None
        if data.get("mac") is not None:
            mac = _text(data["mac"], (*where, "mac"), "mac")
            if not _MAC.match(mac):
                raise ScenarioError(f"not a MAC address: {mac!r}", (*where, "mac"))
            mac = mac.replace("-", ":").lower()
        ip = None
        if data.get("ip") is not None:
            text = _text(data["ip"], (*where, "ip"), "ip")
            if "/" not in text:
                raise ScenarioError(f"give the address with its prefix length, e.g. {text}/24", (*where, "ip"))
            try:
                ip = ipaddress.IPv4Interface(text)
            except ValueError:
                raise ScenarioError(f"not an IPv4 address with a prefix length: {text!r}", (*where, "ip")) from None
        gw = None if data.get("gw") is None else self.ipv4(data["gw"], (*where, "gw"))
        known = self.vms.get(interface)
        if known is None:
            vm = self.vms[interface] = VmSpec(port, host, interface, where, mac, ip, gw)
            return vm
        line = self.places.line(known.where)
        if known.host != host:
            raise ScenarioError(f"interface {interface!r} is a VM on {known.host} already (line {line})",
                                (*where, "host"))
        for key, new, old in (("mac", mac, known.mac), ("ip", ip, known.ip), ("gw", gw, known.gw)):
            if new is not None and new != old:
                raise ScenarioError(f"VM {interface!r} was made with another {key} (line {line})", (*where, key))
        return VmSpec(port, host, interface, where, known.mac, known.ip, known.gw)

    def known_vm(self, value: Any, where: Path) -> VmSpec:
        name = _text(value, where, "a VM (an interface of a binding)")
        vm = self.vms.get(name)
        if vm is None:
            known = ", ".join(self.vms) or "none yet"
            raise ScenarioError(f"unknown VM {name!r}: VMs are the interfaces of the bindings ({known})", where)
        return vm

    # ---- traffic ----

    def step(self, value: Any, where: Path) -> Step:
        data = _mapping(value, where, "a traffic step")
        if ("send" in data) == ("do" in data):
            raise ScenarioError("a traffic step has either `send` (with `expect`, `expect_none_at`) or `do`", where)
        if "do" in data:
            _only(data, ("do",), where, "a `do` step")
            return self.action(data["do"], (*where, "do"))
        _only(data, ("send", "expect", "expect_none_at"), where, "a `send` step")
        return self.send(data, where)

    def send(self, data: Mapping[str, Any], where: Path) -> Send:
        at = (*where, "send")
        send = _mapping(data["send"], at, "send")
        _only(send, ("from", "packet"), at, "send")
        vm = self.known_vm(_required(send, "from", at, "send"), (*at, "from"))
        text = _text(_required(send, "packet", at, "send"), (*at, "packet"), "packet")
        items = self.spec(lambda: split_spec(text), (*at, "packet"))
        if checks.is_ipv4(items) and "dhcp" not in items and vm.ip is None:
            for key in ("ip_src", "eth_dst"):
                if key not in items:
                    raise ScenarioError(f"VM {vm.interface} has no ip: the packet must give {key}", (*at, "packet"))
        self.spec(lambda: checks.check_spec(items, mac=vm.mac, ip=None if vm.ip is None else str(vm.ip.ip)),
                  (*at, "packet"))
        expects = []
        for i, item in enumerate(_list(data.get("expect") or [], (*where, "expect"), "expect")):
            place = (*where, "expect", i)
            expect = _mapping(item, place, "an expectation")
            _only(expect, ("at", "packet"), place, "an expectation")
            target = self.known_vm(_required(expect, "at", place, "an expectation"), (*place, "at"))
            want = _text(_required(expect, "packet", place, "an expectation"), (*place, "packet"), "packet")
            self.spec(functools.partial(checks.expected, want), (*place, "packet"))
            expects.append(Expect(target.interface, split_spec(want, checks.EXPECT_KEYS), want, place))
        nothing = tuple(self.known_vm(name, (*where, "expect_none_at", i)).interface for i, name in
                        enumerate(_list(data.get("expect_none_at") or [], (*where, "expect_none_at"),
                                        "expect_none_at")))
        return Send(vm.interface, items, text, where, tuple(expects), nothing)

    def spec(self, fn: Callable[[], T], where: Path) -> T:
        try:
            return fn()
        except SpecError as e:
            raise ScenarioError(f"bad packet spec: {e}", where) from None

    def action(self, value: Any, where: Path) -> Step:
        data = _mapping(value, where, "`do`")
        kinds = [k for k in DO_KINDS if k in data and not (k == "interface" and "bind" in data)]
        if len(kinds) != 1:
            raise ScenarioError(f"`do` takes one of {', '.join(DO_KINDS)}", where)
        kind = kinds[0]
        if kind == "api":
            _only(data, ("api", "path", "body"), where, "an API step")
            method = _text(data["api"], (*where, "api"), "api").upper()
            if method not in METHODS:
                raise ScenarioError(f"api must be {', '.join(METHODS)}, not {data['api']!r}", (*where, "api"))
            path = _text(_required(data, "path", where, "an API step"), (*where, "path"), "path")
            if not path.startswith("/"):
                raise ScenarioError(f"path must start with / (it is under the API's base URI): {path!r}",
                                    (*where, "path"))
            self.check_templates(path, (*where, "path"))
            body = data.get("body")
            self.check_templates(body, (*where, "body"))
            self.check_body(body, (*where, "body"))
            return ApiCall(method, path, where, body)
        if kind == "interface":
            _only(data, ("interface", "state"), where, "an interface step")
            vm = self.known_vm(data["interface"], (*where, "interface"))
            state = _required(data, "state", where, "an interface step")
            if state not in ("up", "down"):
                raise ScenarioError(f"state must be up or down, not {_kind_of(state)}", (*where, "state"))
            return SetLink(vm.interface, state == "up", where)
        if kind == "restart_agent":
            _only(data, ("restart_agent",), where, "a restart step")
            host = self.reference(data["restart_agent"], ("hosts",), (*where, "restart_agent"), ids=False)
            return RestartAgent(host, where)
        if kind == "bind":
            renamed = {("port" if k == "bind" else k): v for k, v in data.items()}
            _only(renamed, VM_KEYS, where, "a bind step")
            return Bind(self.vm(renamed, where, "a bind step"), where)
        if kind == "unbind":
            _only(data, ("unbind",), where, "an unbind step")
            return Unbind(self.reference(data["unbind"], ("ports",), (*where, "unbind"), ids=False), where)
        _only(data, ("wait",), where, "a wait step")
        seconds = data["wait"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ScenarioError(f"wait takes seconds (a number >= 0), not {_kind_of(seconds)}", (*where, "wait"))
        return Wait(float(seconds), where)

    def check_templates(self, value: Any, where: Path) -> None:
        """Every `{name}` in the strings of `value` names a host or an object of the file."""
        if isinstance(value, str):
            for name in template_names(value):
                if name not in self.names:
                    raise ScenarioError(f"unknown name {{{name}}}: no host or object is called {name!r}", where)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.check_templates(item, (*where, i))
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check_templates(item, (*where, key))


def _templated(value: Any) -> bool:
    """A string with `{name}` references (checked as such, resolved when the objects exist)."""
    return isinstance(value, str) and bool(template_names(value))


__all__ = ["is_uuid", "load", "parse", "read", "template_names"]
