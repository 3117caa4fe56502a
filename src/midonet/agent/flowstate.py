"""Flow-state replication: a flow's conntrack and NAT keys pushed to the interested hosts before its packet, imported
by them, kept on disk, and fetched by a port's new host (spec 4.2-4.5; ARCHITECTURE.md rule 4).

Role: the original's `FlowStateReplicator` + `PeerResolver` + the flow-state minion's port requests. Decided under
the agent's lock, done outside it: every method returns (or queues, `outbox`) frames with their datapath actions,
which the workflow executes after it let go of the lock.

    send     (`outgoing`, the workflow's `_decide`, between translate and install): the simulation created or
             refreshed keys (`ConnTracked`, `NatBound`) -> one STATE message (`flowstate_wire`) naming the ingress
             and egress ports -> each interested host (`PeerResolver`) gets it through the tunnel port, tunnel key
             0xFFFFFF, *before* the data packet (the frames go first in the execution). Kept in `storage` too.
             The flow is tagged with what the peer set depends on (ports, groups, tunnel routes).
    receive  (`accept`, the workflow's `_from_tunnel` for key 0xFFFFFF): decode (a malformed message is dropped
             and counted, `AgentDrop.FLOW_STATE`), import every key with no reference (`touch`: it idles out 60 s
             later unless imported again) and invalidate the flows tagged with it (a reply simulated before the
             state arrived), keep it in `storage`.
    restart  (`start`): the keys `storage` kept that are still fresh are imported again; the SNAT ports among
             them are given back to the leaser as reserved (`restore`), so a connection keeps its translation.
    move     (`port_bound`, when a binding here activates): the port's `previous_host_id` names another host ->
             a REQUEST for the port goes to it (retried `FETCH_ATTEMPTS` times, `FETCH_RETRY` apart, by `tick`);
             it answers with RESPONSE messages from its storage (the keys under that port), the last one marked;
             the answer is imported like any state. A port with no previous host, or previously here, needs no
             fetch: `start` imported what this host kept.

Interested hosts (`PeerResolver`, the original's `PeerResolver.collectPeersForPort`, spec 4.3): the owners --
other than this host -- of the ingress port and every egress port of the flow (all the ports of a flood), and of
every member of every *stateful* port group (`PortGroup.stateful`) one of those ports belongs to: the uplinks of an
asymmetric gateway, where a connection that leaves by one uplink may come back by another. A port's owner is the
host its `Port.active` key names (`TopologyCache.port_location`). The answer carries the tags that make it go
stale (the ports looked at, the groups), so that a membership or location change invalidates the flow and its next
packet pushes the state to the new set. A port, group or location not loaded yet is `NotYet` (all of them asked
for at once): the packet waits, as its state must reach the peers first.

Keys expire on every host 60 s after their last reference went (ingress host: its flows'; elsewhere: the last
import), by the tables' own expiry (`StoreStateTables.expire`), which invalidates the flows tagged with them.

Threads: everything is called under the agent's `EventGate` lock; frames are executed by the caller outside it.

May import: `midonet.datapath`, `midonet.simulation`, `midonet.state`, `midonet.topology`, `agent.*`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from midonet.agent.bindings import PortBindings
from midonet.agent.flowstate_storage import FlowStateStorage, SavedState
from midonet.agent.flowstate_wire import (
    FLOW_STATE_TUNNEL_KEY,
    FlowStateMessage,
    MalformedFlowState,
    MessageKind,
    decode,
    encode,
    frame,
    payload_of,
)
from midonet.agent.metrics import AgentDrop, Counters
from midonet.agent.topology_cache import TopologyCache
from midonet.agent.tunnel_zones import TunnelZones, tunnel_tag
from midonet.datapath.base import Action, Output, SetTunnel, Upcall
from midonet.simulation.results import FlowTag
from midonet.simulation.topology import NotYet
from midonet.state.clock import Clock
from midonet.state.conntrack import ConnTracked, ConnTrackKey, InMemoryConnTrack
from midonet.state.nat import InMemoryNatTable, NatBinding, NatBound, NatKey
from midonet.state.tables import StateWrite
from midonet.topology.ids import PortId

log = logging.getLogger(__name__)

FETCH_ATTEMPTS = 3
FETCH_RETRY = 1.0
"""Seconds between two requests for a moved port's state (the original's TCP `connection_timeout` is 2 s)."""

Frames = list[tuple[bytes, tuple[Action, ...]]]
Invalidate = Callable[[FlowTag], None]
Restore = Callable[[NatKey, NatBinding], object]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a simulation's keys make: the state frames to execute before the packet, the tags for its flow."""

    frames: tuple[tuple[bytes, tuple[Action, ...]], ...] = ()
    tags: frozenset[FlowTag] = frozenset()


NOTHING = Outgoing()


@dataclass(frozen=True, slots=True)
class Peers:
    """The hosts to send a flow's state to, and the tags under which that answer goes stale."""

    hosts: frozenset[str]
    tags: frozenset[FlowTag]


