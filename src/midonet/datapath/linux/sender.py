"""The execute sender: a process of its own that sends the kernel-executed packets into the upcall channel.

Role: a kernel execute (`datapath` module docstring) sends the packet into the upcall veth, and the kernel does,
inside that send, everything the packet causes on this host: the flow's actions, the redirect, and the receiving
side's stack (a VM's veth, its IP and UDP receive, its ICMP answer), in the softirq of the sending thread. In the
agent that thread is the upcall thread, so a new flow's send cost it 20-30 us of CPU it could not simulate in
(docs/benchmarks.md). Sent from this process, that work runs on another core and the upcall thread pays one local
datagram (about 2 us)::

    parent: ExecuteSender(packet socket) --SOCK_SEQPACKET pair--> child: python -I sender.py
            .send(frame) -> True: the child sends it     (a datagram a frame, never blocking)
                            False: full or gone: the caller sends it itself
            .returned()  <- a frame the child could not send (OSError): the caller runs it in Python
            .drain()     waits until the child has handled every frame given (a page both map counts them)

Order: the child sends in the order the frames were given, one at a time; `drain` is for whoever reads what the
packets did (statistics, counters): the datapath drains before it reads the kernel's counters. A frame may reach
the kernel after its flow was removed (later than a direct send would): the kernel then sends it back up the
channel, as it does for a direct send that loses that race, and it runs in Python.

Lifetime: the child reads only its end of the pair and exits when the parent's end closes, so it never outlives its
datapath, even a killed one; `close()` waits for it, then kills it by its PID if it is stuck.

May import: the standard library (the child runs this module alone).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import time

log = logging.getLogger(__name__)

MAX_FRAME = 1 << 17          # a channel frame (CHANNEL_MTU) with its virtio-net header and some room
SEND_BUFFER = 8 << 20        # frames waiting for the child (about 10k small ones)
SO_SNDBUFFORCE = 32
_DONE = struct.Struct("<Q")   # the shared page: how many frames the child has handled (sent or given back)
DRAIN_WAIT = 1.0
SPIN = 0.002                 # how long the child polls for the next frame before it sleeps (see `serve`)
EXIT_WAIT = 2.0


class ExecuteSender:
    """The parent side; see the module docstring. `packets` is the channel's sending socket (the child gets a
    copy of it); `name` only names the process in logs."""

    def __init__(self, packets: socket.socket, name: str) -> None:
        self._name = name
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        page = os.memfd_create("mn-execute-sender")
        try:
            os.ftruncate(page, mmap.PAGESIZE)
            self._done = mmap.mmap(page, mmap.PAGESIZE)
            with contextlib.suppress(OSError):   # not root: the default buffer, a fallback to direct sends sooner
                ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SEND_BUFFER)
            ours.setblocking(False)
            self._process = subprocess.Popen(   # -I: this file alone, the standard library beside it
                [sys.executable, "-I", __file__, str(theirs.fileno()), str(packets.fileno()), str(page)],
                pass_fds=(theirs.fileno(), packets.fileno(), page), stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(page)
        self._sock: socket.socket | None = ours
        self._gone = False    # the child's end closed: every frame is refused, the socket stays until close()
        self.sent = 0         # frames given to the child (the child counts those it handled in the page)
        self.refused = 0      # frames it could not take (full, or gone): sent by the caller

    @property
    def pid(self) -> int:
        return self._process.pid

    def fileno(self) -> int:
        """The parent's end, readable when the child gave a frame back or went (for the channel's select); it
        stays open until `close()`."""
        return -1 if self._sock is None else self._sock.fileno()

    def alive(self) -> bool:
        return self._sock is not None and not self._gone

    def send(self, frame: bytes) -> bool:
        sock = self._sock
        if sock is None or self._gone:
            self.refused += 1
            return False
        try:
            sock.send(frame)
        except BlockingIOError:
            self.refused += 1
            return False
        except OSError as e:   # the child is gone: the caller sends directly from now on
            self._went(e)
            self.refused += 1
            return False
        self.sent += 1
        return True

    def _went(self, why: object) -> None:
        if not self._gone:
            self._gone = True
            log.warning("execute sender %s: the process %d is gone (%s); sending directly",
                        self._name, self._process.pid, why)

    def drain(self, timeout: float = DRAIN_WAIT) -> bool:
        """Wait until the child has handled every frame given so far; False if it did not in time (gone, or
        stuck: the caller reads the kernel's tables anyway)."""
        if self._handled() >= self.sent:
            return True
        deadline = time.monotonic() + timeout
        while self._handled() < self.sent:
            if self._gone or self._sock is None or time.monotonic() > deadline:
                return False
            time.sleep(20e-6)
        return True

    def _handled(self) -> int:
        done: int = _DONE.unpack_from(self._done, 0)[0]
        return done

    def returned(self) -> list[bytes]:
        """The frames the child gave back since the last call (it could not send them)."""
        sock = self._sock
        frames: list[bytes] = []
        while sock is not None and not self._gone:
            try:
                frame = sock.recv(MAX_FRAME)
            except BlockingIOError:
                break
            except OSError as e:
                self._went(e)
                break
            if not frame:
                self._went("its end closed")
                break
            frames.append(frame)
        return frames

    def close(self) -> None:
        """Close our end (the child exits on it) and wait for the child; kill it by its PID if it is stuck."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self._process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._gone = True


def serve(pair: socket.socket, packets: socket.socket, done: mmap.mmap, spin: float = SPIN) -> None:
    """The child: send every frame read from `pair` on `packets`, give back those that fail; return when the
    parent's end closes. It polls for `spin` seconds after a frame before it sleeps: waking a sleeping reader
    costs the parent's send about 8 us more (an inter-processor interrupt, on these virtual machines), and in a
    burst of new flows the next frame is never that far."""
    pair.setblocking(False)
    last = time.monotonic()
    handled = 0
    while True:
        try:
            frame = pair.recv(MAX_FRAME)
        except BlockingIOError:
            if time.monotonic() - last < spin:
                continue
            pair.setblocking(True)
            try:
                frame = pair.recv(MAX_FRAME)
            except OSError:
                return
            finally:
                pair.setblocking(False)
        except InterruptedError:
            continue
        except OSError:
            return
        if not frame:
            return
        last = time.monotonic()
        try:
            packets.send(frame)
        except OSError:
            with contextlib.suppress(OSError):
                pair.send(frame, socket.MSG_DONTWAIT)
        handled += 1
        _DONE.pack_into(done, 0, handled)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a ^C to the agent's terminal: the agent closes us
    pair = socket.socket(fileno=int(argv[1]))
    packets = socket.socket(fileno=int(argv[2]))
    serve(pair, packets, mmap.mmap(int(argv[3]), mmap.PAGESIZE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
