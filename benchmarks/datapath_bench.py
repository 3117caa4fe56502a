"""Linux datapath benchmark: TCP throughput, 64-byte UDP packet rate and flow setups, against a Linux bridge.

Each case builds its own namespaces (prefix mn-<hex>), measures with iperf3 (one stream) between two VM
namespaces, and removes everything. The reference is measured in the same run, on the same kind of plumbing:

  bridge             two VMs on a Linux bridge in one host namespace (offloads on, MAC learning)
  datapath           two VMs on one host through our tc-BPF datapath: static flows on (in_port, eth_dst)
  bridge + vxlan     two hosts, each a bridge with a `vxlan id 1 remote <peer> dstport 6677` device
  datapath + vxlan   two hosts, tunnel flows (SetTunnel + Output to the VXLAN port; (in_port, tunnel_id) back)

  flow setups        a UDP burst to distinct ports; every packet misses, a trivial handler installs a 5-tuple
                     flow and executes the packet: upcall -> install -> execute, no simulation (the floor)
  agent new flows/s  the same burst through a real `Agent` (embedded memory store, `LinuxDatapath`, the host's
                     interfaces from netlink): VM 10.0.0.1 on one bridge, VM 10.0.1.1 on another, a router
                     between them whose inbound filter has a rule reading the L4 destination port, so every
                     destination port is a new megaflow: upcall -> simulate (bridge, router, chain, bridge)
                     -> translate -> install -> execute. Admission control off (`AgentConfig(admission=None)`):
                     the raw rate, not the budget. The receiver VM counts what arrived.

    .venv/bin/python benchmarks/datapath_bench.py [--seconds 5] [--repeat 3] [--flows 5000] [--agent-runs 3]
    .venv/bin/python benchmarks/datapath_bench.py --only-flows     # the two new-flow cases, no iperf3
    .venv/bin/python benchmarks/datapath_bench.py --gc-default     # and the agent again, the interpreter's collector
    .venv/bin/python benchmarks/datapath_bench.py --no-writer      # and the agent again, without the writer process
    .venv/bin/python benchmarks/datapath_bench.py --stages         # then where a new flow's time goes, by stage
    .venv/bin/python benchmarks/datapath_bench.py --only-flows --compare-tree /tmp/old   # and another source tree
    .venv/bin/python benchmarks/datapath_bench.py --only-flows --compare-python /tmp/other/bin/python

`--compare-tree DIR` runs the agent case again from another checkout of this repository (`git worktree add
/tmp/old <commit>`: its `src`, its `benchmarks/datapath_bench.py`, in a process of its own), interleaved round by
round with this tree's: a change's effect measured against the code before it, in the same run.
`--compare-python PY` runs this tree's agent case again under another interpreter, in a process of its own, the
same way: PY must have the project's dependencies (a venv: `python3 -m venv /tmp/other && /tmp/other/bin/pip
install -e .`). Both options together run the other tree under the other interpreter.

The agent case runs as `midonet agent` runs it: with the agent process's collector policy
(`midonet.cli.agent.Collector`) and the datapath's writer process (`midonet.datapath.linux.writer`: new flows'
map writes and first packets' sends made from a process of their own); `--gc-default` measures it again with the
interpreter's default collector, `--no-writer` with the upcall thread writing and sending itself, for comparison.

New flows per second = flows installed / (end of the last upcall handled - start of the first), the handler timed
by a wrapper around the agent's (two `perf_counter` calls an upcall, as the floor's handler pays): the agent's
own time, not the sender's. The sender (a process in the VM) sends faster than either handler drains, so the
handler is never idle in between.

Needs root, iperf3 (apt-get install iperf3), and what the Linux datapath needs (make bpf). Figures go to
docs/benchmarks.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from midonet.agent.agent import Agent, AgentConfig
from midonet.cli.agent import Collector, WallClock
from midonet.datapath.base import Flow, FlowKey, Output, PortKind, SetTunnel, Upcall
from midonet.datapath.linux import LinuxDatapath, LinuxInterfaceSource, unavailable
from midonet.packets import parse_frame
from midonet.store.memory import MemoryBackend
from midonet.testing.linux_rig import remove_state
from midonet.testing.namespaces import NamespaceWorld, ip
from midonet.testing.store_topology import StoreTopology
from midonet.topology.chains import RuleAction
from midonet.topology.devices import Router

HERE = Path(__file__).resolve().parent

MAC1, MAC2 = "02:00:00:00:01:01", "02:00:00:00:01:02"
VM1, VM2 = "10.0.0.1", "10.0.0.2"
UL1, UL2 = "10.99.0.1", "10.99.0.2"
TUNNEL = "tnvxlan-overlay"


class Setup:
    """A world with VM namespaces vm1 and vm2 (addresses VM1, VM2), and whatever joins them."""

    def __init__(self) -> None:
        self.world = NamespaceWorld()
        self.datapaths: list[LinuxDatapath] = []
        self.vm1 = self.vm2 = ""

    def close(self) -> None:
        """Datapaths, namespaces, the state directory: every step, whatever fails before it."""
        with contextlib.ExitStack() as teardown:
            teardown.callback(lambda: self.state("").rmdir() if self.state("").exists() else None)
            teardown.callback(self.world.close)
            for dp in self.datapaths:
                teardown.callback(dp.close)

    def state(self, host: str) -> Path:
        return Path("/run") / self.world.prefix / host

    def vms(self, host1: str, host2: str) -> None:
        self.vm1 = self.world.vm(host1, "v1", "vm1", mac=MAC1, cidr=f"{VM1}/24")
        self.vm2 = self.world.vm(host2, "v2", "vm2", mac=MAC2, cidr=f"{VM2}/24")

    def bridge(self) -> None:
        host = self.world.namespace("h")
        self.vms(host, host)
        ip("-n", host, "link", "add", "name", "br0", "type", "bridge")
        for port in ("v1", "v2", "br0"):
            if port != "br0":
                ip("-n", host, "link", "set", "dev", port, "master", "br0")
            ip("-n", host, "link", "set", "dev", port, "up")

    def datapath(self) -> None:
        host = self.world.namespace("h")
        self.vms(host, host)
        dp = LinuxDatapath("midonet", netns_name=host, state_dir=self.state("h"))
        self.datapaths.append(dp)
        p1, p2 = dp.add_port("v1"), dp.add_port("v2")
        for src, dst, mac in ((p1, p2, MAC2), (p2, p1, MAC1)):
            dp.install(Flow(FlowKey.of({"in_port": src.number, "eth_dst": mac}), (Output(dst.number),)))
        for port in (p1, p2):   # ARP broadcasts: to the other VM
            other = p2 if port is p1 else p1
            dp.install(Flow(FlowKey.of({"in_port": port.number, "eth_dst": "ff:ff:ff:ff:ff:ff"}),
                            (Output(other.number),)))

    def two_hosts(self) -> tuple[str, str]:
        h1, h2 = self.world.namespace("h1"), self.world.namespace("h2")
        self.world.plug_underlay(h1, UL1)
        self.world.plug_underlay(h2, UL2)
        self.vms(h1, h2)
        return h1, h2

    def bridge_vxlan(self) -> None:
        for host, local, remote, vm_port in zip(self.two_hosts(), (UL1, UL2), (UL2, UL1), ("v1", "v2"), strict=True):
            ip("-n", host, "link", "add", "name", "vx0", "type", "vxlan", "id", "1", "local", local, "remote", remote,
               "dstport", "6677")
            ip("-n", host, "link", "add", "name", "br0", "type", "bridge")
            for port in (vm_port, "vx0"):
                ip("-n", host, "link", "set", "dev", port, "master", "br0")
            for port in (vm_port, "vx0", "br0"):
                ip("-n", host, "link", "set", "dev", port, "up")

    def datapath_vxlan(self) -> None:
        hosts = self.two_hosts()
        for host, name, local, remote, vm_port in zip(hosts, ("h1", "h2"), (UL1, UL2), (UL2, UL1), ("v1", "v2"),
                                                      strict=True):
            dp = LinuxDatapath("midonet", netns_name=host, state_dir=self.state(name))
            self.datapaths.append(dp)
            vm, vx = dp.add_port(vm_port), dp.add_port(TUNNEL, PortKind.VXLAN)
            out_key, in_key = (10, 20) if name == "h1" else (20, 10)
            dp.install(Flow(FlowKey.of({"in_port": vm.number}), (SetTunnel(out_key, local, remote), Output(vx.number))))
            dp.install(Flow(FlowKey.of({"in_port": vx.number, "tunnel_id": in_key}), (Output(vm.number),)))


@contextlib.contextmanager
def iperf_server(netns: str) -> Iterator[None]:
    server = subprocess.Popen(["ip", "netns", "exec", netns, "iperf3", "-s", "-1", "-B", VM2],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        yield
    finally:
        if server.poll() is None:
            server.terminate()   # by its PID
            server.wait(5)


def iperf(setup: Setup, seconds: float, udp: bool, attempts: int = 3) -> float:
    """Gbit/s (TCP) or received packets/s (UDP, 18-byte payloads: 64-byte frames on the wire).

    A UDP flood sometimes breaks iperf3's own control connection ("unable to write to stream socket"): retried.
    """
    for attempt in range(attempts):
        try:
            return _iperf_once(setup, seconds, udp)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _iperf_once(setup: Setup, seconds: float, udp: bool) -> float:
    with iperf_server(setup.vm2):
        args = ["-u", "-l", "18", "-b", "0"] if udp else []
        done = subprocess.run(["ip", "netns", "exec", setup.vm1, "iperf3", "-c", VM2, "-t", str(seconds), "-J", *args],
                              capture_output=True, text=True, timeout=seconds + 30)
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"iperf3 said: {done.stdout[-200:]} {done.stderr[-200:]}") from e
    if "error" in result:
        raise RuntimeError(result["error"])
    if udp:
        total = result["end"]["sum"]
        return float((total["packets"] - total["lost_packets"]) / total["seconds"])
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e9


class SetupAgent:
    """An upcall handler that installs a 5-tuple flow for every miss and executes the packet."""

    FIELDS = ("in_port", "eth_dst", "eth_type", "ip_proto", "ip_frag", "tp_src", "tp_dst")

    def __init__(self, dp: LinuxDatapath) -> None:
        self.dp = dp
        numbers = [p.number for p in dp.ports()]
        self.other = {numbers[0]: numbers[1], numbers[1]: numbers[0]}
        self.installed = 0
        self.first = self.last = 0.0

    def __call__(self, upcall: Upcall) -> None:
        if not self.installed:
            self.first = time.perf_counter()
        actions = (Output(self.other[upcall.port]),)
        self.dp.install(Flow(FlowKey.from_match(parse_frame(upcall.packet, upcall.port), self.FIELDS), actions))
        self.dp.execute(upcall.packet, actions, in_port=upcall.port)
        self.installed += 1
        self.last = time.perf_counter()


def sender(flows: int, base: int, dst: str) -> str:
    """A program for a VM: one 1-byte UDP datagram to each of `flows` destination ports from `base` on."""
    return ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range({flows}): s.sendto(b'x', ('{dst}', {base} + i))\n")


def cpu_busy(span: float) -> float:
    """The machine's busy share of all CPUs over `span` seconds (/proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]   # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(span)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