class PeerResolver:
    """The interested hosts of a flow (see the module docstring). `is_local(port)`: the port is bound here."""

    def __init__(self, host_id: str, cache: TopologyCache, is_local: Callable[[str], bool]) -> None:
        self._host_id = host_id
        self._cache = cache
        self._is_local = is_local

    def interested(self, ports: Iterable[str]) -> Peers:
        """The interested hosts of a flow through `ports` (ingress and egress); may raise `NotYet`."""
        hosts: set[str] = set()
        tags: set[FlowTag] = set()
        seen: set[str] = set()
        missing: list[NotYet] = []     # asked for all at once (the cache subscribes on the first ask): one wait

        def owner(port_id: str) -> None:
            if port_id in seen:
                return
            seen.add(port_id)
            tags.add(port_id)
            if self._is_local(port_id):
                return
            try:
                location = self._cache.port_location(port_id)
            except NotYet as e:
                missing.append(e)
                return
            if location is not None and location.host_id != self._host_id:
                hosts.add(location.host_id)

        for port_id in list(dict.fromkeys(ports)):
            owner(port_id)
            try:
                groups = sorted(self._cache.get_port(PortId(port_id)).port_groups)
            except NotYet as e:
                missing.append(e)
                continue
            for group_id in groups:
                tags.add(group_id)
                try:
                    group = self._cache.get_port_group(group_id)
                except NotYet as e:
                    missing.append(e)
                    continue
                if group.stateful:
                    for member in group.port_ids:
                        owner(member)
        if missing:
            raise missing[0]
        return Peers(frozenset(hosts), frozenset(tags))


@dataclass(slots=True)
class _Fetch:
    port_id: str
    host_id: str
    request_id: int
    attempts: int = 0
    next_at: float = 0.0


REPLICATED = (ConnTracked, NatBound)
"""The state writes that are flow state (replicated to the interested hosts); a MAC-learning reference is not."""


def has_flow_state(writes: Iterable[StateWrite]) -> bool:
    """Whether a simulation's writes hold any flow state (most first packets write a MAC-learning reference only)."""
    return any(isinstance(w, REPLICATED) for w in writes)


def keys_of(writes: Iterable[StateWrite]) -> tuple[tuple[ConnTrackKey, ...], tuple[tuple[NatKey, NatBinding], ...]]:
    """The flow-state keys a simulation created or refreshed."""
    conntrack = tuple(dict.fromkeys(w.key for w in writes if isinstance(w, ConnTracked)))
    nat = tuple(dict.fromkeys((w.key, w.binding) for w in writes if isinstance(w, NatBound)))
    return conntrack, nat


