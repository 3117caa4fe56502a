"""`PacketContext`: everything one simulation knows and gathers about one packet (spec 3.1).

Role: the single mutable object of a simulation. Devices read the packet from `match` (and `frame` when they
must build a reply from its bytes), move it through the topology by setting the port and device fields, rewrite
`match` (TTL, MACs), and record what the result must carry. Nothing else in a simulation is mutable; the driver
turns the context into a frozen `SimulationResult` at the end.

A `__slots__` class with explicit groups of fields (the original's five mixins, laid flat and named):

    the packet      frame, orig_match (as received, never changed), match (current: devices rewrite it, every
                    read widens the flow's wildcard), pre_routing_match (as it entered the current router)
    the position    start_port + starts_at_ingress, in_port / out_port and their port groups, port_groups (of the
                    exterior ingress port), current_device, ingress_device, devices_traversed (the loop guard)
    what it reads   topology (`VirtualTopology`), tables (`StateTables`) -- set by `simulate`
    what it gathers tags (flow invalidation), outputs (exterior emissions), generated (packets to send),
                    state_writes (MAC/ARP learning, conntrack and NAT keys), trace (lines, when tracing),
                    forward_flow/connection/stateful (connection tracking), nw_dst_rewritten (set by NAT)

Invariant: only the driver and the port device move the position fields; the driver saves and restores them
(and `match`) around the branches of a fork.

May import: `midonet.packets`, `midonet.state`, `midonet.topology`, `simulation.results`, `simulation.pipeline`,
`simulation.topology` (types only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from midonet.packets.ethernet import ETH_TYPE_IPV4
from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import FlowTag, GeneratedPacket, Output, TraceLine
from midonet.state.conntrack import TRACKED_PROTOCOLS, ConnTracked, ConnTrackKey
from midonet.state.tables import StateTables, StateWrite
from midonet.topology.ids import PortId

if TYPE_CHECKING:
    from midonet.simulation.topology import VirtualTopology

_ICMP = 1


class PacketContext:
    __slots__ = (
        "connection", "current_device", "devices_traversed", "forward_flow", "frame", "generated", "in_port",
        "in_port_groups", "ingress_device", "match", "nw_dst_rewritten", "orig_match", "out_port", "out_port_groups",
        "outputs", "port_groups", "pre_routing_match", "start_port", "starts_at_ingress", "state_writes",
        "stateful", "tables", "tags", "topology", "trace",
    )

    topology: VirtualTopology
    tables: StateTables

    def __init__(self, frame: bytes, match: FlowMatch, *, in_port: PortId | None = None,
                 egress_port: PortId | None = None, tracing: bool = False) -> None:
        """A packet that came in on `in_port` (from the datapath), or was generated to leave by `egress_port`."""
        start = in_port if in_port is not None else egress_port
        if start is None or (in_port is not None and egress_port is not None):
            raise ValueError("a packet either comes in on a port or is generated to leave by one")
        self.frame = frame
        self.orig_match = match.copy()
        self.match = match
        self.pre_routing_match = match
        self.starts_at_ingress = in_port is not None
        self.start_port: PortId = start
        self.in_port: PortId | None = None
        self.out_port: PortId | None = None
        self.in_port_groups: frozenset[str] = frozenset()
        self.out_port_groups: frozenset[str] = frozenset()
        self.port_groups: frozenset[str] = frozenset()
        self.current_device: str | None = None
        self.ingress_device: str | None = None
        self.devices_traversed = 0
        self.nw_dst_rewritten = False
        self.tags: set[FlowTag] = set()
        self.outputs: list[Output] = []
        self.generated: list[GeneratedPacket] = []
        self.state_writes: list[StateWrite] = []
        self.trace: list[TraceLine] | None = [] if tracing else None
        self.forward_flow: bool | None = None
        self.connection: ConnTrackKey | None = None
        self.stateful = False

    @property
    def tracing(self) -> bool:
        return self.trace is not None

    def note(self, stage: Stage, device: str | None, text: str) -> None:
        """Add a trace line (callers on the hot path test `ctx.trace is not None` first, to skip formatting)."""
        if self.trace is not None:
            self.trace.append(TraceLine(stage, device or "-", text))

    def emit(self, port: PortId) -> None:
        """Record an output from exterior port `port`, with the rewrites the packet went through so far."""
        rewrites = self.match.diff(self.orig_match)
        self.outputs.append(Output(port, tuple(rewrites.items()) if rewrites else ()))

    def generate(self, port: PortId, frame: bytes, reason: str) -> None:
        """A frame to send from the egress of `port` after this simulation (an ARP reply, an ICMP error)."""
        self.generated.append(GeneratedPacket(port, frame, reason))

    def request(self, write: StateWrite) -> None:
        """A state write for the caller to apply (MAC learning, ARP learning)."""
        self.state_writes.append(write)

    # ---- connection tracking (spec 3.6) ----

    def is_forward_flow(self) -> bool:
        """Whether this packet starts a connection (else it is a reply to a tracked one). Asked once, then cached.

        Generated packets are always return flows; untracked protocols are always forward flows. A tracked
        packet's key is built from the packet as received and the device it entered (ICMP: the echo identifier
        as both ports, else the type and code); a forward flow is tagged with the key (a late-arriving key
        invalidates it) and counts as stateful (`ConnTrackState.isForwardFlow`).
        """
        if self.forward_flow is None:
            self.forward_flow = self._lookup_forward_flow()
        return self.forward_flow

    def _lookup_forward_flow(self) -> bool:
        if not self.starts_at_ingress:
            return False
        orig = self.orig_match
        proto = orig.peek("ip_proto")
        if orig.peek("eth_type") != ETH_TYPE_IPV4 or proto not in TRACKED_PROTOCOLS:
            self.match.mark_seen("eth_type", "ip_proto")
            return True
        ident = orig.peek("icmp_id") if proto == _ICMP else None
        if isinstance(ident, int):
            self.match.mark_seen("eth_type", "ip_proto", "ip_src", "ip_dst", "icmp_id")
            tp_src = tp_dst = ident
        else:
            self.match.mark_seen("eth_type", "ip_proto", "ip_src", "ip_dst", "tp_src", "tp_dst")
            src, dst = orig.peek("tp_src"), orig.peek("tp_dst")
            tp_src = src if isinstance(src, int) else 0
            tp_dst = dst if isinstance(dst, int) else 0
        key = ConnTrackKey(str(orig.peek("ip_src")), tp_src, str(orig.peek("ip_dst")), tp_dst, int(proto),
                           self.ingress_device or "")
        self.connection = key
        if self.tables.conntrack.contains(key):
            return False
        self.tags.add(("conntrack", key))
        self.stateful = True
        return True

    def track_connection(self, egress_device: str) -> None:
        """A forward flow whose connection was looked up leaves by an exterior port of `egress_device`: request its
        return key, built from the packet as it leaves (after NAT) turned around (`trackConnection`)."""
        if self.connection is None or not self.forward_flow:
            return
        m = self.match
        ident = m.peek("icmp_id") if m.peek("ip_proto") == _ICMP else None
        if isinstance(ident, int):
            tp_src = tp_dst = ident
        else:
            src, dst = m.peek("tp_src"), m.peek("tp_dst")
            tp_src = src if isinstance(src, int) else 0
            tp_dst = dst if isinstance(dst, int) else 0
        key = ConnTrackKey(str(m.peek("ip_dst")), tp_dst, str(m.peek("ip_src")), tp_src, self.connection.proto,
                           egress_device)
        write = ConnTracked(key)
        if write not in self.state_writes:
            self.request(write)
