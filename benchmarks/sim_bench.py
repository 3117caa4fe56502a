"""Simulation benchmark: first-packet simulations per second, and their latency, on one core.

Scenarios (spec 11's two-subnet router; every MAC and ARP entry already learned, so each simulation runs to a
Forward verdict):
  l2       one bridge, VM to VM (bridge port -> bridge -> bridge port)
  routed   VM on one bridge to VM on the other through the router (bridge -> router -> bridge)
  chains   `routed` with a 20-rule chain as the router's inbound and outbound filter; no rule matches (each
           reads three fields, the last one differs), so every packet walks all 40 rules and is accepted
  snat     `chains` plus dynamic SNAT: a reverse-SNAT rule ends the inbound chain (no key: not applied) and an
           SNAT rule the outbound one, so every packet also leases a port (10.0.2.254:1024-65535) for its
           destination and requests its two NAT keys (the issue's case (c))
  vip      a TCP connection to a VIP of the router's load balancer, 3 members: VIP match, weighted draw, DNAT to
           the member, reverse-DNAT lookup on the way out (the issue's case (d))

Each simulation is what the agent does for an upcall: parse the frame into a `FlowMatch`, build the context,
simulate (tracing off). Every iteration sends a different flow (a different UDP source port), so nothing is
reused between first packets but the topology snapshot and the tables ("snat" varies the destination port too,
so that the leaser is never short of ports however long the run). "parse (ref)" times `parse_frame` alone.

    .venv/bin/python benchmarks/sim_bench.py [--count 20000] [--repeat 3] [--trace]

Prints simulations/s (from the best of `repeat` untimed loops) and p50/p99 latency (per-iteration timers);
figures go to docs/benchmarks.md with the command and the machine. `--trace` measures what tracing costs.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
from collections.abc import Callable

from midonet.packets.flowmatch import parse_frame
from midonet.simulation.context import PacketContext
from midonet.simulation.driver import simulate
from midonet.simulation.results import Forward
from midonet.state.tables import in_memory
from midonet.testing import frames
from midonet.testing.clock import FakeClock
from midonet.testing.topologies import LEFT_ROUTER_MAC, TopologyBuilder, TwoSubnetRouter, two_subnet_router
from midonet.topology.ids import BridgeId, PortId, RouterId

VIP = "192.0.2.100"


def network(rules: int = 0, tracing: bool = False, *, snat: bool = False,
            vip: bool = False) -> tuple[TwoSubnetRouter, Callable[[bytes, PortId], object]]:
    b = TopologyBuilder()
    t = two_subnet_router(3 if vip else 2, builder=b)
    if rules:
        for name, direction in (("in", "inbound"), ("out", "outbound")):
            chain = b.chain(f"router-{name}")
            for i in range(rules):
                b.rule(chain, "drop", nw_src_ip="10.0.1.0/24", nw_proto=17, tp_dst=(1000 + i, 1000 + i))
            if snat and name == "in":
                b.nat(chain, "rev_snat", nw_dst_ip="10.0.2.254/32")
            if snat and name == "out":
                b.nat(chain, "snat", ("10.0.2.254", "10.0.2.254", 1024, 65535), nw_src_ip="10.0.1.0/24")
            b.filters(t.router, **{direction: chain})
    if vip:
        pool = b.pool(b.load_balancer(t.router, "lb"), "pool")
        for i, weight in enumerate((1, 2, 3), start=1):
            b.member(pool, t.vms[f"r{i}"].ip, 8080, weight=weight)
        b.vip(pool, VIP, 80)
    topology = b.topology()
    tables = in_memory(FakeClock(), random.Random(0))
    for vm in t.vms.values():
        bridge = t.left if vm.port.network_id == t.left.id else t.right
        tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
        tables.arp_cache.learn(RouterId(t.router.id), vm.ip, vm.mac)

    def run(data: bytes, port: PortId) -> object:
        return simulate(PacketContext(data, parse_frame(data), in_port=port, tracing=tracing), topology, tables)
    return t, run


def scenarios(count: int, tracing: bool = False) -> dict[str, tuple[Callable[[bytes], object], list[bytes]]]:
    out: dict[str, tuple[Callable[[bytes], object], list[bytes]]] = {}
    t, run = network(tracing=tracing)
    l1, l2, r1 = t.vms["l1"], t.vms["l2"], t.vms["r1"]
    l1_port = PortId(l1.port.id)
    sports = [1024 + i % 60000 for i in range(count)]
    out["l2"] = (lambda d: run(d, l1_port), [frames.udp(l1.mac, l2.mac, l1.ip, l2.ip, sport=s) for s in sports])
    routed = [frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, sport=s) for s in sports]
    out["routed"] = (lambda d: run(d, l1_port), routed)
    _, run_chains = network(rules=20, tracing=tracing)
    out["chains"] = (lambda d: run_chains(d, l1_port), routed)
    _, run_snat = network(rules=20, tracing=tracing, snat=True)
    snat = [frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, sport=s, dport=2000 + i % 60000)
            for i, s in enumerate(sports)]
    out["snat"] = (lambda d: run_snat(d, l1_port), snat)
    _, run_vip = network(tracing=tracing, vip=True)
    out["vip"] = (lambda d: run_vip(d, l1_port),
                  [frames.tcp(l1.mac, LEFT_ROUTER_MAC, l1.ip, VIP, sport=s, dport=80) for s in sports])
    out["parse (ref)"] = (parse_frame, routed)
    return out


def measure(sim: Callable[[bytes], object], packets: list[bytes], repeat: int) -> tuple[float, float, float]:
    for data in packets[:200]:                         # warm up (and check the verdict)
        result = sim(data)
        assert not hasattr(result, "verdict") or isinstance(result.verdict, Forward), result
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for data in packets:
            sim(data)
        best = min(best, time.perf_counter() - start)
    lat = []
    clock = time.perf_counter_ns
    for data in packets:
        t0 = clock()
        sim(data)
        lat.append(clock() - t0)
    lat.sort()
    return len(packets) / best, lat[len(lat) // 2] / 1000, lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="simulate with tracing on (as `midonet trace`)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})       # one core
    gc.collect()
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"pinned to one; {args.count} packets x {args.repeat}; tracing {'on' if args.trace else 'off'}")
    print(f"| {'scenario':<12} | {'sims/s':>9} | {'p50 us':>7} | {'p99 us':>7} |")
    print(f"|{'-' * 14}|{'-' * 11}|{'-' * 9}|{'-' * 9}|")
    figures = {}
    for name, (sim, packets) in scenarios(args.count, args.trace).items():
        rate, p50, p99 = measure(sim, packets, args.repeat)
        figures[name] = rate
        print(f"| {name:<12} | {rate:>9,.0f} | {p50:>7.1f} | {p99:>7.1f} |")
    print(f"# chains / routed = {figures['chains'] / figures['routed']:.2f}; "
          f"snat / chains = {figures['snat'] / figures['chains']:.2f}; vip / routed = "
          f"{figures['vip'] / figures['routed']:.2f}; "
          f"mean over scenarios {statistics.mean(v for k, v in figures.items() if k != 'parse (ref)'):,.0f}/s")


if __name__ == "__main__":
    main()
