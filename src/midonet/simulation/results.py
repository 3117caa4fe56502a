"""What a simulation answers: a closed family of verdicts, wrapped in one `SimulationResult` (spec 3.1, 3.12).

Role: the only thing the simulation hands back to the agent, `midonet trace` and tests. Devices return verdicts or
*continuations* (`ToPort`, `Fork`) to the driver; the driver follows continuations, merges the branches of a fork
and wraps the final verdict with everything the context gathered::

    SimulationResult
    ├── verdict: Verdict
    │   ├── Forward(outputs)          install a flow: emit from these exterior ports, with these field rewrites
    │   ├── Drop(reason)              install a drop flow (normal expiry, keeps its tags)
    │   ├── TemporaryDrop(reason, kind)  install a 5 s drop flow, tags cleared but flow-state tags
    │   │                                kind ERROR = the original's ErrorDrop, SHORT = ShortDrop
    │   ├── Consumed(reason)          answered by the virtual network itself (ARP, ICMP echo, DHCP): no flow
    │   └── Postponed(missing)        "not yet": data missing (device not loaded, next hop unresolved); the packet
    │                                 waits and is simulated again from scratch; no flow
    ├── match, wildcard               the packet as received, and the fields the flow must match exactly
    ├── tags                          what invalidates the flow (device ids, MAC/port tuples, routes, ARP entries)
    ├── generated                     packets devices generated (ARP replies and requests, ICMP): never a flow
    ├── state_writes                  MAC/ARP learning, conntrack and NAT keys the caller applies
    │                                 (`StateTables.apply`; `release` when the flow goes)
    └── trace                         the steps, when the context was tracing

Continuations (never seen outside a simulation): `ToPort(p)` continues at the egress of port p; `Fork(branches)`
runs each branch from the same packet and merges the verdicts; `Continue(run)` is the rest of a device's work,
deferred so that a fork can run something else first (a mirror's copy, spec 3.9: `Fork((ToPort(mirror port),
Continue(rest)))` is the original's `Fork(toPort, next)`).

Merging forked branches (the original's `Simulator.merge`): Drop, TemporaryDrop(SHORT) and Consumed are absorbed
by the other branch; TemporaryDrop(ERROR) wins; two Forwards concatenate their outputs.

Generated packets never install flows; they are simulated afterwards from the *egress* of the port they were
emitted on (`simulate_generated`).

May import: `midonet.packets`, `midonet.state`, `midonet.topology.ids`, `simulation.pipeline`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, assert_never

from midonet.packets.flowmatch import FieldValue, FlowMatch
from midonet.simulation.pipeline import Stage
from midonet.state.tables import StateWrite
from midonet.topology.ids import PortId

FLOW_EXPIRATION: Final = 60.0
STATEFUL_FLOW_EXPIRATION: Final = 30.0
ERROR_EXPIRATION: Final = 5.0


@dataclass(frozen=True, slots=True)
class Output:
    """Emit the packet from exterior port `port`, after applying `rewrites` (field -> new value) to it."""

    port: PortId
    rewrites: tuple[tuple[str, FieldValue], ...] = ()


@dataclass(frozen=True, slots=True)
class Forward:
    outputs: tuple[Output, ...]


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


class TemporaryDropKind(enum.Enum):
    ERROR = "error"     # ErrorDrop: something is wrong or unresolved; wins over every other branch
    SHORT = "short"     # ShortDrop: a normal answer (no route, reject route) worth only a short flow


@dataclass(frozen=True, slots=True)
class TemporaryDrop:
    reason: str
    kind: TemporaryDropKind = TemporaryDropKind.ERROR


@dataclass(frozen=True, slots=True)
class Consumed:
    reason: str


@dataclass(frozen=True, slots=True)
class Postponed:
    """Missing `kind` `id` (a device the agent has not loaded, an ARP entry): simulate again when it comes."""

    kind: str
    id: str


Verdict = Forward | Drop | TemporaryDrop | Consumed | Postponed


# ---- continuations: what a device hands the driver besides a verdict (never seen outside a simulation) ----

@dataclass(frozen=True, slots=True)
class ToPort:
    """Continue at the egress of `port` (the original's `ToPortAction`)."""

    port: PortId


@dataclass(frozen=True, slots=True)
class Fork:
    """Continue with each branch in turn from the same packet (flooding, mirrors); merge the results."""

    branches: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Continue:
    """Continue with `run()`: the rest of a device's work, deferred behind a fork's earlier branches."""

    run: Callable[[], Step]


Step = Forward | Drop | TemporaryDrop | Consumed | ToPort | Fork | Continue

EMITTED: Final = Forward(())
"""What an exterior port's egress returns: the output itself is recorded in the context (the driver collects)."""


def merge(a: Step, b: Step) -> Step:
    """Two branches' verdicts as one (spec 3.1)."""
    if _absorbed(a):
        return b
    if _absorbed(b):
        return a
    if isinstance(a, TemporaryDrop):
        return a
    if isinstance(b, TemporaryDrop):
        return b
    if type(a) is not type(b):
        return TemporaryDrop(f"forked branches disagree: {type(a).__name__} and {type(b).__name__}")
    return a


def _absorbed(step: Step) -> bool:
    return (isinstance(step, (Drop, Consumed))
            or (isinstance(step, TemporaryDrop) and step.kind is TemporaryDropKind.SHORT))


# ---- the result ----

@dataclass(frozen=True, slots=True)
class GeneratedPacket:
    """A frame a device generated, to be simulated from the egress of `port`."""

    port: PortId
    frame: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One step of a traced simulation: where (pipeline stage, device), and what happened."""

    stage: Stage
    device: str
    text: str

    def __str__(self) -> str:
        return f"{self.stage.label:<22} {self.device[:8]:<8}  {self.text}"


FlowTag = str | tuple[object, ...]
"""What invalidates a flow (spec 3.12): a device id (port, bridge, router, chain, load balancer, pool) as a plain
string, or a tuple whose first item names its kind:

    ("mac", bridge, mac, vlan, port)     a MAC seen on / resolved to a port     ("broadcast", bridge)
    ("flooded", bridge, vlan, mac)       flooded because mac was unknown        ("arp_requests", bridge)
    ("bridge_port", bridge, port)        sent to a peer router by its port      ("route", route)
    ("dst_ip", router, ip)               routed to ip by a non-/32 route        ("arp", router, ip)
    ("conntrack", ConnTrackKey)          a connection-tracking lookup (a flow-state tag)
    ("nat", NatKey)                      a NAT key looked up or written (a flow-state tag)
    ("meter", name)                      a rule's user meter
"""

FLOW_STATE_TAGS: Final = frozenset({"conntrack", "nat"})
"""The kinds of flow-state tags: a temporary drop keeps these and clears the others."""


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The answer for one packet. `match` is the packet as received; `wcmatch` the match at the end of the
    simulation, whose record of fields read is the flow's wildcard (its values mean nothing after a fork)."""

    verdict: Verdict
    match: FlowMatch
    wcmatch: FlowMatch
    tags: frozenset[FlowTag] = frozenset()
    generated: tuple[GeneratedPacket, ...] = ()
    state_writes: tuple[StateWrite, ...] = ()
    stateful: bool = False
    trace: tuple[TraceLine, ...] = ()

    @property
    def fields_seen(self) -> frozenset[str]:
        """The fields the simulation read: the flow matches them exactly and wildcards the rest."""
        return self.wcmatch.fields_seen()

    @property
    def wildcard(self) -> frozenset[str]:
        """The fields the installed flow matches exactly (seen, in_port, and what they presuppose)."""
        return self.wcmatch.mask_fields()

    @property
    def userspace_only(self) -> bool:
        """No kernel flow: the packet read a field the datapath cannot match (ICMP id/data) or was marked."""
        return self.wcmatch.userspace_only

    @property
    def expiration(self) -> float | None:
        """Hard timeout of the flow to install, in seconds; None when no flow is installed (spec 3.12)."""
        match self.verdict:
            case Forward() | Drop():
                return STATEFUL_FLOW_EXPIRATION if self.stateful else FLOW_EXPIRATION
            case TemporaryDrop():
                return ERROR_EXPIRATION
            case Consumed() | Postponed():
                return None
            case _:
                assert_never(self.verdict)

    @property
    def installs_flow(self) -> bool:
        return self.expiration is not None and not self.userspace_only

    def describe(self) -> str:
        return describe(self.verdict)


def describe(verdict: Verdict) -> str:
    """One line: the verdict and its reason or outputs."""
    match verdict:
        case Forward(outputs):
            return "forward to " + ", ".join(_output_text(o) for o in outputs)
        case Drop(reason):
            return f"drop: {reason}"
        case TemporaryDrop(reason, kind):
            return f"temporary drop ({kind.value}): {reason}"
        case Consumed(reason):
            return f"consumed: {reason}"
        case Postponed(kind, ident):
            return f"postponed: waiting for {kind} {ident}"
        case _:
            assert_never(verdict)


def _output_text(output: Output) -> str:
    if not output.rewrites:
        return output.port
    return output.port + " (" + ", ".join(f"{k}={v!r}" for k, v in output.rewrites) + ")"