class FlowStateReplicator:
    """See the module docstring."""

    def __init__(self, host_id: str, conntrack: InMemoryConnTrack, nat: InMemoryNatTable, peers: PeerResolver,
                 tunnels: TunnelZones, bindings: PortBindings, storage: FlowStateStorage, clock: Clock,
                 invalidate: Invalidate, counters: Counters, *, restore: Restore | None = None) -> None:
        self.host_id = host_id
        self._conntrack = conntrack
        self._nat = nat
        self._peers = peers
        self._tunnels = tunnels
        self._bindings = bindings
        self.storage = storage
        self._clock = clock
        self._invalidate = invalidate
        self._counters = counters
        self._restore = restore
        self._fetches: dict[int, _Fetch] = {}
        self._request_ids = itertools.count(1)
        self._outbox: Frames = []

    # ---- lifecycle (under the lock) ----

    def start(self) -> None:
        """Import what the storage kept (an agent restart on the same data directory)."""
        saved = self.storage.open()
        self._import(saved.conntrack, saved.nat, invalidate=False)
        if self._restore is not None:
            for key, binding in saved.nat:
                self._restore(key, binding)
        if saved:
            log.info("host %s: %d flow-state keys restored", self.host_id, len(saved.conntrack) + len(saved.nat))

    def stop(self) -> None:
        self.storage.close()
        self._fetches.clear()
        self._outbox.clear()

    def tick(self) -> None:
        """Retry the fetches nobody answered, fsync and age the storage."""
        now = self._clock.now()
        for request_id, fetch in list(self._fetches.items()):
            if now < fetch.next_at:
                continue
            if fetch.attempts >= FETCH_ATTEMPTS:
                del self._fetches[request_id]
                self._counters.add("flow_state_fetches_failed")
                log.warning("host %s: no flow state for port %s from host %s", self.host_id, fetch.port_id,
                            fetch.host_id)
            else:
                self._request(fetch)
        self.storage.sync()
        self.storage.expire()

    @property
    def has_outbox(self) -> bool:
        return bool(self._outbox)

    def take_outbox(self) -> Frames:
        """The frames queued outside a packet's execution (requests), to execute once the lock is let go."""
        out, self._outbox = self._outbox, []
        return out

    # ---- sending ----

    def outgoing(self, ports: Sequence[str], writes: Iterable[StateWrite]) -> Outgoing:
        """The state frames of a simulation through `ports` (ingress first) that wrote `writes`; may raise
        `NotYet` (a peer not known yet: the packet waits, as its state must arrive first)."""
        conntrack, nat = keys_of(writes)
        if not conntrack and not nat:
            return NOTHING
        peers = self._peers.interested(ports)
        message = FlowStateMessage(self.host_id, MessageKind.STATE, ports[0], tuple(ports[1:]), conntrack, nat)
        self.storage.record(message)
        tags = set(peers.tags)
        actions: list[Action] = []
        for host in sorted(peers.hosts):
            tags.add(tunnel_tag(host))
            tunnel = self._tunnel_to(host)
            if tunnel is None:
                self._counters.add("flow_state_unreachable")
                continue
            actions.extend(tunnel)
        if not actions:
            return Outgoing((), frozenset(tags))
        payloads = self._encode(message)
        self._counters.add("flow_state_sent", len(payloads) * (len(actions) // 2))
        return Outgoing(tuple((frame(p), tuple(actions)) for p in payloads), frozenset(tags))

    def _tunnel_to(self, host: str, fallback_dst: str | None = None) -> tuple[Action, ...] | None:
        vxlan = self._bindings.vxlan_port
        route = self._tunnels.route(host)
        if vxlan is None:
            return None
        if route is not None:
            return (SetTunnel(FLOW_STATE_TUNNEL_KEY, route.src, route.dst), Output(vxlan))
        src = self._tunnels.my_ip()
        if fallback_dst is None or src is None:
            return None
        return (SetTunnel(FLOW_STATE_TUNNEL_KEY, src, fallback_dst), Output(vxlan))

    def _encode(self, message: FlowStateMessage) -> list[bytes]:
        try:
            return encode(message)
        except ValueError as e:     # an id that is not a UUID: a bug, not a peer's problem
            log.error("host %s: cannot encode flow state: %s", self.host_id, e)
            self._counters.add("flow_state_unencodable")
            return []

    # ---- receiving ----

    def accept(self, upcall: Upcall) -> Frames:
        """A flow-state packet from a peer: import it, or answer a request (the frames to execute)."""
        try:
            message = decode(payload_of(upcall.packet))
        except MalformedFlowState as e:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("host %s: malformed flow state from %s: %s", self.host_id, upcall.tunnel_src, e)
            self._counters.drop(AgentDrop.FLOW_STATE)
            return []
        if message.sender == self.host_id:
            return []
        self._counters.add("flow_state_received")
        if message.kind is MessageKind.REQUEST:
            assert message.ingress_port is not None
            return self._answer(message.sender, message.ingress_port, message.request_id, upcall.tunnel_src)
        self._import(message.conntrack, message.nat, invalidate=True)
        self.storage.record(message)
        if message.kind is MessageKind.RESPONSE and message.last:
            fetch = self._fetches.pop(message.request_id, None)
            if fetch is not None:
                self._counters.add("flow_state_fetches_done")
        return []

    def _import(self, conntrack: Iterable[ConnTrackKey], nat: Iterable[tuple[NatKey, NatBinding]], *,
                invalidate: bool) -> None:
        count = 0
        for key in conntrack:
            self._conntrack.touch(key)
            count += 1
            if invalidate:
                self._invalidate(("conntrack", key))
        for nat_key, binding in nat:
            self._nat.touch(nat_key, binding)
            count += 1
            if invalidate:
                self._invalidate(("nat", nat_key))
        self._counters.add("flow_state_keys_imported", count)

    # ---- a port that moved here ----

    def port_bound(self, port_id: str, previous_host_id: str | None) -> None:
        """A binding here became active: fetch its state from the host it was on before, if another one."""
        for request_id in [r for r, f in self._fetches.items() if f.port_id == port_id]:
            del self._fetches[request_id]
        if previous_host_id is None or previous_host_id == self.host_id:
            return
        fetch = _Fetch(port_id, previous_host_id, next(self._request_ids) & 0xFFFFFFFF)
        self._fetches[fetch.request_id] = fetch
        self._request(fetch)

    def pending_fetches(self) -> list[str]:
        """The ports whose state was asked for and not received yet."""
        return [f.port_id for f in self._fetches.values()]

    def _request(self, fetch: _Fetch) -> None:
        fetch.next_at = self._clock.now() + FETCH_RETRY
        tunnel = self._tunnel_to(fetch.host_id)
        if tunnel is None:          # no route to it yet: the next tick tries again, without using an attempt
            return
        fetch.attempts += 1
        request = FlowStateMessage(self.host_id, MessageKind.REQUEST, fetch.port_id, request_id=fetch.request_id)
        self._outbox.extend((frame(p), tunnel) for p in self._encode(request))
        self._counters.add("flow_state_fetches_sent")

    def _answer(self, host: str, port_id: str, request_id: int, tunnel_src: str | None) -> Frames:
        tunnel = self._tunnel_to(host, tunnel_src)
        if tunnel is None:
            self._counters.add("flow_state_unreachable")
            return []
        saved: SavedState = self.storage.for_port(port_id)
        response = FlowStateMessage(self.host_id, MessageKind.RESPONSE, egress_ports=(port_id,),
                                    conntrack=saved.conntrack, nat=saved.nat, request_id=request_id)
        self._counters.add("flow_state_requests_answered")
        return [(frame(p), tunnel) for p in self._encode(response)]
