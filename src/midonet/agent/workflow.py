"""The packet workflow: upcall -> simulate -> translate -> install + execute (spec 1.7; `PacketWorkflow.scala`).

Role: what the agent does with a packet the datapath handed up (a miss). Decided under the agent's lock, done
outside it (`events`); nothing here raises to the datapath: failures are dropped packets with a reason (`AgentDrop`).

    upcall ─ admission ── over its port's budget ─► drop (counted per port)
       │
       ├─ parse_frame ── malformed ─► drop (counted)
       │
       ├─ from the VXLAN port ─► tunnel key -> local port: flow (in_port = vxlan, tunnel_id) -> Output(port),
       │                         300 s, no simulation (spec 5.1 rule 1); unknown key: 5 s drop flow;
       │                         key 0xFFFFFF: a peer's flow state, imported (`flowstate`), never a flow
       └─ datapath port -> virtual port ─► simulate (`simulation.driver.simulate`)
              Forward     translate (`translate`) ─► flow state to the interested hosts (`flowstate`, spec 4.4)
                          ─► install the flow (unless userspace-only) ─► execute: the state frames first
              Drop / TemporaryDrop ─► install a drop flow (60 s / 5 s)
              Consumed    no flow
              Postponed   park in the waiting room (no flow); simulate again from scratch when the missing
                          (kind, id) arrives; give up after 3 s with a 5 s drop flow (tagged ("waiting", kind,
                          id), so that the data arriving removes it)
           then: apply the state writes (the references they take -- MAC learning, conntrack, NAT -- are held by
           the installed flow and released by its removal, or released at once when no flow is installed), and
           send the generated packets (ARP replies and requests, ICMP): each is simulated from its port's egress
           (`simulate_generated`), never installs a flow, may wait in the waiting room like any packet (an ARP
           request for a bridge not loaded yet), and its own generated packets follow, four generations at most

The flow key is the simulation's match on the fields it read (`result.wildcard`), with `in_port` the datapath
port number the packet came in by. Its tags are the simulation's plus translation's. Its expiry class is the
result's (`SimulationResult.expiration`: 60 s, 30 s stateful, 5 s temporary drops).

Install, then execute with the same actions (the same tuple): a datapath that can run an installed flow's actions
on a packet does so for that packet (the Linux datapath's kernel execute, `docs/design/datapath.md`); frames whose
actions are no installed flow's (state frames, floods without a flow, rewritten copies) are executed as given.

Invariant (ARCHITECTURE.md rule 6): a packet of an installed flow never reaches this module: the second packet of
a flow is forwarded by the datapath alone (tests check the datapath's hit counters).

Admission (spec 1.7): before parsing, an upcall takes a token from its datapath port's bucket (`admission`:
the tunnel port gets half, VM ports share the rest); over budget it is dropped (`AgentDrop.ADMISSION`).

Flow state (spec 4.3-4.4): a result that created or refreshed conntrack / NAT keys makes state frames, one per
message, tunnelled to every interested host; they are executed before the packet, so the state is there before
the packet (or its reply) is; the flow is tagged with what the set of interested hosts depends on. A peer not
known yet is "not yet" for the packet, like a port location translation needs.

May import: `midonet.datapath`, `midonet.packets`, `midonet.simulation`, `midonet.state`, `agent.*`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from midonet.agent.admission import AdmissionControl
from midonet.agent.bindings import PortBindings, dp_port_tag, tunnel_key_tag
from midonet.agent.events import EventGate
from midonet.agent.flow_table import ExpiryClass, FlowTable, Removal
from midonet.agent.flowstate import NOTHING, FlowStateReplicator, Outgoing, has_flow_state
from midonet.agent.flowstate_wire import FLOW_STATE_TUNNEL_KEY
from midonet.agent.metrics import AgentDrop, Counters
from midonet.agent.nat_leasing import release_unapplied
from midonet.agent.state_tables import StoreStateTables
from midonet.agent.topology_cache import TopologyCache
from midonet.agent.translate import DROP, PortResolver, Translation, translate
from midonet.agent.waiting_room import ParkedPacket, WaitingRoom
from midonet.datapath.base import Action, Datapath, DatapathError, FlowKey, Output, Upcall
from midonet.packets import MalformedPacket, parse_frame
from midonet.packets import frame as frames
from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.config import DEFAULT_CONFIG, SimulationConfig
from midonet.simulation.context import PacketContext
from midonet.simulation.driver import simulate, simulate_generated
from midonet.simulation.results import (
    Consumed,
    Drop,
    FlowTag,
    Forward,
    GeneratedPacket,
    Postponed,
    SimulationResult,
    TemporaryDrop,
)
from midonet.simulation.topology import NotYet
from midonet.state.tables import StateTables, StateWrite
from midonet.topology.ids import PortId

log = logging.getLogger(__name__)

MAX_GENERATED_ROUNDS = 4
MAX_ATTEMPTS = 16
"""Simulations of one packet before it gives up (the 3 s wait is the real bound): a first packet through a router
with a few chains, dynamic SNAT, an unresolved next hop and a stateful port group needs a dozen rounds."""


@dataclass(frozen=True, slots=True)
class _Execution:
    """What to do outside the lock: frames to execute (as if come in on `in_port`), generated packets to send."""

    frames: tuple[tuple[bytes, tuple[Action, ...]], ...] = ()
    in_port: int | None = None
    generated: tuple[GeneratedPacket, ...] = ()
    depth: int = 0     # generations from the upcall (generated packets of generated packets ...)


_NOTHING = _Execution()


class _Release:
    """A flow's removal callback: release the state references it held (one object a flow, not a closure's three)."""

    __slots__ = ("tables", "writes")

    def __init__(self, tables: StateTables, writes: tuple[StateWrite, ...]) -> None:
        self.tables = tables
        self.writes = writes

    def __call__(self, _why: Removal) -> None:
        self.tables.release(self.writes)


class PacketWorkflow:
    """See the module docstring."""

    def __init__(self, datapath: Datapath, gate: EventGate, cache: TopologyCache, tables: StoreStateTables,
                 bindings: PortBindings, resolver: PortResolver, flows: FlowTable, waiting: WaitingRoom,
                 counters: Counters, *, config: Callable[[], SimulationConfig] = lambda: DEFAULT_CONFIG,
                 tracing: bool = False, admission: AdmissionControl | None = None,
                 replicator: FlowStateReplicator | None = None) -> None:
        self._dp = datapath
        self._gate = gate
        self._cache = cache
        self._tables = tables
        self._bindings = bindings
        self._resolver = resolver
        self._flows = flows
        self._waiting = waiting
        self._counters = counters
        self._config = config
        self._admission = admission
        self._replicator = replicator
        self.tracing = tracing
        self.last_result: SimulationResult | None = None

    # ---- entry points ----

    def handle_upcall(self, upcall: Upcall) -> None:
        """The datapath's upcall handler. Never raises."""
        self._counters.add("upcalls")
        admission = self._admission
        if admission is not None and not admission.admit(upcall.port, upcall.port == self._bindings.vxlan_port):
            self._counters.drop(AgentDrop.ADMISSION)
            return
        self._gate.count()
        try:
            self._handle(upcall)
        except Exception:
            log.exception("agent: upcall on port %d failed", upcall.port)
            self._counters.drop(AgentDrop.INTERNAL_ERROR)
        self._gate.after()

    def retry_ready(self) -> None:
        """Simulate again the packets whose missing data arrived (the `EventGate`'s after hook). Runs after every
        upcall: nothing ready (the common case) is seen without taking the lock; whatever made a packet ready did so
        under the lock in an event whose own after hook comes here next."""
        if not self._waiting.has_ready:
            return
        for _ in range(MAX_ATTEMPTS * 4):
            with self._gate.lock:
                packets = self._waiting.take_ready()
            if not packets:
                return
            for packet in packets:
                self._counters.add("resimulated")
                try:
                    self._run(self._simulate(packet, None))
                except Exception:
                    log.exception("agent: retry failed")
                    self._counters.drop(AgentDrop.INTERNAL_ERROR)

    def expire_waiting(self) -> int:
        """Give up on packets that waited too long: drop them with a 5 s error flow. How many."""
        with self._gate.lock:
            late = self._waiting.expire()
            for packet in late:
                self._give_up(packet)
        return len(late)

    # ---- one upcall ----

    def _handle(self, upcall: Upcall) -> None:
        try:
            match = parse_frame(upcall.packet, upcall.port)
        except MalformedPacket as e:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("agent: malformed frame on port %d: %s", upcall.port, e)
            self._counters.drop(AgentDrop.MALFORMED)
            return
        if upcall.tunnel_id is not None and upcall.port == self._bindings.vxlan_port:
            self._run(self._from_tunnel(upcall))
            return
        self._run(self._simulate(self._waiting.new(upcall.packet, upcall.port), match))

    def _from_tunnel(self, upcall: Upcall) -> _Execution:
        """Tunnel key -> local port, no simulation (spec 5.1)."""
        key_id = upcall.tunnel_id
        assert key_id is not None
        if key_id == FLOW_STATE_TUNNEL_KEY:
            if self._replicator is None:
                self._counters.drop(AgentDrop.FLOW_STATE)
                return _NOTHING
            with self._gate.lock:
                answers = self._replicator.accept(upcall)
            return _Execution(tuple(answers))
        key = FlowKey.of({"in_port": upcall.port, "tunnel_id": key_id})
        with self._gate.lock:
            binding = self._bindings.for_tunnel_key(key_id)
            if binding is None:
                self._flows.install(key, (), (tunnel_key_tag(key_id),), ExpiryClass.ERROR)
                self._counters.drop(AgentDrop.UNKNOWN_TUNNEL_KEY)
                return _NOTHING
            actions: tuple[Action, ...] = (Output(binding.dp_port),)
            self._flows.install(key, actions, (tunnel_key_tag(key_id), dp_port_tag(binding.dp_port),
                                               binding.port_id), ExpiryClass.TUNNEL)
            self._counters.add("tunnel_flows")
        return _Execution(((upcall.packet, actions),), upcall.port)

    # ---- deciding (under the lock) ----

    def _simulate(self, packet: ParkedPacket, match: FlowMatch | None) -> _Execution:
        """Simulate a packet (from the datapath, or generated) and decide what to do with it."""
        with self._gate.lock:
            if packet.egress_port is not None:
                return self._simulate_generated(packet, packet.egress_port)
            assert packet.dp_port is not None
            binding = self._bindings.for_dp_port(packet.dp_port)
            if binding is None:
                self._counters.drop(AgentDrop.UNBOUND_PORT)
                return _NOTHING
            if match is None:
                match = parse_frame(packet.frame, packet.dp_port)   # parsed once already: cannot fail
            ctx = PacketContext(packet.frame, match, in_port=PortId(binding.port_id), tracing=self.tracing)
            result = simulate(ctx, self._cache, self._tables.tables, self._config())
            self._counters.add("simulations")
            self.last_result = result
            return self._decide(packet, result, binding.port_id)

    def _decide(self, packet: ParkedPacket, result: SimulationResult, in_port: str) -> _Execution:
        verdict = result.verdict
        out_ports: tuple[str, ...] = ()
        match verdict:
            case Postponed(kind, ident):
                self._postpone(packet, result, kind, ident)
                return _Execution(generated=result.generated)
            case Forward(outputs):
                try:
                    translation = translate(outputs, result.match, self._resolver)
                except NotYet as missing:
                    self._postpone(packet, result, missing.kind, missing.id)
                    return _Execution(generated=result.generated)
                if outputs and not translation.actions:
                    self._counters.drop(AgentDrop.NO_DESTINATION)
                out_ports = tuple(o.port for o in outputs)
            case Drop():
                translation = DROP
                self._counters.drop(AgentDrop.DROP)
            case TemporaryDrop():
                translation = DROP
                self._counters.drop(AgentDrop.TEMPORARY_DROP)
            case Consumed():
                self._apply_writes(result, False)
                return _Execution(generated=result.generated)
            case _:
                assert_never(verdict)
        try:
            state = self._outgoing(in_port, out_ports, result)
        except NotYet as missing:
            self._postpone(packet, result, missing.kind, missing.id)
            return _Execution(generated=result.generated)
        installed = result.installs_flow and translation.expressible
        if installed:
            self._install(result, translation, state.tags)
        self._apply_writes(result, installed)
        return _Execution(state.frames + self._frames(packet.frame, translation), packet.dp_port, result.generated)

    def _outgoing(self, in_port: str, out_ports: tuple[str, ...], result: SimulationResult) -> Outgoing:
        """The flow state to send before the packet (spec 4.4); may raise `NotYet`. Only conntrack and NAT writes
        make any (most first packets write a MAC-learning reference only: no need to ask)."""
        if self._replicator is None or not has_flow_state(result.state_writes):
            return NOTHING
        return self._replicator.outgoing((in_port, *out_ports), result.state_writes)

    def _simulate_generated(self, packet: ParkedPacket, port: str) -> _Execution:
        """A packet a device generated, from the egress of `port`: never a flow; it may wait like any other."""
        generated = GeneratedPacket(PortId(port), packet.frame, "generated")
        try:
            result = simulate_generated(generated, self._cache, self._tables.tables, tracing=self.tracing,
                                        config=self._config())
        except MalformedPacket:
            self._counters.drop(AgentDrop.GENERATED_UNDELIVERED)
            return _NOTHING
        self._counters.add("simulations")
        self._apply_writes(result, False)
        more = result.generated if packet.depth < MAX_GENERATED_ROUNDS else ()
        verdict = result.verdict
        if isinstance(verdict, Postponed):
            self._postpone(packet, result, verdict.kind, verdict.id)
            return _Execution(generated=more, depth=packet.depth)
        if not isinstance(verdict, Forward):
            self._counters.drop(AgentDrop.GENERATED_UNDELIVERED)
            return _Execution(generated=more, depth=packet.depth)
        try:
            translation = translate(verdict.outputs, result.match, self._resolver)
        except NotYet as missing:
            self._postpone(packet, result, missing.kind, missing.id)
            return _Execution(generated=more, depth=packet.depth)
        if not translation.actions:
            self._counters.drop(AgentDrop.GENERATED_UNDELIVERED)
        return _Execution(self._frames(packet.frame, translation), None, more, packet.depth)

    def _install(self, result: SimulationResult, translation: Translation,
                 tags: frozenset[FlowTag] = frozenset()) -> None:
        key = FlowKey.from_match(result.match, result.wildcard)
        expiration = result.expiration
        expiry = ExpiryClass.for_timeout(expiration) if expiration is not None else ExpiryClass.FLOW
        callbacks = [self._releaser(result.state_writes)] if result.state_writes else []
        self._flows.install(key, translation.actions, result.tags | translation.tags | tags, expiry, callbacks)

    def _releaser(self, writes: tuple[StateWrite, ...]) -> Callable[[Removal], None]:
        return _Release(self._tables.tables, writes)

    def _apply_writes(self, result: SimulationResult, held_by_flow: bool) -> None:
        """Apply the state writes; their references are held by the installed flow, or released at once."""
        tables = self._tables.tables
        tables.apply(result.state_writes)
        if not held_by_flow:
            tables.release(result.state_writes)

    def _postpone(self, packet: ParkedPacket, result: SimulationResult, kind: str, ident: str) -> None:
        self._counters.add("postponed")
        release_unapplied(self._tables.tables, result.state_writes)
        key = FlowKey.from_match(result.match, result.wildcard) if packet.egress_port is None else None
        if packet.attempts >= MAX_ATTEMPTS or self._waiting.too_late(packet):
            packet.key, packet.waiting_for = key, (kind, ident)
            self._give_up(packet)
        elif not self._waiting.park(packet, (kind, ident), key):
            self._counters.drop(AgentDrop.WAITING_ROOM_FULL)

    def _give_up(self, packet: ParkedPacket) -> None:
        """Drop a packet that waited too long, with a 5 s error flow on what its last simulation read (a generated
        packet gets no flow)."""
        if packet.egress_port is not None:
            self._counters.drop(AgentDrop.GENERATED_UNDELIVERED)
            return
        self._counters.drop(AgentDrop.GAVE_UP)
        if packet.key is not None:
            kind, ident = packet.waiting_for
            self._flows.install(packet.key, (), (("waiting", kind, ident), ident), ExpiryClass.ERROR)

    def _frames(self, frame: bytes, translation: Translation) -> tuple[tuple[bytes, tuple[Action, ...]], ...]:
        if not translation.actions:
            return ()
        if translation.expressible:
            return ((frame, translation.actions),)
        out = []
        for copy in translation.copies:
            try:
                out.append((frames.apply(frame, dict(copy.rewrites)), copy.actions))
            except ValueError as e:   # MalformedPacket is a ValueError
                log.warning("agent: rewrite %s does not apply: %s", copy.rewrites, e)
                self._counters.drop(AgentDrop.BAD_REWRITE)
        return tuple(out)

    # ---- doing (outside the lock) ----

    def _run(self, execution: _Execution) -> None:
        """Execute the frames, then send the generated packets (simulated from their ports' egress)."""
        for frame, actions in execution.frames:
            try:
                self._dp.execute(frame, actions, execution.in_port)
            except DatapathError as e:
                log.warning("agent: execute failed: %s", e)
                self._counters.drop(AgentDrop.EXECUTE_FAILED)
        depth = execution.depth + 1
        for generated in execution.generated:
            self._counters.add("generated")
            self._run(self._simulate(self._waiting.new_generated(generated.frame, generated.port, depth), None))