QUIET: list[float] = []   # the wait before each agent burst, seconds


def wait_quiet(busy: float = 0.15, span: float = 0.3, limit: float = 15.0) -> float:
    """Before a burst: wait until the machine's CPUs are less than `busy` busy over `span` (the kernel tears
    down a previous case's namespaces and maps in its own workers, for seconds), at most `limit` seconds; how
    long it waited."""
    start = time.monotonic()
    while cpu_busy(span) > busy and time.monotonic() - start < limit:
        pass
    return time.monotonic() - start


def wait_idle(count: Callable[[], int], idle: float = 0.5) -> None:
    """Until `count()` has not moved for `idle` seconds."""
    seen = -1
    while seen != count():
        seen = count()
        time.sleep(idle)


def flow_setups(flows: int) -> tuple[float, int]:
    """(new flows per second, flows installed) for a burst of `flows` UDP packets to distinct ports."""
    setup = Setup()
    try:
        setup.datapath()
        dp = setup.datapaths[0]
        for flow, _ in dp.flows():
            dp.remove(flow.key)
        agent = SetupAgent(dp)
        dp.on_upcall(agent)
        ip("-n", setup.vm1, "neigh", "add", VM2, "lladdr", MAC2, "dev", "eth0")
        subprocess.run(["ip", "netns", "exec", setup.vm1, sys.executable, "-c", sender(flows, 10000, VM2)],
                       check=True)
        wait_idle(lambda: agent.installed)
        return (agent.installed - 1) / (agent.last - agent.first), agent.installed
    finally:
        setup.close()


