"""Tracing sessions: packets described by specs, simulated in turn over shared state, with a readable trace.

Role: the engine behind `midonet trace` (spec 3.14's idea, done offline as `ovn-trace` does it). A
`TraceSession` holds one topology snapshot and one set of state tables for a whole run; `run(port, packet)`
simulates one packet (a `packetspec` packet) coming in on a port, exactly as the agent would for an upcall:

    build the frame ─► simulate_frame(tracing=True) ─► apply its state writes (MAC, ARP learning ...)
        ─► each output: the frame as it leaves (the result's rewrites applied) ─► its packet
        ─► each generated packet (ARP reply, ICMP error, echo reply ...): simulate_generated from the egress of
           its port, apply its writes, its outputs; what those generate in turn, up to `MAX_GENERATED_ROUNDS`

so a later step sees what earlier ones learned: a reply after its request is unicast (and a return flow for
connection tracking), a routed packet finds the next hop an earlier ARP reply taught the router, a reply finds
the NAT binding its request made. The answer is a `StepTrace`, plain data that `simulation.tracerender` turns
into JSON or into the detailed text.

Steps are written `PORT_ID:SPEC` (`parse_step`); a spec `reply=N[,key=value...]` is a `Reply`: the answer to
step N's output, made by `TraceSession.reply` once step N has run (`packetspec.reply_items`: addresses and ports
swapped, echo request -> echo reply; the other keys override), so that the answer to a connection through a
dynamic SNAT needs no knowledge of the port the SNAT picked.

This module never interprets verdicts or trace lines beyond naming what they mention: whatever the simulator
returns (new verdicts, new stages, new devices noted by later engineers) is carried through as it is.

`Names` resolves the ids in trace lines to readable labels (`bridge "left"`, `port 1a2b3c4d of router "edge"
10.0.1.254/24`, `chain "in"`), and rule positions in chain lines to rule ids, from the records the topology was
built from; `devices` (the ids traversed, in order) comes from the same lines.

May import: `midonet.packets`, `midonet.topology`, `midonet.state`, `simulation.*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from midonet.packets import frame as frames
from midonet.simulation.driver import simulate_frame, simulate_generated
from midonet.simulation.packetspec import (
    Packet,
    SpecError,
    build_frame,
    describe_frame,
    parse_items,
    reply_items,
    split_spec,
)
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Forward, GeneratedPacket, Output, SimulationResult, TraceLine
from midonet.simulation.topology import NotYet, VirtualTopology
from midonet.state.tables import StateTables
from midonet.topology.chains import Rule
from midonet.topology.devices import Port
from midonet.topology.ids import ChainId, PortId
from midonet.topology.record import Record

MAX_GENERATED_ROUNDS = 4
"""Generated packets may generate more (an ICMP error needing an ARP request ...): at most this many rounds."""

NOT_DEVICES = frozenset({"Chain", "Rule", "Route", "IPAddrGroup", "PortGroup", "Host", "TunnelZone"})
"""Kinds of records a trace line may name that are not devices a packet traverses."""

_RULE_POSITION = re.compile(r"^rule (\d+)\b")


def short(ident: str) -> str:
    return ident[:8]


class Names:
    """Labels of the objects of a topology, for people; and the topology's chains, to name rules."""

    def __init__(self, records: Iterable[Record], topology: VirtualTopology) -> None:
        self._topology = topology
        self._kinds: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._port_devices: dict[str, str] = {}
        by_id: dict[str, Record] = {}
        for record in records:
            by_id[record.id] = record
            self._kinds[record.id] = record.kind()
        for record in by_id.values():
            self._labels[record.id] = self._label(record, by_id)
            if isinstance(record, Port) and record.device_id:
                self._port_devices[record.id] = record.device_id

    def _label(self, record: Record, by_id: Mapping[str, Record]) -> str:
        kind = record.kind().lower()
        name = getattr(record, "name", None)
        if isinstance(record, Port):
            device = by_id.get(record.device_id)
            text = f"port {short(record.id)}"
            if device is not None:
                text += f" of {self._label(device, by_id)}"
            if record.port_address and record.port_subnet:
                text += f" {record.port_address}/{record.port_subnet.rpartition('/')[2]}"
            if record.interface_name:
                text += f" [{record.interface_name}]"
            return text
        if isinstance(record, Rule):
            chain = by_id.get(record.chain_id or "")
            return f"rule {short(record.id)}" + (f" of {self._label(chain, by_id)}" if chain is not None else "")
        return f'{kind} "{name}"' if isinstance(name, str) and name else f"{kind} {short(record.id)}"

    def kind(self, ident: str) -> str | None:
        """The record kind of `ident` ("Bridge", "Port" ...), None for what is not a record of the topology."""
        return self._kinds.get(ident)

    def label(self, ident: str) -> str:
        """A readable label; the id itself when it names no record (and "" for the simulator's "-")."""
        if ident == "-":
            return ""
        return self._labels.get(ident, ident)

    def port_device(self, port: str) -> str | None:
        return self._port_devices.get(port)

    def is_device(self, ident: str) -> bool:
        kind = self._kinds.get(ident)
        return kind is not None and kind not in NOT_DEVICES

    def has_port(self, ident: str) -> bool:
        return self._kinds.get(ident) == "Port"

    def rule_at(self, chain: str, position: int) -> str | None:
        """The id of the rule at `position` (0-based, as chain trace lines count) of `chain`, if there is one."""
        try:
            rules = self._topology.get_chain(ChainId(chain)).rules
        except NotYet:
            return None
        return rules[position].id if 0 <= position < len(rules) else None


