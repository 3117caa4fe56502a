"""`midonet demo`: a tenant router, two bridges with two VMs each and a floating IP, on this machine's namespaces
(the testbed: real agents, ZooKeeper, the API), then `ping` and a TCP transfer through it; all torn down after.

    vm1 (h1) 10.0.1.1 ─┐                              ┌─ vm3 (h1) 10.0.2.1
    vm2 (h2) 10.0.1.2 ─┴─ br1 ── r1 ── br2 ───────────┴─ vm4 (h2) 10.0.2.2
                       10.0.1.254 │ 10.0.2.254
                                  └─ ext 192.0.2.1 ── br-ext ── outside (h1) 192.0.2.10
    floating IP 100.100.100.100 = vm2 (DNAT in, SNAT out on r1's ext port)

Built from the scenario below with the testbed runner (`testing.testbed_run`): the same path as `midonet testbed up`.
The TCP transfer is a Python socket receiver in one VM namespace and a sender in another (`TCP_RECEIVER`,
`TCP_SENDER`), each a process ended by its PID.

May import: `midonet.testbed`, `testing.testbed_run`, `testing.scenario`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from midonet.testbed import Vm
from midonet.testing.scenario.parse import parse
from midonet.testing.testbed_run import TestbedRun

SCENARIO = """
hosts:
  - {name: h1, tunnel_ip: 10.0.0.1}
  - {name: h2, tunnel_ip: 10.0.0.2}
tenant: demo
topology:
  chains:
    - name: r1-in
      rules:
        - {type: dnat, flowAction: accept, nwDstAddress: 100.100.100.100, nwDstLength: 32, inPorts: [r1-ext],
           natTargets: [{addressFrom: 10.0.1.2, addressTo: 10.0.1.2, portFrom: 0, portTo: 0}]}
    - name: r1-out
      rules:
        - {type: snat, flowAction: accept, nwSrcAddress: 10.0.1.2, nwSrcLength: 32, outPorts: [r1-ext],
           natTargets: [{addressFrom: 100.100.100.100, addressTo: 100.100.100.100, portFrom: 0, portTo: 0}]}
  bridges:
    - {name: br1, ports: [{name: br1-vm1}, {name: br1-vm2}, {name: br1-r}]}
    - {name: br2, ports: [{name: br2-vm3}, {name: br2-vm4}, {name: br2-r}]}
    - {name: br-ext, ports: [{name: ext-outside}, {name: ext-r}]}
  routers:
    - name: r1
      inboundFilterId: r1-in
      outboundFilterId: r1-out
      ports:
        - {name: r1-p1, portAddress: 10.0.1.254, networkAddress: 10.0.1.0, networkLength: 24, link: br1-r}
        - {name: r1-p2, portAddress: 10.0.2.254, networkAddress: 10.0.2.0, networkLength: 24, link: br2-r}
        - {name: r1-ext, portAddress: 192.0.2.1, networkAddress: 192.0.2.0, networkLength: 24, link: ext-r}
      routes:
        - {dstNetworkAddr: 10.0.1.0, dstNetworkLength: 24, nextHopPort: r1-p1, weight: 100}
        - {dstNetworkAddr: 10.0.2.0, dstNetworkLength: 24, nextHopPort: r1-p2, weight: 100}
        - {dstNetworkAddr: 192.0.2.0, dstNetworkLength: 24, nextHopPort: r1-ext, weight: 100}
bindings:
  - {port: br1-vm1, host: h1, interface: vm1, mac: "02:00:00:01:00:01", ip: 10.0.1.1/24, gw: 10.0.1.254}
  - {port: br1-vm2, host: h2, interface: vm2, mac: "02:00:00:01:00:02", ip: 10.0.1.2/24, gw: 10.0.1.254}
  - {port: br2-vm3, host: h1, interface: vm3, mac: "02:00:00:02:00:01", ip: 10.0.2.1/24, gw: 10.0.2.254}
  - {port: br2-vm4, host: h2, interface: vm4, mac: "02:00:00:02:00:02", ip: 10.0.2.2/24, gw: 10.0.2.254}
  - {port: ext-outside, host: h1, interface: outside, mac: "02:00:00:03:00:0a", ip: 192.0.2.10/24, gw: 192.0.2.1}
