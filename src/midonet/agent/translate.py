"""Translation: a simulation's virtual outputs -> datapath actions (spec 3.12, 5.1; the original's `FlowTranslator`).

Role: the simulation says "emit from exterior port P, with these rewrites" (`simulation.results.Output`); the
datapath understands "set these fields, set the tunnel, output to datapath port n". `translate` turns every output
of a `Forward` into actions, in order, into one action list:

    P bound here                 SetFields(rewrites) + Output(P's datapath port)           tag ("dp_port", n)
    P active on another host H   SetFields(rewrites) + SetTunnel(key = P's tunnel key,     tag ("tunnel", H)
                                 src = my tunnel-zone IP, dst = H's) + Output(vxlan port)
    P active nowhere, or H with  no action for that copy (spec 5.1 "peer unreachable")      tag ("tunnel", H)
    no tunnel route              if H known
    P's location not loaded      `NotYet("port_location", P)`: the packet waits for it. Every output is asked
                                 first, so a flood to many unloaded ports subscribes to all of them at once,
                                 and the packet waits for the last one asked, whose answer comes after the
                                 others' (a store session delivers in order): it waits once, not once per
                                 port (which gave up after 8 waits)

The flow already carries the egress port's id as a tag (the simulation's port egress adds it), so a port becoming
active or inactive, here or elsewhere, invalidates it.

Several outputs share one action list, and actions apply to the packet as it is at that point: each output's
`SetFields` sets exactly the fields that differ between the packet as the previous output left it and what this
output wants (a field the previous copy rewrote and this one did not is set back). VLAN changes become `PopVlan`
(every tag) and `PushVlan` (innermost first). A rewrite the datapath cannot do (`icmp_id`, `icmp_data`: NAT of
ICMP, which is userspace-only anyway) makes the translation *not expressible*: no flow is installed and the
packet is executed copy by copy (`copies`: the rewrites applied with `packets.frame.apply`, then the delivery
actions). A drop (no outputs) translates to no actions.

May import: `midonet.datapath`, `midonet.packets`, `midonet.simulation`, `agent.bindings`, `agent.topology_cache`,
`agent.tunnel_zones`, `agent.interning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from midonet.agent.bindings import Binding, PortBindings, dp_port_tag
from midonet.agent.interning import Memo, same
from midonet.agent.topology_cache import PortLocation, TopologyCache
from midonet.agent.tunnel_zones import TunnelRoute, TunnelZones, tunnel_tag
from midonet.datapath.base import SETTABLE_FIELDS, Action, Output, PopVlan, PushVlan, SetFields, SetTunnel
from midonet.packets.flowmatch import FieldValue, FlowMatch
from midonet.simulation import results
from midonet.simulation.results import FlowTag
from midonet.simulation.topology import NotYet


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a copy for one virtual port goes: the delivery actions (empty: nowhere) and the flow tags that say so."""

    actions: tuple[Action, ...]
    tags: tuple[FlowTag, ...] = ()


class PortResolver(Protocol):
    def destination(self, port_id: str) -> Destination:
        """Where to send a copy for exterior port `port_id`; may raise `NotYet`."""
        ...


@dataclass(frozen=True, slots=True)
class Copy:
    """One output for userspace execution: apply `rewrites` to the frame, then perform `actions`."""

    rewrites: tuple[tuple[str, FieldValue], ...]
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class Translation:
    actions: tuple[Action, ...]          # the flow's actions (empty: drop)
    tags: frozenset[FlowTag]             # added to the simulation's tags
    expressible: bool = True             # False: no kernel flow, execute `copies` one by one
    copies: tuple[Copy, ...] = ()
    unreachable: tuple[str, ...] = ()    # outputs that went nowhere


DROP = Translation((), frozenset())
NOWHERE = Destination(())
MAX_REMOTE = 1 << 16   # destinations of other hosts' ports kept, and single-output translations


class AgentResolver:
    """`PortResolver` over the agent's bindings, topology cache (port locations) and tunnel zones."""

    def __init__(self, host_id: str, bindings: PortBindings, cache: TopologyCache, tunnels: TunnelZones) -> None:
        self._host_id = host_id
        self._bindings = bindings
        self._cache = cache
        self._tunnels = tunnels
        self._local: dict[str, tuple[Binding, Destination]] = {}   # by port: its binding, made into a destination
        self._remote: dict[str, tuple[PortLocation, TunnelRoute | None, int | None, Destination]] = {}

    def destination(self, port_id: str) -> Destination:
        """Made once while what it depends on holds (the binding; or the location, the tunnel route and the
        overlay port): `translate` knows a destination by its identity."""
        binding = self._bindings.binding(port_id)
        if binding is not None:
            local = self._local.get(port_id)
            if local is None or local[0] is not binding:
                local = self._local[port_id] = (binding, Destination((Output(binding.dp_port),),
                                                                     (dp_port_tag(binding.dp_port),)))
            return local[1]
        self._local.pop(port_id, None)
        location = self._cache.port_location(port_id)
        if location is None or location.host_id == self._host_id:
            return NOWHERE   # not active (or our own binding is on its way): the port tag covers it
        route = self._tunnels.route(location.host_id)
        vxlan = self._bindings.vxlan_port
        remote = self._remote.get(port_id)
        if remote is None or remote[0] is not location or remote[1] is not route or remote[2] != vxlan:
            if len(self._remote) >= MAX_REMOTE:
                self._remote.clear()
            tag = tunnel_tag(location.host_id)
            dest = (Destination((), (tag,)) if route is None or vxlan is None else
                    Destination((SetTunnel(location.tunnel_key, route.src, route.dst), Output(vxlan)), (tag,)))
            remote = self._remote[port_id] = (location, route, vxlan, dest)
        return remote[3]


