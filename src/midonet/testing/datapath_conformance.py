"""The Datapath conformance suite: every backend of `midonet.datapath.base.Datapath` must pass every check.

Role: the contract of datapath/base.py, written once as executable checks (trio's `check_*_stream` habit). A
backend shows up with a `DatapathRig`, a small factory of worlds: hosts on one underlay, each with named
interfaces and a fresh datapath; the checks add ports, install flows and execute packets through the `Datapath`
protocol only, and use the rig just to put frames in (`inject`) and read what came out (`wait_frames`, `take`).
Nothing here knows a backend: the memory backend's rig is in tests/contract/test_datapath_contract.py, the Linux
backend's will sit beside it.

    check(rig) -> None     raises AssertionError (or DatapathError) when the backend is wrong

Asynchrony: a backend may forward and upcall on other threads. Presence is awaited with deadlines
(`wait_frames`, `Upcalls.wait`); absence is asserted only after `rig.quiesce()`, which returns when everything
injected so far has been fully processed. No check sleeps.

Overlap: megaflows of different masks never overlap in the agent's hands (spec 3.12), so no check relies on which
of two overlapping flows wins; "same key replaces" is checked.

May import: `midonet.datapath.base`, `midonet.packets`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from midonet.datapath.base import (
    Datapath,
    DatapathError,
    DpPort,
    DropReason,
    Flow,
    FlowKey,
    Output,
    PopVlan,
    PortKind,
    PushVlan,
    SetFields,
    SetTunnel,
    Upcall,
    Userspace,
)
from midonet.packets import FlowMatch, frame, ipv4, parse_frame, tcp, udp
from midonet.packets.flowmatch import FieldValue

TIMEOUT = 5.0
TUNNEL_PORT = "tnvxlan-overlay"

MAC_A, MAC_B, MAC_C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
IP_A, IP_B, IP_C = "192.168.1.10", "192.168.1.11", "192.168.1.12"
UNDERLAY_1, UNDERLAY_2, UNDERLAY_3 = "10.99.0.1", "10.99.0.2", "10.99.0.3"


class DatapathRig(Protocol):
    """What a backend gives the suite: a world of hosts, frames in, frames out. One rig per check."""

    def add_host(self, name: str, underlay_ip: str, interfaces: Sequence[str]) -> Datapath:
        """A host on the rig's underlay with these interfaces (link up, MTU 1500) and its datapath, no ports yet."""

    def inject(self, host: str, interface: str, frame: bytes) -> None:
        """Send `frame` from the VM behind `interface` of `host`."""

    def wait_frames(self, host: str, interface: str, count: int = 1, timeout: float = TIMEOUT) -> list[bytes]:
        """Take the `count` oldest frames the VM behind `interface` received; TimeoutError past `timeout`."""

    def take(self, host: str, interface: str) -> list[bytes]:
        """Take every frame the VM behind `interface` received so far (call `quiesce` first)."""

    def quiesce(self) -> None:
        """Return once every frame injected so far has been fully processed (forwarded, dropped, upcalled)."""

    def close(self) -> None: ...


Check = Callable[[DatapathRig], None]


