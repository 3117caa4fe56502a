"""`midonet up` with its local agent, as a user runs it, inside a host namespace of its own: two VM namespaces
whose veths end in it, a bridge made and bound through the API, and `ping` between the VMs through the agent's
tc-BPF datapath. Stopping it (SIGTERM) removes the datapath: no VXLAN device, no bpffs mount left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from midonet.testing.namespaces import NamespaceWorld

MIDONET = Path(sys.executable).parent / "midonet"
WAIT = 30.0

# Run inside the host namespace: wait for the API, make a bridge with a port bound to each VM's interface on the
# local agent's host, wait until both are active.
SETUP = """
import sys, time
from midonet.client import Client, ClientError
url, password_file, host_id_file = sys.argv[1:4]
deadline = time.monotonic() + 30
while True:
    try:
        client = Client(url, "admin", open(password_file).read().strip(), timeout=2)
        client.list("bridges")
        host_id = open(host_id_file).read().strip()
        if any(h["id"] == host_id and h.get("alive") for h in client.list("hosts")):
            break
    except (OSError, ClientError):
        pass
    if time.monotonic() > deadline:
        raise SystemExit("the API or the local agent did not come up")
    time.sleep(0.2)
bridge = client.create("bridges", {"name": "br", "tenantId": "t"})["id"]
ports = []
for tap in ("tap1", "tap2"):
    port = client.create_child("bridges", bridge, "ports", {})["id"]
    client.bind(host_id, port, tap)
    ports.append(port)
while not all(client.get("ports", p).get("active") for p in ports):
    if time.monotonic() > deadline:
        raise SystemExit("the bound ports did not become active")
    time.sleep(0.2)
print("ready")
"""


@pytest.fixture
def world() -> Iterator[NamespaceWorld]:
    made = NamespaceWorld()
    try:
        yield made
    finally:
        made.close()


def test_up_runs_the_local_agent_and_stopping_removes_its_datapath(world: NamespaceWorld, tmp_path: Path) -> None:
    host = world.namespace("h")
    vm1 = world.vm(host, "tap1", "vm1", mac="02:00:00:00:0a:01", cidr="10.0.0.1/24")
    vm2 = world.vm(host, "tap2", "vm2", mac="02:00:00:00:0a:02", cidr="10.0.0.2/24")
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(["ip", "netns", "exec", host, str(MIDONET), "up", "--data-dir", str(data),
                               "--listen", "127.0.0.1:8181"], stdout=out, stderr=subprocess.STDOUT,
                              env={k: v for k, v in os.environ.items() if not k.startswith("MIDONET_")})
    try:
        setup = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", SETUP,
                                "http://127.0.0.1:8181/midonet-api", str(data / "admin-password"),
                                str(data / "host-id")], capture_output=True, text=True, timeout=90)
        assert setup.stdout.strip() == "ready", f"{setup.stdout}{setup.stderr}\n{log.read_text()}"
        assert "Local agent: host" in log.read_text()
        deadline = time.monotonic() + WAIT
        while (ping := subprocess.run(["ip", "netns", "exec", vm1, "ping", "-c", "1", "-W", "1", "10.0.0.2"],
                                      capture_output=True, text=True)).returncode != 0:
            assert time.monotonic() < deadline, f"{ping.stdout}\n{log.read_text()}"
        result = subprocess.run(["ip", "netns", "exec", vm2, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.1"],
                                capture_output=True, text=True)
        assert " 3 received" in result.stdout, f"{result.stdout}\n{log.read_text()}"
        assert "bpf" in subprocess.run(["tc", "-n", host, "filter", "show", "dev", "tap1", "ingress"],
                                       capture_output=True, text=True).stdout
        os.kill(up.pid, signal.SIGTERM)
        assert up.wait(timeout=30) == 0, log.read_text()
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
            up.wait()
        bpffs = (data / "datapath").resolve()
        mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                   if line.split()[1].startswith(str(bpffs))]
        for path in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", path], check=False)
    assert mounted == [], mounted
    links = subprocess.run(["ip", "-n", host, "-o", "link"], capture_output=True, text=True).stdout
    assert "tnvxlan-overlay" not in links, links