@dataclass(frozen=True, slots=True)
class Line:
    """One trace line, resolved for people: the pipeline stage, the device whose pipeline it belongs to
    (`owner`), what it names (`subject`: the same device, a chain or a rule; "" for none) and what happened."""

    stage: Stage
    owner: str
    subject: str
    text: str

    def __str__(self) -> str:
        if self.subject:
            return f"{self.stage.label}: {self.subject}: {self.text}"
        return f"{self.stage.label}: {self.text}"


@dataclass(frozen=True, slots=True)
class Emission:
    """A packet leaving the virtual network by exterior port `port_id`, as it leaves (rewrites applied);
    `rewritten` names the fields the simulation changed."""

    port_id: str
    packet: Packet
    rewritten: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True, slots=True)
class GeneratedTrace:
    """A packet a device generated (`reason`), simulated from the egress of port `origin`."""

    origin: str
    reason: str
    packet: Packet
    result: SimulationResult
    lines: tuple[Line, ...]
    outputs: tuple[Emission, ...]
    origin_label: str = ""


@dataclass(frozen=True, slots=True)
class StepTrace:
    """Everything one step of a trace did. `devices`: the ids traversed by the packet, in order."""

    index: int
    port_id: str
    packet: Packet
    result: SimulationResult
    lines: tuple[Line, ...]
    outputs: tuple[Emission, ...]
    generated: tuple[GeneratedTrace, ...]
    devices: tuple[str, ...]
    port_label: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """A step that answers an earlier one (`reply=N`): the reverse of step N's output at this step's port (else its
    first output), with the spec's other items replacing what they name."""

    step: int
    overrides: Mapping[str, str]


def parse_step(text: str) -> tuple[str, Packet | Reply]:
    """`PORT_ID:SPEC` (or `PORT_ID` alone) -> (port id, packet); a spec with `reply=N` -> (port id, `Reply`)."""
    port, _, spec = text.partition(":")
    port = port.strip()
    if not port:
        raise SpecError(None, f"expected PORT_ID:SPEC, got {text!r}")
    given = split_spec(spec, extra=("reply",))
    if "reply" not in given:
        return port, parse_items(given)
    raw = given.pop("reply")
    if not raw.isdigit() or int(raw) < 1:
        raise SpecError("reply", f"must be the number of an earlier step, not {raw!r}")
    return port, Reply(int(raw), given)


