"""Agent restarts under load: what a TCP stream through the virtual topology feels while its agents restart.

A testbed (`midonet.testbed`: two host namespaces, each a real `midonet agent` on the tc-BPF datapath, ZooKeeper,
the API) with vm1 (h1) and vm2 (h2) on two bridges joined by a router. vm1 streams to vm2 over one TCP connection
as fast as it can. The sink records how many bytes it has every 10 ms. Three windows of `--seconds` each, measured
in the same run:

  steady            nothing happens: the reference
  SIGTERM h2        h2's agent is stopped (it detaches) and started again on its bpffs
  SIGKILL h1        h1's agent is killed and started again (its store session expires 10 s later)

Each window reports the throughput, the longest gap between two sink records that saw new bytes (a stall), and
the TCP retransmissions vm1's kernel counted (`nstat TcpRetransSegs`). The restarts happen at the start of their
window; the window runs past the new agent's inherited-flow grace (`AgentConfig.inherited_grace`), so the
stream also crosses the moment the new agent replaces the flows it inherited by its own.

    .venv/bin/python benchmarks/restart_bench.py [--seconds 15]

Needs root and what the testbed needs (ZooKeeper, clang, BPF). Removes everything it made. Figures go to
docs/benchmarks.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from midonet.client import Client
from midonet.testbed import Host, Testbed, Vm, unavailable
from midonet.testing.routed import bound_port, routed_subnet

PORT = 7900
SINK = f"""
import socket, sys, time
log = open(sys.argv[1], "w", buffering=1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT}))
s.listen(1)
c, _ = s.accept()
c.settimeout(0.01)
n, last = 0, 0.0
while True:
    try:
        data = c.recv(1 << 20)
        if not data:
            break
        n += len(data)
    except TimeoutError:
        pass
    now = time.monotonic()
    if now - last >= 0.01:
        log.write(f"{{now}} {{n}}\\n")
        last = now
"""
SOURCE = f"""
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], {PORT}), timeout=10)
block = os.urandom(1 << 16)
stop = sys.argv[2]
while not os.path.exists(stop):
    c.sendall(block)
c.close()
"""


def build(bed: Testbed) -> tuple[Host, Host, Vm, Vm]:
    h1, h2 = bed.add_host(), bed.add_host()
    vm1 = bed.add_vm(h1, "172.16.1.1/24", gateway="172.16.1.254", mtu=1450)
    vm2 = bed.add_vm(h2, "172.16.2.1/24", gateway="172.16.2.254", mtu=1450)
    client = Client(bed.api_url, "admin", bed.password)
    wait_alive(bed, client)
    zone = client.create("tunnel_zones", {"name": "tz", "type": "vxlan"})
    for host in bed.hosts:
        client.add_tunnel_zone_host(zone["id"], host.host_id, host.address)
    router = str(client.create("routers", {"name": "r1", "tenantId": "bench"})["id"])
    for n, (vm, host) in enumerate(((vm1, h1), (vm2, h2)), start=1):
        bridge, _ = routed_subnet(client, router, n, f"172.16.{n}", tenant="bench")
        bound_port(client, bridge, host.host_id, vm.interface)
    deadline = time.monotonic() + 30
    while vm1.run("ping", "-c", "1", "-W", "1", "172.16.2.1").returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit("vm1 cannot reach vm2")
    return h1, h2, vm1, vm2


def wait_alive(bed: Testbed, client: Client) -> None:
    deadline = time.monotonic() + 30
    while not {h.host_id for h in bed.hosts} <= {h["id"] for h in client.list("hosts") if h.get("alive")}:
        if time.monotonic() > deadline:
            raise SystemExit("the agents did not come up")
        time.sleep(0.2)


def retransmissions(vm: Vm) -> int:
    out = vm.run("nstat", "-az", "TcpRetransSegs").stdout.split()
    return int(out[out.index("TcpRetransSegs") + 1]) if "TcpRetransSegs" in out else 0


def records(log: Path, start: float, end: float) -> list[tuple[float, int]]:
    rows = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and start <= float(parts[0]) <= end:
            rows.append((float(parts[0]), int(parts[1])))
    return rows


def window(label: str, log: Path, vm1: Vm, seconds: float, action: object | None) -> None:
    before = retransmissions(vm1)
    start = time.monotonic()
    if callable(action):
        action()
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    end = time.monotonic()
    rows = records(log, start, end)
    after = retransmissions(vm1)
    if len(rows) < 2:
        print(f"| {label:<12} | no data |")
        return
    moved = [t for (t, n), (_, prev) in zip(rows[1:], rows[:-1], strict=True) if n > prev]
    gap = max((b - a for a, b in zip([rows[0][0], *moved], moved, strict=False)), default=end - start)
    mbits = (rows[-1][1] - rows[0][1]) * 8 / (rows[-1][0] - rows[0][0]) / 1e6
    print(f"| {label:<12} | {mbits:9.0f} | {gap * 1000:9.0f} | {after - before:9d} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        print(f"restart_bench: the testbed cannot run here: {reason}", file=sys.stderr)
        return 1
    print(f"# restart_bench: {args.seconds:.0f} s windows; {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, kernel {platform.release()}")
    bed = Testbed(lock_wait=120)
    bed.up()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="midonet-restart-") as tmp:
        log, stop = Path(tmp) / "sink.log", Path(tmp) / "stop"
        try:
            h1, h2, vm1, vm2 = build(bed)
            procs.append(subprocess.Popen(["ip", "netns", "exec", vm2.netns, sys.executable, "-c", SINK, str(log)]))
            time.sleep(0.5)
            procs.append(subprocess.Popen(["ip", "netns", "exec", vm1.netns, sys.executable, "-c", SOURCE,
                                           "172.16.2.1", str(stop)]))
            time.sleep(2)
            print("| window       | Mbit/s    | stall ms  | retrans   |")
            print("|--------------|-----------|-----------|-----------|")

            def restart(host: Host, kill: bool) -> None:
                if kill:
                    host.kill_agent()
                else:
                    host.stop_agent()
                bed.start_agent(host)

            window("steady", log, vm1, args.seconds, None)
            window("SIGTERM h2", log, vm1, args.seconds, lambda: restart(h2, kill=False))
            window("SIGKILL h1", log, vm1, args.seconds, lambda: restart(h1, kill=True))
            stop.touch()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
            bed.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
