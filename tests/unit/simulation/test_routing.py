"""The routing table (spec 3.4.5, `layer3/RoutingTable.java`, `RouteBalancer.scala`): longest prefix, source
filter with fall-through, minimum weight, ECMP by connection hash; checked against a brute-force oracle."""

from __future__ import annotations

import ipaddress
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.ipmath import subnet
from midonet.simulation.routing import RouteEntry, RoutingTable
from midonet.topology.devices import NextHop, Route
from midonet.topology.ids import PortId, RouteId


def entry(dst: str, *, src: str = "0.0.0.0/0", weight: int = 100, name: str = "r",
          next_hop: NextHop = NextHop.PORT, gateway: str | None = None) -> RouteEntry:
    d, s = subnet(dst), subnet(src)
    assert d is not None and s is not None
    return RouteEntry(RouteId(name), d, s, next_hop, PortId("p-" + name), gateway, weight)


def packet(dst: str, src: str = "10.0.0.1", sport: int = 1000) -> FlowMatch:
    return FlowMatch(eth_type=0x0800, ip_src=src, ip_dst=dst, ip_proto=6, tp_src=sport, tp_dst=80)


def chosen(table: RoutingTable, match: FlowMatch) -> str | None:
    route = table.lookup(match)
    return route.id if route else None


def test_no_route() -> None:
    assert RoutingTable([entry("10.0.0.0/8")]).lookup(packet("192.168.0.1")) is None
    assert RoutingTable([]).lookup(packet("10.0.0.1")) is None
    assert RoutingTable([entry("0.0.0.0/0")]).lookup(FlowMatch(eth_type=0x0806)) is None


def test_longest_prefix_wins() -> None:
    table = RoutingTable([entry("0.0.0.0/0", name="default"), entry("10.0.0.0/8", name="eight"),
                          entry("10.1.0.0/16", name="sixteen"), entry("10.1.2.3/32", name="host")])
    assert [chosen(table, packet(ip)) for ip in ("10.1.2.3", "10.1.9.9", "10.9.9.9", "8.8.8.8")] == [
        "host", "sixteen", "eight", "default"]


def test_source_filter_falls_through_to_shorter_prefixes() -> None:
    table = RoutingTable([entry("10.1.0.0/16", src="192.168.0.0/24", name="from-lan"),
                          entry("10.0.0.0/8", name="any")])
    assert chosen(table, packet("10.1.0.1", src="192.168.0.7")) == "from-lan"
    assert chosen(table, packet("10.1.0.1", src="172.16.0.1")) == "any"


def test_minimum_weight_wins_within_a_prefix() -> None:
    table = RoutingTable([entry("10.0.0.0/8", weight=200, name="backup"), entry("10.0.0.0/8", name="main")])
    assert chosen(table, packet("10.0.0.1")) == "main"


def test_ecmp_spreads_connections_and_keeps_each_on_one_path() -> None:
    table = RoutingTable([entry("0.0.0.0/0", name=n) for n in ("a", "b", "c")])
    spread = Counter(chosen(table, packet("8.8.8.8", sport=p)) for p in range(3000))
    assert set(spread) == {"a", "b", "c"} and min(spread.values()) > 800
    assert len({chosen(table, packet("8.8.8.8", sport=42)) for _ in range(5)}) == 1


def test_the_source_is_read_only_when_a_route_filters_on_it() -> None:
    plain = packet("10.0.0.1")
    RoutingTable([entry("10.0.0.0/8")]).lookup(plain)
    assert plain.fields_seen() == {"ip_dst"}
    filtered = packet("10.0.0.1")
    RoutingTable([entry("10.0.0.0/8", src="10.0.0.0/8")]).lookup(filtered)
    assert filtered.fields_seen() == {"ip_dst", "ip_src"}


def test_from_record_skips_ipv6_and_treats_zero_gateways_as_none() -> None:
    v6 = Route(id="00000001-0000-4000-8000-000000000000", dst_subnet="fd00::/8", next_hop=NextHop.BLACKHOLE)
    assert RouteEntry.from_record(v6) is None
    r = Route(id="00000002-0000-4000-8000-000000000000", dst_subnet="10.0.0.0/8", next_hop=NextHop.BLACKHOLE,
              next_hop_gateway="0.0.0.0")
    found = RouteEntry.from_record(r)
    assert found is not None and found.gateway is None and str(found.dst) == "10.0.0.0/8"


# ---- against a brute-force oracle ----

def oracle(routes: list[RouteEntry], dst: str, src: str) -> set[str]:
    """The ids lookup may return: best prefix with a source match, then minimum weight (ECMP: any of them)."""
    d, s = ipaddress.IPv4Address(dst), ipaddress.IPv4Address(src)
    for length in range(32, -1, -1):
        candidates = [r for r in routes if r.dst.length == length and r.dst.contains(str(d)) and r.src.contains(str(s))]
        if candidates:
            best = min(r.weight for r in candidates)
            return {r.id for r in candidates if r.weight == best}
    return set()


def cidr(value: int, length: int) -> str:
    return str(ipaddress.ip_network(f"{ipaddress.IPv4Address(value)}/{length}", strict=False))


small = st.integers(0, 2**32 - 1).map(lambda v: v & 0xFF0F0F0F)      # few distinct addresses: prefixes collide
routes = st.lists(st.builds(
    lambda dv, dl, sv, sl, w, i: entry(cidr(dv, dl), src=cidr(sv, sl), weight=w, name=f"r{i}"),
    small, st.sampled_from([0, 4, 8, 12, 16, 24, 28, 32]), small, st.sampled_from([0, 0, 0, 8, 16]),
    st.sampled_from([10, 20, 100]), st.integers(0, 10**6)), max_size=12, unique_by=lambda r: r.id)


@given(routes=routes, dst=small, src=small)
def test_lookup_agrees_with_the_oracle(routes: list[RouteEntry], dst: int, src: int) -> None:
    d, s = str(ipaddress.IPv4Address(dst)), str(ipaddress.IPv4Address(src))
    found = RoutingTable(routes).lookup(packet(d, src=s))
    expected = oracle(routes, d, s)
    assert (found.id if found else None) in (expected or {None})