# ---- agent new flows/s: a real agent on the Linux datapath ----

AGENT_VM1, AGENT_VM2 = "10.0.0.1", "10.0.1.1"
TICK: float | None = 1.0   # as `midonet agent` runs it
RECEIVER = """\
import socket, struct, sys, time
base, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)   # SO_RCVBUFFORCE
s.settimeout(1.5)
print("ready", flush=True)
got, deadline = set(), time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        packet = s.recv(2048)
    except TimeoutError:
        if got:
            break
        continue
    port = struct.unpack_from("!H", packet, (packet[0] & 15) * 4 + 2)[0]
    if base <= port < base + count:
        got.add(port)
print(len(got), flush=True)
"""


def router_mac(subnet: int) -> str:
    return f"02:aa:00:00:00:{subnet:02x}"


class TimedHandler:
    """Wraps an upcall handler: when the first upcall began, when the last one ended, how many were handled; and
    the upcall thread's CPU clock (the channel's reading included: the handler runs on that thread), read at the
    first upcall and by `cpu_since_first` once the burst is over."""

    def __init__(self, handler: Callable[[Upcall], None]) -> None:
        self.handler = handler
        self.calls = 0
        self.first = self.last = 0.0
        self.cpu_clock: int | None = None
        self.cpu_first = 0.0

    def __call__(self, upcall: Upcall) -> None:
        begin = time.perf_counter()
        if not self.calls:
            self.first = begin
            self.cpu_clock = time.pthread_getcpuclockid(threading.get_ident())
            self.cpu_first = time.clock_gettime(self.cpu_clock)
        self.handler(upcall)
        self.calls += 1
        self.last = time.perf_counter()

    def cpu_since_first(self) -> float:
        return 0.0 if self.cpu_clock is None else time.clock_gettime(self.cpu_clock) - self.cpu_first


