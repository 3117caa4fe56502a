"""The driver and the results (spec 3.1): where a simulation starts, "not yet", forks and how branches merge,
what a result carries (wildcard, tags, expiry), generated packets, and that a simulation is a pure function."""

from __future__ import annotations

from pathlib import Path

import pytest

from midonet.packets.flowmatch import parse_frame
from midonet.simulation import pipeline
from midonet.simulation.context import PacketContext
from midonet.simulation.driver import simulate, simulate_frame, simulate_generated
from midonet.simulation.results import (
    Consumed,
    Drop,
    Forward,
    GeneratedPacket,
    Output,
    Postponed,
    SimulationResult,
    TemporaryDrop,
    TemporaryDropKind,
    ToPort,
    merge,
)
from midonet.state.tables import in_memory
from midonet.testing import frames
from midonet.testing.clock import FakeClock
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, TopologyBuilder, two_subnet_router
from midonet.topology.ids import PortId

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
FWD = Forward((Output(PortId("p"), ()),))
ERROR = TemporaryDrop("error")
SHORT = TemporaryDrop("short", TemporaryDropKind.SHORT)


# ---- merge ----

@pytest.mark.parametrize(("a", "b", "expected"), [
    (Drop("x"), FWD, FWD),
    (FWD, Drop("x"), FWD),
    (Consumed("x"), FWD, FWD),
    (SHORT, FWD, FWD),
    (FWD, SHORT, FWD),
    (ERROR, FWD, ERROR),
    (FWD, ERROR, ERROR),
    (Drop("x"), Drop("y"), Drop("y")),
    (FWD, FWD, FWD),
])
def test_merge(a: object, b: object, expected: object) -> None:
    assert merge(a, b) == expected


def test_branches_that_disagree_merge_to_an_error() -> None:
    assert isinstance(merge(FWD, ToPort(PortId("q"))), TemporaryDrop)


# ---- starting points and "not yet" ----

def test_a_port_not_loaded_is_not_yet() -> None:
    net = SimulatedNetwork(TopologyBuilder().topology())
    assert net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), "00000042-0000-4000-8000-000000000000").verdict == (
        Postponed("port", "00000042-0000-4000-8000-000000000000"))


def test_a_device_not_loaded_is_not_yet() -> None:
    b = TopologyBuilder()
    port = b.exterior_port(b.bridge("br"), "a")
    records = [r for r in b.records.values() if r.id != port.network_id]       # the bridge is not loaded
    from midonet.simulation.mappers import InMemoryTopology
    result = simulate_frame(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), PortId(port.id), InMemoryTopology(records),
                            in_memory(FakeClock()))
    assert result.verdict == Postponed("bridge", port.network_id or "")
    assert result.expiration is None and not result.installs_flow


def test_a_context_starts_either_at_an_ingress_or_at_an_egress() -> None:
    match = parse_frame(frames.udp(A, B, "10.0.0.1", "10.0.0.2"))
    with pytest.raises(ValueError):
        PacketContext(b"", match)
    with pytest.raises(ValueError):
        PacketContext(b"", match, in_port=PortId("a"), egress_port=PortId("b"))


def test_a_generated_packet_starts_at_the_egress_of_its_port() -> None:
    t = two_subnet_router(2)
    net = SimulatedNetwork(t.topology())
    l1, l2 = t.vms["l1"], t.vms["l2"]
    packet = GeneratedPacket(PortId(l2.port.id), frames.udp(LEFT_ROUTER_MAC, l2.mac, "10.0.1.254", l2.ip), "test")
    result = simulate_generated(packet, net.topology, net.tables, tracing=True)
    assert result.verdict == Forward((Output(PortId(l2.port.id)),))
    assert result.trace[0].stage is pipeline.Stage.PORT_EGRESS
    assert l1.port.id not in result.tags


# ---- forks ----

