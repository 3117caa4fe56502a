"""`MemoryDatapath`: the `Datapath` contract on a fake host, with a flow table that really forwards.

Role: the agent's datapath in tests, the sandbox and scale runs (faucet's "fake switch that really interprets
installed flows"). A product, not a mock: it passes the same conformance suite as the Linux backend
(`midonet.testing.datapath_conformance`).

    MemoryDatapath(name, host)
    ├── ports       {number: _Port}          NETDEV ports attach to the host's interfaces by name; the VXLAN
    │                                        port binds the host's overlay UDP port (6677) on the underlay
    ├── table       classifier.MegaflowTable  masked flows with their stats
    ├── handler     the upcall handler (one)
    └── counters    hits, misses, upcalls, drops by DropReason -> statistics()

A frame arriving on a port (a VM's `inject`, or a VXLAN frame from the underlay, decapsulated: the VNI becomes
`tunnel_id`, the outer source `tunnel_src`) is parsed (`parse_frame`; a malformed frame is dropped and counted)
and looked up. A hit counts on the flow (packets, bytes, last_used from the injected clock) and its actions are
performed (`actions.interpret`, then outputs to interfaces, to the underlay, upcalls for Userspace): the agent
never hears of it. A miss becomes an `Upcall` to the handler.

Upcalls are synchronous: the handler runs on the thread that delivered the frame, inside that thread's run loop
(`runloop`), never under the datapath's lock, so it may `install` and `execute` at once. When `inject` returns,
the miss was handled, its flow installed and its packet executed: tests need no waits. (An agent that wants a
queue puts one behind its handler.) A handler that raises is logged and counted (`upcall_handler_failed`).

Ports are numbered from 1 and numbers are never reused, so a stale flow cannot output to a newer port. One
VXLAN port per host (the overlay UDP port can be bound once).

Threads: one lock guards ports, table, handler and counters; parsing, actions and deliveries run outside it.
Nothing raised while forwarding reaches whoever sent the frame; every drop has a `DropReason`.

May import: `midonet.packets`, `midonet.datapath.base`, `midonet.datapath.memory`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from midonet.datapath.base import (
    OVERLAY_UDP_PORT,
    Action,
    DatapathError,
    DatapathStatistics,
    DpPort,
    DropReason,
    Flow,
    FlowKey,
    FlowStats,
    PortKind,
    SetTunnel,
    Upcall,
)
from midonet.datapath.memory.actions import Emit, Punt, interpret
from midonet.datapath.memory.classifier import MegaflowTable
from midonet.datapath.memory.host import MemoryHost
from midonet.datapath.memory.interfaces import FakeInterface, InterfaceDrop
from midonet.datapath.memory.underlay import underlay_mac
from midonet.packets import MalformedPacket, parse_frame, vxlan

log = logging.getLogger(__name__)

UpcallHandler = Callable[[Upcall], None]

_INTERFACE_DROPS = {
    InterfaceDrop.LINK_DOWN: DropReason.LINK_DOWN,
    InterfaceDrop.TOO_BIG: DropReason.TOO_BIG,
    InterfaceDrop.NOT_ATTACHED: DropReason.NO_PORT,
}


@dataclass(frozen=True, slots=True)
class _Port:
    dp: DpPort
    interface: FakeInterface | None   # NETDEV ports


class MemoryDatapath:
    """A datapath on a `MemoryHost`; see the module docstring."""

    def __init__(self, name: str, host: MemoryHost, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._host = host
        self._clock = clock
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._ports: dict[int, _Port] = {}   # replaced, never mutated: readers take it without the lock
        self._table = MegaflowTable()
        self._handler: UpcallHandler | None = None
        self._closed = False
        self._hits = 0
        self._misses = 0
        self._upcalls = 0
        self._drops: Counter[DropReason] = Counter()

    @property
    def name(self) -> str:
        return self._name

    @property
    def host(self) -> MemoryHost:
        return self._host

    # ---- ports ----

    def add_port(self, name: str, kind: PortKind = PortKind.NETDEV) -> DpPort:
        with self._lock:
            self._check_open()
            if any(p.dp.name == name for p in self._ports.values()):
                raise DatapathError(f"datapath {self._name} already has a port named {name!r}")
            number = next(self._numbers)
            port = DpPort(number, name, kind)
            if kind is PortKind.NETDEV:
                interface = self._host.interfaces.attach(name, lambda frame: self._receive(number, frame))
                entry = _Port(port, interface)
            else:
                self._host.bind_udp(OVERLAY_UDP_PORT, lambda outer: self._receive_tunnel(number, outer))
                entry = _Port(port, None)
            self._ports = {**self._ports, number: entry}
            return port

    def remove_port(self, number: int) -> None:
        with self._lock:
            self._check_open()
            entry = self._ports.get(number)
            if entry is None:
                raise DatapathError(f"datapath {self._name} has no port {number}")
            self._ports = {n: p for n, p in self._ports.items() if n != number}
        self._release(entry)

    def ports(self) -> list[DpPort]:
        return [p.dp for p in self._ports.values()]

    # ---- flows ----

    def install(self, flow: Flow) -> None:
        with self._lock:
            self._check_open()
            self._table.insert(flow)

    def remove(self, key: FlowKey) -> FlowStats | None:
        with self._lock:
            self._check_open()
            return self._table.delete(key)

    def flows(self) -> list[tuple[Flow, FlowStats]]:
        with self._lock:
            return self._table.entries()

    def flow_stats(self, keys: Sequence[FlowKey]) -> dict[FlowKey, FlowStats]:
        with self._lock:
            found = {}
            for key in keys:
                held = self._table.get(key)
                if held is not None:
                    found[key] = held[1]
            return found

    def flow(self, key: FlowKey) -> tuple[Flow, FlowStats] | None:
        """The installed flow with exactly this key and its stats, or None."""
        with self._lock:
            return self._table.get(key)

    def masks(self) -> list[tuple[str, ...]]:
        """The distinct flow masks, in lookup order (see `classifier`)."""
        with self._lock:
            return self._table.masks()

    # ---- packets ----

    def execute(self, packet: bytes, actions: Sequence[Action], in_port: int | None = None) -> None:
        with self._lock:
            self._check_open()
        self._perform(bytes(packet), actions, in_port, None, None)

    def on_upcall(self, handler: UpcallHandler) -> None:
        with self._lock:
            self._handler = handler

    def statistics(self) -> DatapathStatistics:
        with self._lock:
            return DatapathStatistics.of(self._hits, self._misses, self._upcalls, self._drops)

    def close(self) -> None:
        """Detach every port and forget every flow; later calls raise DatapathError (closing twice is fine)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entries, self._ports = list(self._ports.values()), {}
            self._table.clear()
            self._handler = None
        for entry in entries:
            self._release(entry)

    def __repr__(self) -> str:
        return f"MemoryDatapath({self._name!r}, host={self._host.name!r}, ports={len(self._ports)})"

    # ---- the fast path ----

    def _receive(self, port: int, frame: bytes, tunnel_id: int | None = None, tunnel_src: str | None = None) -> None:
        """A frame arrived on `port`: forward it by its flow, or upcall it."""
        try:
            match = parse_frame(frame, port)
        except MalformedPacket as e:
            self._drop(DropReason.MALFORMED, e)
            return
        now = self._clock()
        actions: tuple[Action, ...] | None = None
        handler: UpcallHandler | None = None
        with self._lock:
            if self._closed or port not in self._ports:   # removed while the frame was on its way
                self._drops[DropReason.NO_PORT] += 1
                return
            entry = self._table.lookup(match, tunnel_id)
            if entry is not None:
                self._hits += 1
                entry.hit(len(frame), now)
                actions = entry.flow.actions
            else:
                self._misses += 1
                handler = self._handler
                if handler is not None:
                    self._upcalls += 1
        if actions is not None:
            self._perform(frame, actions, port, tunnel_id, tunnel_src)
        elif handler is None:
            self._drop(DropReason.NO_HANDLER, f"miss on port {port}")
        else:
            self._upcall(handler, Upcall(port, frame, tunnel_id, tunnel_src))

    def _receive_tunnel(self, port: int, outer: bytes) -> None:
        """An underlay frame for the overlay port: decapsulate and receive the inner frame on the VXLAN port."""
        try:
            decap = vxlan.decapsulate(outer, port=OVERLAY_UDP_PORT)
        except MalformedPacket as e:
            self._drop(DropReason.BAD_ENCAPSULATION, e)
            return
        self._receive(port, decap.inner, decap.vni, decap.outer_ip_src)

    def _perform(self, frame: bytes, actions: Sequence[Action], in_port: int | None,
                 tunnel_id: int | None, tunnel_src: str | None) -> None:
        result = interpret(frame, actions)
        for effect in result.effects:
            match effect:
                case Emit():
                    self._output(effect)
                case Punt(punted):
                    self._punt(punted, in_port, tunnel_id, tunnel_src)
        if result.failure is not None:
            self._drop(DropReason.ACTION_FAILED, result.failure)

    def _output(self, emit: Emit) -> None:
        entry = self._ports.get(emit.port)
        if entry is None:
            self._drop(DropReason.NO_PORT, f"output to port {emit.port}")
        elif entry.interface is not None:
            reason = self._host.interfaces.deliver(entry.interface, emit.frame)
            if reason is not None:
                self._drop(_INTERFACE_DROPS[reason], f"output to {entry.dp.name}")
        elif emit.tunnel is None:
            self._drop(DropReason.NO_TUNNEL, f"output to {entry.dp.name}")
        else:
            self._tunnel(emit.frame, emit.tunnel)

    def _tunnel(self, frame: bytes, tunnel: SetTunnel) -> None:
        try:
            outer = vxlan.encapsulate(
                frame, vni=tunnel.key, eth_src=self._host.underlay_mac, eth_dst=underlay_mac(tunnel.dst),
                ip_src=tunnel.src, ip_dst=tunnel.dst, dst_port=OVERLAY_UDP_PORT)
        except ValueError as e:   # a VNI past 24 bits, an address that is not IPv4, a frame too long
            self._drop(DropReason.ACTION_FAILED, e)
            return
        self._host.send_underlay(outer)

    def _punt(self, frame: bytes, in_port: int | None, tunnel_id: int | None, tunnel_src: str | None) -> None:
        with self._lock:
            handler = self._handler
            if handler is not None and in_port is not None:
                self._upcalls += 1
        if handler is None:
            self._drop(DropReason.NO_HANDLER, "userspace action")
        elif in_port is None:
            self._drop(DropReason.ACTION_FAILED, "userspace action on a packet executed without an in_port")
        else:
            self._upcall(handler, Upcall(in_port, frame, tunnel_id, tunnel_src))

    def _upcall(self, handler: UpcallHandler, upcall: Upcall) -> None:
        try:
            handler(upcall)
        except Exception:
            log.exception("datapath %s: upcall handler failed on port %d", self._name, upcall.port)
            self._drop(DropReason.HANDLER_FAILED, None)

    def _drop(self, reason: DropReason, detail: object) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("datapath %s: drop (%s) %s", self._name, reason, detail)
        with self._lock:
            self._drops[reason] += 1

    # ---- housekeeping ----

    def _release(self, entry: _Port) -> None:
        if entry.interface is not None:
            self._host.interfaces.detach(entry.interface)
        else:
            self._host.unbind_udp(OVERLAY_UDP_PORT)

    def _check_open(self) -> None:
        if self._closed:
            raise DatapathError(f"datapath {self._name} is closed")
