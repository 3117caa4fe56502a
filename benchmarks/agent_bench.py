"""Agent benchmark: fake hosts with real agents (`midonet.testing.fakehosts`), measured end to end.

The topology is a router between B bridges (one /24 each), its inbound filter a chain with one rule reading the
L4 destination port (as security groups do), so that every (source, destination, destination port) is a new
megaflow; V VMs spread round-robin over the hosts and the bridges, each answering ARP. Every packet of the
throughput run goes from a VM to a VM of another subnet: upcall -> simulate (bridge, router, chain, bridge) ->
install -> execute -> VXLAN to the destination's host (a tunnel flow there, set up during the warm-up) ->
delivered.

Figures, for each configuration (hosts x ports):

  new flows/s            N first packets through the whole workflow, one thread (the memory datapath is
                         run-to-completion: `inject` returns when the packet was delivered), admission off
  invalidation p50/p99   a rule added to the router's chain (a store commit) -> every flow through the router
                         removed from its host's datapath (the agents' store watches, on their session threads)
  bind -> first packet   a port bound to a new VM's interface (a store commit) -> the first packet that VM sends
                         (it tries every 0.5 ms) delivered to a VM on another host and subnet
  memory per bound port  tracemalloc: what binding M more ports to one host allocates, in frames of agent code
                         (`midonet/agent`), and in the whole process (store records, datapath, interfaces)

    .venv/bin/python benchmarks/agent_bench.py                  # 1 host / 20 ports, 10 hosts / 100 ports
    .venv/bin/python benchmarks/agent_bench.py --scale          # and 100 hosts / 1,000 ports

Figures go to docs/benchmarks.md with the command and the machine. Timed waits poll with short sleeps: this is a
benchmark, tests never assert on time.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from midonet.agent.admission import AdmissionConfig, AdmissionControl
from midonet.agent.agent import AgentConfig
from midonet.packets import MalformedPacket, parse_frame
from midonet.packets.arp import OP_REQUEST
from midonet.packets.ethernet import ETH_TYPE_ARP
from midonet.testing import frames
from midonet.testing.clock import FakeClock
from midonet.testing.fakehosts import FakeCloud, FakeHost
from midonet.topology.chains import Chain, Rule, RuleAction
from midonet.topology.devices import Bridge, Router

POLL = 0.0002                # seconds between checks of a timed wait
SEND_EVERY = 0.0005          # a new VM's retry period in the bind -> first packet run
DEADLINE = 30.0


class Vm:
    """A VM that answers ARP for its address and counts (and timestamps) what else it receives."""

    def __init__(self, host: FakeHost, interface: str, mac: str, ip: str, subnet: int) -> None:
        self.host, self.interface, self.mac, self.ip, self.subnet = host, interface, mac, ip, subnet
        self.received = 0
        self.first_at: float | None = None
        host.add_interface(interface, mac=mac)
        host.memory.interfaces.on_frame(interface, self._receive)

    def _receive(self, frame: bytes) -> None:
        try:
            m = parse_frame(frame)
        except MalformedPacket:
            return
        if m.peek("eth_type") == ETH_TYPE_ARP:
            if m.peek("arp_op") == OP_REQUEST and m.peek("arp_tpa") == self.ip:
                self.host.inject(self.interface, frames.arp_reply(self.mac, self.ip, str(m.peek("arp_sha")),
                                                                  str(m.peek("arp_spa"))))
            return
        self.received += 1
        if self.first_at is None:
            self.first_at = time.perf_counter()

    def send(self, frame: bytes) -> None:
        self.host.inject(self.interface, frame)


def router_mac(subnet: int) -> str:
    return f"02:aa:00:00:{subnet >> 8 & 0xFF:02x}:{subnet & 0xFF:02x}"


def vm_ip(subnet: int, n: int) -> str:
    return f"10.{subnet // 250}.{subnet % 250}.{n}"


def gateway(subnet: int) -> str:
    return vm_ip(subnet, 254)


@dataclass
class World:
    cloud: FakeCloud
    router: Router
    bridges: list[Bridge]
    chain: Chain
    vms: list[Vm]
    next_port: int = 0

    def frame(self, src: Vm, dst: Vm, dport: int) -> bytes:
        return frames.udp(src.mac, router_mac(src.subnet), src.ip, dst.ip, sport=5000, dport=dport, payload=b"")


def build(hosts: int, ports: int) -> World:
    """The benchmark's topology on `hosts` fake hosts with `ports` VMs, every VM's address resolved by the router."""
    cloud = FakeCloud(config=AgentConfig(admission=None))
    fake_hosts = [cloud.add_host(f"h{i}", f"10.200.{i // 250}.{i % 250 + 1}") for i in range(hosts)]
    t = cloud.topology
    subnets = max(2, (ports + 99) // 100)
    router = t.router("router")
    chain = t.chain("ports")
    t.rule(chain, RuleAction.DROP, tp_dst=(7, 7))            # never matches; every packet reads tp_dst
    t.filters(Router, router.id, inbound=chain)
    bridges = []
    for s in range(subnets):
        bridge = t.bridge(f"net{s}")
        prefix = vm_ip(s, 0)
        rport = t.router_port(router, f"{gateway(s)}/24", router_mac(s))
        t.link(rport, t.port(bridge))
        t.route(router, f"{prefix}/24", rport)
        bridges.append(bridge)
    vms = []
    for i in range(ports):
        host, subnet = fake_hosts[i % hosts], i % subnets
        vm = Vm(host, f"vm{i}", f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                vm_ip(subnet, i // subnets + 1), subnet)
        t.port(bridges[subnet], host_id=host.host_id, interface=vm.interface)
        vms.append(vm)
    cloud.settle(120)
    world = World(cloud, router, bridges, chain, vms)
    warm(world)
    return world


def pairs(world: World, count: int, offset: int = 0) -> list[tuple[Vm, Vm]]:
    """`count` (source, destination) pairs in different subnets, spread over every VM."""
    vms, out = world.vms, []
    n = len(vms)
    for i in range(offset, offset + count):
        src = vms[i % n]
        dst = vms[(i * 7 + 1 + i // n) % n]
        if dst.subnet == src.subnet:
            dst = vms[(vms.index(dst) + 1) % n]
        out.append((src, dst))
    return out


def warm(world: World) -> None:
    """What a booting VM does (it asks for its gateway's MAC: the router learns its address), then every VM sends
    packets and receives some: devices loaded, MACs learned, port locations known, the egress hosts' tunnel flows."""
    for vm in world.vms:
        vm.send(frames.arp_request(vm.mac, vm.ip, gateway(vm.subnet)))
    world.cloud.settle(120)
    n = len(world.vms)
    for i in range(2):
        for src, dst in pairs(world, n, offset=i * n):
            src.send(world.frame(src, dst, 1))
        world.cloud.settle(120)
    for src, dst in pairs(world, 2 * n):
        src.send(world.frame(src, dst, 2))
    world.cloud.settle(120)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ---- the figures ----

def new_flows(world: World, count: int, base: int = 10_000) -> tuple[float, int]:
    """(new flows per second, how many were delivered); destination ports from `base` on make them new. The same
    pairs sent one packet first (untimed): each ingress host knows where its destinations are (a first packet to
    a port never seen from a host waits for its location: that is the bind -> first packet figure's business)."""
    chosen = pairs(world, count)
    for src, dst in chosen:
        src.send(world.frame(src, dst, 3))
    world.cloud.settle(120)
    batch = [(src, world.frame(src, dst, base + i)) for i, (src, dst) in enumerate(chosen)]
    before = sum(vm.received for vm in world.vms)
    upcalls = sum(h.agent.statistics().upcalls for h in world.cloud.hosts.values())
    gc.collect()
    start = time.perf_counter()
    for src, frame in batch:
        src.send(frame)
    elapsed = time.perf_counter() - start
    world.cloud.settle(120)
    delivered = sum(vm.received for vm in world.vms) - before
    made = sum(h.agent.statistics().upcalls for h in world.cloud.hosts.values()) - upcalls
    assert made >= count, f"only {made} upcalls for {count} new flows"
    return count / elapsed, delivered


def wait_for(predicate: Callable[[], bool]) -> float:
    deadline = time.perf_counter() + DEADLINE
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark: a wait timed out")
        time.sleep(POLL)
    return time.perf_counter()


def flows_through(world: World) -> int:
    total = 0
    for host in world.cloud.hosts.values():
        try:
            total += len(host.agent.flows.tagged(world.chain.id))
        except (RuntimeError, KeyError):   # the agent changed its table while we counted: count again
            return -1
    return total


def invalidation(world: World, trials: int, flows_per_trial: int) -> list[float]:
    """Seconds from a chain change (store commit) to every flow through the router gone from the datapaths."""
    t = world.cloud.topology
    out = []
    added: Rule | None = None
    for trial in range(trials):
        for i, (src, dst) in enumerate(pairs(world, flows_per_trial, offset=trial * flows_per_trial)):
            src.send(world.frame(src, dst, 20_000 + trial * flows_per_trial + i))
        world.cloud.settle(120)
        assert flows_through(world) > 0
        start = time.perf_counter()
        if added is None:
            added = t.rule(world.chain, RuleAction.DROP, tp_dst=(8, 8))
        else:
            t.delete(Rule, added.id)
            added = None
        end = wait_for(lambda: flows_through(world) == 0)
        out.append(end - start)
        world.cloud.settle(120)
    return out


def bind_to_first_packet(world: World, trials: int) -> list[float]:
    """Seconds from binding a new VM's port (store commit) to its first packet delivered elsewhere."""
    t, hosts = world.cloud.topology, list(world.cloud.hosts.values())
    out = []
    for trial in range(trials):
        host = hosts[trial % len(hosts)]
        subnet = trial % len(world.bridges)
        i = len(world.vms) + world.next_port
        world.next_port += 1
        vm = Vm(host, f"new{i}", f"02:01:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                vm_ip(subnet, 200 + trial % 50), subnet)
        dst = next(v for v in world.vms if v.subnet != subnet and v.host is not host) if len(hosts) > 1 else \
            next(v for v in world.vms if v.subnet != subnet)
        dst.first_at = None
        frame = world.frame(vm, dst, 30_000 + trial)
        port = t.port(world.bridges[subnet])
        world.cloud.settle(120)
        start = time.perf_counter()
        t.bind(port, host.host_id, vm.interface)
        deadline = start + DEADLINE
        while dst.first_at is None:
            if time.perf_counter() > deadline:
                raise TimeoutError("benchmark: the new VM's packet never arrived")
            vm.send(frame)
            time.sleep(SEND_EVERY)
        out.append(dst.first_at - start)
        world.cloud.settle(120)
    return out


def memory_per_port(world: World, count: int) -> tuple[float, float]:
    """(bytes allocated in agent code, bytes allocated in all) per port bound to one host, after settling."""
    host = next(iter(world.cloud.hosts.values()))
    t = world.cloud.topology
    bridge = world.bridges[0]
    gc.collect()
    tracemalloc.start(16)
    before = tracemalloc.take_snapshot()
    for i in range(count):
        name = f"mem{i}"
        host.add_interface(name, mac=f"02:02:00:00:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}")
        t.port(bridge, host_id=host.host_id, interface=name)
    world.cloud.settle(120)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    agent_only = [tracemalloc.Filter(True, f"*{os.sep}midonet{os.sep}agent{os.sep}*", all_frames=True)]
    in_agent = sum(s.size_diff for s in after.filter_traces(agent_only).compare_to(
        before.filter_traces(agent_only), "filename"))
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return in_agent / count, total / count


def admission_cost(calls: int = 200_000) -> tuple[float, float]:
    """Microseconds per `AdmissionControl.admit`: an upcall admitted, an upcall refused (its bucket dry, no time
    elapsed: the flood case)."""
    clock = FakeClock()
    plenty = AdmissionControl(clock, AdmissionConfig(rate=1e9, global_burst=10**9, vm_burst=10**9))
    start = time.perf_counter()
    for _ in range(calls):
        plenty.admit(3)
    admitted = (time.perf_counter() - start) / calls
    dry = AdmissionControl(clock, AdmissionConfig(rate=1000.0))
    for port in range(1, 11):
        while dry.admit(port):
            pass
    start = time.perf_counter()
    for _ in range(calls):
        dry.admit(3)
    refused = (time.perf_counter() - start) / calls
    return admitted * 1e6, refused * 1e6


@dataclass
class Figures:
    label: str
    setup: float
    flows_per_s: float
    delivered: int
    flows: int
    invalidation: list[float]
    bind: list[float]
    memory_agent: float
    memory_total: float


def run(label: str, hosts: int, ports: int, flows: int, trials: int) -> Figures:
    start = time.perf_counter()
    world = build(hosts, ports)
    setup = time.perf_counter() - start
    try:
        rate, delivered = new_flows(world, flows)
        inval = invalidation(world, trials, max(10, min(100, ports // 5)))
        bind = bind_to_first_packet(world, trials)
        mem_agent, mem_total = memory_per_port(world, 100)
    finally:
        logging.getLogger("midonet").setLevel(logging.CRITICAL)   # watch callbacks racing the teardown
        world.cloud.close()
        logging.getLogger("midonet").setLevel(logging.ERROR)
    return Figures(label, setup, rate, delivered, flows, inval, bind, mem_agent, mem_total)


def report(f: Figures) -> None:
    ms = 1000.0
    print(f"{f.label:<24} {f.setup:>7.1f} {f.flows_per_s:>10,.0f} {f.delivered:>6}/{f.flows:<6} "
          f"{percentile(f.invalidation, 50) * ms:>8.2f} {percentile(f.invalidation, 99) * ms:>8.2f} "
          f"{percentile(f.bind, 50) * ms:>8.2f} {percentile(f.bind, 99) * ms:>8.2f} "
          f"{f.memory_agent / 1024:>8.1f} {f.memory_total / 1024:>8.1f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=5000, help="new flows in the throughput run")
    parser.add_argument("--trials", type=int, default=100, help="trials of the latency runs")
    parser.add_argument("--scale", action="store_true", help="also run 100 hosts with 1,000 ports")
    args = parser.parse_args()
    logging.getLogger("midonet").setLevel(logging.ERROR)
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.flows} new flows, {args.trials} trials per latency")
    admitted, refused = admission_cost()
    print(f"# admission control: {admitted:.2f} us per upcall admitted, {refused:.2f} us per upcall refused")
    print(f"{'hosts / ports':<24} {'setup s':>7} {'flows/s':>10} {'delivered':>13} "
          f"{'inv p50':>8} {'inv p99':>8} {'bind p50':>8} {'bind p99':>8} {'KiB/port':>8} {'(all)':>8}")
    print(f"{'':<24} {'':>7} {'':>10} {'':>13} {'ms':>8} {'ms':>8} {'ms':>8} {'ms':>8} {'agent':>8} {'':>8}")
    configs = [("1 host / 20 ports", 1, 20), ("10 hosts / 100 ports", 10, 100)]
    if args.scale:
        configs.append(("100 hosts / 1,000 ports", 100, 1000))
    for label, hosts, ports in configs:
        report(run(label, hosts, ports, args.flows, args.trials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
