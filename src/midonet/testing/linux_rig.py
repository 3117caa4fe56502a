"""`LinuxRig`: the Linux datapath's world for the conformance suite, made of network namespaces.

Role: what `MemoryRig` is to the memory backend (tests/contract/test_datapath_contract.py), on a real kernel::

    <prefix>-ul              the underlay: a Linux bridge
    <prefix>-h1 ...          a host: `ul0` on the underlay (its underlay address), one veth per interface
                             ("a", "b" ...) whose peer is a VM's `eth0`, and a `LinuxDatapath` with its bpffs
                             under /run/<prefix>/<host>
    <prefix>-h1-a ...        a VM: a `VmTap` (AF_PACKET) that injects frames and captures what arrives

`quiesce` is the "marker frame through the same path" of the suite's contract: a probe frame from every port's
VM and, through the underlay, into every VXLAN port (the datapath reports each when it came up its upcall
channel, so everything that port received earlier was handled, the handler included), then a marker frame into
every VM (its tap reports it, so every frame delivered earlier was captured). Twice, since a handler may send
packets that cause more work. Frames in flight are processed by the kernel within the send system call or just
after; the markers make that a guarantee rather than a hope.

`close` tears down every datapath, then every namespace, then the state directory, even after failures.

May import: `midonet.datapath`, `midonet.packets`, `midonet.testing`.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from midonet.datapath.base import OVERLAY_UDP_PORT, Datapath, PortKind
from midonet.datapath.linux import LinuxDatapath, netns
from midonet.datapath.linux.layout import probe_frame
from midonet.datapath.linux.loader import Bpffs, is_bpffs
from midonet.datapath.linux.packetsock import PacketSocket
from midonet.packets import vxlan
from midonet.testing.namespaces import NamespaceWorld, made_prefixes

TIMEOUT = 5.0
MARKER_ETH_TYPE = b"\x88\xb6"
MARKER_MAGIC = b"mn-mark!"


def marker_frame(token: bytes) -> bytes:
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\xfe" + MARKER_ETH_TYPE + MARKER_MAGIC + token


class VmTap:
    """A VM's view of its interface: `inject` frames, capture what arrives (a thread reads it)."""

    def __init__(self, netns_name: str, ifname: str = "eth0") -> None:
        self.netns = netns_name
        self._tx = PacketSocket(ifname, netns_name=netns_name, receive=False)
        self._rx = PacketSocket(ifname, netns_name=netns_name, ignore_outgoing=True)
        self._rx.setblocking(False)
        self._cond = threading.Condition()
        self._frames: list[bytes] = []
        self._markers: set[bytes] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"tap-{netns_name}", daemon=True)
        self._thread.start()

    def inject(self, frame: bytes) -> None:
        self._tx.send(frame)

    def _run(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self._rx.fileno()], [], [], 0.05)
            if not ready:
                continue
            while True:
                try:
                    frame = self._rx.receive().frame
                except (BlockingIOError, OSError):
                    break
                with self._cond:
                    if frame[12:14] == MARKER_ETH_TYPE and frame[14:22] == MARKER_MAGIC:
                        self._markers.add(frame[22:])
                    else:
                        self._frames.append(frame)
                    self._cond.notify_all()

    def wait_frames(self, count: int = 1, timeout: float = TIMEOUT) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._frames) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.netns}: {len(self._frames)} of {count} frames within {timeout} s")
                self._cond.wait(remaining)
            taken, self._frames = self._frames[:count], self._frames[count:]
            return taken

    def take(self) -> list[bytes]:
        with self._cond:
            taken, self._frames = self._frames, []
            return taken

    def wait_marker(self, token: bytes, timeout: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._markers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._markers.discard(token)
            return True

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self._tx.close()
        self._rx.close()


class _Host:
    def __init__(self, name: str, netns_name: str, underlay_ip: str) -> None:
        self.name = name
        self.netns = netns_name
        self.underlay_ip = underlay_ip
        self.taps: dict[str, VmTap] = {}
        self.host_side: dict[str, PacketSocket] = {}   # to send markers into the VMs
        self.dp: LinuxDatapath | None = None
        self.udp: socket.socket | None = None          # to send VXLAN probes from this host


class LinuxRig:
    """See the module docstring; `DatapathRig` of midonet.testing.datapath_conformance."""

    def __init__(self, world: NamespaceWorld | None = None) -> None:
        self.world = world or NamespaceWorld()
        self.state_root = state_root(self.world.prefix)
        self.hosts: dict[str, _Host] = {}

    def add_host(self, name: str, underlay_ip: str, interfaces: Sequence[str]) -> Datapath:
        return self.add_linux_host(name, underlay_ip, interfaces)

    def add_linux_host(self, name: str, underlay_ip: str, interfaces: Sequence[str],
                       addresses: Mapping[str, str] | None = None, *, writer_process: bool = False) -> LinuxDatapath:
        """A host, its VMs (VM behind `interface` gets `addresses[interface]`, a CIDR, if given), its datapath
        (`writer_process`: as the agent runs it)."""
        ns = self.world.namespace(name)
        host = self.hosts[name] = _Host(name, ns, underlay_ip)
        self.world.plug_underlay(ns, underlay_ip)
        for interface in interfaces:
            cidr = (addresses or {}).get(interface)
            vm = self.world.vm(ns, interface, f"{name}-{interface}", cidr=cidr)
            host.taps[interface] = VmTap(vm)
            host.host_side[interface] = PacketSocket(interface, netns_name=ns, receive=False)
        host.dp = LinuxDatapath("midonet", netns_name=ns, state_dir=self.state_root / name,
                                writer_process=writer_process)
        return host.dp

    def datapath(self, host: str) -> LinuxDatapath:
        dp = self.hosts[host].dp
        assert dp is not None
        return dp

    def vm(self, host: str, interface: str) -> str:
        """The namespace of the VM behind `interface` of `host`."""
        return self.hosts[host].taps[interface].netns

    def host_netns(self, host: str) -> str:
        return self.hosts[host].netns

    def reopen(self, host: str, bpf_object: Path | None = None) -> LinuxDatapath:
        """Release the host's datapath (the kernel keeps forwarding) and start a new one on the same state (with
        `bpf_object`: as an agent of another build would)."""
        entry = self.hosts[host]
        assert entry.dp is not None
        entry.dp.release()
        entry.dp = LinuxDatapath("midonet", netns_name=entry.netns, state_dir=self.state_root / host,
                                 bpf_object=bpf_object)
        return entry.dp

    def inject(self, host: str, interface: str, frame: bytes) -> None:
        self.hosts[host].taps[interface].inject(frame)

    def wait_frames(self, host: str, interface: str, count: int = 1, timeout: float = TIMEOUT) -> list[bytes]:
        return self.hosts[host].taps[interface].wait_frames(count, timeout)

    def take(self, host: str, interface: str) -> list[bytes]:
        return self.hosts[host].taps[interface].take()

    def quiesce(self) -> None:
        for _ in range(2):
            self._probe_datapaths()
            self._flush_taps()

    def _probe_datapaths(self) -> None:
        waits: list[tuple[LinuxDatapath, bytes, str]] = []
        for host in self.hosts.values():
            if host.dp is None:
                continue
            host.dp.drain()   # executes still on their way to the kernel come before the probes
            for port in host.dp.ports():
                token = secrets.token_bytes(8)
                if port.kind is PortKind.NETDEV and port.name in host.taps:
                    host.taps[port.name].inject(probe_frame(token))
                    waits.append((host.dp, token, f"{host.name}/{port.name}"))
                elif port.kind is PortKind.VXLAN and self._send_tunnel_probe(host, token):
                    waits.append((host.dp, token, f"{host.name}/{port.name}"))
        for dp, token, where in waits:
            if not dp.wait_probe(token, TIMEOUT):
                raise AssertionError(f"quiesce: the probe through {where} never came up")

    def _send_tunnel_probe(self, target: _Host, token: bytes) -> bool:
        sender = next((h for h in self.hosts.values() if h is not target), None)
        if sender is None:
            return False
        if sender.udp is None:
            with netns.entered(sender.netns):
                sender.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.udp.bind((sender.underlay_ip, 0))
        sender.udp.sendto(vxlan.build(1, probe_frame(token)), (target.underlay_ip, OVERLAY_UDP_PORT))
        return True

    def _flush_taps(self) -> None:
        waits: list[tuple[VmTap, bytes]] = []
        for host in self.hosts.values():
            for interface, tap in host.taps.items():
                token = secrets.token_bytes(8)
                host.host_side[interface].send(marker_frame(token))
                waits.append((tap, token))
        for tap, token in waits:
            if not tap.wait_marker(token, TIMEOUT):
                raise AssertionError(f"quiesce: the marker into {tap.netns} never arrived")

    def close(self) -> None:
        """Tear down datapaths, taps and namespaces, whatever fails on the way."""
        with contextlib.ExitStack() as stack:
            stack.callback(self._remove_state)
            stack.callback(self.world.close)
            for host in self.hosts.values():
                for tap in host.taps.values():
                    stack.callback(tap.close)
                for sock in host.host_side.values():
                    stack.callback(sock.close)
                if host.udp is not None:
                    stack.callback(host.udp.close)
                if host.dp is not None:
                    stack.callback(host.dp.close)
        self.hosts.clear()

    def _remove_state(self) -> None:
        remove_state(self.state_root)


def state_root(prefix: str) -> Path:
    """Where the datapaths of world `prefix` keep their bpffs (one directory per host)."""
    return Path("/run") / prefix


def remove_state(root: Path) -> None:
    """Unmount every bpffs under `root` (a world's state directory) and remove it."""
    if not root.exists():
        return
    for child in root.iterdir():
        if is_bpffs(child):
            Bpffs(child).unmount()
        else:
            with contextlib.suppress(OSError):
                child.rmdir()
    root.rmdir()


def leftover_state() -> list[Path]:
    """State directories of this process's worlds that are still there."""
    return sorted(root for prefix in made_prefixes() if (root := state_root(prefix)).exists())
