"""`midonet testbed run`: a scenario file (`docs/sandbox.md`) played on the testbed's namespaces with real packets.

Role: the namespace runner of the scenario format, next to the fake-host one (`testing.sandbox`). It shares the
parsing, the deployment through the typed client (`scenario.deploy`) and the checks and report
(`scenario.checks`); it brings real hosts and VMs (`midonet.testbed`):

    hosts       one testbed host (`mn-h<N>`, a real `midonet agent`) per file host. The file's `tunnel_ip` is
                REPLACED by the testbed's underlay address of that host (10.99.0.N): that is where its agent
                really sends and receives its tunnels. The agent registers its own Host record.
    bindings    one VM namespace (`mn-vm<N>`) per binding: eth0 with the file's MAC, IP/prefix and gateway (none
                given: no address, e.g. a mirror's monitor); the port is bound to its peer in the host namespace.
                The VM's kernel answers ARP and ping; it sends no ICMP errors (its ICMP rate limit is zero), as the
                sandbox's VMs do not.
    send        the spec's frame (`checks.frame_from`, built with `midonet.packets`) written with an AF_PACKET socket
                on the VM's eth0; the next hop's MAC is asked with an ARP request from that socket first
    expect      what each VM's eth0 received (an AF_PACKET socket per VM, opened inside its namespace, outgoing
                frames left out) within CAPTURE seconds, judged by `checks.check_send`
    do          wait (real time), api, interface up/down (the host-side end of the VM's link), bind (a new VM),
                unbind, restart_agent (SIGTERM, then started again on its bpffs)

Everything (processes, namespaces, mounts) goes with the testbed at the end, whatever fails.

May import: `midonet.testbed`, `midonet.client`, `midonet.packets`, `midonet.simulation.packetspec`,
`testing.scenario`, `testing.frames`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from midonet.client import ApiError, Client
from midonet.packets import MalformedPacket, parse_frame
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP
from midonet.simulation.packetspec import Packet, SpecError, describe_frame
from midonet.testbed import Host, Testbed, TestbedError, Vm
from midonet.testing import frames
from midonet.testing.scenario import checks
from midonet.testing.scenario.checks import Report, StepResult, check_send
from midonet.testing.scenario.deploy import Deployment
from midonet.testing.scenario.model import (
    ApiCall,
    Bind,
    RestartAgent,
    Scenario,
    ScenarioError,
    Send,
    SetLink,
    Step,
    Unbind,
    VmSpec,
    Wait,
    describe,
)

CAPTURE = 1.5            # seconds a step's captures run (less when every expectation held and none is negative)
ARP_WAIT = 2.0
SETTLE_TIMEOUT = 5.0     # seconds an ARP answerer's MAC may take to be learned by the sender's bridge
READY_TIMEOUT = 30.0
ETH_P_ALL = 3
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the block in network namespace `name` (this thread), back to the current one after."""
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise TestbedError(f"setns {name}: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            libc.setns(here, CLONE_NEWNET)
    finally:
        os.close(here)
        os.close(there)


class Tap:
    """An AF_PACKET socket on a VM's eth0: sends frames, keeps what the VM received."""

    def __init__(self, vm: Vm, name: str) -> None:
        self.vm, self.name = vm, name
        with netns(vm.netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind(("eth0", ETH_P_ALL))
        self.sock.setblocking(False)
        self.got: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def pump(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, OSError):
                return
            if addr[2] != PACKET_OUTGOING:
                self.got.append(data)

    def take(self) -> list[bytes]:
        self.pump()
        out, self.got = self.got, []
        return out

    def close(self) -> None:
        self.sock.close()


class TestbedRun:
    """See the module docstring. `with TestbedRun(scenario) as run: report = run.run()`."""

    __test__ = False

    def __init__(self, scenario: Scenario, *, log: Callable[[str], None] | None = None,
                 lock_wait: float = 0.0) -> None:
        self.scenario = scenario
        self.bed = Testbed(lock_wait=lock_wait)
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, Vm] = {}
        self.taps: dict[str, Tap] = {}
        self.specs: dict[str, VmSpec] = {}
        self.neighbours: dict[str, dict[str, str]] = {}     # VM -> next hop IP -> MAC (its ARP cache)
        self.log = log or (lambda _: None)
        self._client: Client | None = None
        self._deployment: Deployment | None = None

    @property
    def deployment(self) -> Deployment:
        assert self._deployment is not None, "start() first"
        return self._deployment

    # ---- setup ----

    def start(self) -> TestbedRun:
        self.log("starting ZooKeeper, the API and the underlay")
        self.bed.up()
        for host in self.scenario.hosts:
            made = self.hosts[host.name] = self.bed.add_host(host.name)
            # the host-side ends of the VMs' links send no IPv6 (router solicitations, MLD): quiet VMs
            made.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self._client = Client(self.bed.api_url, "admin", self.bed.password)
        self.log(f"{len(self.hosts)} hosts: waiting for their agents")
        self._wait_alive()
        scenario = replace(self.scenario, hosts=tuple(replace(h, tunnel_ip=self.hosts[h.name].address)
                                                       for h in self.scenario.hosts))
        self._deployment = Deployment(self._client, scenario, {n: h.host_id for n, h in self.hosts.items()})
        with self._located():
            self.deployment.tunnel_zone()
            self.deployment.build()
            for vm in scenario.bindings:
                self._bind(vm)
        self._wait_active()
        self.log("built")
        return self

    def setup_summary(self) -> str:
        return (f"{len(self.scenario.hosts)} hosts, {len(self.scenario.all_objects())} objects, {len(self.vms)} VMs, "
                f"{len(self.scenario.steps)} steps (testbed)")

    @contextlib.contextmanager
    def _located(self) -> Iterator[None]:
        try:
            yield
        except ScenarioError as e:
            raise e.located(self.scenario.places, self.scenario.source) from None

    def _wait_alive(self) -> None:
        assert self._client is not None
        wanted = {h.host_id for h in self.hosts.values()}
        self._until(lambda: wanted <= {h["id"] for h in self._client.list("hosts") if h.get("alive")}  # type: ignore[union-attr]
                    or None, "the agents did not come up")

    def _wait_active(self) -> None:
        assert self._client is not None
        client = self._client
        ports = [self.deployment.id_of(spec.port) for spec in self.specs.values()
                 if spec.port in self.deployment.port_hosts]
        self._until(lambda: all(client.get("ports", p).get("active") for p in ports) or None,
                    "the bound ports did not become active")

    def _until(self, ready: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            value = ready()
            if value is not None:
                return value
            dead = [h.netns for h in self.hosts.values() if not h.alive()]
            if dead or time.monotonic() > deadline:
                tails = "\n".join(f"--- {h.netns} ---\n{h.log_tail(1500)}" for h in self.hosts.values())
                raise TestbedError(f"{what} (dead agents: {', '.join(dead) or 'none'})\n{tails}")
            time.sleep(0.2)

    def _bind(self, spec: VmSpec) -> None:
        if spec.interface not in self.vms:
            vm = self.bed.add_vm(self.hosts[spec.host], None if spec.ip is None else str(spec.ip), mac=spec.mac,
                                 gateway=spec.gw)
            # no ICMP errors from the VM's kernel (port unreachable ...): the sandbox's VMs send none
            vm.run("sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=0", "net.ipv4.icmp_msgs_burst=0")
            self.vms[spec.interface] = vm
            self.taps[spec.interface] = Tap(vm, spec.interface)
        self.specs[spec.interface] = spec
        self.deployment.bind(replace(spec, interface=self.vms[spec.interface].interface))

    # ---- traffic ----

    def run(self) -> Report:
        results = tuple(self.play(n, step) for n, step in enumerate(self.scenario.steps, 1))
        return Report(self.scenario.source, self.setup_summary(), results)

    def play(self, number: int, step: Step) -> StepResult:
        line = self.scenario.line(step.where)
        what = describe(step)
        self._captures()
        try:
            with self._located():
                return self._play(number, step, what, line)
        except (ScenarioError, SpecError, TestbedError, ApiError, OSError) as e:
            return StepResult(number, what, False, line, self._captures(), error=str(e))

    def _play(self, number: int, step: Step, what: str, line: int | None) -> StepResult:
        match step:
            case Send():
                return self._send(number, step, what, line)
            case ApiCall():
                try:
                    answer: dict[str, Any] = {"response": self.deployment.call(step)}
                    error = None
                except ApiError as e:
                    answer, error = {"status": e.status, "error": e.describe()}, str(e)
                time.sleep(0.5)                                # the agents see it through their watches
                return StepResult(number, what, error is None, line, answer | self._captures(), error=error)
            case SetLink(vm, up):
                target = self.vms[vm]
                target.host.run("ip", "link", "set", target.interface, "up" if up else "down")
                time.sleep(0.5)
            case RestartAgent(host):
                self.hosts[host].stop_agent()
                self.bed.start_agent(self.hosts[host], host)
                self._wait_alive()
                self._wait_active()
            case Bind(vm):
                self._bind(vm)
                self._wait_active()
            case Unbind(port):
                self.deployment.unbind(port, step.where)
                time.sleep(0.5)
            case Wait(seconds):
                time.sleep(seconds)
        return StepResult(number, what, True, line, self._captures())

    def _send(self, number: int, step: Send, what: str, line: int | None) -> StepResult:
        tap, spec = self.taps[step.vm], self.specs[step.vm]
        ip = None if spec.ip is None else str(spec.ip.ip)
        eth_dst = None
        if checks.needs_next_hop(step.items):
            destination = checks.packet_from(step.items, mac=tap.vm.mac, ip=ip, eth_dst=BROADCAST)["ip_dst"]
            eth_dst = self._resolve(tap, spec, str(destination))
            self._captures()
            if eth_dst is None:
                return StepResult(number, what, False, line, {},
                                  error=f"{step.vm} has no route to {destination} or its next hop did not answer ARP")
        tap.send(checks.frame_from(step.items, mac=tap.vm.mac, ip=ip, eth_dst=eth_dst))
        deadline = time.monotonic() + CAPTURE
        got: dict[str, list[Packet]] = {}
        while time.monotonic() < deadline:
            self._poll(deadline)
            got = self._merge(got, self._captures())
            if not step.expect_none_at and all(c.ok for c in check_send(step, got)):
                break
        verdicts = check_send(step, got)
        return StepResult(number, what, all(c.ok for c in verdicts), line, got, verdicts)

    def _resolve(self, tap: Tap, spec: VmSpec, destination: str) -> str | None:
        """The MAC of the next hop to `destination`, asked with ARP from the VM's socket."""
        import ipaddress

        dst = ipaddress.IPv4Address(destination)
        if dst == ipaddress.IPv4Address("255.255.255.255"):
            return BROADCAST
        if spec.ip is not None and dst in spec.ip.network:
            hop: str | None = BROADCAST if dst == spec.ip.network.broadcast_address else destination
        else:
            hop = spec.gw
        if hop is None or hop == BROADCAST or spec.ip is None:
            return hop
        known = self.neighbours.setdefault(tap.name, {})
        if hop in known:
            return known[hop]
        deadline = time.monotonic() + ARP_WAIT
        next_ask = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_ask:
                tap.send(frames.arp_request(tap.vm.mac, str(spec.ip.ip), hop))
                next_ask = time.monotonic() + 0.5
            self._poll(min(deadline, next_ask))
            for frame in tap.take():
                try:
                    m = parse_frame(frame)
                except MalformedPacket:
                    continue
                if m.peek("eth_type") == ETH_TYPE_ARP and m.peek("arp_spa") == hop and m.peek("arp_op") == 2:
                    known[hop] = str(m.peek("arp_sha"))
                    self._wait_learned(spec, known[hop])
                    return known[hop]
        return None

    def _wait_learned(self, spec: VmSpec, mac: str) -> None:
        """Wait until the sender's bridge has learned `mac` (the ARP answer taught it on the answerer's host; the
        store holds it as soon as the other agents can see it), so that the next frame is not flooded. A router
        port's MAC is never learned (the bridge knows its peers): no wait."""
        assert self._client is not None
        client = self._client
        port = client.get("ports", self.deployment.id_of(spec.port))
        if port.get("type") not in ("Bridge", "ExteriorBridge"):
            return
        bridge = str(port["deviceId"])
        if any(p.get("portMac") == mac for p in client.list("ports") if p.get("portMac")):
            return
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            if any(e.get("macAddr") == mac for e in client.list_children("bridges", bridge, "mac_table")):
                return
            time.sleep(0.05)

    def _poll(self, until: float) -> None:
        timeout = max(0.0, until - time.monotonic())
        if self.taps:
            select.select([t.sock for t in self.taps.values()], [], [], min(timeout, 0.1))

    @staticmethod
    def _merge(a: dict[str, list[Packet]], b: dict[str, list[Packet]]) -> dict[str, list[Packet]]:
        out = {k: list(v) for k, v in a.items()}
        for k, v in b.items():
            out.setdefault(k, []).extend(v)
        return out

    def _captures(self) -> dict[str, list[Packet]]:
        out: dict[str, list[Packet]] = {}
        for name, tap in self.taps.items():
            got: list[Packet] = []
            for frame in tap.take():
                try:
                    got.append(describe_frame(frame))
                except (MalformedPacket, ValueError):
                    got.append({"malformed": len(frame)})
            if got:
                out[name] = got
        return out

    # ---- lifecycle ----

    def close(self) -> None:
        for tap in self.taps.values():
            tap.close()
        self.taps = {}
        if self._client is not None:
            self._client.close()
        self.bed.down()

    def __enter__(self) -> TestbedRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(scenario: Scenario, *, log: Callable[[str], None] | None = None, lock_wait: float = 0.0) -> Report:
    """Build the scenario on the testbed, play its traffic, tear it all down; the report. `lock_wait`: seconds to
    wait for another testbed of this machine to finish."""
    runner = TestbedRun(scenario, log=log, lock_wait=lock_wait)
    try:
        runner.start()
        return runner.run()
    finally:
        runner.close()


__all__ = ["Tap", "TestbedRun", "netns", "run"]
