"""Issue 5's services on the testbed: real agents on three host namespaces, real TCP, UDP and ICMP between VM
namespaces, through what the router offers besides routing: the L4 load balancer (a VIP over three members on three
hosts; a member disabled keeps its open connection and gets no new one; source-IP persistence; the VIP, the pool or
the load balancer disabled), dynamic SNAT to the "internet" (leased ports, replies and ICMP errors reverse-NATed,
nothing opened from outside, a stateful uplink letting in only replies), port forwarding (DNAT in, reverse DNAT
out), one bridge across three hosts, the kernel carrying every kind of connection after its first packets, and
connections through the NAT outliving their flows.

    vm1 172.16.1.1 (h1) -+                                    +- vm4 172.16.2.1 (h2)     the load balancer's client
    vm2 172.16.1.2 (h2) -+- br1 -- r1 (lb: VIP 10.9.9.9:80) -- br2
    vm3 172.16.1.3 (h3) -+          |                               members: vm1..vm3 :8080
                                   br3 -- vm5 192.0.2.1 (h3)        the "internet": its only route is
                                  (uplink 192.0.2.254)              203.0.113.0/24 via the uplink
    SNAT (and port forwarding) address: 203.0.113.1

The spec's sections: 3.5 (chains), 3.6 (connection tracking), 3.7 (NAT: dnat / snat with leased port blocks,
rev_dnat / rev_snat), 3.8 (the L4 load balancer), 4.4 (flow state sent to the hosts where the replies enter: a
member's or the internet VM's).

Traffic comes from small Python programs run in the VMs (`SERVE`, `ASK`, `HOLD`, `PROBE`, `CONNECT`, `BROADCAST`,
`HEAR`, below). One testbed for the module; each test puts back what it changed (the load balancer detached and
deleted, filters detached and chains deleted, neighbours and routes removed) in a `finally`, so the others see the
plain topology. The fixture removes every namespace, link, mount and process of the testbed, even when a test
fails; every program a test starts is ended by its PID. Skips, saying why, when not root or without clang, BPF,
ping or ZooKeeper.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from midonet.agent.agent import INHERITED_GRACE
from midonet.client import Client
from midonet.testbed import Host, Testbed, Vm, unavailable
from midonet.testing.routed import bound_port, routed_subnet

from .testbed_support import (
    WAIT,
    assert_kernel_forwards,
    fresh_testbed,
    kernel_counters,
    logs,
    tunnel_zone,
    wait_alive,
)

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

TENANT = "tenant-a"
MTU = 1450
VIP, VIP_PORT, MEMBER_PORT = "10.9.9.9", 80, 8080
NAT_IP = "203.0.113.1"                 # the router's SNAT address, and the port-forwarding address
NAT_PORTS = (10000, 20000)
FORWARDED_PORT, SERVICE_PORT = 8080, 80   # NAT_IP:8080 -> vm2:80
ECHO_PORT = 9000                       # the internet VM's server (TCP and UDP)
PRIVATE_PORT = 5000                    # a private VM's server nothing forwards to
CLOSED_PORT = 9999                     # nothing listens there on the internet VM
BROADCAST_PORT = 6000


@dataclass
class Cloud:
    bed: Testbed
    client: Client
    hosts: list[Host]
    members: list[Vm]                  # vm1..vm3 on br1, one per host
    client_vm: Vm                      # vm4 on br2
    internet: Vm                       # vm5 on br3
    router: str
    router_ports: list[str]            # the router's ports on br1, br2, br3 (the uplink)
    vm_ports: dict[str, str]           # VM netns -> its bridge port


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    with fresh_testbed() as bed:
        yield build(bed)


def build(bed: Testbed) -> Cloud:
    hosts = [bed.add_host() for _ in range(3)]
    members = [bed.add_vm(h, f"172.16.1.{n}/24", gateway="172.16.1.254", mtu=MTU) for n, h in enumerate(hosts, 1)]
    client_vm = bed.add_vm(hosts[1], "172.16.2.1/24", gateway="172.16.2.254", mtu=MTU)
    internet = bed.add_vm(hosts[2], "192.0.2.1/24", mtu=MTU)
    internet.run("ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.254", check=True)
    client = Client(bed.api_url, "admin", bed.password)
    wait_alive(bed, client)
    tunnel_zone(bed, client)
    router = str(client.create("routers", {"name": "r1", "tenantId": TENANT})["id"])
    ports: dict[str, str] = {}
    router_ports = []
    subnets = (("172.16.1", members), ("172.16.2", [client_vm]), ("192.0.2", [internet]))
    for n, (subnet, vms) in enumerate(subnets, start=1):
        bridge, rport = routed_subnet(client, router, n, subnet, tenant=TENANT)
        router_ports.append(rport)
        for vm in vms:
            ports[vm.netns] = bound_port(client, bridge, vm.host.host_id, vm.interface)
    made = Cloud(bed, client, hosts, members, client_vm, internet, router, router_ports, ports)
    for vm in members:
        answers(made, client_vm, vm.ip)
    answers(made, internet, "192.0.2.254")
    return made


# ---- waiting for traffic ----

def answers(cloud: Cloud, vm_from: Vm, ip: str) -> None:
    """Ping until one round answers (agents learn changes asynchronously)."""
    deadline = time.monotonic() + WAIT
    while True:
        result = vm_from.run("ping", "-c", "1", "-W", "1", ip)
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, f"{vm_from.netns}: no answer from {ip}: {result.stdout}\n{logs(cloud.bed)}"


@dataclass(frozen=True)
class Answer:
    """One exchange of `ASK`: the client's own port, who answered (the server's name and the client address and
    port it saw) and where the reply came from."""

    local_port: int
    server: str
    seen_ip: str
    seen_port: int
    from_ip: str
    from_port: int


@contextlib.contextmanager
def serving(vm: Vm, name: str, port: int) -> Iterator[list[str]]:
    """`SERVE` running in `vm` (TCP and UDP on `port`), ended by its PID on leaving; yields once it listens a
    list that gets, on leaving, the lines it printed after "ready"."""
    server = subprocess.Popen(["ip", "netns", "exec", vm.netns, sys.executable, "-c", SERVE, name, str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: list[str] = []
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.strip() == "ready", f"{vm.netns}: server did not start: {line}{server.stdout.read()}"
        yield printed
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
        printed += server.communicate(timeout=10)[0].splitlines()


def ask(cloud: Cloud, vm: Vm, proto: str, ip: str, port: int, count: int) -> list[Answer]:
    """`count` exchanges (each from a new socket) of `vm` with ip:port; asserts every one after the first
    answered (the first may wait for the agents, up to 20 s)."""
    result = vm.run(sys.executable, "-c", ASK, proto, ip, str(port), str(count))
    assert result.returncode == 0 and "fail" not in result.stdout, (
        f"{vm.netns} -> {proto} {ip}:{port}:\n{result.stdout}{result.stderr}\n{logs(cloud.bed)}")
    answers_ = []
    for line in result.stdout.splitlines():
        local, server, seen_ip, seen_port, from_ip, from_port = line.split()
        answers_.append(Answer(int(local), server, seen_ip, int(seen_port), from_ip, int(from_port)))
    assert len(answers_) == count, result.stdout
    return answers_


class Held:
    """A TCP connection `HOLD` keeps open from a VM: `greeting` (the server's name, the client address and port
    it saw); `exchange(size)` sends `size` bytes and reads them back."""

    def __init__(self, cloud: Cloud, vm: Vm, ip: str, port: int) -> None:
        self.cloud = cloud
        self.process = subprocess.Popen(["ip", "netns", "exec", vm.netns, sys.executable, "-c", HOLD, ip, str(port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        assert self.process.stdout is not None
        self.greeting = self.process.stdout.readline().strip()

    def exchange(self, size: int) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{size}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline().strip()
        assert line == f"ok {size}", f"{line}\n{logs(self.cloud.bed)}"

    def close(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.communicate(timeout=10)


@contextlib.contextmanager
def holding(cloud: Cloud, vm: Vm, ip: str, port: int) -> Iterator[Held]:
    """A connection from `vm` to ip:port held open (retried until the greeting comes, up to WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while True:
        held = Held(cloud, vm, ip, port)
        if not held.greeting.startswith("fail"):
            break
        held.close()
        assert time.monotonic() < deadline, f"{vm.netns} -> {ip}:{port}: {held.greeting}\n{logs(cloud.bed)}"
    try:
        yield held
    finally:
        held.close()


def assert_kernel_carries(cloud: Cloud, held: Held, hosts: tuple[Host, ...], size: int = 2_000_000) -> None:
    """`size` bytes each way over the held connection, and next to none of its packets came up to an agent:
    every host's kernel forwarded them (its counters), both ways."""
    held.exchange(65536)                 # the flows of both directions installed
    before = [kernel_counters(h) for h in hosts]
    held.exchange(size)
    after = [kernel_counters(h) for h in hosts]
    hits = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    misses = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
    # A hit is a packet as the kernel hands it to the program: with segmentation offloads up to 64 KiB of a TCP
    # stream (2 MB each way made about 190 on each host here); a miss is one that went up to the agent.
    assert all(h >= 2 * size // 65536 for h in hits) and sum(misses) <= 4, (hits, misses)


def refused(vm: Vm, ip: str, port: int) -> str:
    """How a TCP connection from `vm` to ip:port fails ("timeout", "refused", "unreachable ..."), or
    "connected"."""
    return vm.run(sys.executable, "-c", CONNECT, ip, str(port)).stdout.strip()


def wait_for_backends(cloud: Cloud, wanted: set[str], batch: int) -> list[Answer]:
    """Batches of connections to the VIP until one batch is answered by `wanted` exactly (the agents learn a
    change asynchronously); that batch."""
    deadline = time.monotonic() + WAIT
    while True:
        got = ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, batch)
        if {a.server for a in got} == wanted:
            return got
        assert time.monotonic() < deadline, f"backends {sorted({a.server for a in got})}, not {sorted(wanted)}"


# ---- the tests ----

def test_a_broadcast_reaches_the_bridge_on_all_three_hosts_then_unicast_goes_through_the_kernel(
        cloud: Cloud) -> None:
    vm1, vm2, vm3 = cloud.members
    h1, _, h3 = cloud.hosts
    try:
        for vm in cloud.members:            # ARP afresh: the requests are broadcasts across the hosts
            vm.run("ip", "neigh", "flush", "dev", "eth0", check=True)
        hearers = [subprocess.Popen(["ip", "netns", "exec", vm.netns, sys.executable, "-c", HEAR,
                                     str(BROADCAST_PORT), str(WAIT)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for vm in (vm2, vm3)]
        sender = subprocess.Popen(["ip", "netns", "exec", vm1.netns, sys.executable, "-c", BROADCAST,
                                   "172.16.1.255", str(BROADCAST_PORT)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            heard = [h.communicate(timeout=WAIT)[0].strip() for h in hearers]
        finally:
            for process in [sender, *hearers]:
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
        assert heard == [vm1.ip, vm1.ip], f"{heard}\n{logs(cloud.bed)}"
        for a, b in ((vm1, vm2), (vm1, vm3), (vm2, vm3), (vm3, vm1)):
            answers(cloud, a, b.ip)
        # Static neighbours for the count: every packet counted is an ICMP one, through h1's and h3's kernels.
        vm1.run("ip", "neigh", "replace", vm3.ip, "lladdr", vm3.mac, "dev", "eth0", "nud", "permanent", check=True)
        vm3.run("ip", "neigh", "replace", vm1.ip, "lladdr", vm1.mac, "dev", "eth0", "nud", "permanent", check=True)
        assert_kernel_forwards(cloud.bed, vm1, vm3.ip, (h1, h3))
    finally:
        vm1.run("ip", "neigh", "del", vm3.ip, "dev", "eth0")
        vm3.run("ip", "neigh", "del", vm1.ip, "dev", "eth0")


@dataclass
class Balanced:
    lb: str
    pool: str
    members: list[str]                 # pool members of vm1..vm3, in that order
    vip: str


@contextlib.contextmanager
def load_balancer(cloud: Cloud) -> Iterator[Balanced]:
    """The VIP over vm1..vm3 :8080 on the router, their servers running; detached and deleted on leaving."""
    client = cloud.client
    lb = str(client.create("load_balancers", {})["id"])
    try:
        client.update("routers", cloud.router, {"loadBalancerId": lb})
        pool = str(client.create_child("load_balancers", lb, "pools",
                                       {"protocol": "TCP", "lbMethod": "ROUND_ROBIN"})["id"])
        members = [str(client.create_child("pools", pool, "pool_members",
                                           {"address": vm.ip, "protocolPort": MEMBER_PORT})["id"])
                   for vm in cloud.members]
        vip = str(client.create_child("pools", pool, "vips", {"address": VIP, "protocolPort": VIP_PORT})["id"])
        with contextlib.ExitStack() as servers:
            for vm in cloud.members:
                servers.enter_context(serving(vm, vm.netns, MEMBER_PORT))
            yield Balanced(lb, pool, members, vip)
    finally:
        client.update("routers", cloud.router, {"loadBalancerId": None})
        client.delete("load_balancers", lb)


def wait_sticky(cloud: Cloud, among: set[str]) -> str:
    """Batches of connections to the VIP until one batch all goes to one member of `among`; that member."""
    deadline = time.monotonic() + WAIT
    while True:
        got = {a.server for a in ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, 10)}
        if len(got) == 1 and got <= among:
            return got.pop()
        assert time.monotonic() < deadline, f"not sticky to one of {sorted(among)}: {sorted(got)}"


def test_a_vip_spreads_connections_over_members_on_three_hosts(cloud: Cloud) -> None:
    client, names = cloud.client, [vm.netns for vm in cloud.members]
    with load_balancer(cloud) as balanced:
        # Weighted random over three members: 30 connections miss one with a chance of 3 * (2/3)^30 < 1e-5.
        got = wait_for_backends(cloud, set(names), 30)
        # Every connection was made with the VIP (the members' SYN-ACKs came back from VIP:80), and every member
        # saw the client itself, port and all.
        assert {(a.from_ip, a.from_port) for a in got} == {(VIP, VIP_PORT)}
        assert all((a.seen_ip, a.seen_port) == (cloud.client_vm.ip, a.local_port) for a in got), got

        # A connection held open: its packets go through the kernels of the client's and the member's hosts, and
        # it stays with its member when the member is disabled (its connections may finish, spec 3.8), while new
        # connections go only to the others.
        with holding(cloud, cloud.client_vm, VIP, VIP_PORT) as held:
            first = names.index(held.greeting.split()[0])
            hosts = {vm.host.netns: vm.host for vm in (cloud.client_vm, cloud.members[first])}
            assert_kernel_carries(cloud, held, tuple(hosts.values()))
            client.update("pool_members", balanced.members[first], {"adminStateUp": False})
            others = set(names) - {names[first]}
            wait_for_backends(cloud, others, 15)
            got = ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, 15)
            assert {a.server for a in got} <= others, got
            held.exchange(100_000)
        client.update("pool_members", balanced.members[first], {"adminStateUp": True})
        wait_for_backends(cloud, set(names), 30)


def test_a_sticky_vip_keeps_a_client_on_one_member_until_it_is_disabled(cloud: Cloud) -> None:
    client, names = cloud.client, [vm.netns for vm in cloud.members]
    with load_balancer(cloud) as balanced:
        wait_for_backends(cloud, set(names), 30)
        # Source-IP persistence: every connection of the client goes to one member (10 connections to one of
        # three by chance: 3 * (1/3)^10 < 1e-4).
        client.update("vips", balanced.vip, {"sessionPersistence": "SOURCE_IP"})
        sticky = wait_sticky(cloud, set(names))
        got = ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, 10)
        assert {(a.server, a.from_ip, a.from_port) for a in got} == {(sticky, VIP, VIP_PORT)}, got
        # Its member disabled, the client sticks to another one.
        client.update("pool_members", balanced.members[names.index(sticky)], {"adminStateUp": False})
        again = wait_sticky(cloud, set(names) - {sticky})
        got = ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, 10)
        assert {a.server for a in got} == {again}, got


def test_disabling_the_vip_the_pool_or_the_load_balancer_stops_new_connections(cloud: Cloud) -> None:
    client, names = cloud.client, [vm.netns for vm in cloud.members]
    with load_balancer(cloud) as balanced:
        wait_for_backends(cloud, set(names), 30)
        for kind, obj in (("vips", balanced.vip), ("pools", balanced.pool), ("load_balancers", balanced.lb)):
            client.update(kind, obj, {"adminStateUp": False})
            deadline = time.monotonic() + WAIT
            while (how := refused(cloud.client_vm, VIP, VIP_PORT)) == "connected":
                assert time.monotonic() < deadline, f"{kind}: VIP still answers"
            # No member answers (the router has no route to the VIP's address, or drops what the pool takes).
            assert how.startswith(("unreachable", "timeout")), (kind, how)
            # Up again, the VIP answers; after "no route" that takes up to 5 s: the router's answer to it is a
            # temporary drop flow, which no change invalidates (the original's ErrorDrop clears its tags, spec 3.12).
            client.update(kind, obj, {"adminStateUp": True})
            ask(cloud, cloud.client_vm, "tcp", VIP, VIP_PORT, 3)


def gateway(cloud: Cloud, *, forwarding: bool) -> tuple[str, str]:
    """The router's "pre" and "post" chains, as gateway.py's `source_nat` (and `port_forwarding`) make them:
    the private subnets leave by the uplink as NAT_IP (ports leased in NAT_PORTS), replies to NAT_IP come back;
    with `forwarding`, NAT_IP:8080 goes to vm2:80 and vm2's answers from :80 go back as NAT_IP:8080 (the
    reverse rule first in "post"). The chains are attached to the router."""
    client, vm2, uplink = cloud.client, cloud.members[1], cloud.router_ports[2]
    pre = str(client.create("chains", {"name": "pre", "tenantId": TENANT})["id"])
    post = str(client.create("chains", {"name": "post", "tenantId": TENANT})["id"])
    rules: list[tuple[str, dict[str, object]]] = []
    if forwarding:
        rules += [(pre, {"type": "dnat", "nwDstAddress": NAT_IP, "nwDstLength": 32,
                         "tpDst": {"start": FORWARDED_PORT, "end": FORWARDED_PORT},
                         "natTargets": [{"addressFrom": vm2.ip, "addressTo": vm2.ip,
                                         "portFrom": SERVICE_PORT, "portTo": SERVICE_PORT}]}),
                  (post, {"type": "rev_dnat", "nwSrcAddress": vm2.ip, "nwSrcLength": 32,
                          "tpSrc": {"start": SERVICE_PORT, "end": SERVICE_PORT}})]
    rules += [(pre, {"type": "rev_snat", "nwDstAddress": NAT_IP, "nwDstLength": 32}),
              (post, {"type": "snat", "nwSrcAddress": "172.16.0.0", "nwSrcLength": 16, "outPorts": [uplink],
                      "natTargets": [{"addressFrom": NAT_IP, "addressTo": NAT_IP,
                                      "portFrom": NAT_PORTS[0], "portTo": NAT_PORTS[1]}]})]
    positions = {pre: 0, post: 0}
    for chain, rule in rules:
        positions[chain] += 1
        client.create_child("chains", chain, "rules", {"position": positions[chain], "flowAction": "accept", **rule})
    client.update("routers", cloud.router, {"inboundFilterId": pre, "outboundFilterId": post})
    return pre, post


def ungateway(cloud: Cloud, chains: tuple[str, str]) -> None:
    cloud.client.update("routers", cloud.router, {"inboundFilterId": None, "outboundFilterId": None})
    for chain in chains:
        cloud.client.delete("chains", chain)


def test_dynamic_snat_takes_vms_on_two_hosts_to_the_internet_and_lets_nothing_in(cloud: Cloud) -> None:
    vm1, vm2, _ = cloud.members
    internet = cloud.internet
    chains = gateway(cloud, forwarding=False)
    try:
        with serving(internet, "internet", ECHO_PORT), serving(vm1, vm1.netns, PRIVATE_PORT) as private:
            leased: list[int] = []        # NAT ports of connections of vm1's and vm2's
            for proto in ("tcp", "udp"):
                got = [a for vm in (vm1, vm2) for a in ask(cloud, vm, proto, internet.ip, ECHO_PORT, 4)]
                leased += [got[0].seen_port, got[-1].seen_port] if proto == "tcp" else []
                # The internet saw only NAT_IP, each connection from a port of its own in the range; every reply
                # came back to the VM that asked, from the internet VM.
                assert {a.seen_ip for a in got} == {NAT_IP}, got
                assert all(NAT_PORTS[0] <= a.seen_port <= NAT_PORTS[1] for a in got), got
                assert len({a.seen_port for a in got}) == len(got), got
                assert {(a.server, a.from_ip, a.from_port) for a in got} == {("internet", internet.ip, ECHO_PORT)}
            # Ping goes out and back through the SNAT (the echo id kept), and an ICMP error comes back to the
            # VM it concerns (the port unreachable quoting NAT_IP is translated back, spec 3.7).
            answers(cloud, vm1, internet.ip)
            assert vm2.run(sys.executable, "-c", PROBE, internet.ip, str(CLOSED_PORT)).stdout.strip() == "refused"
            # A transfer through the SNAT goes through the kernels of vm1's and the internet VM's hosts.
            with holding(cloud, vm1, internet.ip, ECHO_PORT) as held:
                assert held.greeting.split()[1] == NAT_IP, held.greeting
                assert_kernel_carries(cloud, held, (vm1.host, internet.host))
            # The internet cannot open a connection to a private VM through the NAT address: not to the port a
            # private VM listens on, nor to a port leased to a connection of theirs (the mapping is for that
            # connection's peer only). The router answers "no route" (or nothing); "refused" would be a private
            # VM's kernel answering.
            for port in (PRIVATE_PORT, *leased):
                assert refused(internet, NAT_IP, port).startswith(("unreachable", "timeout")), port
        assert not [line for line in private if "accepted" in line], private
    finally:
        ungateway(cloud, chains)


def chain(cloud: Cloud, name: str, *rules: dict[str, object]) -> str:
    chain_id = str(cloud.client.create("chains", {"name": name, "tenantId": TENANT})["id"])
    for position, rule in enumerate(rules, start=1):
        cloud.client.create_child("chains", chain_id, "rules", {"position": position, **rule})
    return chain_id


def hears(vm: Vm, port: int, seconds: float) -> str:
    """Where the first datagram to `vm`'s `port` within `seconds` came from, or "nothing"."""
    return vm.run(sys.executable, "-c", HEAR, str(port), str(seconds)).stdout.strip()


def test_a_stateful_uplink_lets_in_only_the_replies_to_the_snat_connections(cloud: Cloud) -> None:
    # gateway.py's `only_replies_from_outside` beside the SNAT: the uplink's inbound filter takes IPv4 return flows
    # only; the downlink's inbound filter asks whether a packet starts a connection, so the connections leaving are
    # tracked, and their return keys (written where the connection left: h1, h2) must be known on h3, where the
    # replies enter.
    vm1, vm2, _ = cloud.members
    internet, downlink, uplink = cloud.internet, cloud.router_ports[0], cloud.router_ports[2]
    chains = gateway(cloud, forwarding=False)
    guard = chain(cloud, "uplink-in", {"type": "accept", "matchReturnFlow": True}, {"type": "drop", "dlType": 0x0800})
    inside = chain(cloud, "downlink-in", {"type": "accept", "matchForwardFlow": True})
    # An internet VM that knows the private addresses: its datagrams reach vm1 while nothing guards the uplink.
    internet.run("ip", "route", "add", "172.16.0.0/16", "via", "192.0.2.254", check=True)
    sender = subprocess.Popen(["ip", "netns", "exec", internet.netns, sys.executable, "-c", BROADCAST, vm1.ip,
                               str(PRIVATE_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert hears(vm1, PRIVATE_PORT, WAIT) == internet.ip
        cloud.client.update("ports", uplink, {"inboundFilterId": guard})
        cloud.client.update("ports", downlink, {"inboundFilterId": inside})
        deadline = time.monotonic() + WAIT
        while (heard := hears(vm1, PRIVATE_PORT, 1.0)) != "nothing":
            assert time.monotonic() < deadline, f"the uplink still lets {heard} in\n{logs(cloud.bed)}"
        with serving(internet, "internet", ECHO_PORT):
            for proto in ("tcp", "udp"):
                got = [a for vm in (vm1, vm2) for a in ask(cloud, vm, proto, internet.ip, ECHO_PORT, 3)]
                assert {(a.server, a.seen_ip) for a in got} == {("internet", NAT_IP)}, got
        answers(cloud, vm1, internet.ip)
        assert hears(vm1, PRIVATE_PORT, 1.0) == "nothing"
    finally:
        os.kill(sender.pid, signal.SIGTERM)
        sender.wait(timeout=10)
        internet.run("ip", "route", "del", "172.16.0.0/16")
        cloud.client.update("ports", uplink, {"inboundFilterId": None})
        cloud.client.update("ports", downlink, {"inboundFilterId": None})
        cloud.client.delete("chains", guard)
        cloud.client.delete("chains", inside)
        ungateway(cloud, chains)


def test_a_snat_connection_outlives_its_agents_restarting(cloud: Cloud) -> None:
    # The NAT binding of a held connection lives in the agents' flow state: the kernels keep translating while
    # the agents of both ends restart (vm1's host: SIGTERM; the internet VM's: SIGKILL), and once the new agents
    # have replaced the flows they inherited, their simulations find the same binding again (read back from
    # their flow-state logs): the connection goes on, from the same NAT port.
    vm1, internet = cloud.members[0], cloud.internet
    chains = gateway(cloud, forwarding=False)
    try:
        with serving(internet, "internet", ECHO_PORT), holding(cloud, vm1, internet.ip, ECHO_PORT) as held:
            assert held.greeting.split()[1] == NAT_IP, held.greeting
            held.exchange(65536)
            for host, end in ((vm1.host, vm1.host.stop_agent), (internet.host, internet.host.kill_agent)):
                end()
                held.exchange(65536)                 # no agent on that host: its kernel translates
                cloud.bed.start_agent(host)
                wait_alive(cloud.bed, cloud.client)
            time.sleep(INHERITED_GRACE + 2)          # the inherited flows are gone: simulated again
            held.exchange(1_000_000)
            assert held.process.poll() is None, held.greeting
    finally:
        for host in cloud.hosts:
            if not host.alive():
                cloud.bed.start_agent(host)
        ungateway(cloud, chains)


def test_long_connections_through_the_snat_and_the_vip_outlive_their_flows(cloud: Cloud) -> None:
    # Flows that touched NAT state are removed 30 s after their installation (spec 3.12): the next packet is
    # simulated again and must find the connection's NAT keys (on the ingress host, and its peer's reply on the
    # other host, where they came as flow state), so a connection carrying data for longer than that keeps going:
    # one through the SNAT (h1 -> h3) and one through the VIP (h2 -> a member's host), both held 32 s.
    vm1, internet = cloud.members[0], cloud.internet
    chains = gateway(cloud, forwarding=False)
    try:
        with load_balancer(cloud), serving(internet, "internet", ECHO_PORT), \
                holding(cloud, vm1, internet.ip, ECHO_PORT) as out, \
                holding(cloud, cloud.client_vm, VIP, VIP_PORT) as balanced:
            start = time.monotonic()
            while time.monotonic() - start < 32:
                out.exchange(1000)
                balanced.exchange(1000)
                time.sleep(0.5)
    finally:
        ungateway(cloud, chains)


def test_port_forwarding_reaches_a_private_vm_and_answers_from_the_nat_address(cloud: Cloud) -> None:
    vm2, internet = cloud.members[1], cloud.internet
    chains = gateway(cloud, forwarding=True)
    try:
        with serving(vm2, vm2.netns, SERVICE_PORT):
            for proto in ("tcp", "udp"):
                got = ask(cloud, internet, proto, NAT_IP, FORWARDED_PORT, 3)
                # vm2 answered, seeing the internet VM itself; the answers came from NAT_IP:8080.
                assert {(a.server, a.seen_ip) for a in got} == {(vm2.netns, internet.ip)}, got
                assert all(a.seen_port == a.local_port for a in got), got
                assert {(a.from_ip, a.from_port) for a in got} == {(NAT_IP, FORWARDED_PORT)}, got
            with holding(cloud, internet, NAT_IP, FORWARDED_PORT) as held:
                assert held.greeting.split()[:2] == [vm2.netns, internet.ip], held.greeting
                assert_kernel_carries(cloud, held, (internet.host, vm2.host))
            # SNAT still works beside the forwarding: vm2 itself reaches the internet as NAT_IP.
            with serving(internet, "internet", ECHO_PORT):
                got = ask(cloud, vm2, "tcp", internet.ip, ECHO_PORT, 2)
                assert {a.seen_ip for a in got} == {NAT_IP}, got
    finally:
        ungateway(cloud, chains)


# ---- the programs run in the VMs ----

# A server: TCP and UDP on one port; answers every datagram, and greets every connection, with its name and the
# client's address and port as it saw them, then echoes what the connection sends; prints "ready" once both listen,
# "accepted" for every TCP connection.
SERVE = """
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); tcp.bind(("0.0.0.0", port))
tcp.listen(64)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", port))
def datagrams():
    while True:
        data, peer = udp.recvfrom(100)
        udp.sendto(f"{name} {peer[0]} {peer[1]}".encode(), peer)
def echo(conn, peer):
    with conn:
        conn.sendall(f"{name} {peer[0]} {peer[1]}\\n".encode())
        while data := conn.recv(65536):
            conn.sendall(data)
threading.Thread(target=datagrams, daemon=True).start()
print("ready", flush=True)
while True:
    conn, peer = tcp.accept()
    print("accepted", peer, flush=True)
    threading.Thread(target=echo, args=(conn, peer), daemon=True).start()
"""
# A client: `count` exchanges with ip:port, each from a new socket, the first retried for up to 20 s (the agents
# may not know the topology yet), the others not; prints "<own port> <answer> <answerer's ip> <port>" or "fail ...".
ASK = """
import socket, sys, time
proto, ip, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def tcp():
    with socket.create_connection((ip, port), timeout=3) as s:
        greeting = b""
        while not greeting.endswith(b"\\n"):
            if not (chunk := s.recv(100)):
                raise ConnectionError("closed before greeting")
            greeting += chunk
        return s.getsockname()[1], greeting.decode().strip(), s.getpeername()
def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        s.settimeout(1)
        for attempt in range(3):       # datagrams: resend (from the same port) when one is lost
            s.sendto(b"hello", (ip, port))
            try:
                data, peer = s.recvfrom(100)
                return s.getsockname()[1], data.decode(), peer
            except TimeoutError:
                if attempt == 2:
                    raise
deadline = time.monotonic() + 20
done = 0
while done < count:
    try:
        local, data, peer = tcp() if proto == "tcp" else udp()
    except OSError as e:
        if done == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        print("fail", repr(e))
        done += 1
        continue
    print(local, data, peer[0], peer[1])
    done += 1
"""
# One connection held open: prints the greeting, then for every line read (a size) sends that many bytes in 64 KiB
# pieces, each read back (echoed) before the next, and prints "ok <size>" (or "fail ..." and ends).
HOLD = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    greeting = b""
    while not greeting.endswith(b"\\n"):
        if not (chunk := s.recv(100)):
            raise ConnectionError("closed before greeting")
        greeting += chunk
    print(greeting.decode().strip(), flush=True)
    for line in sys.stdin:
        left = int(line)
        while left:
            piece = min(left, 65536)
            s.sendall(b"x" * piece)
            back = 0
            while back < piece:
                if not (chunk := s.recv(piece - back)):
                    raise ConnectionError("closed")
                back += len(chunk)
            left -= piece
        print("ok", line.strip(), flush=True)
except OSError as e:
    print("fail", repr(e), flush=True)
"""
# A datagram to a port (connected socket), resent up to 5 times: "answered", "refused" (an ICMP port unreachable
# came back) or "timeout".
PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(1)
for _ in range(5):
    try:
        s.send(b"anyone?")
        s.recv(100)
        print("answered")
        break
    except ConnectionRefusedError:
        print("refused")
        break
    except TimeoutError:
        continue
else:
    print("timeout")
"""
# One TCP connection attempt: how it ended.
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("connected")
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("unreachable", e)
"""
# A sender: a datagram to an address (a subnet's broadcast address, say) every 0.2 s, for 30 s at most.
BROADCAST = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for _ in range(150):
    s.sendto(b"anyone?", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.2)
"""
# A listener: prints where the first datagram to its port came from ("nothing" when none came in time).
HEAR = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
try:
    print(s.recvfrom(100)[1][0])
except TimeoutError:
    print("nothing")
"""
