"""`Agent`: one host's MidoNet agent, wired from its parts (ARCHITECTURE.md "Processes"; spec 1.3-1.7).

Role: the original's `Midolman` process core, over the `Datapath` protocol. It owns nothing but the wiring:

    Agent(host_id, store, datapath, clock, interfaces=...)
    ├── gate         events.EventGate           the one lock; store callbacks and upcalls go through it
    ├── host         host.HostService           Host record, `alive`, `interfaces` (spec 1.4)
    ├── tunnels      tunnel_zones.TunnelZones   my tunnel-zone address and my peers' (spec 1.6)
    ├── bindings     bindings.PortBindings      bound ports -> datapath ports + `Port.active` (spec 1.5)
    ├── topology     topology_cache.TopologyCache   device snapshots from store watches (spec 1.3)
    ├── tables       state_tables.StoreStateTables  MAC / IPv4-MAC / ARP tables through the store
    ├── flows        flow_table.FlowTable       desired flows, tags, expiry (spec 3.12)
    ├── waiting      waiting_room.WaitingRoom   postponed packets
    ├── workflow     workflow.PacketWorkflow    the datapath's upcall handler (spec 1.7)
    ├── flow_state   flowstate.FlowStateReplicator  conntrack / NAT keys to peers, from peers, on disk (spec 4)
    ├── admission    admission.AdmissionControl token buckets per datapath port, before the workflow (spec 1.7)
    └── counters     metrics.Counters           -> statistics(), metrics() (Prometheus text)

Invalidation is one path: every part that learns something changed calls `invalidate(tag)`, which removes the
flows tagged with it; `ready(kind, id)` wakes the packets waiting for it (and drops the give-up flows made while
it was missing).

Time: everything that ages (flows, MAC and ARP entries, waiting packets) reads the injected `Clock`; `tick()` does
the time-driven work (expiry, interface rescan) and is called by a timer thread when `AgentConfig.tick_interval`
is set, by tests by hand (with a `FakeClock`).

Lifecycle: `start()` registers the host, creates the overlay port, starts the watches and takes the datapath's
upcalls; `stop()` removes this agent's flows, ports and state keys and cancels its watches (closing the store
session, which the caller owns, would remove the state keys too). `detach()` is the stop of an agent that will be
started again on the same datapath (`midonet agent` on SIGTERM): it only stops handling packets and deletes the
host's `alive` key; the caller releases the datapath (its flows keep forwarding) and closes the session. The peers
go on tunnelling to this host's ports meanwhile (`topology_cache` port locations), and the next agent inherits
the datapath's flows (`FlowTable.inherit`): they forward until `inherited_grace` seconds after its bindings are
published, then go, and their packets are simulated afresh.

After every event (outside the lock, `_after`): the flow-state frames queued outside a packet (a moved port's
state requested) are sent, the SNAT blocks "not yet" answers asked for are leased through the store
(`nat_leasing`), then the packets the event unblocked are simulated again.

Flow state on disk: `AgentConfig.data_dir` (None: kept in memory only, lost with the agent); a new agent on the
same directory imports what is still fresh (spec 4.5).

Left for later: health monitors, the ARP broker's retry pacing.

May import: `midonet.datapath`, `midonet.store`, `midonet.state`, `midonet.simulation` (config), `agent.*`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from midonet.agent.admission import DEFAULT_ADMISSION, AdmissionConfig, AdmissionControl
from midonet.agent.bindings import PortBindings
from midonet.agent.events import EventGate
from midonet.agent.flow_table import IDLE_EXPIRATION, FlowTable
from midonet.agent.flowstate import FlowStateReplicator, PeerResolver
from midonet.agent.flowstate_storage import FlowStateStorage
from midonet.agent.host import HostService, InterfaceSource
from midonet.agent.metrics import AgentDrop, AgentStatistics, Counters, prometheus_text, registry_for, statistics_of
from midonet.agent.state_tables import StoreStateTables
from midonet.agent.topology_cache import TopologyCache
from midonet.agent.translate import AgentResolver
from midonet.agent.tunnel_zones import TunnelZones
from midonet.agent.waiting_room import CAPACITY, WAIT_TIMEOUT, WaitingRoom
from midonet.agent.workflow import PacketWorkflow
from midonet.datapath.base import Datapath, InterfaceInfo, Upcall
from midonet.simulation.config import DEFAULT_CONFIG, SimulationConfig
from midonet.simulation.results import FLOW_EXPIRATION, FlowTag
from midonet.state.clock import Clock
from midonet.state.randomness import RandomSource, SeededRandom
from midonet.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_UNDERLAY_MTU = 1500
INHERITED_GRACE = 5.0
AFTER_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class AgentConfig:
    name: str | None = None                           # the Host record's name when the agent creates it
    idle_timeout: float | None = IDLE_EXPIRATION      # flows idle this long are removed (None: hard expiry only)
    wait_timeout: float = WAIT_TIMEOUT                # how long a postponed packet may wait
    waiting_capacity: int = CAPACITY
    tick_interval: float | None = None                # run `tick` on a timer thread this often (None: by hand)
    tracing: bool = False                             # trace every simulation (`workflow.last_result.trace`)
    admission: AdmissionConfig | None = DEFAULT_ADMISSION  # upcall token buckets (None: admit everything)
    data_dir: Path | None = None                      # where the flow state is kept (None: in memory only)
    inherited_grace: float = INHERITED_GRACE          # a reattached datapath's flows live this long once bound


class Agent:
    """See the module docstring."""

    def __init__(self, host_id: str, store: Store, datapath: Datapath, clock: Clock, *,
                 interfaces: InterfaceSource, config: AgentConfig | None = None,
                 rng: RandomSource | None = None) -> None:
        config = config or AgentConfig()
        rng = rng if rng is not None else SeededRandom(secrets.randbits(64))
        self.host_id = host_id
        self.store = store
        self.datapath = datapath
        self.clock = clock
        self.config = config
        self.gate = EventGate()
        self.counters = Counters()
        self.flows = FlowTable(datapath, clock, idle_timeout=config.idle_timeout)
        self.waiting = WaitingRoom(clock, timeout=config.wait_timeout, capacity=config.waiting_capacity)
        self.host = HostService(host_id, store, interfaces, name=config.name)
        self.tunnels = TunnelZones(host_id, store, self.gate, self.invalidate)
        self.bindings = PortBindings(host_id, store, datapath, self.gate, self.invalidate)
        self.topology = TopologyCache(store, self.gate, self.invalidate, self.ready)
        self.tables = StoreStateTables(store, self.gate, clock, self.invalidate, self.ready, rng)
        self.resolver = AgentResolver(host_id, self.bindings, self.topology, self.tunnels)
        self.admission = AdmissionControl(clock, config.admission) if config.admission is not None else None
        self.flow_state = FlowStateReplicator(
            host_id, self.tables.conntrack, self.tables.nat,
            PeerResolver(host_id, self.topology, lambda port: self.bindings.binding(port) is not None),
            self.tunnels, self.bindings, FlowStateStorage(config.data_dir, host_id, clock), clock, self.invalidate,
            self.counters, restore=self.tables.nat_leaser.restore)
        self.workflow = PacketWorkflow(datapath, self.gate, self.topology, self.tables, self.bindings,
                                       self.resolver, self.flows, self.waiting, self.counters,
                                       config=self.simulation_config, tracing=config.tracing,
                                       admission=self.admission, replicator=self.flow_state)
        self.host.on_interfaces(self.bindings.set_interfaces)
        self.bindings.on_settled(self._settled)
        self.bindings.on_activated(lambda port: self.flow_state.port_bound(port.id, port.previous_host_id))
        self.gate.set_after(self._after)
        self._registry = registry_for(self.statistics, host_id)
        self._running = False
        self._config_for: tuple[str | None, Mapping[str, InterfaceInfo], SimulationConfig] | None = None
        self._timer: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle ----

    def start(self) -> Agent:
        with self.gate.lock:
            if self._running:
                return self
            self.flow_state.start()
            self._running = True
            if self.flows.inherit(self.clock.now() + FLOW_EXPIRATION):
                log.info("agent %s: %d flows inherited from a previous agent", self.host_id, self.flows.inherited)
            self.host.start()
            self.bindings.start()
            self.tunnels.start()
        self.datapath.on_upcall(self.workflow.handle_upcall)
        if self.config.tick_interval is not None:
            self._stopping.clear()
            self._timer = threading.Thread(target=self._tick_loop, args=(self.config.tick_interval,),
                                           name=f"agent-{self.host_id[:8]}-tick", daemon=True)
            self._timer.start()
        log.info("agent %s started", self.host_id)
        return self

    def stop(self) -> None:
        if not self._halt():
            return
        with self.gate.lock:
            self.tunnels.stop()
            self.topology.stop()
            self.tables.stop()
            self.bindings.stop()
            self.flows.clear()
            self.flow_state.stop()
            self.waiting.clear()
            self.host.stop()
        log.info("agent %s stopped", self.host_id)

    def detach(self) -> None:
        """Stop for a restart: stop handling packets and the tick, and delete `alive` first, so the peers keep
        sending to this host's ports (their `active` keys go with the session, which the caller closes next, and
        the datapath, released, keeps forwarding; `agent.topology_cache` port locations)."""
        if self._halt(self.host.withdraw):
            log.info("agent %s detached", self.host_id)

    def _halt(self, first: Callable[[], None] | None = None) -> bool:
        """Stop taking upcalls and ticking (after `first()`, under the lock); False if already stopped."""
        with self.gate.lock:
            if not self._running:
                return False
            self._running = False
            if first is not None:
                first()
        self.datapath.on_upcall(self._stopped)
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=10)
        return True

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    # ---- what the parts call ----

    def invalidate(self, tag: FlowTag) -> None:
        """Remove the flows tagged `tag` (called under the gate)."""
        self.flows.invalidate(tag)

    def ready(self, kind: str, ident: str) -> None:
        """(kind, id) is available now: wake the packets waiting for it (called under the gate)."""
        self.waiting.ready(kind, ident)
        self.flows.invalidate(("waiting", kind, ident))

    def simulation_config(self) -> SimulationConfig:
        """What simulations are told about this host: the underlay MTU is the smallest MTU of the interfaces
        holding this host's tunnel-zone address (spec 1.6), 1500 when none is known."""
        my_ip = self.tunnels.my_ip()
        interfaces = self.host.interfaces
        if self._config_for is not None and self._config_for[0] == my_ip and self._config_for[1] is interfaces:
            return self._config_for[2]      # per simulation: computed again only when the address or interfaces change
        mtus = [i.mtu for i in interfaces.values() if my_ip is not None and my_ip in i.addresses]
        underlay = min(mtus, default=DEFAULT_UNDERLAY_MTU)
        config = DEFAULT_CONFIG if underlay == DEFAULT_CONFIG.underlay_mtu else \
            SimulationConfig(underlay_mtu=underlay, dhcp_mtu=DEFAULT_CONFIG.dhcp_mtu)
        self._config_for = (my_ip, interfaces, config)
        return config

    # ---- time and the outside world ----

    def tick(self) -> None:
        """The time-driven work: interface rescan, flow expiry (and a reconcile after a failed install), MAC / ARP
        ageing, flow-state key expiry, giving up on waiting packets."""
        if not self._running:
            return
        self.gate.count()
        with self.gate.lock:
            if self.host.alive_lost():          # the ports first: `alive` says they are published
                self.bindings.republish()
                self.host.keep_alive()
            self.host.rescan()
            self.flows.expire()
            if self.flows.needs_reconcile:
                self.flows.reconcile()
            self.tables.expire()
            self.flow_state.tick()
            if self.admission is not None:
                self.admission.retain(self._datapath_ports())
        self.workflow.expire_waiting()
        self.gate.after()

    def interfaces_changed(self) -> None:
        """The host's interfaces changed (a netlink listener, or a test that brought a link down)."""
        self.gate.run(self.host.rescan)

    def reconcile(self) -> tuple[int, int]:
        """Make the datapath hold exactly the desired flows: (reinstalled, strays removed)."""
        with self.gate.lock:
            return self.flows.reconcile()

    # ---- observability ----

    def statistics(self) -> AgentStatistics:
        with self.gate.lock:
            waiting, bound, flows = len(self.waiting), len(self.bindings.active()), self.flows.statistics()
        admission = self.admission.statistics() if self.admission is not None else None
        return statistics_of(self.counters, waiting, bound, flows, self.datapath.statistics(), admission)

    def metrics(self) -> str:
        """This agent's counters in the Prometheus text exposition format."""
        return prometheus_text(self._registry)

    # ---- internals ----

    def _datapath_ports(self) -> set[int]:
        """The datapath ports upcalls may come from: the bound ports' and the overlay port."""
        ports = {b.dp_port for b in self.bindings.active().values()}
        if self.bindings.vxlan_port is not None:
            ports.add(self.bindings.vxlan_port)
        return ports

    def _after(self) -> None:
        """After every event, outside the lock (see the module docstring); again while retried packets asked for
        NAT blocks or queued flow state (a few rounds at most: each lease answers its packets)."""
        if not (self.flow_state.has_outbox or self.tables.nat_leaser.has_pending or self.waiting.has_ready):
            return   # the common case after an upcall, seen without the lock (set under it, by this event)
        for _ in range(AFTER_ROUNDS):
            with self.gate.lock:
                frames = self.flow_state.take_outbox()
            for frame, actions in frames:
                try:
                    self.datapath.execute(frame, actions)
                except Exception:
                    log.warning("agent %s: cannot send flow state", self.host_id, exc_info=True)
            if self.tables.nat_leaser.has_pending:
                self.tables.nat_leaser.lease_pending()
            self.workflow.retry_ready()
            if not (self.tables.nat_leaser.has_pending or self.flow_state.has_outbox):
                return

    def _settled(self) -> None:
        """Every port that can be bound here is (under the gate): say so, and give inherited flows their grace."""
        self.host.mark_bound()
        self.flows.inherit_until(self.clock.now() + self.config.inherited_grace)

    def _stopped(self, upcall: Upcall) -> None:
        self.counters.drop(AgentDrop.STOPPED)

    def _tick_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.tick()
            except Exception:
                log.exception("agent %s: tick failed", self.host_id)

    def __repr__(self) -> str:
        return f"Agent({self.host_id!r}, {'running' if self._running else 'stopped'})"
