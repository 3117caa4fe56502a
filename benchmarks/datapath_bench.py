"""Linux datapath benchmark: TCP throughput, 64-byte UDP packet rate and flow setups, against a Linux bridge.

Each case builds its own namespaces (prefix mn-<hex>), measures with iperf3 (one stream) between two VM
namespaces, and removes everything. The reference is measured in the same run, on the same kind of plumbing:

  bridge             two VMs on a Linux bridge in one host namespace (offloads on, MAC learning)
  datapath           two VMs on one host through our tc-BPF datapath: static flows on (in_port, eth_dst)
  bridge + vxlan     two hosts, each a bridge with a `vxlan id 1 remote <peer> dstport 6677` device
  datapath + vxlan   two hosts, tunnel flows (SetTunnel + Output to the VXLAN port; (in_port, tunnel_id) back)

  flow setups        a UDP burst to distinct ports; every packet misses, the handler installs a 5-tuple flow
                     and executes the packet: new flows per second through upcall -> install -> execute

    .venv/bin/python benchmarks/datapath_bench.py [--seconds 5] [--repeat 3] [--flows 5000]

Needs root, iperf3 (apt-get install iperf3), and what the Linux datapath needs (make bpf). Figures go to
docs/benchmarks.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from midonet.datapath.base import Flow, FlowKey, Output, PortKind, SetTunnel, Upcall
from midonet.datapath.linux import LinuxDatapath, unavailable
from midonet.packets import parse_frame
from midonet.testing.namespaces import NamespaceWorld, ip

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
        sender = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  f"for i in range({flows}): s.sendto(b'x', ('{VM2}', 10000 + i))\n")
        subprocess.run(["ip", "netns", "exec", setup.vm1, sys.executable, "-c", sender], check=True)
        seen = -1
        while seen != agent.installed:   # until the handler has been idle for half a second
            seen = agent.installed
            time.sleep(0.5)
        return (agent.installed - 1) / (agent.last - agent.first), agent.installed
    finally:
        setup.close()


CASES: tuple[tuple[str, Callable[[Setup], None]], ...] = (
    ("bridge", Setup.bridge), ("datapath", Setup.datapath),
    ("bridge + vxlan", Setup.bridge_vxlan), ("datapath + vxlan", Setup.datapath_vxlan),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flows", type=int, default=5000)
    args = parser.parse_args()
    missing = unavailable() or (None if shutil.which("iperf3") else "iperf3 is not installed")
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    tcp: dict[str, list[float]] = {name: [] for name, _ in CASES}
    udp: dict[str, list[float]] = {name: [] for name, _ in CASES}
    with contextlib.ExitStack() as teardown:
        setups: dict[str, Setup] = {}
        for name, build in CASES:
            setups[name] = Setup()
            teardown.callback(setups[name].close)
            build(setups[name])
        for _ in range(args.repeat):   # interleaved, so a busy moment hurts every case alike
            for name, _ in CASES:
                tcp[name].append(iperf(setups[name], args.seconds, udp=False))
            for name, _ in CASES:
                udp[name].append(iperf(setups[name], args.seconds, udp=True))
    print(f"# kernel {platform.release()}, iperf3 one stream, {args.seconds:g} s a run, best (median) of "
          f"{args.repeat} interleaved runs")
    print(f"{'case':<18} {'TCP Gbit/s':>16} {'UDP 64 B pps':>22}")
    for name, _ in CASES:
        print(f"{name:<18} {max(tcp[name]):>7.2f} ({statistics.median(tcp[name]):>6.2f}) "
              f"{max(udp[name]):>11,.0f} ({statistics.median(udp[name]):>8,.0f})")
    rate, installed = flow_setups(args.flows)
    print(f"flow setups: {rate:,.0f} new flows/s (upcall -> install -> execute; {installed} flows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