class Upcalls:
    """An upcall handler that records what it receives, optionally reacting (thread-safe)."""

    def __init__(self, react: Callable[[Upcall], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._items: list[Upcall] = []
        self._react = react

    def __call__(self, upcall: Upcall) -> None:
        with self._cond:
            self._items.append(upcall)
            self._cond.notify_all()
        if self._react is not None:
            self._react(upcall)

    @property
    def items(self) -> list[Upcall]:
        with self._cond:
            return list(self._items)

    def wait(self, count: int = 1, timeout: float = TIMEOUT) -> list[Upcall]:
        """The first `count` upcalls, once they arrived; AssertionError past `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self._items)} of {count} upcalls within {timeout} s")
                self._cond.wait(remaining)
            return self._items[:count]


# ---- frames ----

def udp_frame(eth_src: str = MAC_A, eth_dst: str = MAC_B, ip_src: str = IP_A, ip_dst: str = IP_B,
              tp_src: int = 40000, tp_dst: int = 53, payload: bytes = b"conformance",
              vlan_ids: tuple[int, ...] = ()) -> bytes:
    spec = FlowMatch(eth_src=eth_src, eth_dst=eth_dst, vlan_ids=vlan_ids, ip_src=ip_src, ip_dst=ip_dst,
                     ip_proto=ipv4.PROTO_UDP, tp_src=tp_src, tp_dst=tp_dst)
    return frame.build(spec, payload)


def tcp_frame(eth_src: str = MAC_A, eth_dst: str = MAC_B, ip_src: str = IP_A, ip_dst: str = IP_B,
              tp_src: int = 40001, tp_dst: int = 80, payload: bytes = b"GET / HTTP/1.0\r\n\r\n") -> bytes:
    spec = FlowMatch(eth_src=eth_src, eth_dst=eth_dst, ip_src=ip_src, ip_dst=ip_dst, ip_proto=ipv4.PROTO_TCP,
                     tp_src=tp_src, tp_dst=tp_dst)
    return frame.build(spec, payload)


def arp_request(eth_src: str = MAC_A, spa: str = IP_A, tpa: str = IP_B) -> bytes:
    spec = FlowMatch(eth_src=eth_src, eth_dst="ff:ff:ff:ff:ff:ff", arp_op=1, arp_sha=eth_src, arp_spa=spa,
                     arp_tpa=tpa)
    return frame.build(spec)


def assert_checksums_valid(data: bytes) -> None:
    """The IPv4 header checksum and the TCP/UDP checksum of `data` (an Ethernet frame) are right."""
    vlan_ids = parse_frame(data).peek("vlan_ids")
    offset = 14 + 4 * (len(vlan_ids) if isinstance(vlan_ids, tuple) else 0)
    header, segment = ipv4.parse(data[offset:], verify=True)
    if header.proto == ipv4.PROTO_UDP:
        assert udp.is_checksum_valid(segment, header.src, header.dst), "bad UDP checksum"
    elif header.proto == ipv4.PROTO_TCP:
        assert tcp.is_checksum_valid(segment, header.src, header.dst), "bad TCP checksum"


def key(**values: FieldValue) -> FlowKey:
    return FlowKey.of(values)


# ---- worlds ----

def one_host(rig: DatapathRig, interfaces: Sequence[str] = ("a", "b", "c")
             ) -> tuple[Datapath, dict[str, DpPort], Upcalls]:
    """Host h1 with interfaces a, b, c attached as ports and a recording upcall handler."""
    dp = rig.add_host("h1", UNDERLAY_1, interfaces)
    ports = {name: dp.add_port(name) for name in interfaces}
    upcalls = Upcalls()
    dp.on_upcall(upcalls)
    return dp, ports, upcalls


@dataclass(frozen=True, slots=True)
class TwoHosts:
    """h1 (interface a) and h2 (interface c), each with a tunnel port; the upcalls of h2."""

    dp1: Datapath
    a: DpPort
    vx1: DpPort
    dp2: Datapath
    c: DpPort
    vx2: DpPort
    upcalls: Upcalls


def two_hosts(rig: DatapathRig) -> TwoHosts:
    dp1 = rig.add_host("h1", UNDERLAY_1, ["a"])
    a, vx1 = dp1.add_port("a"), dp1.add_port(TUNNEL_PORT, PortKind.VXLAN)
    dp2 = rig.add_host("h2", UNDERLAY_2, ["c"])
    c, vx2 = dp2.add_port("c"), dp2.add_port(TUNNEL_PORT, PortKind.VXLAN)
    upcalls = Upcalls()
    dp2.on_upcall(upcalls)
    return TwoHosts(dp1, a, vx1, dp2, c, vx2, upcalls)


# ---- the checks ----

def check_miss_upcalls_with_port_and_bytes(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    packet = udp_frame()
    rig.inject("h1", "a", packet)
    (upcall,) = upcalls.wait(1)
    assert upcall == Upcall(ports["a"].number, packet, None, None), upcall
    rig.quiesce()
    assert rig.take("h1", "b") == [] and rig.take("h1", "c") == []
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.upcalls) == (0, 1, 1), stats


def check_flow_forwards_without_upcall(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    dp.install(Flow(key(in_port=ports["a"].number, eth_dst=MAC_B), (Output(ports["b"].number),)))
    packets = [udp_frame(payload=bytes(n)) for n in (10, 20, 30)]
    before = time.monotonic()
    for packet in packets:
        rig.inject("h1", "a", packet)
    assert rig.wait_frames("h1", "b", 3) == packets
    after = time.monotonic()
    rig.quiesce()
    assert upcalls.items == [], "a packet of an installed flow reached the agent"
    ((_, stats),) = dp.flows()
    assert (stats.packets, stats.bytes) == (3, sum(map(len, packets))), stats
    assert stats.last_used is not None and before <= stats.last_used <= after, (before, stats, after)
    totals = dp.statistics()
    assert (totals.hits, totals.misses, totals.upcalls) == (3, 0, 0), totals


def check_wildcarded_fields_match_anything(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    dp.install(Flow(key(eth_dst=MAC_B), (Output(ports["b"].number),)))
    packets = [udp_frame(eth_src=f"02:00:00:00:01:{i:02x}", ip_src=f"10.1.1.{i}", tp_src=1000 + i)
               for i in range(1, 5)]
    packets.append(tcp_frame(eth_src="02:00:00:00:02:01", ip_src="10.2.2.2"))
    for packet in packets:
        rig.inject("h1", "a", packet)
    rig.inject("h1", "c", udp_frame(eth_src=MAC_C))   # another in_port: wildcarded too
    assert rig.wait_frames("h1", "b", len(packets) + 1) == [*packets, udp_frame(eth_src=MAC_C)]
    rig.inject("h1", "a", udp_frame(eth_dst=MAC_C))   # the one field matched differs: a miss
    (upcall,) = upcalls.wait(1)
    assert upcall.packet == udp_frame(eth_dst=MAC_C)


def check_flows_of_different_masks(rig: DatapathRig) -> None:
    """Two flows with different masks that cannot both match (ARP vs IPv4): each packet finds its own."""
    dp, ports, upcalls = one_host(rig)
    a, b, c = (ports[n].number for n in "abc")
    dp.install(Flow(key(in_port=a, eth_type=0x0806), (Output(b),)))
    dp.install(Flow(key(in_port=a, eth_type=0x0800, ip_dst=IP_C), (Output(c),)))
    arp = arp_request(tpa=IP_C)
    to_c = udp_frame(eth_dst=MAC_C, ip_dst=IP_C)
    rig.inject("h1", "a", arp)
    rig.inject("h1", "a", to_c)
    assert rig.wait_frames("h1", "b") == [arp]
    assert rig.wait_frames("h1", "c") == [to_c]
    rig.inject("h1", "a", udp_frame(ip_dst=IP_B))     # IPv4, another address: neither flow
    assert upcalls.wait(1)[0].packet == udp_frame(ip_dst=IP_B)
    rig.quiesce()
    assert rig.take("h1", "b") == [] and rig.take("h1", "c") == []


def check_same_key_replaces(rig: DatapathRig) -> None:
    dp, ports, _ = one_host(rig)
    flow_key = key(in_port=ports["a"].number)
    dp.install(Flow(flow_key, (Output(ports["b"].number),)))
    rig.inject("h1", "a", udp_frame())
    rig.wait_frames("h1", "b")
    dp.install(Flow(flow_key, (Output(ports["c"].number),)))
    ((flow, stats),) = dp.flows()
    assert flow.actions == (Output(ports["c"].number),) and stats.packets == 0, (flow, stats)
    rig.inject("h1", "a", udp_frame())
    rig.wait_frames("h1", "c")
    rig.quiesce()
    assert rig.take("h1", "b") == []


def check_remove_returns_final_stats(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    flow_key = key(in_port=ports["a"].number, eth_dst=MAC_B)
    dp.install(Flow(flow_key, (Output(ports["b"].number),)))
    packet = udp_frame()
    rig.inject("h1", "a", packet)
    rig.inject("h1", "a", packet)
    rig.wait_frames("h1", "b", 2)
    stats = dp.remove(flow_key)
    assert stats is not None and (stats.packets, stats.bytes) == (2, 2 * len(packet)), stats
    assert dp.flows() == []
    assert dp.remove(flow_key) is None
    rig.inject("h1", "a", packet)
    assert upcalls.wait(1)[0].packet == packet


def check_flow_stats_of_some_flows(rig: DatapathRig) -> None:
    """`flow_stats(keys)`: the stats of the installed flows among the keys, the others left out."""
    dp, ports, _ = one_host(rig)
    used = key(in_port=ports["a"].number, eth_dst=MAC_B)
    unused = key(in_port=ports["b"].number, eth_dst=MAC_A)
    dp.install(Flow(used, (Output(ports["b"].number),)))
    dp.install(Flow(unused, (Output(ports["a"].number),)))
    packet = udp_frame()
    for _ in range(3):
        rig.inject("h1", "a", packet)
    rig.wait_frames("h1", "b", 3)
    rig.quiesce()
    never = key(in_port=ports["c"].number)
    stats = dp.flow_stats([used, never, unused])
    assert set(stats) == {used, unused}
    assert (stats[used].packets, stats[used].bytes) == (3, 3 * len(packet))
    assert stats[unused].packets == 0
    assert dp.flow_stats([]) == {}


def check_execute_set_fields(rig: DatapathRig) -> None:
    dp, ports, _ = one_host(rig)
    changes = (("eth_src", "02:00:00:00:00:fe"), ("eth_dst", "02:00:00:00:00:ef"), ("ip_src", "172.16.0.1"),
               ("ip_dst", "172.16.0.2"), ("tp_src", 5555), ("tp_dst", 6666), ("ip_ttl", 9), ("ip_tos", 0x10))
    for packet in (udp_frame(), tcp_frame()):
        dp.execute(packet, [SetFields(changes), Output(ports["b"].number)], in_port=ports["a"].number)
        (out,) = rig.wait_frames("h1", "b")
        got = parse_frame(out)
        assert {name: got.peek(name) for name, _ in changes} == dict(changes), got
        assert out[-10:] == packet[-10:], "the payload changed"
        assert_checksums_valid(out)


def check_push_and_pop_vlan(rig: DatapathRig) -> None:
    dp, ports, _ = one_host(rig)
    a, b = ports["a"].number, ports["b"].number
    packet = udp_frame()
    dp.execute(packet, [PushVlan(100), Output(b)], in_port=a)
    (tagged,) = rig.wait_frames("h1", "b")
    assert parse_frame(tagged).peek("vlan_ids") == (100,) and len(tagged) == len(packet) + 4
    dp.execute(tagged, [PopVlan(), Output(b)], in_port=a)
    assert rig.wait_frames("h1", "b") == [packet]
    dp.install(Flow(key(in_port=a, vlan_ids=(7,)), (PopVlan(), Output(b))))
    rig.inject("h1", "a", udp_frame(vlan_ids=(7,)))
    assert rig.wait_frames("h1", "b") == [packet]


def check_flood_outputs_every_copy(rig: DatapathRig) -> None:
    dp, ports, _ = one_host(rig)
    a, b, c = (ports[n].number for n in "abc")
    dp.install(Flow(key(in_port=a, eth_dst="ff:ff:ff:ff:ff:ff"), (Output(b), Output(c))))
    request = arp_request()
    rig.inject("h1", "a", request)
    assert rig.wait_frames("h1", "b") == [request]
    assert rig.wait_frames("h1", "c") == [request]
    ((_, stats),) = dp.flows()
    assert stats.packets == 1


def check_copies_differ_by_actions_between_outputs(rig: DatapathRig) -> None:
    """Each Output sends the packet as it is at that point: later rewrites do not change earlier copies."""
    dp, ports, _ = one_host(rig)
    a, b, c = (ports[n].number for n in "abc")
    packet = udp_frame()
    dp.execute(packet, [Output(b), SetFields((("eth_dst", MAC_C),)), PushVlan(5), Output(c)], in_port=a)
    assert rig.wait_frames("h1", "b") == [packet]
    (second,) = rig.wait_frames("h1", "c")
    got = parse_frame(second)
    assert (got.peek("eth_dst"), got.peek("vlan_ids")) == (MAC_C, (5,))


def check_drop_flow(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    dp.install(Flow(key(in_port=ports["a"].number), ()))
    rig.inject("h1", "a", udp_frame())
    rig.inject("h1", "a", tcp_frame())
    rig.quiesce()
    assert upcalls.items == []
    assert all(rig.take("h1", n) == [] for n in "abc")
    ((_, stats),) = dp.flows()
    assert stats.packets == 2
    assert dp.statistics().hits == 2


def check_userspace_action_upcalls(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    a, b = ports["a"].number, ports["b"].number
    dp.install(Flow(key(in_port=a), (Output(b), Userspace())))
    packet = udp_frame()
    rig.inject("h1", "a", packet)
    assert rig.wait_frames("h1", "b") == [packet]
    (upcall,) = upcalls.wait(1)
    assert (upcall.port, upcall.packet) == (a, packet)
    stats = dp.statistics()
    assert (stats.hits, stats.misses, stats.upcalls) == (1, 0, 1), stats


def check_tunnel_miss_carries_tunnel_metadata(rig: DatapathRig) -> None:
    w = two_hosts(rig)
    w.dp1.install(Flow(key(in_port=w.a.number), (SetTunnel(0x12345, UNDERLAY_1, UNDERLAY_2), Output(w.vx1.number))))
    packet = udp_frame()
    rig.inject("h1", "a", packet)
    (upcall,) = w.upcalls.wait(1)
    assert upcall == Upcall(w.vx2.number, packet, 0x12345, UNDERLAY_1), upcall


def check_tunnel_flow_outputs_to_local_port(rig: DatapathRig) -> None:
    w = two_hosts(rig)
    w.dp1.install(Flow(key(in_port=w.a.number, eth_dst=MAC_C),
                       (SetTunnel(7, UNDERLAY_1, UNDERLAY_2), Output(w.vx1.number))))
    w.dp1.install(Flow(key(in_port=w.a.number, eth_dst=MAC_B),
                       (SetTunnel(8, UNDERLAY_1, UNDERLAY_2), Output(w.vx1.number))))
    w.dp2.install(Flow(key(in_port=w.vx2.number, tunnel_id=7), (Output(w.c.number),)))
    to_c, to_b = udp_frame(eth_dst=MAC_C), udp_frame(eth_dst=MAC_B)
    rig.inject("h1", "a", to_c)
    assert rig.wait_frames("h2", "c") == [to_c]
    rig.inject("h1", "a", to_b)                        # tunnel key 8: no flow on h2
    (upcall,) = w.upcalls.wait(1)
    assert (upcall.port, upcall.tunnel_id, upcall.packet) == (w.vx2.number, 8, to_b)
    rig.quiesce()
    assert rig.take("h2", "c") == []
    ((_, stats),) = w.dp2.flows()
    assert (stats.packets, stats.bytes) == (1, len(to_c)), stats


def check_tunnel_flood_to_several_hosts(rig: DatapathRig) -> None:
    """One tunnelled copy per remote port, each with its own key and destination (spec 5.1), plus a local one."""
    dp1 = rig.add_host("h1", UNDERLAY_1, ["a", "b"])
    a, b, vx1 = dp1.add_port("a"), dp1.add_port("b"), dp1.add_port(TUNNEL_PORT, PortKind.VXLAN)
    remote: dict[str, tuple[DpPort, DpPort]] = {}
    for host, ip in (("h2", UNDERLAY_2), ("h3", UNDERLAY_3)):
        dp = rig.add_host(host, ip, ["c"])
        c, vx = dp.add_port("c"), dp.add_port(TUNNEL_PORT, PortKind.VXLAN)
        dp.install(Flow(key(in_port=vx.number, tunnel_id=20 if host == "h2" else 30), (Output(c.number),)))
        remote[host] = (c, vx)
    dp1.install(Flow(key(in_port=a.number), (
        Output(b.number),
        SetTunnel(20, UNDERLAY_1, UNDERLAY_2), Output(vx1.number),
        SetTunnel(30, UNDERLAY_1, UNDERLAY_3), Output(vx1.number),
    )))
    request = arp_request()
    rig.inject("h1", "a", request)
    assert rig.wait_frames("h1", "b") == [request]
    assert rig.wait_frames("h2", "c") == [request]
    assert rig.wait_frames("h3", "c") == [request]


def check_tunnel_output_without_metadata_drops(rig: DatapathRig) -> None:
    w = two_hosts(rig)
    w.dp1.execute(udp_frame(), [Output(w.vx1.number)], in_port=w.a.number)
    rig.quiesce()
    assert w.upcalls.items == []
    assert w.dp1.statistics().dropped(DropReason.NO_TUNNEL) == 1


def check_malformed_frame_dropped_and_counted(rig: DatapathRig) -> None:
    dp, _, upcalls = one_host(rig)
    good = udp_frame()
    truncated = good[:14 + 10]                         # IPv4 EtherType, half an IPv4 header
    rig.inject("h1", "a", truncated)
    rig.quiesce()
    assert upcalls.items == []
    assert dp.statistics().dropped(DropReason.MALFORMED) == 1
    rig.inject("h1", "a", good)                        # and the datapath still works
    assert upcalls.wait(1)[0].packet == good


def check_handler_failure_is_contained(rig: DatapathRig) -> None:
    dp, _, _ = one_host(rig)

    def fail(upcall: Upcall) -> None:
        raise RuntimeError("agent bug")

    dp.on_upcall(fail)
    rig.inject("h1", "a", udp_frame())
    rig.quiesce()
    assert dp.statistics().dropped(DropReason.HANDLER_FAILED) == 1
    upcalls = Upcalls()
    dp.on_upcall(upcalls)                              # replacing the handler is allowed
    rig.inject("h1", "a", udp_frame())
    upcalls.wait(1)


def check_upcall_handler_can_install_and_execute(rig: DatapathRig) -> None:
    """The agent's loop: on a miss, install a flow and execute the packet; later packets never come up."""
    dp, ports, _ = one_host(rig)
    a, b = ports["a"].number, ports["b"].number

    def agent(upcall: Upcall) -> None:
        actions = (Output(b),)
        dp.install(Flow(key(in_port=upcall.port, eth_dst=MAC_B), actions))
        dp.execute(upcall.packet, actions, in_port=upcall.port)

    upcalls = Upcalls(agent)
    dp.on_upcall(upcalls)
    packets = [udp_frame(payload=bytes([i])) for i in range(4)]
    rig.inject("h1", "a", packets[0])
    assert rig.wait_frames("h1", "b") == packets[:1]
    for packet in packets[1:]:
        rig.inject("h1", "a", packet)
    assert rig.wait_frames("h1", "b", 3) == packets[1:]
    rig.quiesce()
    assert len(upcalls.items) == 1 and upcalls.items[0].port == a


def check_removed_port_stops_delivery(rig: DatapathRig) -> None:
    dp, ports, upcalls = one_host(rig)
    a, b = ports["a"].number, ports["b"].number
    dp.install(Flow(key(in_port=a), (Output(b),)))
    rig.inject("h1", "a", udp_frame())
    rig.wait_frames("h1", "b")
    dp.remove_port(b)
    assert b not in {p.number for p in dp.ports()}
    rig.inject("h1", "a", udp_frame())                 # the flow stays; its copy to b is dropped
    rig.inject("h1", "b", udp_frame(eth_src=MAC_B))    # b no longer feeds the datapath
    rig.quiesce()
    assert rig.take("h1", "b") == []
    assert upcalls.items == []
    assert dp.statistics().dropped(DropReason.NO_PORT) == 1
    dp.execute(udp_frame(), [Output(b)], in_port=a)    # executing to a gone port: dropped, no error
    assert dp.statistics().dropped(DropReason.NO_PORT) == 2


def check_port_errors(rig: DatapathRig) -> None:
    dp = rig.add_host("h1", UNDERLAY_1, ["a"])
    port = dp.add_port("a")
    assert dp.ports() == [port] and port.kind is PortKind.NETDEV
    for attempt in (lambda: dp.add_port("a"), lambda: dp.add_port("no-such-interface"),
                    lambda: dp.remove_port(port.number + 1000)):
        try:
            attempt()
        except DatapathError:
            continue
        raise AssertionError(f"{attempt} did not raise DatapathError")
    dp.remove_port(port.number)
    again = dp.add_port("a")
    assert [p.name for p in dp.ports()] == ["a"] and again.kind is PortKind.NETDEV


CHECKS: tuple[Check, ...] = (
    check_miss_upcalls_with_port_and_bytes,
    check_flow_forwards_without_upcall,
    check_wildcarded_fields_match_anything,
    check_flows_of_different_masks,
    check_same_key_replaces,
    check_remove_returns_final_stats,
    check_flow_stats_of_some_flows,
    check_execute_set_fields,
    check_push_and_pop_vlan,
    check_flood_outputs_every_copy,
    check_copies_differ_by_actions_between_outputs,
    check_drop_flow,
    check_userspace_action_upcalls,
    check_tunnel_miss_carries_tunnel_metadata,
    check_tunnel_flow_outputs_to_local_port,
    check_tunnel_flood_to_several_hosts,
    check_tunnel_output_without_metadata_drops,
    check_malformed_frame_dropped_and_counted,
    check_handler_failure_is_contained,
    check_upcall_handler_can_install_and_execute,
    check_removed_port_stops_delivery,
    check_port_errors,
)
