"""Packet benchmark: parse / build / rewrite rates of `midonet.packets` against scapy, measured in the same run.

For each frame kind (Ethernet/IPv4/UDP with 64 bytes of payload, Ethernet/IPv4/TCP SYN, Ethernet/802.1Q/IPv4/ICMP
echo) it times:
  parse    `parse_frame(frame, in_port)`  against scapy's `Ether(frame)` (scapy dissects every layer at once)
  build    `frame.build(spec, payload)`   against scapy's `bytes(Ether()/IP()/UDP()/payload)` (checksums computed)
  apply    `frame.apply(frame, {ip_src, tp_src, ip_ttl})`, a SNAT + TTL rewrite with incremental checksum fix-up
and prints operations per second and microseconds per operation (best of ``--repeat`` runs).

    .venv/bin/python benchmarks/packet_bench.py [--seconds 0.3] [--repeat 5]

Figures go to docs/benchmarks.md with the command and the machine. scapy is a test dependency (``.[test]``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from collections.abc import Callable
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from midonet.packets import FlowMatch, frame, parse_frame

A, B = "02:00:00:00:00:01", "02:00:00:00:00:02"
PAYLOAD = bytes(range(64))


def ip() -> Any:
    return IP(src="10.0.0.1", dst="10.0.0.2", id=0)  # scapy's default id is 1, ours 0


def specs() -> dict[str, tuple[FlowMatch, bytes, Callable[[], Any]]]:
    """Frame kind -> (our spec, payload, a scapy builder of the same frame)."""
    return {
        "eth/ipv4/udp": (
            FlowMatch(eth_src=A, eth_dst=B, ip_src="10.0.0.1", ip_dst="10.0.0.2", ip_proto=17, tp_src=40000, tp_dst=53),
            PAYLOAD,
            lambda: Ether(src=A, dst=B) / ip() / UDP(sport=40000, dport=53) / PAYLOAD,
        ),
        "eth/ipv4/tcp": (
            FlowMatch(eth_src=A, eth_dst=B, ip_src="10.0.0.1", ip_dst="10.0.0.2", ip_proto=6, tp_src=40000, tp_dst=80),
            b"",
            lambda: Ether(src=A, dst=B) / ip() / TCP(sport=40000, dport=80, flags="S", window=65535),
        ),
        "eth/vlan/ipv4/icmp": (
            FlowMatch(eth_src=A, eth_dst=B, vlan_ids=(10,), ip_src="10.0.0.1", ip_dst="10.0.0.2", ip_proto=1,
                      tp_src=8, tp_dst=0, icmp_id=7),
            PAYLOAD,
            lambda: Ether(src=A, dst=B) / Dot1Q(vlan=10) / ip() / ICMP(id=7) / PAYLOAD,
        ),
    }


def rate(op: Callable[[], object], seconds: float, repeat: int) -> float:
    """Operations per second, best of ``repeat`` runs of about ``seconds`` each."""
    timer = timeit.Timer(op)
    number, _ = timer.autorange()
    number = max(1, int(number * seconds / 0.2))
    return max(number / t for t in timer.repeat(repeat=repeat, number=number))


def row(kind: str, op: str, impl: str, per_second: float, reference: float | None) -> None:
    ratio = f"{per_second / reference:8.1f}x" if reference else f"{'':>9}"
    print(f"| {kind:18} | {op:5} | {impl:7} | {per_second:11,.0f} | {1e6 / per_second:9.2f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per figure (the best is kept)")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {sys.platform}")
    print("| frame              | op    | impl    |       ops/s |  us / op | vs scapy |")
    print("|--------------------|-------|---------|-------------|----------|----------|")
    changes = {"ip_src": "192.0.2.1", "tp_src": 50001, "ip_ttl": 63}
    for kind, (spec, payload, scapy_builder) in specs().items():
        raw = frame.build(spec, payload)
        assert bytes(scapy_builder()) == raw, f"scapy and we build {kind} differently"
        scapy_parse = rate(lambda raw=raw: Ether(raw), args.seconds, args.repeat)  # type: ignore[misc]
        ours_parse = rate(lambda raw=raw: parse_frame(raw, 1), args.seconds, args.repeat)  # type: ignore[misc]
        row(kind, "parse", "ours", ours_parse, scapy_parse)
        row(kind, "parse", "scapy", scapy_parse, None)
        scapy_build = rate(lambda b=scapy_builder: bytes(b()), args.seconds, args.repeat)  # type: ignore[misc]
        ours_build = rate(lambda s=spec, p=payload: frame.build(s, p), args.seconds, args.repeat)  # type: ignore[misc]
        row(kind, "build", "ours", ours_build, scapy_build)
        row(kind, "build", "scapy", scapy_build, None)
        rewrite = {k: v for k, v in changes.items() if k != "tp_src" or spec.peek("ip_proto") != 1}
        ours_apply = rate(lambda raw=raw, c=rewrite: frame.apply(raw, c), args.seconds, args.repeat)  # type: ignore[misc]
        row(kind, "apply", "ours", ours_apply, None)


if __name__ == "__main__":
    main()
