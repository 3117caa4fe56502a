"""The fake interfaces of a fake host: what a VM's tap or a container's veth looks like to a memory datapath.

Role: the edge of the fake world. Each `FakeInterface` has a name, a MAC, an MTU and a link state. A datapath port
attaches to an interface by name (`Interfaces.attach`, called by `MemoryDatapath.add_port`); from then on:

    VM side                                         datapath side
    inject(name, frame)   ---- link up, fits ---->  the port's receiver (scheduled: runloop.run_soon)
    captured / take / wait_frames  <-- or the callback set with on_frame --  deliver(frame) (Output to the port)

A frame is dropped, and counted on the interface (`statistics(name)`), when the link is down (both ways), when no
datapath port is attached (VM side), or when its payload is larger than the MTU (both ways, as a veth does).
A callback set with `on_frame` receives the frames instead of the capture buffer: a fake VM can answer ARP or
ping by calling `inject` from it (the answer is scheduled, never nested).

Threads: one lock per host's `Interfaces` guards every interface and its buffer; `wait_frames` waits on its
condition with a deadline. No callback or receiver runs under the lock.

Errors: `DatapathError` for an unknown interface name, a name already in use, or attaching an interface that is
already attached (a port of this or another datapath holds it).

May import: `midonet.packets`, `midonet.datapath.base`, `midonet.datapath.memory.runloop`.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from midonet.datapath.base import DatapathError
from midonet.datapath.memory import runloop
from midonet.packets import ethernet

log = logging.getLogger(__name__)

Receiver = Callable[[bytes], None]

DEFAULT_MTU = 1500


class InterfaceDrop(enum.StrEnum):
    LINK_DOWN = "link_down"          # the link is down (either way)
    NOT_ATTACHED = "not_attached"    # the VM sent a frame and no datapath port is attached
    TOO_BIG = "too_big"              # the payload exceeds the MTU (either way)


@dataclass(frozen=True, slots=True)
class InterfaceStatistics:
    sent: int = 0        # frames the VM sent that went on to the datapath
    received: int = 0    # frames the datapath sent that reached the VM (buffer or callback)
    drops: tuple[tuple[InterfaceDrop, int], ...] = ()

    def dropped(self, reason: InterfaceDrop | None = None) -> int:
        return sum(n for r, n in self.drops if reason is None or r == reason)


def default_mac(host: str, name: str) -> str:
    """A stable, locally administered unicast MAC for interface `name` of `host`."""
    return "02:fe:" + zlib.crc32(f"{host}/{name}".encode()).to_bytes(4, "big").hex(":")


def payload_length(frame: bytes) -> int:
    """The bytes after the Ethernet header and its VLAN tags (what an MTU limits)."""
    offset = ethernet.HEADER_LENGTH
    while len(frame) >= offset and int.from_bytes(frame[offset - 2 : offset], "big") in ethernet.VLAN_TPIDS:
        offset += ethernet.TAG_LENGTH
    return max(0, len(frame) - offset)


class FakeInterface:
    """One interface. Read its fields freely; change it only through its host's `Interfaces`."""

    __slots__ = ("_buffer", "_callback", "_drops", "_received", "_receiver", "_sent", "mac", "mtu", "name", "up")

    def __init__(self, name: str, mac: str, mtu: int, up: bool) -> None:
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.up = up
        self._receiver: Receiver | None = None
        self._callback: Receiver | None = None
        self._buffer: list[bytes] = []
        self._sent = 0
        self._received = 0
        self._drops: Counter[InterfaceDrop] = Counter()

    @property
    def attached(self) -> bool:
        return self._receiver is not None

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"FakeInterface({self.name!r}, mac={self.mac}, mtu={self.mtu}, {state})"


