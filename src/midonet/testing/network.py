"""A simulated virtual network for tests: frames in at a port, frames out at exterior ports (OVN's `ovn.at` style).

Role: wires a `VirtualTopology`, in-memory state tables and a fake clock, and plays what the agent does around a
simulation: apply the state writes it asked for, rewrite the frame for each output (`packets.frame.apply`), and
simulate the packets devices generated (ARP replies and requests, ICMP) from the egress of their ports.

    net = SimulatedNetwork(two_subnet_router().topology())
    out = net.send(frame, vm.port.id)
    assert out.result.verdict == ...
    assert [p for p, _ in out.frames] == [other_vm.port.id]

`simulate` runs one simulation and changes nothing (no writes applied), for tests of a single verdict.

Flows and their references: a result that installs a flow keeps the references its writes took (MAC learning,
conntrack and NAT keys) in `flows` until `remove_flows()` (the flows expired or were invalidated); a result that
installs none (consumed, postponed, userspace-only: a NAT'd ping) releases them at once, as the agent does. Move
`clock` and call `expire()` to age the tables. `rng` is the tables' random source (seed it); with
`async_nat_leases` the SNAT leaser answers "not yet" until `tables.nat_leaser.lease_pending()`.

May import: `midonet.packets`, `midonet.state`, `midonet.simulation`, `midonet.testing.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from midonet.packets import frame as frames
from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.simulation.config import DEFAULT_CONFIG, SimulationConfig
from midonet.simulation.driver import simulate_frame, simulate_generated
from midonet.simulation.results import Forward, GeneratedPacket, SimulationResult
from midonet.simulation.topology import VirtualTopology
from midonet.state.randomness import RandomSource
from midonet.state.tables import InMemoryTables, in_memory
from midonet.testing.clock import FakeClock
from midonet.topology.ids import PortId

MAX_GENERATED_ROUNDS = 4


@dataclass
class Delivery:
    """What one `send` did: the packet's result and copies out, and the generated packets' results and copies."""

    result: SimulationResult
    frames: list[tuple[PortId, bytes]] = field(default_factory=list)
    generated: list[SimulationResult] = field(default_factory=list)
    replies: list[tuple[PortId, bytes]] = field(default_factory=list)

    def ports(self) -> list[PortId]:
        """The exterior ports the packet left by, in order."""
        return [port for port, _ in self.frames]

    def matches(self) -> list[tuple[PortId, FlowMatch]]:
        """The packet's copies as they left, parsed."""
        return [(port, parse_frame(data)) for port, data in self.frames]

    def replies_at(self, port: str) -> list[FlowMatch]:
        """Generated packets (ARP replies, ICMP) that left by exterior port `port`, parsed."""
        return [parse_frame(data) for p, data in self.replies if p == port]


class SimulatedNetwork:
    def __init__(self, topology: VirtualTopology, clock: FakeClock | None = None, *, tracing: bool = True,
                 config: SimulationConfig = DEFAULT_CONFIG, rng: RandomSource | None = None,
                 async_nat_leases: bool = False) -> None:
        self.topology = topology
        self.clock = clock or FakeClock()
        self.tables: InMemoryTables = in_memory(self.clock, rng, async_nat_leases=async_nat_leases)
        self.tracing = tracing
        self.config = config
        self.flows: list[SimulationResult] = []

    def remove_flows(self) -> None:
        """Every installed flow goes (expired, invalidated): the references they held are dropped."""
        for result in self.flows:
            self.tables.release(result.state_writes)
        self.flows.clear()

    def expire(self) -> None:
        """Remove what expired by now from every table."""
        self.tables.expire()

    def _apply(self, result: SimulationResult, *, generated: bool = False) -> None:
        self.tables.apply(result.state_writes)
        if result.installs_flow and not generated:
            self.flows.append(result)
        else:
            self.tables.release(result.state_writes)

    def simulate(self, data: bytes, in_port: str) -> SimulationResult:
        """One simulation of `data` coming in on `in_port`; nothing is applied."""
        return simulate_frame(data, PortId(in_port), self.topology, self.tables, tracing=self.tracing,
                              config=self.config)

    def send(self, data: bytes, in_port: str) -> Delivery:
        """Simulate `data` from `in_port`, apply its state writes, then simulate what it generated."""
        result = self.simulate(data, in_port)
        self._apply(result)
        delivery = Delivery(result, _copies(data, result))
        pending = list(result.generated)
        for _ in range(MAX_GENERATED_ROUNDS):
            if not pending:
                break
            later: list[GeneratedPacket] = []
            for packet in pending:
                answer = simulate_generated(packet, self.topology, self.tables, tracing=self.tracing,
                                            config=self.config)
                self._apply(answer, generated=True)
                delivery.generated.append(answer)
                delivery.replies.extend(_copies(packet.frame, answer))
                later.extend(answer.generated)
            pending = later
        return delivery


def _copies(data: bytes, result: SimulationResult) -> list[tuple[PortId, bytes]]:
    if not isinstance(result.verdict, Forward):
        return []
    return [(out.port, frames.apply(data, dict(out.rewrites)) if out.rewrites else data)
            for out in result.verdict.outputs]
