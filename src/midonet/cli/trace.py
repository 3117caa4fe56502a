"""`midonet trace`: what would the virtual network do with these packets? An offline what-if simulation.

    midonet trace --step PORT_ID:SPEC [--step PORT_ID:SPEC ...] [--json] [--assume-active]

    midonet trace --step $VM1:eth_src=$VM1_MAC,eth_dst=$VM2_MAC,ip_src=10.0.1.1,ip_dst=10.0.1.2,tp_dst=80 \\
                  --step $VM2:reply=1

Each step is a packet coming in on an exterior (or any) port, described by a spec (`simulation.packetspec`:
`eth_src`, `eth_dst`, `vlan`, `eth_type`, `arp_*`, `ip_*`, `tp_*`, `icmp_*`, `dhcp`, `payload_len`, defaults for
the rest), or `reply=N`: the answer to step N's output as its receiver would send it (addresses and ports swapped,
other keys given override), so the reply to a connection through a dynamic SNAT can be traced without knowing the
port it picked. The command reads the live topology once through the API (`GET /topology_snapshot`, admin only,
our extension), rebuilds the simulator's devices from the records and seeds its MAC and ARP tables from the
store's state tables (`cli.snapshot`), then simulates the steps in order with one set of state tables and one
fake clock, so learning carries over: a forward packet then its reply, an ARP reply then the packet that waited
for it. Nothing is written anywhere: the live network never sees these packets.

Output: with `--json` a list with one object per step (`simulation.tracerender.to_json`: result, drop_reason,
outputs, generated, devices, steps ...); otherwise a readable trace per step, one line per device stage and rule
decision (`simulation.tracerender.detailed`, in the spirit of `ovn-trace --detailed`).

Exterior ports that no agent reports active do not carry routes (as in the agent); `--assume-active` treats
every port as active, to ask what the network would do once they are all up.

Errors (one line on stderr, exit 1): a bad spec key or value (before anything is read), a port that is not in
the topology, and the usual connection and API errors (a non-admin gets the API's 403).

May import: `midonet.client`, `midonet.simulation`, `midonet.state.clock`, `cli.*`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from midonet.cli.output import console, fail
from midonet.cli.resources import ApiOpt, PasswordOpt, ProjectOpt, UserOpt, session
from midonet.cli.settings import Connection
from midonet.cli.snapshot import SnapshotError, World, load
from midonet.simulation.packetspec import SPEC_KEYS, Packet, SpecError
from midonet.simulation.tracerender import detailed, to_json
from midonet.simulation.tracing import Reply, StepTrace, TraceSession, parse_step
from midonet.state.clock import ManualClock

StepOpt = Annotated[list[str], typer.Option(
    "--step", metavar="PORT_ID:SPEC", show_default=False,
    help="a packet coming in on a port: PORT_ID:key=value,... (repeat for more steps, simulated in order); keys: "
         + " ".join(SPEC_KEYS) + "; reply=N: the answer to step N's output (other keys override it)")]
TraceJsonOpt = Annotated[bool, typer.Option("--json", help="print the trace as JSON: a list, one object per step")]
AssumeActiveOpt = Annotated[bool, typer.Option(
    "--assume-active", help="treat every exterior port as active (routes through inactive ones count)")]


Steps = list[tuple[str, Packet | Reply]]


def parse_steps(texts: list[str]) -> Steps:
    """Every `--step`, parsed; the first bad one fails with a line naming the step and the key."""
    if not texts:
        fail("give at least one --step PORT_ID:SPEC")
    steps: Steps = []
    for n, text in enumerate(texts, 1):
        try:
            port, packet = parse_step(text)
        except SpecError as e:
            fail(f"--step {n} ({text!r}): {e}")
        if isinstance(packet, Reply) and packet.step >= n:
            fail(f"--step {n} ({text!r}): reply: must name an earlier step, not {packet.step}")
        steps.append((port, packet))
    return steps


def check_ports(world: World, steps: Steps) -> None:
    for n, (port, _) in enumerate(steps, 1):
        if world.port(port) is None:
            fail(f"--step {n}: unknown port {port!r}: no such port in the topology")


def run_steps(world: World, steps: Steps) -> list[StepTrace]:
    """Simulate the steps in order over `world`'s shared tables (a reply is made from the step it answers)."""
    trace = TraceSession(world.topology, world.tables, world.names)
    for n, (port, packet) in enumerate(steps, 1):
        if isinstance(packet, Reply):
            try:
                packet = trace.reply(port, packet)
            except SpecError as e:
                fail(f"--step {n}: {e}")
        trace.run(port, packet)
    return trace.steps


def print_detailed(traced: list[StepTrace]) -> None:
    out = console()
    for i, step in enumerate(traced):
        if i:
            out.print()
        for line in detailed(step):
            out.print(Text(line.text, style=line.style), overflow="fold")


def trace(ctx: typer.Context, step: StepOpt, as_json: TraceJsonOpt = False, assume_active: AssumeActiveOpt = False,
          api: ApiOpt = None, username: UserOpt = None, password: PasswordOpt = None,
          project: ProjectOpt = None) -> None:
    """Simulate packets through the live topology, offline, and show what the network would do (admin only)."""
    steps = parse_steps(step)
    with session(ctx, Connection(api, username, password, project)) as client:
        document = client.topology_snapshot()
    try:
        world = load(document, ManualClock(), assume_active=assume_active)
    except SnapshotError as e:
        fail(str(e))
    check_ports(world, steps)
    traced = run_steps(world, steps)
    if as_json:
        typer.echo(json.dumps([to_json(s) for s in traced], indent=2))
    else:
        print_detailed(traced)


def register(app: typer.Typer) -> None:
    app.command("trace", rich_help_panel="Simulation")(trace)


__all__ = ["parse_steps", "register", "run_steps", "trace"]