class TraceSession:
    """Steps simulated in order over one topology and one set of state tables (see the module docstring)."""

    def __init__(self, topology: VirtualTopology, tables: StateTables, names: Names) -> None:
        self.topology = topology
        self.tables = tables
        self.names = names
        self.steps: list[StepTrace] = []

    def run(self, port_id: str, packet: Packet) -> StepTrace:
        """Simulate `packet` coming in on `port_id`, then what it generated; apply every state write."""
        data = build_frame(packet)
        result = simulate_frame(data, PortId(port_id), self.topology, self.tables, tracing=True)
        self.tables.apply(result.state_writes)
        generated: list[GeneratedTrace] = []
        pending = list(result.generated)
        for _ in range(MAX_GENERATED_ROUNDS):
            later: list[GeneratedPacket] = []
            for made in pending:
                answer = simulate_generated(made, self.topology, self.tables, tracing=True)
                self.tables.apply(answer.state_writes)
                generated.append(GeneratedTrace(made.port, made.reason, describe_frame(made.frame), answer,
                                                self._lines(answer.trace), self._emissions(made.frame, answer),
                                                self.names.label(made.port)))
                later.extend(answer.generated)
            pending = later
        step = StepTrace(len(self.steps) + 1, port_id, packet, result, self._lines(result.trace),
                         self._emissions(data, result), tuple(generated), self._devices(result.trace),
                         self.names.label(port_id))
        self.steps.append(step)
        return step

    def reply(self, port_id: str, reply: Reply) -> Packet:
        """The packet `reply` describes, from the steps run so far; `SpecError` (key `reply`) if there is none."""
        if not 1 <= reply.step <= len(self.steps):
            raise SpecError("reply", f"step {reply.step} has not run yet (steps so far: {len(self.steps)})")
        outputs = self.steps[reply.step - 1].outputs
        if not outputs:
            raise SpecError("reply", f"step {reply.step} sent nothing out to reply to")
        here = [e for e in outputs if e.port_id == port_id]
        return parse_items(reply_items((here or list(outputs))[0].packet) | dict(reply.overrides))

    def _lines(self, trace: Iterable[TraceLine]) -> tuple[Line, ...]:
        lines: list[Line] = []
        owner = ""
        names = self.names
        for line in trace:
            ident = line.device
            subject = names.label(ident)
            if names.is_device(ident):
                owner = subject
            elif line.stage is Stage.RESULT:
                owner = ""
            text = line.text
            if names.kind(ident) == "Chain" and (found := _RULE_POSITION.match(text)):
                rule = names.rule_at(ident, int(found.group(1)))
                if rule is not None:
                    text += f" [rule {rule}]"
            lines.append(Line(line.stage, owner, subject, text))
        return tuple(lines)

    def _devices(self, trace: Iterable[TraceLine]) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for line in trace:
            if self.names.is_device(line.device):
                seen.setdefault(line.device)
            if line.stage is Stage.PORT_INGRESS:
                device = self.names.port_device(line.device)
                if device is not None:
                    seen.setdefault(device)
        return tuple(seen)


    def _emissions(self, data: bytes, result: SimulationResult) -> tuple[Emission, ...]:
        if not isinstance(result.verdict, Forward):
            return ()
        return tuple(self._emission(data, output) for output in result.verdict.outputs)

    def _emission(self, data: bytes, output: Output) -> Emission:
        changes = dict(output.rewrites)
        try:
            out = frames.apply(data, changes) if changes else data
        except ValueError:                   # a rewrite a datapath could not apply: show the packet as it came
            out = data
        return Emission(output.port, describe_frame(out), tuple(sorted(changes)), self.names.label(output.port))


__all__ = ["MAX_GENERATED_ROUNDS", "Emission", "GeneratedTrace", "Line", "Names", "Reply", "StepTrace", "TraceSession",
           "parse_step"]
