"""Fake hypervisors: several hosts in one process, each with a memory datapath and a real agent (OVN's `ovn.at`).

Role: the harness of the agent scenarios (`tests/scenarios/agent/`), and what `midonet sandbox` will run. One
`FakeCloud` is a whole deployment:

    FakeCloud
    ├── store       a MemoryBackend (default), or a ZooKeeper ensemble: `operator` is the session topology is
    │               written with, every agent has a session of its own (`connect`)
    ├── topology    StoreTopology(operator)        records through the store, as the API would write them
    ├── underlay    MemoryUnderlay                 the physical network between hosts (real VXLAN frames, UDP 6677)
    ├── zone        a VXLAN TunnelZone              every host joins it with its underlay address (unless
    │                                               `tunnel_zone=False`: the sandbox makes its own through the API)
    ├── clock       FakeClock                      every agent and datapath ages by it (tests move it by hand)
    └── hosts       {name: FakeHost}
         FakeHost   MemoryHost + MemoryDatapath + Agent, with its own store session (its state keys and learned
                    entries are its own, and vanish when it is stopped); with `FakeCloud(data_dir=...)` its flow
                    state is kept under <data_dir>/<host name>, and `restart()` builds a new agent (and session) on
                    the same host, datapath and directory, as a restarted agent process would be

Topology goes in through the store (`cloud.topology`), not through the REST API: the scenarios are about the
agent, and the API has its own tests (the sandbox may drive the API instead: the agents cannot tell).

Synchronous where it can be: injecting a frame (`FakeHost.inject`) returns once the datapath, the agents it
upcalled and the hosts it tunnelled to are done (the memory datapath's run loop). Store watches are delivered on
each session's thread; `settle()` waits for them: it flushes every session's delivery queue until a whole round
in which no agent handled an event (`EventGate.events`). Tests call it after changing the topology and after a
first packet that had to wait for devices to load, never `sleep`. That is exact for the memory store, whose
watches are posted when the change commits; a ZooKeeper watch travels through the server first, so over
ZooKeeper tests wait for what they expect with `wait_until(predicate)` (a deadline poll).

    cloud = FakeCloud()
    h1, h2 = cloud.add_host("h1"), cloud.add_host("h2")
    h1.add_interface("vm1"); h2.add_interface("vm2")
    net = cloud.topology.bridge("net")
    cloud.topology.port(net, host_id=h1.host_id, interface="vm1") ...
    cloud.settle()
    h1.inject("vm1", frame); cloud.settle(); h2.take("vm2")

`FakeInterfaceSource` is how an agent on a memory host learns its interfaces (the host service scans it); a
`FakeVm` answers ARP for its address from its interface's receive callback, as a VM's kernel would.

May import: `midonet.agent`, `midonet.datapath`, `midonet.packets`, `midonet.store`, `midonet.topology`,
`midonet.testing`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from midonet.agent.agent import Agent, AgentConfig
from midonet.datapath.base import InterfaceInfo
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.packets import MalformedPacket, parse_frame
from midonet.packets.arp import OP_REQUEST
from midonet.packets.ethernet import ETH_TYPE_ARP
from midonet.store.memory import MemoryBackend, MemoryStore
from midonet.store.zookeeper import ZooKeeperStore
from midonet.testing import frames
from midonet.testing.clock import FakeClock
from midonet.testing.store_topology import StoreTopology
from midonet.topology.hosts import TunnelZone

Session = MemoryStore | ZooKeeperStore
_NAMESPACE = uuid.UUID("6d69646f-6e65-7400-8000-66616b65686f")   # fixed: host ids follow from host names
UNDERLAY_NIC = "eth0"


def host_id_for(name: str) -> str:
    """The (stable) host id of fake host `name`."""
    return str(uuid.uuid5(_NAMESPACE, name))


class FakeInterfaceSource:
    """The interfaces of a `MemoryHost` as an agent's `InterfaceSource`: its fake interfaces, and its underlay NIC
    (`eth0`, holding the underlay address, as a physical interface)."""

    def __init__(self, host: MemoryHost, *, underlay_mtu: int = 1500) -> None:
        self._host = host
        self._underlay_mtu = underlay_mtu

    def scan(self) -> list[InterfaceInfo]:
        found = [InterfaceInfo(UNDERLAY_NIC, mac=self._host.underlay_mac, mtu=self._underlay_mtu,
                               addresses=(self._host.underlay_ip,), type="Physical", endpoint="PHYSICAL")]
        for name in self._host.interfaces.names():
            try:
                iface = self._host.interfaces.get(name)
            except Exception:   # removed while we scanned
                continue
            found.append(InterfaceInfo(name, mac=iface.mac, mtu=iface.mtu, up=iface.up, has_link=iface.up,
                                       type="Virtual", endpoint="TUNTAP"))
        return found


class FakeHost:
    """One fake hypervisor: its memory host, datapath, store session and agent."""

    def __init__(self, cloud: FakeCloud, name: str, underlay_ip: str, config: AgentConfig | None) -> None:
        self.name = name
        self.host_id = host_id_for(name)
        self.cloud = cloud
        self.memory = MemoryHost(name, underlay_ip, cloud.underlay)
        self.datapath = MemoryDatapath("midonet", self.memory, clock=cloud.clock.now)
        self.session: Session = cloud.connect(self.host_id)
        config = config or AgentConfig(name=name)
        if cloud.data_dir is not None:
            config = dataclasses.replace(config, data_dir=cloud.data_dir / name)
        self.config = config
        self.agent = self._new_agent()

    def _new_agent(self) -> Agent:
        return Agent(self.host_id, self.session, self.datapath, self.cloud.clock,
                     interfaces=FakeInterfaceSource(self.memory), config=self.config)

    @property
    def underlay_ip(self) -> str:
        return self.memory.underlay_ip

    # ---- interfaces ----

    def add_interface(self, name: str, *, mac: str | None = None, mtu: int = 1500, up: bool = True) -> str:
        """A new fake interface (a VM's tap); returns its MAC. The agent is told at once."""
        iface = self.memory.interfaces.add(name, mac=mac, mtu=mtu, up=up)
        self.agent.interfaces_changed()
        return iface.mac

    def set_link(self, name: str, up: bool) -> None:
        self.memory.interfaces.set_link(name, up)
        self.agent.interfaces_changed()

    def remove_interface(self, name: str) -> None:
        self.memory.interfaces.remove(name)
        self.agent.interfaces_changed()

    # ---- frames ----

    def inject(self, interface: str, frame: bytes) -> None:
        """The VM behind `interface` sends `frame`; returns when the fake world has handled it."""
        self.memory.interfaces.inject(interface, frame)

    def take(self, interface: str) -> list[bytes]:
        """The frames the VM behind `interface` received since the last `take`."""
        return self.memory.interfaces.take(interface)

    def tick(self) -> None:
        self.agent.tick()

    def stop(self) -> None:
        """Stop the agent and end its store session (its state keys and learned entries vanish)."""
        self.agent.stop()
        self.session.close()

    def detach(self) -> None:
        """Stop the agent as `midonet agent` does on SIGTERM: it detaches (`Agent.detach`), its datapath keeps its
        ports and flows, and its session ends."""
        self.agent.detach()
        self.session.close()

    def start_again(self) -> Agent:
        """A new agent with a new session on the same memory host, datapath and data directory, after `detach`
        (the datapath reattached, its flows inherited); returns it."""
        self.session = self.cloud.connect(self.host_id)
        self.agent = self._new_agent()
        self.cloud.start(self)
        return self.agent

    def restart(self) -> Agent:
        """Stop the agent and end its session, then start a new agent with a new session on the same memory host,
        datapath and data directory; returns the new agent. The agent's `stop` removes its ports and flows first
        (`detach` + `start_again` is what restarting the agent process does)."""
        self.stop()
        return self.start_again()

    def __repr__(self) -> str:
        return f"FakeHost({self.name!r}, {self.underlay_ip})"


class FakeVm:
    """A VM on a fake interface: answers ARP requests for its address, keeps every other frame it receives."""

    def __init__(self, host: FakeHost, interface: str, mac: str, ip: str) -> None:
        self.host = host
        self.interface = interface
        self.mac = mac
        self.ip = ip
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self.arp_answered = 0
        host.memory.interfaces.on_frame(interface, self._receive)

    def send(self, frame: bytes) -> None:
        self.host.inject(self.interface, frame)

    def take(self) -> list[bytes]:
        with self._lock:
            out, self._received = self._received, []
            return out

    def _receive(self, frame: bytes) -> None:
        try:
            m = parse_frame(frame)
        except MalformedPacket:
            m = None
        if (m is not None and m.peek("eth_type") == ETH_TYPE_ARP and m.peek("arp_op") == OP_REQUEST
                and m.peek("arp_tpa") == self.ip):
            sha, spa = str(m.peek("arp_sha")), str(m.peek("arp_spa"))
            self.arp_answered += 1
            self.send(frames.arp_reply(self.mac, self.ip, sha, spa))
            return
        with self._lock:
            self._received.append(frame)


class FakeCloud:
    """Fake hosts over one store and one underlay; see the module docstring."""

    def __init__(self, *, clock: FakeClock | None = None, config: AgentConfig | None = None,
                 store: ZooKeeperStore | None = None, data_dir: Path | None = None,
                 tunnel_zone: bool = True) -> None:
        """A cloud on a fresh memory store, or on the ZooKeeper ensemble of `store` (which the caller closes);
        with `data_dir`, every agent keeps its flow state on disk under <data_dir>/<host name>."""
        self.clock = clock or FakeClock()
        self.config = config
        self.data_dir = data_dir
        self.backend: MemoryBackend | None = None
        if store is None:
            self.backend = MemoryBackend()
            self.operator: Session = self.backend.connect("operator")
        else:
            self.operator = store.connect("operator")
        self.topology = StoreTopology(self.operator)
        self.underlay = MemoryUnderlay()
        self.hosts: dict[str, FakeHost] = {}
        self.zone: TunnelZone | None = self.topology.tunnel_zone("fake-cloud") if tunnel_zone else None

    def add_host(self, name: str, underlay_ip: str | None = None, *, interfaces: Iterable[str] = (),
                 start: bool = True) -> FakeHost:
        """A new fake host (underlay 10.0.0.<n> unless told), its agent started, in the cloud's tunnel zone."""
        ip = underlay_ip or f"10.0.0.{len(self.hosts) + 1}"
        host = FakeHost(self, name, ip, self.config)
        self.hosts[name] = host
        for interface in interfaces:
            host.memory.interfaces.add(interface)
        if start:
            self.start(host)
        return host

    def start(self, host: FakeHost) -> None:
        """Start a host's agent (it registers its Host record) and add it to the tunnel zone."""
        host.agent.start()
        if self.zone is not None:
            self.zone = self.topology.join(self.zone, host.host_id, host.underlay_ip)

    def connect(self, owner: str) -> Session:
        """A new session on the cloud's store."""
        if self.backend is not None:
            return self.backend.connect(owner)
        return self.operator.connect(owner)

    def vm(self, host: FakeHost, interface: str, mac: str, ip: str) -> FakeVm:
        """A `FakeVm` on a new interface `interface` of `host`."""
        host.add_interface(interface, mac=mac)
        return FakeVm(host, interface, mac, ip)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every store watch was delivered and handled: rounds of flushes until a quiet one."""
        deadline = time.monotonic() + timeout
        while True:
            before = self.activity()
            for session in self._sessions():
                remaining = deadline - time.monotonic()
                if (remaining <= 0 or not session.delivery.flush(remaining)) and time.monotonic() >= deadline:
                    raise TimeoutError(f"the fake cloud did not settle within {timeout} s")
            if self.activity() == before:
                return

    def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """Settle until `predicate()` holds (a deadline poll, for stores whose watches take a while: ZooKeeper)."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not true within {timeout} s: {predicate}")
            self.settle(max(0.1, deadline - time.monotonic()))
            if not predicate():
                pause.wait(0.01)

    def activity(self) -> int:
        """Events the agents handled so far (upcalls, store events, ticks)."""
        return sum(h.agent.gate.events for h in self.hosts.values())

    def tick(self, seconds: float = 0.0) -> None:
        """Move the clock forward by `seconds`, run every agent's `tick`, then settle."""
        if seconds:
            self.clock.advance(seconds)
        for host in self.hosts.values():
            if host.agent.running:
                host.tick()
        self.settle()

    def _sessions(self) -> list[Session]:
        sessions = [self.operator]
        sessions.extend(h.session for h in self.hosts.values() if h.agent.running)
        return sessions

    def close(self) -> None:
        for host in self.hosts.values():
            host.agent.stop()
            host.datapath.close()
            host.memory.close()
            host.session.close()
        self.operator.close()
        if self.backend is not None:
            self.backend.close()

    def __enter__(self) -> FakeCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
