"""The megaflow classifier: one subtable per mask, exact lookups, replacement, removal, probe order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from midonet.datapath.base import Flow, FlowKey, Output
from midonet.datapath.memory.classifier import MegaflowTable
from midonet.packets import FlowMatch
from midonet.packets.flowmatch import FieldValue

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def match(**fields: FieldValue) -> FlowMatch:
    values = {"in_port": 1, "eth_src": MAC_A, "eth_dst": MAC_B, "eth_type": 0x0800, "vlan_ids": (),
              "ip_src": "10.0.0.1", "ip_dst": "10.0.0.2", "ip_proto": 17, "tp_src": 1000, "tp_dst": 53}
    values.update(fields)
    return FlowMatch(**values)  # type: ignore[arg-type]  # field values of the right kinds


def flow(port: int, **values: FieldValue) -> Flow:
    return Flow(FlowKey.of(values), (Output(port),))


def test_flows_of_one_mask_share_a_subtable() -> None:
    table = MegaflowTable()
    for i in range(10):
        table.insert(flow(i, in_port=1, ip_dst=f"10.0.0.{i}"))
    assert len(table) == 10
    assert table.masks() == [("in_port", "ip_dst")]
    entry = table.lookup(match(ip_dst="10.0.0.7"), None)
    assert entry is not None and entry.flow.actions == (Output(7),)
    assert table.lookup(match(ip_dst="10.0.0.70"), None) is None


def test_reading_the_key_records_nothing_as_seen() -> None:
    table = MegaflowTable()
    table.insert(flow(2, eth_dst=MAC_B))
    packet = match()
    assert table.lookup(packet, None) is not None
    assert packet.fields_seen() == frozenset()


def test_empty_mask_matches_every_packet() -> None:
    table = MegaflowTable()
    table.insert(flow(9))
    entry = table.lookup(match(eth_type=0x0806, ip_src=None), None)
    assert entry is not None and entry.flow.actions == (Output(9),)


def test_same_key_replaces_and_restarts_stats() -> None:
    table = MegaflowTable()
    table.insert(flow(2, in_port=1))
    entry = table.lookup(match(), None)
    assert entry is not None
    entry.hit(100, 5.0)
    old = table.insert(flow(3, in_port=1))
    assert old is not None and (old.packets, old.bytes, old.last_used) == (1, 100, 5.0)
    ((replaced, stats),) = table.entries()
    assert replaced.actions == (Output(3),) and stats.packets == 0 and stats.last_used is None
    assert len(table) == 1


def test_delete_returns_final_stats_and_drops_empty_subtables() -> None:
    table = MegaflowTable()
    key = FlowKey.of({"in_port": 1, "eth_dst": MAC_B})
    table.insert(Flow(key, ()))
    entry = table.lookup(match(), None)
    assert entry is not None
    entry.hit(60, 1.0)
    entry.hit(70, 2.0)
    stats = table.delete(key)
    assert stats is not None and (stats.packets, stats.bytes, stats.last_used) == (2, 130, 2.0)
    assert table.masks() == [] and len(table) == 0
    assert table.delete(key) is None
    assert table.get(key) is None


def test_tunnel_id_is_matched_from_the_packets_tunnel() -> None:
    table = MegaflowTable()
    table.insert(flow(4, in_port=7, tunnel_id=0x42))
    assert table.lookup(match(in_port=7), 0x42) is not None
    assert table.lookup(match(in_port=7), 0x43) is None
    assert table.lookup(match(in_port=7), None) is None


def test_overlapping_masks_the_first_mask_installed_wins() -> None:
    """Not part of the contract (the agent never installs overlapping megaflows): this backend's documented order."""
    table = MegaflowTable()
    table.insert(flow(1, eth_dst=MAC_B))
    table.insert(flow(2, in_port=1, eth_dst=MAC_B))
    entry = table.lookup(match(), None)
    assert entry is not None and entry.flow.actions == (Output(1),)


MASKS = [("in_port",), ("eth_dst",), ("in_port", "ip_dst"), ("ip_src", "tp_dst"), ("in_port", "eth_dst", "tp_src")]
VALUES: dict[str, list[FieldValue]] = {
    "in_port": [1, 2], "eth_dst": [MAC_A, MAC_B], "ip_src": ["10.0.0.1", "10.0.0.3"],
    "ip_dst": ["10.0.0.2", "10.0.0.4"], "tp_src": [1000, 1001], "tp_dst": [53, 80],
}


@st.composite
def keys(draw: st.DrawFn) -> FlowKey:
    mask = draw(st.sampled_from(MASKS))
    return FlowKey.of({f: draw(st.sampled_from(VALUES[f])) for f in mask})


@st.composite
def packets(draw: st.DrawFn) -> FlowMatch:
    return match(**{f: draw(st.sampled_from(v)) for f, v in VALUES.items()})


@given(st.lists(keys(), max_size=12), st.lists(packets(), min_size=1, max_size=5))
def test_lookup_agrees_with_a_linear_scan(flow_keys: list[FlowKey], probes: list[FlowMatch]) -> None:
    """Whatever is installed, a hit is a flow whose every field equals the packet's; a miss means none is."""
    table = MegaflowTable()
    for i, flow_key in enumerate(flow_keys):
        table.insert(Flow(flow_key, (Output(i),)))
    installed = [f for f, _ in table.entries()]
    for packet in probes:
        matching = [f for f in installed if all(packet.peek(n) == v for n, v in f.key.fields)]
        entry = table.lookup(packet, None)
        if not matching:
            assert entry is None
        else:
            assert entry is not None and entry.flow in matching
            first_mask = next(m for m in table.masks() if any(f.key.mask == m for f in matching))
            assert entry.flow.key.mask == first_mask