@dataclass(frozen=True, slots=True)
class AgentRun:
    rate: float          # new flows per second
    installed: int       # flows the agent installed during the burst
    upcalls: int
    delivered: int       # distinct destination ports the receiver saw
    cpu_us: float        # the upcall thread's CPU time per new flow (what the machine's other load does not move)


class AgentSetup:
    """A host namespace with a real agent on its Linux datapath, two VMs on two bridges joined by a router."""

    def __init__(self, writer_process: bool = True) -> None:
        self.writer_process = writer_process
        self.world = NamespaceWorld()
        self.backend = MemoryBackend()
        self.operator = self.backend.connect("operator")
        self.session = self.backend.connect("agent")
        self.host_id = str(uuid.uuid4())
        self.dp: LinuxDatapath | None = None
        self.source: LinuxInterfaceSource | None = None
        self.agent: Agent | None = None
        self.vm1 = self.vm2 = self.host = ""

    def build(self) -> Agent:
        self.host = self.world.namespace("h")
        self.vm1 = self.world.vm(self.host, "v1", "vm1", mac=MAC1, cidr=f"{AGENT_VM1}/24")
        self.vm2 = self.world.vm(self.host, "v2", "vm2", mac=MAC2, cidr=f"{AGENT_VM2}/24")
        for vm, gateway in ((self.vm1, "10.0.0.254"), (self.vm2, "10.0.1.254")):
            ip("-n", vm, "route", "add", "default", "via", gateway)
        self.dp = LinuxDatapath("midonet", netns_name=self.host, state_dir=Path("/run") / self.world.prefix / "h",
                                writer_process=self.writer_process)
        self.source = LinuxInterfaceSource(netns_name=self.host)
        config = AgentConfig(name="bench", admission=None, tick_interval=TICK)
        agent = self.agent = Agent(self.host_id, self.session, self.dp, WallClock(),
                                   interfaces=self.source, config=config).start()
        self.source.watch(agent.interfaces_changed)
        t = StoreTopology(self.operator)
        router = t.router("router")
        chain = t.chain("ports")
        t.rule(chain, RuleAction.DROP, tp_dst=(7, 7))     # never matches; every packet reads tp_dst
        t.filters(Router, router.id, inbound=chain)
        for subnet, interface in enumerate(("v1", "v2")):
            bridge = t.bridge(f"net{subnet}")
            rport = t.router_port(router, f"10.0.{subnet}.254/24", router_mac(subnet))
            t.link(rport, t.port(bridge))
            t.route(router, f"10.0.{subnet}.0/24", rport)
            t.port(bridge, host_id=self.host_id, interface=interface)
        deadline = time.monotonic() + 30
        while len(agent.bindings.active()) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the agent did not bind both VM ports")
            time.sleep(0.05)
        self.warm()
        return agent

    def warm(self) -> None:
        """ARP both ways (the router learns both VMs), devices loaded; then the gateways' MACs pinned in the VMs,
        so no ARP refresh comes up during a burst."""
        for _ in range(20):
            pings = [subprocess.run(["ip", "netns", "exec", vm, "ping", "-c", "1", "-W", "1", dst],
                                    capture_output=True, check=False).returncode
                     for vm, dst in ((self.vm1, AGENT_VM2), (self.vm2, AGENT_VM1))]
            if not any(pings):
                break
        else:
            raise RuntimeError("no ping through the agent")
        for vm, gateway, subnet in ((self.vm1, "10.0.0.254", 0), (self.vm2, "10.0.1.254", 1)):
            ip("-n", vm, "neigh", "replace", gateway, "lladdr", router_mac(subnet), "dev", "eth0", "nud", "permanent")

    def burst(self, flows: int, base: int) -> AgentRun:
        assert self.agent is not None and self.dp is not None
        agent = self.agent
        receiver = subprocess.Popen(["ip", "netns", "exec", self.vm2, sys.executable, "-c", RECEIVER, str(base),
                                     str(flows)], stdout=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
            QUIET.append(wait_quiet())
            timer = TimedHandler(agent.workflow.handle_upcall)
            self.dp.on_upcall(timer)
            installed = agent.flows.statistics().installed
            subprocess.run(["ip", "netns", "exec", self.vm1, sys.executable, "-c", sender(flows, base, AGENT_VM2)],
                           check=True)
            wait_idle(lambda: timer.calls)
            cpu = timer.cpu_since_first()
            self.dp.on_upcall(agent.workflow.handle_upcall)
            made = agent.flows.statistics().installed - installed
            out, _ = receiver.communicate(timeout=60)
        finally:
            if receiver.poll() is None:
                receiver.terminate()   # by its PID
                receiver.wait(5)
        return AgentRun(made / (timer.last - timer.first), made, timer.calls, int(out.split()[-1]),
                        cpu / made * 1e6)

    def close(self) -> None:
        with contextlib.ExitStack() as teardown:
            teardown.callback(remove_state, Path("/run") / self.world.prefix)
            teardown.callback(self.world.close)
            teardown.callback(self.backend.close)
            teardown.callback(self.operator.close)
            teardown.callback(self.session.close)
            if self.dp is not None:
                teardown.callback(self.dp.close)
            if self.source is not None:
                teardown.callback(self.source.close)
            if self.agent is not None:
                teardown.callback(self.agent.stop)


def agent_flows(flows: int, runs: int, *, gc_policy: bool = True, writer: bool = True) -> list[AgentRun]:
    """`runs` bursts of `flows` new flows each (fresh destination ports every time) through one agent; with
    `gc_policy`, the agent process's collector policy (`Collector`) started once the agent is up, and with
    `writer`, the datapath's writer process, as `midonet agent` runs them."""
    setup = AgentSetup(writer)
    collector = Collector()
    try:
        setup.build()
        if gc_policy:
            collector.start()
        return [setup.burst(flows, 10_000 + run * flows) for run in range(runs)]
    finally:
        if gc_policy:
            collector.stop()
        setup.close()


CASES: tuple[tuple[str, Callable[[Setup], None]], ...] = (
    ("bridge", Setup.bridge), ("datapath", Setup.datapath),
    ("bridge + vxlan", Setup.bridge_vxlan), ("datapath + vxlan", Setup.datapath_vxlan),
)


def throughput(seconds: float, repeat: int) -> None:
    tcp: dict[str, list[float]] = {name: [] for name, _ in CASES}
    udp: dict[str, list[float]] = {name: [] for name, _ in CASES}
    with contextlib.ExitStack() as teardown:
        setups: dict[str, Setup] = {}
        for name, build in CASES:
            setups[name] = Setup()
            teardown.callback(setups[name].close)
            build(setups[name])
        for _ in range(repeat):   # interleaved, so a busy moment hurts every case alike
            for name, _ in CASES:
                tcp[name].append(iperf(setups[name], seconds, udp=False))
            for name, _ in CASES:
                udp[name].append(iperf(setups[name], seconds, udp=True))
    print(f"# kernel {platform.release()}, iperf3 one stream, {seconds:g} s a run, best (median) of "
          f"{repeat} interleaved runs", flush=True)
    print(f"{'case':<18} {'TCP Gbit/s':>16} {'UDP 64 B pps':>22}")
    for name, _ in CASES:
        print(f"{name:<18} {max(tcp[name]):>7.2f} ({statistics.median(tcp[name]):>6.2f}) "
              f"{max(udp[name]):>11,.0f} ({statistics.median(udp[name]):>8,.0f})")
    for ours, reference in (("datapath", "bridge"), ("datapath + vxlan", "bridge + vxlan")):
        print(f"{ours} / {reference}: TCP {statistics.median(tcp[ours]) / statistics.median(tcp[reference]):.2f}, "
              f"UDP {statistics.median(udp[ours]) / statistics.median(udp[reference]):.2f} (medians; goal 0.9)",
              flush=True)


@dataclass(frozen=True, slots=True)
class AgentCase:
    label: str
    gc_policy: bool = True
    writer: bool = True
    tree: Path | None = None     # another checkout: its agent, in a process of its own
    python: Path | None = None   # another interpreter: the agent in a process of its own

    def bursts(self, flows: int, runs: int) -> list[AgentRun]:
        if self.tree is None and self.python is None:
            return agent_flows(flows, runs, gc_policy=self.gc_policy, writer=self.writer)
        return other_process_flows(self.tree or HERE.parent, self.python or Path(sys.executable), flows, runs)


OTHER_TREE = """\
import dataclasses, logging, sys
tree = sys.argv[1]
sys.path[:0] = [tree + "/src", tree + "/benchmarks"]
import datapath_bench, midonet
assert midonet.__file__.startswith(tree), midonet.__file__
logging.getLogger("midonet").setLevel(logging.ERROR)
for run in datapath_bench.agent_flows(int(sys.argv[2]), int(sys.argv[3])):
    print(*dataclasses.astuple(run), flush=True)
"""


def other_process_flows(tree: Path, python: Path, flows: int, runs: int) -> list[AgentRun]:
    """`runs` bursts through an agent of the source tree `tree` (its own `agent_flows`) run by `python`, in a
    process of its own."""
    done = subprocess.run([str(python), "-c", OTHER_TREE, str(tree.resolve()), str(flows), str(runs)],
                          capture_output=True, text=True, check=True)
    return [AgentRun(float(rate), int(installed), int(upcalls), int(delivered), float(cpu))
            for rate, installed, upcalls, delivered, cpu in (line.split() for line in done.stdout.splitlines())]


class Stages:
    """Wall time by stage of the agent's new-flow path (`--stages`): each stage's function wrapped by two
    `perf_counter` calls while in use (which adds about 0.3 us a call), restored after."""

    def __init__(self) -> None:
        from midonet.agent import flow_table, workflow
        from midonet.datapath.linux import datapath, layout, upcalls

        self.spent: dict[str, float] = {}
        self._targets: list[tuple[object, str, str]] = [
            (workflow.PacketWorkflow, "handle_upcall", "the whole upcall handler"),
            (workflow, "parse_frame", "parse"),
            (workflow, "simulate", "simulate"),
            (workflow, "translate", "translate"),
            (flow_table.FlowTable, "install", "install: agent flow table + datapath"),
            (datapath.LinuxDatapath, "install", "install: datapath"),
            (layout, "pack_key", "install: packing the kernel key"),
            (upcalls.UpcallChannel, "write_flow", "install: handing the write to the writer"),
            (datapath.LinuxDatapath, "execute", "execute"),
            (upcalls.UpcallChannel, "send", "execute: handing the packet to the writer"),
            (workflow.PacketWorkflow, "_apply_writes", "state writes"),
        ]
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Stages:
        for owner, name, label in self._targets:
            real = getattr(owner, name)
            self._saved.append((owner, name, real))
            setattr(owner, name, self._timed(real, label))
        return self

    def __exit__(self, *_: object) -> None:
        for owner, name, real in reversed(self._saved):
            setattr(owner, name, real)

    def _timed(self, real: Callable[..., object], label: str) -> Callable[..., object]:
        spent, clock = self.spent, time.perf_counter

        def timed(*args: object, **kwargs: object) -> object:
            begin = clock()
            try:
                return real(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - begin
        return timed


def stage_costs(flows: int, runs: int) -> None:
    """One agent's bursts with `Stages` on; each stage's wall time a new flow."""
    with Stages() as stages:
        made = sum(run.installed for run in agent_flows(flows, runs))
    print(f"# wall time a new flow by stage, {made} flows (instrumented: the rate is lower than without)")
    for label, seconds in stages.spent.items():
        print(f"{label:<45} {seconds / made * 1e6:7.1f} us")


def new_flows(flows: int, runs: int, agents: int, cases: list[AgentCase]) -> None:
    """The floor, then `agents` rounds of every case (a fresh agent each, `runs` bursts), interleaved so a busy
    moment of the machine hurts every case alike; then each case's best and median burst."""
    floor, installed = flow_setups(flows)
    print(f"flow setups (floor): {floor:>8,.0f} new flows/s (upcall -> install -> execute, no simulation; "
          f"{installed} flows)", flush=True)
    bursts: dict[str, list[AgentRun]] = {case.label: [] for case in cases}
    for round_ in range(1, agents + 1):
        for case in cases:
            for n, run in enumerate(case.bursts(flows, runs), 1):
                bursts[case.label].append(run)
                print(f"{case.label} {round_}.{n}: {run.rate:>8,.0f} new flows/s (upcall -> simulate -> translate "
                      f"-> install -> execute; {run.installed} flows installed, {run.upcalls} upcalls, "
                      f"{run.delivered}/{flows} delivered; upcall thread {run.cpu_us:.0f} us CPU a flow; "
                      f"{run.rate / floor:.2f} of the floor, {run.rate / 10_000:.2f} of the 10k goal)", flush=True)
    for label, runs_ in bursts.items():
        rates = [run.rate for run in runs_]
        cpu = [run.cpu_us for run in runs_]
        print(f"{label}: best {max(rates):,.0f}, median {statistics.median(rates):,.0f} new flows/s over "
              f"{len(rates)} bursts; upcall thread CPU a flow best {min(cpu):.0f}, "
              f"median {statistics.median(cpu):.0f} us", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flows", type=int, default=5000, help="new flows in each burst")
    parser.add_argument("--agent-runs", type=int, default=3, help="bursts through each agent")
    parser.add_argument("--agents", type=int, default=2, help="agents (rounds) for each agent case")
    parser.add_argument("--only-flows", action="store_true", help="the new-flow cases only (no iperf3)")
    parser.add_argument("--gc-default", action="store_true", help="also the agent case with the interpreter's "
                        "default collector (not the agent process's policy), for comparison")
    parser.add_argument("--no-writer", action="store_true", help="also the agent case with the datapath writing "
                        "flows and executes from the upcall thread (no writer process), for comparison")
    parser.add_argument("--stages", action="store_true", help="then one agent again with each stage of the "
                        "new-flow path timed (us a flow by stage)")
    parser.add_argument("--compare-tree", type=Path, metavar="DIR", help="also the agent case from another "
                        "checkout of this repository (git worktree add DIR <commit>), interleaved with this one")
    parser.add_argument("--compare-python", type=Path, metavar="PY", help="also the agent case run by another "
                        "interpreter (with the project's dependencies: a venv's python), interleaved with this one")
    args = parser.parse_args()
    missing = unavailable()
    if missing is None and not args.only_flows and not shutil.which("iperf3"):
        missing = "iperf3 is not installed"
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    logging.getLogger("midonet").setLevel(logging.ERROR)
    if not args.only_flows:
        throughput(args.seconds, args.repeat)
    cases = [AgentCase("agent new flows/s")]
    if args.no_writer:
        cases.append(AgentCase("agent new flows/s (no writer)", writer=False))
    if args.gc_default:
        cases.append(AgentCase("agent new flows/s (default collector)", gc_policy=False))
    if args.compare_tree is not None and not (args.compare_tree / "benchmarks" / "datapath_bench.py").is_file():
        print(f"cannot run: {args.compare_tree} is not a checkout of this repository", file=sys.stderr)
        return 2
    if args.compare_python is not None and not os.access(args.compare_python, os.X_OK):
        print(f"cannot run: {args.compare_python} is not an interpreter that can be run", file=sys.stderr)
        return 2
    if args.compare_tree is not None or args.compare_python is not None:
        other = " ".join(str(p) for p in (args.compare_tree, args.compare_python) if p is not None)
        cases.append(AgentCase(f"agent new flows/s ({other})", tree=args.compare_tree, python=args.compare_python))
    new_flows(args.flows, args.agent_runs, args.agents, cases)
    if args.stages:
        stage_costs(args.flows, args.agent_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
