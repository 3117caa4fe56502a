"""The driver: runs one simulation from the first port to a result (spec 3.1; the original's `Simulator.scala`).

Role: `simulate(ctx, topology, tables, config)` is the simulation, a pure function of its inputs: a packet from the
datapath is first offered to the DHCP server (`devices.dhcp.intercept`: a request it answers is consumed there),
then starts at the ingress of its port; a generated packet starts at the egress of the port it leaves by. It follows
the devices' continuations and turns the context into a `SimulationResult`:

* `ToPort(p)`: continue at the egress of port p (which may hand the packet to a peer's ingress, and so on);
* `Fork(branches)`: run each branch from the same packet and position (match, ports, device restored after
  each; what each branch read still counts), then merge the verdicts (`results.merge`);
* `Continue(run)`: the rest of a device's work, deferred behind a fork's earlier branches (mirrors): run it;
* anything else is the verdict. An exterior emission returns `EMITTED`; the driver fills in the outputs the
  context recorded;
* `NotYet` raised anywhere (a device not loaded, an ARP entry unresolved) ends the simulation with `Postponed`;
  the packets generated until then (the ARP request) are kept;
* the loop guard lives in the port ingress (`pipeline.MAX_DEVICES_TRAVERSED`).

A temporary drop keeps only flow-state tags (the original's ErrorDrop / ShortDrop clear the others).

`simulate_frame` and `simulate_generated` build the context from a frame for the common cases.

May import: `midonet.packets`, `midonet.state`, `simulation.*`, `simulation.devices.{port,dhcp}`.
"""

from __future__ import annotations

from midonet.packets.flowmatch import parse_frame
from midonet.simulation.config import DEFAULT_CONFIG, SimulationConfig
from midonet.simulation.context import PacketContext
from midonet.simulation.devices import dhcp
from midonet.simulation.devices import port as ports
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import (
    FLOW_STATE_TAGS,
    Consumed,
    Continue,
    Drop,
    Fork,
    Forward,
    GeneratedPacket,
    Postponed,
    SimulationResult,
    Step,
    TemporaryDrop,
    ToPort,
    Verdict,
    describe,
    merge,
)
from midonet.simulation.topology import NotYet, VirtualTopology
from midonet.state.tables import StateTables
from midonet.topology.ids import PortId


def simulate(ctx: PacketContext, topology: VirtualTopology, tables: StateTables,
             config: SimulationConfig = DEFAULT_CONFIG) -> SimulationResult:
    """Simulate the packet in `ctx` through `topology`, reading `tables`, for a host described by `config`."""
    ctx.topology = topology
    ctx.tables = tables
    try:
        first = topology.get_port(ctx.start_port)
        answered = dhcp.intercept(ctx, first, config) if ctx.starts_at_ingress else None
        if answered is not None:
            verdict = answered
        else:
            step = ports.ingress(ctx, first) if ctx.starts_at_ingress else ports.egress(ctx, first)
            verdict = _verdict(ctx, _continue(ctx, step))
    except NotYet as missing:
        verdict = Postponed(missing.kind, missing.id)
    return _result(ctx, verdict)


def simulate_frame(frame: bytes, in_port: PortId, topology: VirtualTopology, tables: StateTables, *,
                   tracing: bool = False, config: SimulationConfig = DEFAULT_CONFIG) -> SimulationResult:
    """Simulate `frame`, come in on `in_port`."""
    ctx = PacketContext(frame, parse_frame(frame), in_port=in_port, tracing=tracing)
    return simulate(ctx, topology, tables, config)


def simulate_generated(packet: GeneratedPacket, topology: VirtualTopology, tables: StateTables, *,
                       tracing: bool = False, config: SimulationConfig = DEFAULT_CONFIG) -> SimulationResult:
    """Simulate a packet a device generated, from the egress of the port it leaves by."""
    ctx = PacketContext(packet.frame, parse_frame(packet.frame), egress_port=packet.port, tracing=tracing)
    return simulate(ctx, topology, tables, config)


def _continue(ctx: PacketContext, step: Step) -> Step:
    """Follow continuations until a verdict (the original's `continue`)."""
    get_port = ctx.topology.get_port
    while True:
        if isinstance(step, ToPort):
            step = ports.egress(ctx, get_port(step.port))
        elif isinstance(step, Continue):
            step = step.run()
        elif isinstance(step, Fork):
            return _fork(ctx, step)
        else:
            return step


def _fork(ctx: PacketContext, fork: Fork) -> Step:
    """Each branch from the same packet and position; the merged verdict (the original's `flattenContinue`)."""
    saved = ctx.match.copy()
    in_port, out_port, device = ctx.in_port, ctx.out_port, ctx.current_device
    in_groups, out_groups = ctx.in_port_groups, ctx.out_port_groups
    merged: Step | None = None
    for branch in fork.branches:
        step = _continue(ctx, branch)
        ctx.match.restore(saved)
        ctx.in_port, ctx.out_port, ctx.current_device = in_port, out_port, device
        ctx.in_port_groups, ctx.out_port_groups = in_groups, out_groups
        merged = step if merged is None else merge(merged, step)
    return merged if merged is not None else Drop("fork without branches")


def _verdict(ctx: PacketContext, step: Step) -> Verdict:
    if isinstance(step, Forward):
        return Forward(tuple(ctx.outputs))
    if isinstance(step, (Drop, TemporaryDrop, Consumed)):
        return step
    return TemporaryDrop(f"simulation ended on a continuation {step!r}")


def _result(ctx: PacketContext, verdict: Verdict) -> SimulationResult:
    tags = ctx.tags
    if isinstance(verdict, TemporaryDrop):
        tags = {t for t in tags if isinstance(t, tuple) and t[0] in FLOW_STATE_TAGS}
    trace = ctx.trace
    if trace is not None:
        ctx.note(Stage.RESULT, None, describe(verdict))
    return SimulationResult(verdict, ctx.orig_match, ctx.match, frozenset(tags), tuple(ctx.generated),
                            tuple(ctx.state_writes), ctx.stateful, tuple(trace) if trace is not None else ())