"""

FLOATING_IP = "100.100.100.100"
TCP_PORT = 5001
TCP_BYTES = 20 * 1024 * 1024
PING_TRIES = 10

TCP_RECEIVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(30)
c, peer = s.accept(); c.settimeout(30)
total, start = 0, time.monotonic()
while True:
    data = c.recv(1 << 16)
    if not data:
        break
    total += len(data)
c.sendall(str(total).encode()); c.close()
print(f"received {total} bytes from {peer[0]} in {time.monotonic() - start:.2f} s", flush=True)
"""

TCP_SENDER = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 15
while True:
    try:
        s = socket.create_connection((host, port), timeout=3); break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.3)
s.settimeout(30)
chunk, sent, start = b"x" * (1 << 16), 0, time.monotonic()
while sent < size:
    s.sendall(chunk[: size - sent]); sent += min(len(chunk), size - sent)
s.shutdown(socket.SHUT_WR)
acked = int(s.recv(64).decode() or 0)
took = time.monotonic() - start
print(f"sent {sent} bytes to {host}:{port} in {took:.2f} s ({sent * 8 / took / 1e6:.1f} Mbit/s), receiver got {acked}")
sys.exit(0 if acked == sent else 1)
"""


def _ping(src: Vm, dst: str, say: Callable[[str], None], what: str) -> bool:
    """Ping until an answer comes (the first packets set up flows), then 3 pings; True if they all came back."""
    for _ in range(PING_TRIES):
        if src.ping(dst, count=1, wait=1).returncode == 0:
            break
    result = src.ping(dst, count=3, wait=2)
    summary = next((line for line in result.stdout.splitlines() if "packets transmitted" in line), result.stderr)
    say(f"ping {what}: {'ok' if result.returncode == 0 else 'FAILED'} ({summary.strip()})")
    return result.returncode == 0


def _tcp(src: Vm, dst: Vm, to: str, say: Callable[[str], None], what: str) -> bool:
    receiver = subprocess.Popen(["ip", "netns", "exec", dst.netns, sys.executable, "-c", TCP_RECEIVER,
                                 str(TCP_PORT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    try:
        time.sleep(0.5)
        sender = src.run(sys.executable, "-c", TCP_SENDER, to, str(TCP_PORT), str(TCP_BYTES))
        out, _ = receiver.communicate(timeout=40)
    finally:
        if receiver.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(receiver.pid, signal.SIGKILL)
            receiver.wait()
    ok = sender.returncode == 0 and receiver.returncode == 0
    lines = (sender.stdout.strip() or sender.stderr.strip()[-300:])
    say(f"tcp {what}: {'ok' if ok else 'FAILED'} ({lines}; {out.strip()[-200:]})")
    return ok


def run(say: Callable[[str], None], *, lock_wait: float = 0.0) -> bool:
    """Build, show ping and TCP, tear down; True if everything worked."""
    runner = TestbedRun(parse(SCENARIO, "demo"), log=lambda line: say(f"testbed: {line}"), lock_wait=lock_wait)
    try:
        runner.start()
        vms = runner.vms
        for name, vm in vms.items():
            say(f"  {name:<8} {vm.netns:<7} on {vm.host.netns}  {vm.address}")
        results = [
            _ping(vms["vm1"], "10.0.1.2", say, "vm1 -> vm2 (same bridge, across hosts)"),
            _ping(vms["vm1"], "10.0.2.2", say, "vm1 -> vm4 (through the router)"),
            _ping(vms["outside"], FLOATING_IP, say, f"outside -> {FLOATING_IP} (vm2's floating IP)"),
            _tcp(vms["vm1"], vms["vm4"], "10.0.2.2", say, "vm1 -> vm4 (through the router)"),
            _tcp(vms["outside"], vms["vm2"], FLOATING_IP, say, f"outside -> {FLOATING_IP} (vm2's floating IP)"),
        ]
        return all(results)
    finally:
        say("tearing down")
        runner.close()


__all__ = ["SCENARIO", "run"]
