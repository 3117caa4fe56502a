"""`midonet sandbox`: a whole deployment in one process, built and driven from a scenario file (`docs/sandbox.md`).

Role: the fake-host runner of the scenario format (`testing.scenario`). One `Sandbox` is

    FakeCloud (tunnel_zone=False)   the embedded memory store, the memory underlay, a fake clock
    ├── ApiServer                   the REST API on a loopback port, over its own session of that store
    ├── Client                      the project's typed client, logged in as an admin the sandbox made up
    ├── FakeHost per host           a memory datapath and a real Agent each, underlay address = tunnel_ip
    └── SandboxVm per VM            a fake interface with a small stack of its own (below)

and everything is made as an operator would: hosts registered with `POST /hosts` before their agents start, one
tunnel zone through the API, the topology through the API (`scenario.deploy.Deployment`), ports bound to the fake
interfaces with the API's host bindings. The agents see it all through their store watches, like real ones.

A `SandboxVm` answers ARP requests and ICMP echo requests for its address, learns its neighbours from the ARP it
receives, and finds a packet's next hop as a VM's kernel would: the destination on its own subnet, else its
gateway, resolved with an ARP request (a packet to an unresolved next hop is not sent, and the step fails).

Playing the traffic: each step runs to completion (the memory datapath is run-to-completion, then `settle()` waits
for the store watches); what each VM received during the step is its capture. `wait` moves the fake clock (in
ticks of at most a second, every agent ticking), so a minute of flow expiry takes no time.

Errors: a bad file is a `ScenarioError` before anything is built, or at setup when the API refuses an object; a
step that cannot be done (an unbound port unbound) fails that step and the run goes on.

May import: everything in `midonet.testing`, `midonet.api`, `midonet.client`, `midonet.agent`.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from midonet.agent.agent import AgentConfig
from midonet.api.auth import Authenticator, Role, User
from midonet.client import ApiError, Client
from midonet.packets import MalformedPacket, parse_frame
from midonet.packets.arp import OP_REQUEST
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP, ETH_TYPE_IPV4
from midonet.packets.ipv4 import PROTO_ICMP
from midonet.simulation.packetspec import Packet, SpecError, describe_frame
from midonet.store.memory import MemoryStore
from midonet.testing import frames
from midonet.testing.apiserver import ApiServer
from midonet.testing.fakehosts import FakeCloud, FakeHost, host_id_for
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

ADMIN = "admin"
ECHO_REQUEST = 8
MAX_TICK = 1.0


class SandboxVm:
    """A VM on a fake interface of a fake host; see the module docstring."""

    def __init__(self, host: FakeHost, spec: VmSpec) -> None:
        self.host = host
        self.name = spec.interface
        self.ip = spec.ip
        self.gw = spec.gw
        self.mac = host.add_interface(spec.interface, mac=spec.mac)
        self.neighbours: dict[str, str] = {}
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        host.memory.interfaces.on_frame(spec.interface, self._receive)

    @property
    def address(self) -> str | None:
        return None if self.ip is None else str(self.ip.ip)

    def send(self, frame: bytes) -> None:
        self.host.inject(self.name, frame)

    def take(self) -> list[bytes]:
        with self._lock:
            out, self._received = self._received, []
            return out

    def next_hop(self, destination: str) -> str | None:
        """The address whose MAC a packet to `destination` is sent to, "broadcast", or None (no route)."""
        dst = ipaddress.IPv4Address(destination)
        if dst == ipaddress.IPv4Address("255.255.255.255"):
            return "broadcast"
        if self.ip is not None and dst in self.ip.network:
            return "broadcast" if dst == self.ip.network.broadcast_address else destination
        return self.gw

    def _receive(self, frame: bytes) -> None:
        with self._lock:
            self._received.append(frame)
        try:
            m = parse_frame(frame)
        except MalformedPacket:
            return
        me = self.address
        if m.peek("eth_type") == ETH_TYPE_ARP and me is not None and m.peek("arp_tpa") == me:
            sha, spa = str(m.peek("arp_sha")), str(m.peek("arp_spa"))
            self.neighbours[spa] = sha
            if m.peek("arp_op") == OP_REQUEST:
                self.send(frames.arp_reply(self.mac, me, sha, spa))
        elif (m.peek("eth_type") == ETH_TYPE_IPV4 and m.peek("ip_proto") == PROTO_ICMP and me is not None
              and m.peek("ip_dst") == me and m.peek("tp_src") == ECHO_REQUEST and m.peek("ip_frag") in (None, "none")):
            vlans = m.peek("vlan_ids")
            self.send(_echo_reply(frame, self.mac, me, str(m.peek("eth_src")), str(m.peek("ip_src")),
                                  len(vlans) if isinstance(vlans, tuple) else 0))

    def __repr__(self) -> str:
        return f"SandboxVm({self.name!r} on {self.host.name}, {self.mac}, {self.ip})"


def _echo_reply(request: bytes, mac: str, ip: str, to_mac: str, to_ip: str, vlans: int) -> bytes:
    """The echo reply to `request` (same identifier, sequence number and data)."""
    l3 = 14 + 4 * vlans
    header = (request[l3] & 0x0F) * 4
    total = int.from_bytes(request[l3 + 2 : l3 + 4], "big")
    icmp = request[l3 + header : l3 + total]
    ident, seq = int.from_bytes(icmp[4:6], "big"), int.from_bytes(icmp[6:8], "big")
    return frames.pong(mac, to_mac, ip, to_ip, ident=ident, seq=seq, payload=icmp[8:])


class Sandbox:
    """See the module docstring. `with Sandbox(scenario) as box: report = box.run()`."""

    def __init__(self, scenario: Scenario, *, config: AgentConfig | None = None) -> None:
        self.scenario = scenario
        self.cloud = FakeCloud(tunnel_zone=False, config=config)
        self.vms: dict[str, SandboxVm] = {}
        self._password = secrets.token_urlsafe(16)
        self._api_store: MemoryStore | None = None
        self._server: ApiServer | None = None
        self._client: Client | None = None
        self._deployment: Deployment | None = None

    # ---- setup ----

    def start(self) -> Sandbox:
        """Start the API and the hosts, and build what the file describes. ScenarioError if the API refuses it."""
        session = self.cloud.connect("api")
        assert isinstance(session, MemoryStore)
        self._api_store = session
        self._server = ApiServer(session, Authenticator([User(ADMIN, self._password, Role.ADMIN)])).start()
        self._client = Client(self._server.url, ADMIN, self._password)
        scenario = self.scenario
        deployment = self._deployment = Deployment(self._client, scenario,
                                                   {h.name: host_id_for(h.name) for h in scenario.hosts})
        with self._located():
            deployment.register_hosts()
            for host in scenario.hosts:
                self.cloud.add_host(host.name, host.tunnel_ip)
            deployment.tunnel_zone()
            deployment.build()
            for vm in scenario.bindings:
                self._bind(vm)
        self.cloud.settle()
        return self

    @property
    def deployment(self) -> Deployment:
        assert self._deployment is not None, "start() the sandbox first"
        return self._deployment

    def setup_summary(self) -> str:
        objects = len(self.scenario.all_objects())
        return (f"{len(self.scenario.hosts)} hosts, {objects} objects, {len(self.vms)} VMs, "
                f"{len(self.scenario.steps)} steps")

    @contextmanager
    def _located(self) -> Iterator[None]:
        try:
            yield
        except ScenarioError as e:
            raise e.located(self.scenario.places, self.scenario.source) from None

    def _bind(self, spec: VmSpec) -> None:
        if spec.interface not in self.vms:
            self.vms[spec.interface] = SandboxVm(self.cloud.hosts[spec.host], spec)
        self.deployment.bind(spec)

    # ---- traffic ----

    def run(self) -> Report:
        """Play every step; the report."""
        results = tuple(self.play(n, step) for n, step in enumerate(self.scenario.steps, 1))
        return Report(self.scenario.source, self.setup_summary(), results)

    def play(self, number: int, step: Step) -> StepResult:
        """Play one step and judge it."""
        line = self.scenario.line(step.where)
        what = describe(step)
        self._captures()                                       # what came before belongs to no step
        try:
            with self._located():
                return self._play(number, step, what, line)
        except (ScenarioError, SpecError) as e:
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
                self.cloud.settle()
                return StepResult(number, what, error is None, line, answer | self._captures(), error=error)
            case SetLink(vm, up):
                self.vms[vm].host.set_link(vm, up)
            case RestartAgent(host):
                self.cloud.hosts[host].restart()
            case Bind(vm):
                self._bind(vm)
            case Unbind(port):
                self.deployment.unbind(port, step.where)
            case Wait(seconds):
                self._wait(seconds)
        self.cloud.settle()
        return StepResult(number, what, True, line, self._captures())

    def _send(self, number: int, step: Send, what: str, line: int | None) -> StepResult:
        vm = self.vms[step.vm]
        eth_dst = None
        if checks.needs_next_hop(step.items):
            destination = checks.packet_from(step.items, mac=vm.mac, ip=vm.address, eth_dst=BROADCAST)["ip_dst"]
            eth_dst = self._resolve(vm, str(destination))
            self._captures()                                   # the ARP exchange is not the step's traffic
            if eth_dst is None:
                return StepResult(number, what, False, line, {},
                                  error=f"{vm.name} has no route to {destination} or its next hop did not answer ARP")
        vm.send(checks.frame_from(step.items, mac=vm.mac, ip=vm.address, eth_dst=eth_dst))
        self.cloud.settle()
        captured = self._captures()
        verdicts = check_send(step, captured)
        return StepResult(number, what, all(c.ok for c in verdicts), line, captured, verdicts)

    def _resolve(self, vm: SandboxVm, destination: str) -> str | None:
        """The MAC of `destination`'s next hop, asking with ARP if the VM does not know it yet."""
        hop = vm.next_hop(destination)
        if hop is None or hop == "broadcast":
            return BROADCAST if hop else None
        if hop not in vm.neighbours and vm.address is not None:
            vm.send(frames.arp_request(vm.mac, vm.address, hop))
            self.cloud.settle()
        return vm.neighbours.get(hop)

    def _wait(self, seconds: float) -> None:
        left = seconds
        while left > 1e-9:
            step = min(MAX_TICK, left)
            self.cloud.tick(step)
            left -= step

    def _captures(self) -> dict[str, list[Packet]]:
        """What each VM received since the last call, as packets (VMs that received nothing left out)."""
        out: dict[str, list[Packet]] = {}
        for name, vm in self.vms.items():
            got = []
            for frame in vm.take():
                try:
                    got.append(describe_frame(frame))
                except (MalformedPacket, ValueError):
                    got.append({"malformed": len(frame)})
            if got:
                out[name] = got
        return out

    # ---- lifecycle ----

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._server is not None:
            self._server.stop()
        self.cloud.close()
        if self._api_store is not None:
            self._api_store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def run(scenario: Scenario, *, config: AgentConfig | None = None) -> Report:
    """Build the scenario on fake hosts, play its traffic, tear it all down; the report."""
    sandbox = Sandbox(scenario, config=config)
    try:
        sandbox.start()
        return sandbox.run()
    finally:
        sandbox.close()


__all__ = ["Sandbox", "SandboxVm", "run"]
