"""Issue 5's acceptance on the testbed: real agents on two host namespaces, a router between two bridges, and
what crosses it: IP fragments, a chain dropping IPv4 then its rule removed (flows invalidated, nothing
restarted), connection tracking letting only replies in, a floating IP (DNAT/SNAT on the router), a bound
interface going down and up, and a TCP stream that keeps flowing while both agents are restarted.

    vm1 172.16.1.1 (h1) -- br1 -- r1 -- br2 -- vm2 172.16.2.1 (h2)        floating IP of vm2: 192.0.2.10

One testbed for the module (starting it costs most of the time); each test puts back what it changed (chains
detached and deleted, links up) in a `finally`, so the others see the plain topology. The fixture removes every
namespace, link, mount and process of the testbed, even when a test fails. Skips, saying why, when not root or
without clang, BPF, ping or ZooKeeper.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from midonet.agent.agent import INHERITED_GRACE
from midonet.client import Client
from midonet.testbed import Host, Testbed, Vm, unavailable
from midonet.testing.routed import bound_port, routed_subnet

from .testbed_support import WAIT, fresh_testbed, logs, tunnel_zone, wait_alive

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

TENANT = "tenant-a"
FLOATING_IP = "192.0.2.10"
ECHO_PORT = 7777
STREAM_PORT = 7778
MTU = 1450            # what a cloud gives its VMs under a VXLAN overlay


@dataclass
class Cloud:
    bed: Testbed
    client: Client
    h1: Host
    h2: Host
    vm1: Vm
    vm2: Vm
    router: str
    vm_ports: dict[str, str]         # VM netns -> its bridge port


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    with fresh_testbed() as bed:
        yield build(bed)


def build(bed: Testbed) -> Cloud:
    h1, h2 = bed.add_host(), bed.add_host()
    vm1 = bed.add_vm(h1, "172.16.1.1/24", gateway="172.16.1.254", mtu=MTU)
    vm2 = bed.add_vm(h2, "172.16.2.1/24", gateway="172.16.2.254", mtu=MTU)
    client = Client(bed.api_url, "admin", bed.password)
    wait_alive(bed, client)
    tunnel_zone(bed, client)
    router = str(client.create("routers", {"name": "r1", "tenantId": TENANT})["id"])
    ports = {}
    for n, (vm, host) in enumerate(((vm1, h1), (vm2, h2)), start=1):
        bridge, _ = routed_subnet(client, router, n, f"172.16.{n}", tenant=TENANT)
        ports[vm.netns] = bound_port(client, bridge, host.host_id, vm.interface)
    made = Cloud(bed, client, h1, h2, vm1, vm2, router, ports)
    answers(made, vm1, vm2.ip)
    return made


def answers(cloud: Cloud, vm_from: Vm, ip: str, *args: str) -> str:
    """Ping until one round answers (agents learn changes asynchronously); its output."""
    deadline = time.monotonic() + WAIT
    while True:
        result = vm_from.run("ping", "-c", "1", "-W", "1", *args, ip)
        if result.returncode == 0:
            return result.stdout
        assert time.monotonic() < deadline, f"no answer from {ip}: {result.stdout}\n{logs(cloud.bed)}"


def silent(cloud: Cloud, vm_from: Vm, ip: str) -> None:
    """Ping until a round of three gets no answer at all (a change takes effect asynchronously)."""
    deadline = time.monotonic() + WAIT
    while True:
        result = vm_from.run("ping", "-c", "3", "-W", "1", "-i", "0.2", ip)
        if result.returncode != 0 and " 0 received" in result.stdout:
            return
        assert time.monotonic() < deadline, f"{ip} still answers: {result.stdout}\n{logs(cloud.bed)}"


def assert_active(cloud: Cloud, port: str, active: bool) -> None:
    """Wait until the API says the port is (or is not) active."""
    deadline = time.monotonic() + WAIT
    while bool(cloud.client.get("ports", port).get("active")) != active:
        assert time.monotonic() < deadline, f"port {port} not {'active' if active else 'inactive'}\n{logs(cloud.bed)}"
        time.sleep(0.2)


def chain(cloud: Cloud, name: str, *rules: dict[str, object]) -> str:
    chain_id = str(cloud.client.create("chains", {"name": name, "tenantId": TENANT})["id"])
    for position, rule in enumerate(rules, start=1):
        cloud.client.create_child("chains", chain_id, "rules", {"position": position, **rule})
    return chain_id


def test_fragmented_pings_cross_the_router_and_are_reassembled(cloud: Cloud) -> None:
    # 2000 bytes of ICMP data in a 1450-byte MTU: vm1 sends two fragments, vm2 reassembles them and answers
    # with two fragments of its own.
    out = answers(cloud, cloud.vm1, cloud.vm2.ip, "-s", "2000", "-M", "want")
    assert f"2008 bytes from {cloud.vm2.ip}" in out, out
    result = cloud.vm1.run("ping", "-c", "3", "-W", "2", "-i", "0.2", "-s", "2000", cloud.vm2.ip)
    assert result.returncode == 0 and " 3 received" in result.stdout, f"{result.stdout}\n{logs(cloud.bed)}"
    out = answers(cloud, cloud.vm2, cloud.vm1.ip, "-s", "3000")
    assert f"3008 bytes from {cloud.vm1.ip}" in out, out


def test_a_chain_drops_ipv4_then_its_rule_goes_and_traffic_flows_again(cloud: Cloud) -> None:
    port = cloud.vm_ports[cloud.vm2.netns]
    drop = chain(cloud, "drop-ipv4", {"type": "drop", "dlType": 0x0800})
    try:
        answers(cloud, cloud.vm1, cloud.vm2.ip)        # flows installed before the chain: invalidated below
        cloud.client.update("ports", port, {"outboundFilterId": drop})
        silent(cloud, cloud.vm1, cloud.vm2.ip)
        (rule,) = cloud.client.list_children("chains", drop, "rules")
        cloud.client.delete("rules", str(rule["id"]))  # the chain stays on the port, empty
        answers(cloud, cloud.vm1, cloud.vm2.ip)
    finally:
        cloud.client.update("ports", port, {"outboundFilterId": None})
        cloud.client.delete("chains", drop)


def test_connection_tracking_lets_only_replies_in(cloud: Cloud) -> None:
    # A stateful firewall on vm1's port, as a security group makes it: what vm1 sends (the port's inbound filter)
    # is looked up as a connection (so a forward flow is tracked), what it is sent (the outbound filter) is IPv4
    # only when it answers a tracked connection. The reply's key is learnt on h1 and must reach h2, where the
    # reply enters.
    vm1, vm2 = cloud.vm1, cloud.vm2
    port = cloud.vm_ports[vm1.netns]
    track = chain(cloud, "track", {"type": "accept", "matchForwardFlow": True})
    only_replies = chain(cloud, "only-replies",
                         {"type": "accept", "matchReturnFlow": True},
                         {"type": "drop", "dlType": 0x0800})
    try:
        cloud.client.update("ports", port, {"inboundFilterId": track, "outboundFilterId": only_replies})
        silent(cloud, vm2, vm1.ip)                       # nothing opens a connection to vm1
        answers(cloud, vm1, vm2.ip)                      # but vm1's connections get their replies
        result = vm1.run("ping", "-c", "3", "-W", "2", "-i", "0.2", vm2.ip)
        assert " 3 received" in result.stdout, f"{result.stdout}\n{logs(cloud.bed)}"
        result = vm2.run("ping", "-c", "2", "-W", "1", "-i", "0.2", vm1.ip)
        assert " 0 received" in result.stdout, result.stdout
    finally:
        cloud.client.update("ports", port, {"inboundFilterId": None, "outboundFilterId": None})
        cloud.client.delete("chains", track)
        cloud.client.delete("chains", only_replies)


def test_a_floating_ip_on_the_router_reaches_the_vm_and_answers_from_the_floating_ip(cloud: Cloud) -> None:
    vm1, vm2 = cloud.vm1, cloud.vm2
    inbound = chain(cloud, "fip-in", {"type": "dnat", "nwDstAddress": FLOATING_IP, "nwDstLength": 32,
                                      "flowAction": "accept",
                                      "natTargets": [{"addressFrom": vm2.ip, "addressTo": vm2.ip,
                                                      "portFrom": 0, "portTo": 0}]})
    outbound = chain(cloud, "fip-out", {"type": "snat", "nwSrcAddress": vm2.ip, "nwSrcLength": 32,
                                        "nwDstAddress": "172.16.1.0", "nwDstLength": 24, "flowAction": "accept",
                                        "natTargets": [{"addressFrom": FLOATING_IP, "addressTo": FLOATING_IP,
                                                        "portFrom": 0, "portTo": 0}]})
    try:
        cloud.client.update("routers", cloud.router, {"inboundFilterId": inbound, "outboundFilterId": outbound})
        out = answers(cloud, vm1, FLOATING_IP)
        assert f"from {FLOATING_IP}" in out, out       # the reply carries the floating IP, not vm2's own
        # UDP too, seen from both ends: vm2's server sees vm1's own address (DNAT only, no SNAT that way), and
        # vm1's socket, connected to the floating IP, takes only datagrams from it.
        server = subprocess.Popen(["ip", "netns", "exec", vm2.netns, sys.executable, "-c", ECHO],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            asked = vm1.run(sys.executable, "-c", ASK.format(ip=FLOATING_IP, port=ECHO_PORT))
        finally:
            if server.poll() is None:
                os.kill(server.pid, signal.SIGTERM)
            served = server.communicate(timeout=10)[0]
        assert asked.returncode == 0, f"{asked.stdout}{asked.stderr}\n{served}\n{logs(cloud.bed)}"
        assert asked.stdout.split() == [FLOATING_IP, vm1.ip], asked.stdout
    finally:
        cloud.client.update("routers", cloud.router, {"inboundFilterId": None, "outboundFilterId": None})
        cloud.client.delete("chains", inbound)
        cloud.client.delete("chains", outbound)


def test_a_bound_interface_down_stops_traffic_and_up_brings_it_back(cloud: Cloud) -> None:
    # The agent hears the link go (netlink): the port is no longer active, then active again.
    host, interface, port = cloud.h2, cloud.vm2.interface, cloud.vm_ports[cloud.vm2.netns]
    answers(cloud, cloud.vm1, cloud.vm2.ip)
    assert_active(cloud, port, True)
    try:
        host.run("ip", "link", "set", interface, "down")
        silent(cloud, cloud.vm1, cloud.vm2.ip)
        assert_active(cloud, port, False)
    finally:
        host.run("ip", "link", "set", interface, "up")
    assert_active(cloud, port, True)
    answers(cloud, cloud.vm1, cloud.vm2.ip)
    answers(cloud, cloud.vm2, cloud.vm1.ip)


def test_a_tcp_transfer_keeps_flowing_while_both_agents_restart(cloud: Cloud, tmp_path: Path) -> None:
    # vm1 (h1) streams to vm2 (h2) through the router. h2's agent is stopped (SIGTERM) and started again, then
    # h1's is killed (SIGKILL) and started again, each new agent inheriting its datapath's flows, which it
    # replaces by its own after their grace: bytes keep arriving while no agent runs, and every byte sent arrives.
    vm1, vm2 = cloud.vm1, cloud.vm2
    answers(cloud, vm1, vm2.ip)
    progress, stop = tmp_path / "progress", tmp_path / "stop"
    server = subprocess.Popen(["ip", "netns", "exec", vm2.netns, sys.executable, "-c", SINK, str(progress)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = subprocess.Popen(["ip", "netns", "exec", vm1.netns, sys.executable, "-c", SOURCE, vm2.ip, str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        received(progress, more_than=0, cloud=cloud)
        for host, end in ((cloud.h2, cloud.h2.stop_agent), (cloud.h1, cloud.h1.kill_agent)):
            end()
            assert not host.alive()
            received(progress, more_than=received(progress, more_than=0, cloud=cloud), cloud=cloud)  # no agent
            cloud.bed.start_agent(host)
            wait_alive(cloud.bed, cloud.client)
        # Past the inherited flows' grace: the new agents' own flows carry the stream.
        time.sleep(INHERITED_GRACE + 3)
        before = received(progress, more_than=0, cloud=cloud)
        received(progress, more_than=before, cloud=cloud)
        stop.touch()
        sent, _ = client.communicate(timeout=90)
        got, _ = server.communicate(timeout=30)
    finally:
        for process in (client, server):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        for host in (cloud.h1, cloud.h2):
            if not host.alive():
                cloud.bed.start_agent(host)
    assert client.returncode == 0 and server.returncode == 0, f"{sent}\n{got}\n{logs(cloud.bed)}"
    count, digest = sent.split()
    assert got.split()[:2] == [count, digest], (sent, got)
    assert int(count) > 0


def received(progress: Path, *, more_than: int, cloud: Cloud) -> int:
    """Wait until the sink has received more than `more_than` bytes; how many it has."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            count = int(progress.read_text() or 0)
        except (OSError, ValueError):
            count = 0
        if count > more_than:
            return count
        assert time.monotonic() < deadline, f"the stream stalled at {count} bytes\n{logs(cloud.bed)}"
        time.sleep(0.1)


