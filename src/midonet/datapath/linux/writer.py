"""The kernel writer: a process of its own that writes new flows into the flow map and sends the kernel-executed
packets into the upcall channel, in the order it is given them.

Role: on a new flow the agent's upcall thread installs the flow (a `bpf()` map update) and executes its first
packet (a send into the upcall veth, `datapath` module docstring). Both cost the kernel's work in that thread: the
map update 11-20 us, and the send everything the packet causes on this host (the flow's actions, the redirect, the
receiving side's stack: a VM's veth, its IP and UDP receive, its ICMP answer, all in the send's softirq), 20-30 us.
That is about a third of a new flow's cost in the one thread that simulates (docs/benchmarks.md). Done by this
process, that work runs on another core, and the upcall thread pays a share of a local datagram (Batches, below)::

    parent: KernelWriter(packets, flows) --SOCK_SEQPACKET pair--> child: python -I writer.py
            .write_flow(key, value) -> True: the child writes it (the flow map's key and struct mn_flow)
            .send(frame)            -> True: the child sends it (a frame for the channel, virtio-net header first)
                                       False (either): full or gone: the caller does it itself
            .drain()                   waits until the child has done everything given (a page both map counts)
            .returned()             <- what the child could not do: `Returned` (a frame to run in Python, or a
                                       flow the kernel refused, with its errno)

Order: the child does one thing at a time, in the order given, so a flow is in the map before the packet executed
through it is sent. Whoever reads or changes the kernel's tables otherwise (a removal, the stats, a mask) drains
first: the datapath's flow table does (`flows.FlowTable`), and `LinuxDatapath.statistics` for the counters. A
frame may reach the kernel after its flow was removed (later than a direct send would): the kernel then sends it
back up the channel, as it does for a direct send that loses that race, and it runs in Python.

Batches: a datagram carries one message or several, each behind its length. What the `holder` thread (the upcall
channel's reader) gives waits in the parent until it has `HOLD` messages, or until that thread calls `flush()`
(the channel does when it has read every upcall waiting), and then goes in one datagram: in a burst of new flows
that is one send for every 8 flows, instead of two a flow. Messages from any other thread go at once (after what
the holder has waiting, so the order holds), and `drain()` and `close()` flush first. A batch the child cannot
take (it is gone, or it took nothing for `DRAIN_WAIT`) is done here, in the parent, the way the child does it:
what fails comes back through `returned()` alike.

In a burst (the last time it ran out of messages, the next came less than `SPIN`, 200 us, later) the child polls
for the next message for up to `SPIN` before it sleeps: waking a sleeping reader costs the parent's send about 8 us
more (an inter-processor interrupt, on these virtual machines), and at 5,000 new flows a second and more the next
message is never that far. Slower, it sleeps at once, so a steady trickle of new flows costs no polling.

Lifetime: the child reads only its end of the pair and exits when the parent's end closes, so it never outlives its
datapath, even a killed one; `close()` waits for it (it finishes what it was given), then kills it by its PID if
it is stuck. The child runs this file alone (`python -I`), with the standard library: its `bpf()` call is the few
lines of `_update`, not `bpfmaps` (whose package would load pyroute2 and the rest of the datapath).

May import: the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_MESSAGE = 1 << 17        # a channel frame (CHANNEL_MTU) with its virtio-net header and some room
SEND_BUFFER = 8 << 20        # messages waiting for the child (about 10k small ones)
SO_SNDBUFFORCE = 32
DRAIN_WAIT = 1.0
EXIT_WAIT = 2.0
SPIN = 0.0002                # in a burst, how long the child polls for the next message before it sleeps
HOLD = 16                    # messages the holder's writes wait for, at most, before they go in one datagram
SEND, FLOW = b"S", b"F"      # a message's first byte: a frame to send, or a flow to write (key, then value)
_LENGTH = struct.Struct("<I")   # in a datagram, before each message: its length
_DONE = struct.Struct("<Q")  # the shared page: how many messages the child has handled (done or given back)
_ERRNO = struct.Struct("<I")
BPF_MAP_UPDATE_ELEM = 2
_ATTR_SIZE = 128
_ELEM = struct.Struct("=IIQQQ")   # map_fd, pad, key, value, flags (as in bpfmaps)


@dataclass(frozen=True, slots=True)
class Returned:
    """Something the child could not do: a frame it could not send (`errno` 0), or a flow the kernel refused."""

    kind: bytes    # SEND or FLOW
    data: bytes    # the frame (virtio-net header first), or the flow's key
    errno: int = 0


class KernelWriter:
    """The parent side; see the module docstring. `packets` is the channel's sending socket, `flows` the flow map's
    descriptor (None: frames only) with its key size; the child gets copies of both. `name` names it in logs.
    `holder`: the thread whose messages wait for a batch (the channel's reader sets it)."""

    def __init__(self, packets: socket.socket, name: str, *, flows: int | None = None, key_size: int = 0,
                 sys_bpf: int = 0) -> None:
        self._name = name
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        page = os.memfd_create("mn-kernel-writer")
        passed = [theirs.fileno(), packets.fileno(), page] + ([flows] if flows is not None else [])
        try:
            os.ftruncate(page, mmap.PAGESIZE)
            self._done = mmap.mmap(page, mmap.PAGESIZE)
            with contextlib.suppress(OSError):   # not root: the default buffer, a fallback to doing it here sooner
                ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SEND_BUFFER)
            ours.setblocking(False)
            self._process = subprocess.Popen(   # -I: this file alone, the standard library beside it
                [sys.executable, "-I", __file__, *(str(fd) for fd in passed[:3]),
                 str(-1 if flows is None else flows), str(key_size), str(sys_bpf)],
                pass_fds=passed, stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(page)
        self._sock: socket.socket | None = ours
        self._gone = False    # the child's end closed: everything is refused, the socket stays until close()
        self._flows = flows is not None
        self._here = _Doer(packets, -1 if flows is None else flows, key_size, sys_bpf)   # a batch the child can't take
        self._lock = threading.Lock()   # executes come from any thread: one count, in the order sent
        self._pending: list[bytes] = []   # the holder's waiting messages: length, kind, parts, length, ...
        self._held = self._held_bytes = 0
        self._back: list[Returned] = []   # what failed when done here
        self.holder: int | None = None
        self.given = 0        # messages taken (sent to the child, waiting, or done here)
        self.sent = 0         # messages sent to the child (it counts those it handled in the page)
        self.refused = 0      # messages the child did not take (full, or gone): done by the caller, or here

    @property
    def pid(self) -> int:
        return self._process.pid

    def fileno(self) -> int:
        """The parent's end, readable when the child gave something back or went (for the channel's select); it
        stays open until `close()`."""
        return -1 if self._sock is None else self._sock.fileno()

    def alive(self) -> bool:
        return self._sock is not None and not self._gone

    def write_flow(self, key: bytes, value: bytes) -> bool:
        return self._flows and self._give(FLOW, key, value)

    def send(self, frame: bytes) -> bool:
        return self._give(SEND, frame)

    def _give(self, kind: bytes, *parts: bytes) -> bool:
        size = 1 + sum(map(len, parts))
        with self._lock:
            if self._sock is None or self._gone:
                self.refused += 1
                return False
            if self._held_bytes + _LENGTH.size + size > MAX_MESSAGE:
                self._flush()
            self._pending += (_LENGTH.pack(size), kind, *parts)
            self._held += 1
            self._held_bytes += _LENGTH.size + size
            self.given += 1
            if self._held >= HOLD or threading.get_ident() != self.holder:
                self._flush()
            return True

    def flush(self) -> None:
        """Send what the holder's messages wait for now."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        pending, count = self._pending, self._held
        if not count:
            return
        self._pending, self._held, self._held_bytes = [], 0, 0
        sock = self._sock
        if sock is not None and not self._gone:
            try:
                sock.sendmsg(pending)
                self.sent += count
                return
            except BlockingIOError:   # the child is behind by megabytes: wait for it a while
                if select.select([], [sock], [], DRAIN_WAIT)[1]:
                    with contextlib.suppress(OSError):
                        sock.sendmsg(pending)
                        self.sent += count
                        return
                self._wait_for(self.sent, DRAIN_WAIT)
            except OSError as e:
                self._went(e)
        self.refused += count
        self._here.do_all(b"".join(pending), lambda back: self._back.append(_returned(back)))

    def drain(self, timeout: float = DRAIN_WAIT) -> bool:
        """Wait until the child has handled everything given so far; False if it did not in time (gone, or
        stuck: the caller goes on anyway)."""
        with self._lock:
            self._flush()
        return self._wait_for(self.sent, timeout)

    def _wait_for(self, count: int, timeout: float) -> bool:
        if self._handled() >= count:
            return True
        deadline = time.monotonic() + timeout
        while self._handled() < count:
            if self._gone or self._sock is None or time.monotonic() > deadline:
                return False
            time.sleep(20e-6)
        return True

    def _handled(self) -> int:
        done: int = _DONE.unpack_from(self._done, 0)[0]
        return done

    def returned(self) -> list[Returned]:
        """What the child gave back (or failed when done here) since the last call."""
        found, self._back = self._back, []
        sock = self._sock
        while sock is not None and not self._gone:
            try:
                message = sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                break
            except OSError as e:
                self._went(e)
                break
            if not message:
                self._went("its end closed")
                break
            found.append(_returned(message))
        return found

    def returned_here(self) -> bool:
        """Whether something done here failed and waits for `returned()` (the child's come with its socket)."""
        return bool(self._back)

    def _went(self, why: object) -> None:
        if not self._gone:
            self._gone = True
            log.warning("kernel writer %s: the process %d is gone (%s); the datapath writes itself",
                        self._name, self._process.pid, why)

    def close(self) -> None:
        """Send what waits, close our end (the child finishes what it was given, then exits) and wait for the
        child; kill it by its PID if it is stuck."""
        with self._lock:
            self._flush()
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        try:
            self._process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._gone = True


def _returned(message: bytes) -> Returned:
    if message[:1] == FLOW:
        return Returned(FLOW, message[1 + _ERRNO.size:], _ERRNO.unpack_from(message, 1)[0])
    return Returned(SEND, message[1:])


class _Doer:
    """Does messages, as the child does them and the parent when the child cannot: a flow write (`bpf()` on the
    map `flows`) or a frame sent on `packets`; what fails, as the message to give back."""

    def __init__(self, packets: socket.socket, flows: int, key_size: int, sys_bpf: int) -> None:
        self.packets, self.flows, self.key_size, self.sys_bpf = packets, flows, key_size, sys_bpf
        self._syscall: Callable[..., int] | None = None
        self.attr = ctypes.create_string_buffer(_ATTR_SIZE)

    def do_all(self, datagram: bytes, give_back: Callable[[bytes], object],
               done: Callable[[], object] = tuple) -> None:
        """Every message in `datagram`, in order; `done()` after each."""
        view, offset, end = memoryview(datagram), 0, len(datagram)
        while offset < end:
            size = _LENGTH.unpack_from(view, offset)[0]
            offset += _LENGTH.size
            back = self.do(view[offset:offset + size])
            offset += size
            if back is not None:
                give_back(back)
            done()

    def do(self, message: memoryview) -> bytes | None:
        if message[:1] == FLOW:
            key = bytes(message[1:1 + self.key_size])
            error = self._update(key, bytes(message[1 + self.key_size:]))
            return FLOW + _ERRNO.pack(error) + key if error else None
        try:
            self.packets.send(message[1:])
        except OSError:
            return bytes(message)
        return None

    def _update(self, key: bytes, value: bytes) -> int:
        """bpf(BPF_MAP_UPDATE_ELEM) on the flow map; 0 or the errno."""
        if self._syscall is None:
            syscall = ctypes.CDLL(None, use_errno=True).syscall
            syscall.restype = ctypes.c_long
            syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
            self._syscall = syscall
        key_buffer = ctypes.create_string_buffer(key, len(key))
        value_buffer = ctypes.create_string_buffer(value, len(value))
        _ELEM.pack_into(self.attr, 0, self.flows, 0, ctypes.addressof(key_buffer), ctypes.addressof(value_buffer), 0)
        if self._syscall(self.sys_bpf, BPF_MAP_UPDATE_ELEM, ctypes.addressof(self.attr), _ATTR_SIZE) < 0:
            return ctypes.get_errno() or 1
        return 0


# ---- the child ----

class _Child:
    def __init__(self, pair: socket.socket, doer: _Doer, done: mmap.mmap) -> None:
        self.pair, self.doer, self.done = pair, doer, done
        self.handled = 0

    def serve(self, spin: float = SPIN) -> None:
        """Do every message read from the pair, give back what fails; return when the parent's end closes."""
        pair = self.pair
        pair.setblocking(False)
        idle_since: float | None = None   # when it last ran out of messages
        burst = False                     # the last time it did, the next came within `spin`
        while True:
            try:
                datagram = pair.recv(MAX_MESSAGE)
            except BlockingIOError:
                now = time.monotonic()
                if idle_since is None:
                    idle_since = now
                if burst and now - idle_since < spin:
                    continue
                datagram = self._wait()
            except InterruptedError:
                continue
            except OSError:
                return
            if not datagram:
                return
            self.doer.do_all(datagram, self._give_back, self._count)
            if idle_since is not None:
                burst, idle_since = time.monotonic() - idle_since < spin, None

    def _count(self) -> None:
        self.handled += 1
        _DONE.pack_into(self.done, 0, self.handled)

    def _wait(self) -> bytes:
        self.pair.setblocking(True)
        try:
            return self.pair.recv(MAX_MESSAGE)
        except OSError:
            return b""
        finally:
            self.pair.setblocking(False)

    def _give_back(self, message: bytes) -> None:
        with contextlib.suppress(OSError):
            self.pair.send(message, socket.MSG_DONTWAIT)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a ^C to the agent's terminal: the agent closes us
    pair, packets, page, flows, key_size, sys_bpf = (int(arg) for arg in argv[1:7])
    child = _Child(socket.socket(fileno=pair), _Doer(socket.socket(fileno=packets), flows, key_size, sys_bpf),
                   mmap.mmap(page, mmap.PAGESIZE))
    child.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