def vlan_actions(current: tuple[int, ...], wanted: tuple[int, ...]) -> list[Action]:
    """Pop every tag of `current`, push `wanted` (outermost first in the tuple, so pushed innermost first)."""
    if current == wanted:
        return []
    actions: list[Action] = [PopVlan() for _ in current]
    actions.extend(PushVlan(vid) for vid in reversed(wanted))
    return actions


def translate(outputs: Sequence[results.Output], original: FlowMatch, resolver: PortResolver) -> Translation:
    """The datapath actions for a `Forward`'s outputs; see the module docstring.

    One output (most flows) is looked up first, by what its translation depends on: its port, its destination (by
    identity: `AgentResolver` makes one once while it holds), its rewrites, and the packet's values of the fields
    they rewrite and of its VLANs. Every flow from one VM to a port through one router hop shares the answer."""
    if len(outputs) != 1:
        return _translate(outputs, original, resolver)
    output = outputs[0]
    dest = resolver.destination(output.port)
    rewrites = output.rewrites
    peek = original.peek
    key = (output.port, id(dest), rewrites, tuple([peek(name) for name, _ in rewrites]), peek("vlan_ids"))
    found = _ONE.get(key)
    if found is not None and found[0] is dest:
        return found[1]
    translation = _translate(outputs, original, _Fixed(output.port, dest))
    if len(_ONE) >= MAX_REMOTE:
        _ONE.clear()
    _ONE[key] = (dest, translation)   # the destination kept alive with its id
    return translation


class _Fixed:
    """The one destination already asked for."""

    def __init__(self, port_id: str, dest: Destination) -> None:
        self._port_id, self._dest = port_id, dest

    def destination(self, port_id: str) -> Destination:
        assert port_id == self._port_id
        return self._dest


_ONE: dict[tuple[object, ...], tuple[Destination, Translation]] = {}


def _translate(outputs: Sequence[results.Output], original: FlowMatch, resolver: PortResolver) -> Translation:
    actions: list[Action] = []
    tags: set[FlowTag] = set()
    copies: list[Copy] = []
    unreachable: list[str] = []
    expressible = True
    current: dict[str, FieldValue] = {}            # fields the action list has set so far
    orig_vlans = original.peek("vlan_ids")
    vlans: tuple[int, ...] = orig_vlans if isinstance(orig_vlans, tuple) else ()
    missing: NotYet | None = None
    for output in outputs:
        try:
            dest = resolver.destination(output.port)
        except NotYet as e:            # ask the others too: their locations load together
            missing = e
            continue
        if missing is not None:
            continue
        tags.update(dest.tags)
        if not dest.actions:
            unreachable.append(output.port)
            continue
        copies.append(Copy(output.rewrites, dest.actions))
        wanted = dict(output.rewrites)
        wanted_vlans = wanted.pop("vlan_ids", orig_vlans)
        if any(name not in SETTABLE_FIELDS for name in wanted):
            expressible = False
        changes: dict[str, FieldValue] = {}
        for name in sorted((current.keys() | wanted.keys()) & SETTABLE_FIELDS):
            value = wanted.get(name, original.peek(name))
            if current.get(name, original.peek(name)) != value:
                changes[name] = value
        if changes:
            actions.append(_SET_FIELDS(tuple(changes.items()), SetFields))
            current.update(changes)
        target = wanted_vlans if isinstance(wanted_vlans, tuple) else ()
        actions.extend(vlan_actions(vlans, target))
        vlans = target
        actions.extend(dest.actions)
    if missing is not None:
        raise missing
    return Translation(_ACTIONS(tuple(actions), same), frozenset(tags), expressible, tuple(copies), tuple(unreachable))


_SET_FIELDS = Memo[tuple[tuple[str, FieldValue], ...], SetFields]()
"""The `SetFields` of equal changes, made (and checked) once (a router hop's: its MACs and TTL)."""
_ACTIONS = Memo[tuple[Action, ...], tuple[Action, ...]]()
"""One object for every equal action list: the thousands of flows through one router hop share theirs."""