# The stream's two ends. The sink counts and hashes what it receives, writing its count to a file as it goes; the
# source sends 64 KiB every 5 ms (about 100 Mbit/s) until the stop file appears, then closes. Each prints its
# count and digest.
SINK = f"""
import hashlib, os, socket, sys, time
progress = sys.argv[1]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {STREAM_PORT}))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(60)
h, n, written = hashlib.sha256(), 0, 0.0
while data := c.recv(1 << 16):
    h.update(data)
    n += len(data)
    if time.monotonic() - written > 0.05:
        with open(progress + ".new", "w") as f:
            f.write(str(n))
        os.replace(progress + ".new", progress)
        written = time.monotonic()
print(n, h.hexdigest())
"""
SOURCE = f"""
import hashlib, os, socket, sys, time
ip, stop = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 15
while True:
    try:
        c = socket.create_connection((ip, {STREAM_PORT}), timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
c.settimeout(60)
block, h, n = os.urandom(1 << 16), hashlib.sha256(), 0
while not os.path.exists(stop):
    c.sendall(block)
    h.update(block)
    n += len(block)
    time.sleep(0.005)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(n, h.hexdigest())
"""

# An echo server that answers one datagram with the address it came from, and gives up after 20 s.
ECHO = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {ECHO_PORT}))
s.settimeout(20)
data, peer = s.recvfrom(100)
s.sendto(peer[0].encode(), peer)
"""
# Ask it (again until it answers: it may not be listening yet); print who answered and what it saw.
ASK = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("{ip}", {port}))
s.settimeout(0.3)
deadline = time.monotonic() + 15
while True:
    try:
        s.send(b"who am I")
        data, peer = s.recvfrom(100)
        break
    except (TimeoutError, ConnectionRefusedError):   # not listening yet: no answer, or port unreachable
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
print(peer[0], data.decode())
"""