class Interfaces:
    """A host's fake interfaces by name; see the module docstring."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._cond = threading.Condition(threading.Lock())
        self._by_name: dict[str, FakeInterface] = {}

    # ---- the host's configuration ----

    def add(self, name: str, *, mac: str | None = None, mtu: int = DEFAULT_MTU, up: bool = True) -> FakeInterface:
        """Create interface `name` (link up unless told otherwise); DatapathError if the name is taken."""
        if mtu < 68:
            raise ValueError(f"MTU {mtu} is below the IPv4 minimum of 68")
        iface = FakeInterface(name, mac if mac is not None else default_mac(self._host, name), mtu, up)
        with self._cond:
            if name in self._by_name:
                raise DatapathError(f"host {self._host} already has an interface {name!r}")
            self._by_name[name] = iface
        return iface

    def remove(self, name: str) -> None:
        """Delete interface `name`; an attached port stops receiving from it and its output is dropped."""
        with self._cond:
            self._get(name)._receiver = None
            del self._by_name[name]

    def get(self, name: str) -> FakeInterface:
        with self._cond:
            return self._get(name)

    def names(self) -> list[str]:
        with self._cond:
            return list(self._by_name)

    def __contains__(self, name: object) -> bool:
        with self._cond:
            return name in self._by_name

    def set_link(self, name: str, up: bool) -> None:
        """Bring the link up or down; a down link drops frames both ways."""
        with self._cond:
            self._get(name).up = up

    def on_frame(self, name: str, callback: Receiver | None) -> None:
        """Hand frames the datapath sends to `name` to `callback` instead of capturing them (None: capture again)."""
        with self._cond:
            self._get(name)._callback = callback

    def statistics(self, name: str) -> InterfaceStatistics:
        with self._cond:
            iface = self._get(name)
            drops = tuple(sorted((r, n) for r, n in iface._drops.items() if n))
            return InterfaceStatistics(iface._sent, iface._received, drops)

    # ---- the VM's side ----

    def inject(self, name: str, frame: bytes) -> None:
        """Send `frame` from the VM behind `name`; returns once the fake world has processed it (runloop)."""
        with self._cond:
            iface = self._get(name)
            receiver = iface._receiver
            reason = _check(iface, frame)
            if reason is None and receiver is None:
                reason = InterfaceDrop.NOT_ATTACHED
            if reason is not None:
                iface._drops[reason] += 1
                return
            iface._sent += 1
        assert receiver is not None
        runloop.run_soon(functools.partial(receiver, bytes(frame)))

    def captured(self, name: str) -> list[bytes]:
        """The frames the VM behind `name` has received and nobody took yet, oldest first."""
        with self._cond:
            return list(self._get(name)._buffer)

    def take(self, name: str) -> list[bytes]:
        """Like `captured`, and empty the buffer."""
        with self._cond:
            iface = self._get(name)
            frames, iface._buffer = iface._buffer, []
            return frames

    def wait_frames(self, name: str, count: int = 1, timeout: float = 5.0) -> list[bytes]:
        """Take the `count` oldest captured frames once they are there; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            iface = self._get(name)
            while len(iface._buffer) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self._host}/{name}: {len(iface._buffer)} of {count} frames within {timeout} s")
                self._cond.wait(remaining)
            frames, iface._buffer = iface._buffer[:count], iface._buffer[count:]
            return frames

    # ---- the datapath's side ----

    def attach(self, name: str, receiver: Receiver) -> FakeInterface:
        """Connect a datapath port: frames the VM sends go to `receiver`. DatapathError if absent or attached."""
        with self._cond:
            iface = self._by_name.get(name)
            if iface is None:
                raise DatapathError(f"host {self._host} has no interface {name!r}")
            if iface._receiver is not None:
                raise DatapathError(f"interface {name!r} of host {self._host} is already attached to a port")
            iface._receiver = receiver
            return iface

    def detach(self, iface: FakeInterface) -> None:
        """Disconnect the port attached to `iface` (nothing if it is gone or was detached)."""
        with self._cond:
            iface._receiver = None

    def deliver(self, iface: FakeInterface, frame: bytes) -> InterfaceDrop | None:
        """A frame the datapath output to `iface`: captured or given to the callback; why not, if it was dropped."""
        with self._cond:
            reason = _check(iface, frame)
            if reason is None and self._by_name.get(iface.name) is not iface:
                reason = InterfaceDrop.NOT_ATTACHED   # the interface was removed under the port
            if reason is not None:
                iface._drops[reason] += 1
                return reason
            iface._received += 1
            callback = iface._callback
            if callback is None:
                iface._buffer.append(frame)
                self._cond.notify_all()
                return None
        try:
            callback(frame)
        except Exception:   # a fake VM's bug must not stop the datapath's other outputs
            log.exception("%s/%s: frame callback failed", self._host, iface.name)
        return None

    def _get(self, name: str) -> FakeInterface:
        iface = self._by_name.get(name)
        if iface is None:
            raise DatapathError(f"host {self._host} has no interface {name!r}")
        return iface


def _check(iface: FakeInterface, frame: bytes) -> InterfaceDrop | None:
    if not iface.up:
        return InterfaceDrop.LINK_DOWN
    if payload_length(frame) > iface.mtu:
        return InterfaceDrop.TOO_BIG
    return None
