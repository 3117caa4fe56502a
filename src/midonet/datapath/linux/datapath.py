"""`LinuxDatapath`: the `Datapath` contract on the Linux kernel, with tc-BPF as the fast path.

Role: the agent's datapath on a real host (ARCHITECTURE.md "Deliberate differences": tc-BPF, not the OVS kernel
module). It passes the same conformance suite as the memory backend (`midonet.testing.datapath_conformance`).

    LinuxDatapath(name, netns=None, state_dir=None)
    ├── bpffs       a bpffs on state_dir: the program's maps pinned by `tc` (tc/globals), programs (progs)
    ├── channel     upcalls.UpcallChannel: the upcall veth pair and the thread reading it
    ├── tables      kernel.KernelTables: config, ports, masks, flows, counters (the bpf() syscall)
    ├── flows       flows.FlowTable: kernel megaflows + userspace flows
    ├── ports       {number: _Port}: NETDEV = an interface with `mn_port` on its tc ingress and an AF_PACKET
    │               socket to send on; VXLAN = a `vxlan external dstport 6677` device with `mn_tunnel`
    └── counters    Python's share of the statistics (upcalls, userspace hits, drops decided here)

Packets: the kernel forwards packets of installed flows (rewrites, VLAN push/pop, VXLAN encapsulation through
bpf_skb_set_tunnel_key, outputs with bpf_clone_redirect/bpf_redirect) and counts them per flow; the agent never
sees them. A miss comes up the channel: a userspace flow that matches runs here, anything else is an `Upcall` to
the handler, on the channel's thread, with no lock held, so the handler may `install` and `execute` at once.
`execute` of a packet with the actions of the kernel flow installed last (the agent installs a flow, then
executes its first packet) is done by the kernel: the packet goes into the upcall channel with a `struct mn_exec`
naming that flow at its end (`layout.exec_trailer`), and the program runs the flow's actions on it, counting
nothing (no hit, no miss, no flow stats: as in Python).

With `writer_process` (the agent's choice: `midonet agent`, `midonet up`) those packets, and every kernel flow
installed, are written by the channel's writer process (`writer`), so what the kernel does for them runs off the
upcall thread. `install` then returns before the flow is in the map: a packet arriving meanwhile misses and comes
up, as it would have a moment earlier (the agent simulates it again); the flow table drains the process before it
reads or removes flows, `statistics()` and `drain()` before they return. Without it (the default: rigs that
install a flow and send a packet at once) `install` writes the flow itself.

Any other `execute` runs the actions in Python
(`memory.actions.interpret`: decide, then do): netdev outputs leave through the port's AF_PACKET socket
(PACKET_VNET_HDR, complete packets), tunnel outputs as VXLAN datagrams from a UDP socket bound to the tunnel's
source address. A kernel execute whose flow was removed before the kernel saw the packet comes back up the channel
(reason EXECUTE) and runs in Python from a ring of the last `EXEC_RING` executes' actions.

Restart: `release()` stops the Python side and leaves the kernel side running (flows keep forwarding while the
agent restarts); a new `LinuxDatapath` on the same state directory reattaches: it finds the pinned maps, lists
the ports and flows they hold, and reads the same channel. `close()` tears everything down: filters, devices,
channel, bpffs. Port numbers are never reused, even across restarts (the next number lives in `mn_config`).

Statistics: hits, misses and the kernel's drops live in per-CPU maps and survive a restart; upcalls and the drops
decided in Python (no handler, a failing handler, execute errors) restart with the object. Not counted: frames the
kernel drops after a redirect (an interface down or an MTU exceeded on the kernel path).

Probes: a frame of EtherType 0x88B5 starting with "mn-probe" entering a port goes straight up the channel and is
never counted nor shown to the handler; `wait_probe(token)` says when it arrived, i.e. when everything that port
received before it was processed (test rigs use it to quiesce).

May import: `midonet.packets`, `midonet.datapath.base`, `midonet.datapath.memory` (actions, classifier),
`midonet.datapath.linux`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

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
from midonet.datapath.linux import kernel, layout, netns
from midonet.datapath.linux.flows import FlowTable
from midonet.datapath.linux.kernel import KernelTables
from midonet.datapath.linux.links import Links
from midonet.datapath.linux.loader import PORT_SECTION, TUNNEL_SECTION, Bpffs, LoaderError, Tc, ensure_object
from midonet.datapath.linux.packetsock import PacketSocket
from midonet.datapath.linux.upcalls import ChannelStatistics, UpcallChannel
from midonet.datapath.memory.actions import Emit, Punt, interpret
from midonet.packets import MalformedPacket, parse_frame, vxlan

log = logging.getLogger(__name__)

UpcallHandler = Callable[[Upcall], None]
STATE_ROOT = Path("/run/midonet/datapath")

_KERNEL_DROPS = {
    layout.Counter.MALFORMED: DropReason.MALFORMED,
    layout.Counter.NO_PORT: DropReason.NO_PORT,
    layout.Counter.NO_TUNNEL: DropReason.NO_TUNNEL,
    layout.Counter.BAD_ENCAPSULATION: DropReason.BAD_ENCAPSULATION,
    layout.Counter.ACTION_FAILED: DropReason.ACTION_FAILED,
    layout.Counter.NO_UPCALL: DropReason.NO_HANDLER,
}
_SEND_ERRORS = {errno.ENETDOWN: DropReason.LINK_DOWN, errno.ENXIO: DropReason.LINK_DOWN,
                errno.EMSGSIZE: DropReason.TOO_BIG, errno.ENODEV: DropReason.NO_PORT}


EXEC_RING = 1024


@dataclass(frozen=True, slots=True)
class ExecuteStatistics:
    kernel: int = 0     # executes sent to the kernel to run an installed flow's actions
    returned: int = 0   # of those, come back because the flow was gone: run in Python
    lost: int = 0       # come back too late to find their actions in the ring: dropped
    flows_refused: int = 0   # flows the writer process wrote and the kernel refused (ENOMEM ...)


def default_state_dir(name: str, netns_name: str | None) -> Path:
    return STATE_ROOT / netns_name / name if netns_name else STATE_ROOT / name


@dataclass(frozen=True, slots=True)
class _Port:
    dp: DpPort
    ifindex: int
    sender: PacketSocket | None   # NETDEV ports


class LinuxDatapath:
    """A tc-BPF datapath in one network namespace; see the module docstring."""

    def __init__(self, name: str = "midonet", *, netns_name: str | None = None, state_dir: Path | None = None,
                 bpf_object: Path | None = None, writer_process: bool = False) -> None:
        self._name = name
        self._netns = netns_name
        self._links = Links(netns_name)
        self._bpffs = Bpffs(state_dir or default_state_dir(name, netns_name))
        base = name[:11]
        self._channel = UpcallChannel(self._links, f"{base}-up", f"{base}-upr",
                                      writer_process=writer_process)
        self._lock = threading.Lock()
        self._probes = threading.Condition()
        self._seen_probes: set[bytes] = set()
        self._handler: UpcallHandler | None = None
        self._closed = False
        self._ports: dict[int, _Port] = {}   # replaced, never mutated: readers take it without the lock
        self._udp: dict[str, socket.socket] = {}
        self._hits = 0          # userspace flows hit (the kernel counted those packets as misses)
        self._upcalls = 0
        self._drops: Counter[DropReason] = Counter()
        self._exec_seq = 0
        self._exec_ring: list[tuple[int, Sequence[Action], int | None] | None] = [None] * EXEC_RING
        self._exec_returned = self._exec_lost = 0
        self._exec_unsent = 0   # numbered for the kernel, but the send failed: run in Python instead
        self._flows_refused = 0
        try:
            self._tc = Tc(netns_name, self._bpffs, ensure_object(bpf_object))
            self._bpffs.mount()
            self.reattached = kernel.pinned(self._bpffs.globals)
            upcall_ifindex = self._channel.ensure()
            if not self.reattached or not self._tc.attached(self._channel.name):
                self._tc.attach(self._channel.name, PORT_SECTION)   # creates and pins the maps
            self._tables = KernelTables.open(self._bpffs.globals)
        except Exception as e:   # OSError, LoaderError, netlink errors, maps of another layout
            self._abandon()
            raise DatapathError(f"datapath {name}: {e}") from e
        self._tables.set_config(replace(self._tables.config(), upcall_ifindex=upcall_ifindex))
        self._flows = FlowTable(self._tables, self._channel)
        if self.reattached:
            self._flows.reload()
            self._reload_ports()
            self._upgrade()
        flow_map = self._tables.flow_map
        self._channel.start(self._on_channel, flows=flow_map.fd, key_size=flow_map.info.key_size,
                            refused=self._flow_refused)

    def _upgrade(self) -> None:
        """Programs of another build are running here (an upgraded agent reattached): attach ours on the upcall
        channel and every port (replacing, so no packet is lost; the pinned maps and flows stay), then drop the
        old pins."""
        stale = self._tc.stale_pins()
        if not stale:
            return
        try:
            self._tc.attach(self._channel.name, PORT_SECTION)
            for port in self._ports.values():
                self._tc.attach(port.dp.name, PORT_SECTION if port.dp.kind is PortKind.NETDEV else TUNNEL_SECTION)
        except LoaderError as e:
            raise DatapathError(f"datapath {self._name}: cannot replace the programs of another build: {e}") from e
        for pin in stale:
            pin.unlink(missing_ok=True)

    def _abandon(self) -> None:
        """Undo a failed start (a reattach leaves the kernel side as it found it)."""
        self._channel.stop()
        if not getattr(self, "reattached", True):
            self._channel.destroy()
            self._bpffs.unmount()

    @property
    def name(self) -> str:
        return self._name

    @property
    def netns(self) -> str | None:
        return self._netns

    @property
    def state_dir(self) -> Path:
        return self._bpffs.path

    # ---- ports ----

    def add_port(self, name: str, kind: PortKind = PortKind.NETDEV) -> DpPort:
        with self._lock:
            self._check_open()
            if any(p.dp.name == name for p in self._ports.values()):
                raise DatapathError(f"datapath {self._name} already has a port named {name!r}")
            if kind is PortKind.VXLAN:
                self._make_vxlan(name)
            ifindex = self._links.ifindex(name)
            if ifindex is None:
                raise DatapathError(f"no interface {name!r}" + (f" in {self._netns}" if self._netns else ""))
            config = self._tables.config()
            number = config.next_port
            self._tables.set_config(replace(config, next_port=number + 1))
            port = DpPort(number, name, kind)
            sender = None
            try:
                self._tables.set_port(number, ifindex, layout.PortType.of(kind))
                self._tc.attach(name, PORT_SECTION if kind is PortKind.NETDEV else TUNNEL_SECTION)
                if kind is PortKind.NETDEV:
                    sender = PacketSocket(name, netns_name=self._netns, receive=False, vnet_hdr=True)
            except (OSError, LoaderError) as e:
                self._tables.delete_port(number, ifindex)
                raise DatapathError(f"attaching {name}: {e}") from e
            self._ports = {**self._ports, number: _Port(port, ifindex, sender)}
            return port

    def _make_vxlan(self, name: str) -> None:
        existing = self._links.kind(name)
        if existing is None:
            if self._links.ifindex(name) is not None:
                raise DatapathError(f"{name} exists and is not a VXLAN device")
            self._links.add_vxlan(name, OVERLAY_UDP_PORT)
        elif existing != "vxlan":
            raise DatapathError(f"{name} exists and is a {existing} device, not VXLAN")
        self._links.quiet(name)
        self._links.up(name)

    def remove_port(self, number: int) -> None:
        with self._lock:
            self._check_open()
            port = self._ports.get(number)
            if port is None:
                raise DatapathError(f"datapath {self._name} has no port {number}")
            self._ports = {n: p for n, p in self._ports.items() if n != number}
            self._tables.delete_port(number, port.ifindex)
        self._release_port(port)

    def _release_port(self, port: _Port, *, kernel: bool = True) -> None:
        if port.sender is not None:
            port.sender.close()
        if not kernel:
            return
        if port.dp.kind is PortKind.NETDEV:
            self._tc.detach(port.dp.name)
        else:
            self._links.delete(port.dp.name)

    def ports(self) -> list[DpPort]:
        return [p.dp for p in sorted(self._ports.values(), key=lambda p: p.dp.number)]

    def _reload_ports(self) -> None:
        ports = {}
        for number, ifindex, kind in self._tables.ports():
            name = self._links.name(ifindex)
            if name is None:   # the interface went away while we were not running
                self._tables.delete_port(number, ifindex)
                continue
            sender = PacketSocket(name, netns_name=self._netns, receive=False, vnet_hdr=True) \
                if kind is layout.PortType.NETDEV else None
            ports[number] = _Port(DpPort(number, name, kind.kind), ifindex, sender)
        self._ports = ports

    # ---- flows ----

    def install(self, flow: Flow) -> None:
        with self._lock:
            self._check_open()
            self._flows.install(flow)

    def remove(self, key: FlowKey) -> FlowStats | None:
        with self._lock:
            self._check_open()
            return self._flows.remove(key)

    def flows(self) -> list[tuple[Flow, FlowStats]]:
        with self._lock:
            self._check_open()
            return self._flows.entries()

    def flow_stats(self, keys: Sequence[FlowKey]) -> dict[FlowKey, FlowStats]:
        with self._lock:
            self._check_open()
            return self._flows.stats_of(keys)

    def in_kernel(self, key: FlowKey) -> bool:
        """Whether the flow with this key runs in the kernel (False: a userspace flow, or none)."""
        with self._lock:
            return self._flows.in_kernel(key)

    def masks(self) -> dict[tuple[str, ...], int]:
        """The kernel's flow masks and their slots."""
        with self._lock:
            return self._flows.masks()

    # ---- packets ----

    def execute(self, packet: bytes, actions: Sequence[Action], in_port: int | None = None) -> None:
        with self._lock:
            self._check_open()
            entry = self._flows.executable(actions)
            if entry is not None:   # the kernel runs the flow's actions (see the module docstring)
                seq = self._exec_seq = self._exec_seq + 1
                self._exec_ring[seq % EXEC_RING] = (seq & 0xFFFFFFFF, actions, in_port)
                trailer = layout.exec_trailer(entry.key_bytes, seq, in_port or 0)
        if entry is not None:
            try:
                self._channel.send(bytes(packet) + trailer)
                return
            except OSError as e:
                with self._lock:
                    self._exec_unsent += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("datapath %s: kernel execute failed (%s), executing in Python", self._name, e)
        self._perform(bytes(packet), actions, in_port, None, None)

    def execute_statistics(self) -> ExecuteStatistics:
        """How many executes the kernel ran (see the module docstring)."""
        with self._lock:
            return ExecuteStatistics(self._exec_seq - self._exec_unsent, self._exec_returned, self._exec_lost,
                                     self._flows_refused)

    def on_upcall(self, handler: UpcallHandler) -> None:
        with self._lock:
            self._handler = handler

    def statistics(self) -> DatapathStatistics:
        self._channel.drain()   # what the executes still queued for the writer process will count
        channel = self._channel.statistics()
        with self._lock:
            self._check_open()
            counted = self._tables.counters()
            drops = Counter(self._drops)
            for which, reason in _KERNEL_DROPS.items():
                drops[reason] += counted[which]
            drops[DropReason.UPCALL_QUEUE_FULL] += channel.overflowed + channel.truncated
            hits = counted[layout.Counter.HITS] + self._hits
            misses = counted[layout.Counter.MISSES] - self._hits
            return DatapathStatistics.of(hits, misses, self._upcalls, drops)

    def channel_statistics(self) -> ChannelStatistics:
        """The upcall channel's own counters (packets finished in userspace: offloads seen from VMs)."""
        return self._channel.statistics()

    def drain(self) -> None:
        """Wait until every flow write and kernel execute so far has reached the kernel (the writer process does
        them; see `upcalls`): a rig that injects probes to quiesce drains first."""
        self._channel.drain()

    def wait_probe(self, token: bytes, timeout: float = 5.0) -> bool:
        """Wait until a probe frame with `token` came up the channel (see the module docstring)."""
        deadline = time.monotonic() + timeout
        with self._probes:
            while token not in self._seen_probes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._probes.wait(remaining)
            self._seen_probes.discard(token)
            return True

    # ---- life ----

    def release(self) -> None:
        """Stop the Python side and leave the kernel datapath forwarding (see the module docstring)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ports, self._ports = self._ports, {}
        self._channel.stop()
        for port in ports.values():
            if port.sender is not None:
                port.sender.close()
        self._close_sockets()

    def close(self) -> None:
        """Tear everything down: filters, the tunnel device, the channel, flows and the bpffs."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ports, self._ports = self._ports, {}
            self._handler = None
        gone = self._netns is not None and not netns.exists(self._netns)   # its devices went with it
        with contextlib.ExitStack() as teardown:   # every step runs, whatever fails before it (last first)
            teardown.callback(self._bpffs.unmount)
            if not gone:
                teardown.callback(self._channel.destroy)
                teardown.callback(self._tc.detach, self._channel.name)
            teardown.callback(self._close_sockets)
            for port in ports.values():
                teardown.callback(self._release_port, port, kernel=not gone)
            teardown.callback(self._channel.stop)

    def _close_sockets(self) -> None:
        for sock in self._udp.values():
            sock.close()
        self._udp.clear()
        self._tables.close()

    def __repr__(self) -> str:
        where = f", netns={self._netns!r}" if self._netns else ""
        return f"LinuxDatapath({self._name!r}{where}, ports={len(self._ports)})"

    # ---- the upcall path (the channel's thread) ----

    def _on_channel(self, meta: layout.Meta, frame: bytes) -> None:
        try:
            if meta.reason is layout.Reason.PROBE:
                token = layout.probe_token(frame)
                if token is not None:
                    with self._probes:
                        self._seen_probes.add(token)
                        self._probes.notify_all()
            elif meta.reason is layout.Reason.MISS:
                self._miss(meta, frame)
            elif meta.reason is layout.Reason.EXECUTE:
                self._returned(frame)
            else:
                self._deliver(Upcall(meta.port, frame, meta.tunnel_id, meta.tunnel_src))
        except Exception:   # never let the reader thread die
            log.exception("datapath %s: upcall processing failed", self._name)

    def _miss(self, meta: layout.Meta, frame: bytes) -> None:
        actions: tuple[Action, ...] | None = None
        with self._lock:
            if self._closed:
                return
            if len(self._flows.user):
                try:
                    match = parse_frame(frame, meta.port)
                except MalformedPacket:
                    match = None
                entry = None if match is None else self._flows.user.lookup(match, meta.tunnel_id)
                if entry is not None:
                    entry.hit(len(frame), time.monotonic())
                    self._hits += 1
                    actions = entry.flow.actions
        if actions is not None:
            self._perform(frame, actions, meta.port, meta.tunnel_id, meta.tunnel_src)
        else:
            self._deliver(Upcall(meta.port, frame, meta.tunnel_id, meta.tunnel_src))

    def _flow_refused(self, key_bytes: bytes, error: int) -> None:
        """The kernel refused a flow the writer process wrote (ENOMEM ...): its packets keep missing, so the agent
        simulates them and installs the flow again."""
        with self._lock:
            self._flows_refused += 1
        log.warning("datapath %s: the kernel refused a flow (%s)", self._name, errno.errorcode.get(error, error))

    def _returned(self, frame: bytes) -> None:
        """A kernel execute whose flow was gone: run its actions here."""
        seq = layout.exec_seq(frame)
        with self._lock:
            if self._closed:
                return
            held = self._exec_ring[seq % EXEC_RING] if seq is not None else None
            if held is None or held[0] != seq:
                self._exec_lost += 1
                held = None
            else:
                self._exec_returned += 1
        if held is None:
            self._drop(DropReason.ACTION_FAILED, "a kernel execute came back too late")
            return
        _, actions, in_port = held
        self._perform(frame[: -layout.EXEC_LEN], actions, in_port, None, None)

    def _deliver(self, upcall: Upcall) -> None:
        with self._lock:
            handler = self._handler
            if handler is not None:
                self._upcalls += 1
        if handler is None:
            self._drop(DropReason.NO_HANDLER, f"upcall on port {upcall.port}")
            return
        try:
            handler(upcall)
        except Exception:
            log.exception("datapath %s: upcall handler failed on port %d", self._name, upcall.port)
            self._drop(DropReason.HANDLER_FAILED, None)

    # ---- performing actions in Python ----

    def _perform(self, frame: bytes, actions: Sequence[Action], in_port: int | None,
                 tunnel_id: int | None, tunnel_src: str | None) -> None:
        result = interpret(frame, actions)
        for effect in result.effects:
            match effect:
                case Emit():
                    self._output(effect)
                case Punt(punted):
                    if in_port is None:
                        self._drop(DropReason.ACTION_FAILED, "userspace action without an in_port")
                    else:
                        self._deliver(Upcall(in_port, punted, tunnel_id, tunnel_src))
        if result.failure is not None:
            self._drop(DropReason.ACTION_FAILED, result.failure)

    def _output(self, emit: Emit) -> None:
        port = self._ports.get(emit.port)
        if port is None:
            self._drop(DropReason.NO_PORT, f"output to port {emit.port}")
        elif port.sender is not None:
            try:
                port.sender.send(emit.frame)
            except OSError as e:
                self._drop(_SEND_ERRORS.get(e.errno or 0, DropReason.ACTION_FAILED), f"{port.dp.name}: {e}")
        elif emit.tunnel is None:
            self._drop(DropReason.NO_TUNNEL, f"output to {port.dp.name}")
        else:
            self._send_tunnel(emit.frame, emit.tunnel)

    def _send_tunnel(self, frame: bytes, tunnel: SetTunnel) -> None:
        try:
            datagram = vxlan.build(tunnel.key, frame)
            sock = self._udp.get(tunnel.src)
            if sock is None:
                with netns.entered(self._netns):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((tunnel.src, 0))
                except OSError:
                    sock.close()
                    raise
                self._udp[tunnel.src] = sock
            sock.sendto(datagram, (tunnel.dst, OVERLAY_UDP_PORT))
        except (OSError, ValueError) as e:
            self._drop(DropReason.ACTION_FAILED, f"tunnel to {tunnel.dst}: {e}")

    def _drop(self, reason: DropReason, detail: object) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("datapath %s: drop (%s) %s", self._name, reason, detail)
        with self._lock:
            self._drops[reason] += 1

    def _check_open(self) -> None:
        if self._closed:
            raise DatapathError(f"datapath {self._name} is closed")