def test_flooding_forks_and_every_branch_read_counts() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    ports = [b.exterior_port(br, f"p{i}") for i in range(3)]
    only_udp = b.chain("udp-only")
    b.rule(only_udp, "drop", nw_proto=17, nw_proto_inv=True)
    b.filters(ports[2], outbound=only_udp)            # one branch reads ip_proto
    result = SimulatedNetwork(b.topology()).simulate(frames.udp(A, "ff:ff:ff:ff:ff:ff", "10.0.0.1", "10.0.0.255"),
                                                     ports[0].id)
    assert isinstance(result.verdict, Forward)
    assert [o.port for o in result.verdict.outputs] == [ports[1].id, ports[2].id]
    assert "ip_proto" in result.fields_seen
    assert result.wcmatch.peek("eth_dst") == "ff:ff:ff:ff:ff:ff"        # restored after each branch


def test_a_branch_that_drops_is_absorbed() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    ports = [b.exterior_port(br, f"p{i}") for i in range(3)]
    drop_all = b.chain("drop")
    b.rule(drop_all, "drop")
    b.filters(ports[1], outbound=drop_all)
    result = SimulatedNetwork(b.topology()).simulate(frames.udp(A, "ff:ff:ff:ff:ff:ff", "10.0.0.1", "10.0.0.255"),
                                                     ports[0].id)
    assert result.verdict == Forward((Output(PortId(ports[2].id)),))


# ---- the result ----

def test_expiration_classes() -> None:
    match = parse_frame(frames.udp(A, B, "10.0.0.1", "10.0.0.2"))
    def result(verdict: object, **kw: object) -> SimulationResult:
        return SimulationResult(verdict, match, match, **kw)
    assert result(FWD).expiration == 60.0
    assert result(FWD, stateful=True).expiration == 30.0
    assert result(Drop("x")).expiration == 60.0
    assert result(ERROR).expiration == 5.0 and result(SHORT).expiration == 5.0
    assert result(Consumed("x")).expiration is None
    assert result(Postponed("arp", "x")).expiration is None
    assert result(FWD).describe() == "forward to p"
    assert result(SHORT).describe() == "temporary drop (short): short"


def test_a_temporary_drop_keeps_only_flow_state_tags() -> None:
    from midonet.state.conntrack import ConnTrackKey
    b = TopologyBuilder()
    br = b.bridge("br")
    a = b.exterior_port(br, "a")
    chain = b.chain("c")
    b.rule(chain, "accept", match_forward_flow=True)
    b.filters(a, inbound=chain)
    net = SimulatedNetwork(b.topology())
    result = net.simulate(frames.udp(A, A, "10.0.0.1", "10.0.0.2"), a.id)           # to itself: temporary drop
    assert isinstance(result.verdict, TemporaryDrop)
    assert result.tags == {("conntrack", ConnTrackKey("10.0.0.1", 10000, "10.0.0.2", 80, 17, br.id))}
    assert result.stateful


def test_simulation_is_a_pure_function_of_its_inputs() -> None:
    """The same packet against the same topology and tables: the same result, twice, with nothing changed."""
    t = two_subnet_router(2)
    net = SimulatedNetwork(t.topology())
    l1 = t.vms["l1"]
    data = frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "10.0.2.1")
    first = net.simulate(data, l1.port.id)
    second = net.simulate(data, l1.port.id)
    assert (first.verdict, first.tags, first.generated, first.state_writes, first.fields_seen) == (
        second.verdict, second.tags, second.generated, second.state_writes, second.fields_seen)
    assert net.tables.mac_table.entries(t.left.id) == {}


def test_the_context_can_be_simulated_directly() -> None:
    t = two_subnet_router(1)
    l1 = t.vms["l1"]
    data = frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, "10.0.1.254")
    ctx = PacketContext(data, parse_frame(data), in_port=PortId(l1.port.id))
    assert not ctx.tracing
    result = simulate(ctx, t.topology(), in_memory(FakeClock()))
    assert isinstance(result.verdict, Consumed) and result.trace == ()


def test_the_design_page_shows_the_declared_pipeline() -> None:
    page = Path(__file__).parents[3] / "docs" / "design" / "simulation.md"
    assert pipeline.table() in page.read_text()
    orders = [s.order for s in pipeline.PIPELINE]
    assert orders == sorted(set(orders))
