"""Memory datapath benchmark: how many packets per second the fake hosts forward, and what a miss costs.

Each case injects the same UDP frame on a fake interface many times and reports packets per second and
microseconds per packet (best of ``--repeat`` runs). The receiving fake VM is a no-op callback, so capture
buffers do not grow.

  hit, 1 mask          a flow on (in_port, eth_dst) outputs to a local interface
  hit, 100 masks       the same, behind 99 other masks probed first (tuple-space search: one probe per mask)
  hit, tunnelled       a flow SetTunnel + Output(vxlan) on host 1, a flow on (in_port, tunnel_id) on host 2:
                       VXLAN encapsulation, the underlay, decapsulation, a second lookup
  miss + upcall        no flow; the upcall handler executes the packet (no install): the agent's per-packet
                       overhead floor, without any simulation

    .venv/bin/python benchmarks/memory_datapath_bench.py [--packets 20000] [--repeat 3]

Figures go to docs/benchmarks.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

from midonet.datapath.base import Flow, FlowKey, Output, PortKind, SetTunnel, Upcall
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.testing.datapath_conformance import MAC_B, udp_frame

IP1, IP2 = "10.0.0.1", "10.0.0.2"


class Bench:
    def __init__(self, masks: int) -> None:
        underlay = MemoryUnderlay()
        self.h1, h2 = MemoryHost("h1", IP1, underlay), MemoryHost("h2", IP2, underlay)
        for host, names in ((self.h1, ("a", "b")), (h2, ("c",))):
            for name in names:
                host.interfaces.add(name)
                host.interfaces.on_frame(name, lambda frame: None)
        self.dp1, self.dp2 = MemoryDatapath("dp1", self.h1), MemoryDatapath("dp2", h2)
        self.a, self.b = self.dp1.add_port("a"), self.dp1.add_port("b")
        self.vx1 = self.dp1.add_port("tnvxlan-overlay", PortKind.VXLAN)
        self.c, self.vx2 = self.dp2.add_port("c"), self.dp2.add_port("tnvxlan-overlay", PortKind.VXLAN)
        fields = ("eth_src", "ip_src", "ip_dst", "tp_src", "tp_dst", "ip_proto", "ip_tos")
        for i in range(masks - 1):   # distinct masks, none matching the benchmark's frame (in_port 999)
            mask = {f: 0 for j, f in enumerate(fields) if (i + 1) >> j & 1}
            self.dp1.install(Flow(FlowKey.of({"in_port": 999, **mask}), ()))
        self.key = FlowKey.of({"in_port": self.a.number, "eth_dst": MAC_B})
        self.frame = udp_frame(payload=bytes(64))

    def local(self) -> None:
        self.dp1.install(Flow(self.key, (Output(self.b.number),)))

    def tunnelled(self) -> None:
        self.dp1.install(Flow(self.key, (SetTunnel(5, IP1, IP2), Output(self.vx1.number))))
        self.dp2.install(Flow(FlowKey.of({"in_port": self.vx2.number, "tunnel_id": 5}), (Output(self.c.number),)))

    def upcalls(self) -> None:
        self.dp1.remove(self.key)
        out = (Output(self.b.number),)

        def agent(upcall: Upcall) -> None:
            self.dp1.execute(upcall.packet, out, in_port=upcall.port)

        self.dp1.on_upcall(agent)

    def run(self, packets: int) -> float:
        inject, frame = self.h1.interfaces.inject, self.frame
        start = time.perf_counter()
        for _ in range(packets):
            inject("a", frame)
        return time.perf_counter() - start


def measure(setup: Callable[[Bench], None], masks: int, packets: int, repeat: int) -> float:
    bench = Bench(masks)
    setup(bench)
    return min(bench.run(packets) for _ in range(repeat)) / packets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{args.packets} packets, best of {args.repeat}")
    print(f"{'case':<20} {'packets/s':>12} {'us/packet':>10}")
    cases: list[tuple[str, Callable[[Bench], None], int]] = [
        ("hit, 1 mask", Bench.local, 1),
        ("hit, 100 masks", Bench.local, 100),
        ("hit, tunnelled", Bench.tunnelled, 1),
        ("miss + upcall", Bench.upcalls, 1),
    ]
    for name, setup, masks in cases:
        per_packet = measure(setup, masks, args.packets, args.repeat)
        print(f"{name:<20} {1 / per_packet:>12,.0f} {per_packet * 1e6:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
