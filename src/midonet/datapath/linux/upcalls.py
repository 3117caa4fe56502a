"""The upcall channel: how packets the fast path cannot handle reach the agent.

Role: the kernel half is in bpf/dp.c: on a miss (or a Userspace action, or a probe) the program puts a 16-byte
`struct mn_meta` in front of the packet (in-port, reason, tunnel key) and redirects it to the *upcall veth*. This
module owns that veth pair and the thread that reads its peer::

    mn_port/mn_tunnel --redirect--> <name>-up ==veth==> <name>-upr --AF_PACKET--> reader thread --> deliver()

The reader uses one AF_PACKET socket with a receive ring (`packetsock`: the kernel copies each upcall into a
frame shared with the reader, so reading one is no system call; an outer VLAN tag the receive path took off is put
back into the frame, after the meta header) and `PACKET_VNET_HDR` (a checksum-partial or GSO packet from a VM
with offloads on is completed or segmented by `offload.finish`, so the agent always sees real packets: without
this the first packet of every TCP flow from such a VM would carry a bad checksum). Each packet is handed to
`deliver(meta, frame)` in arrival order, on the reader thread; `deliver` must not raise (the datapath wraps the
agent's handler).

The other way: the datapath sends packets it executes through a kernel flow into the peer (`send`, with a
`struct mn_exec` at their end); they arrive on the veth's ingress, where `mn_port` runs the flow's actions. The
reader ignores what is sent (`PACKET_IGNORE_OUTGOING`). With `writer_process` the sends, and the flow writes
that come before them (`write_flow`), are made by a process of its own (`writer.KernelWriter`), so the kernel's
work for them runs off the reader thread; what it cannot take is done here (after `drain`, so nothing overtakes
what it holds), a frame it could not send comes back to `deliver` as a returned execute (reason EXECUTE, as the
kernel returns one whose flow was gone), and a flow the kernel refused to `refused`.

Both ends have the largest MTU a veth takes (`CHANNEL_MTU`), so that neither a full-sized upcall with its header
nor an executed packet with its trailer is too big for the pair.

The veth pair outlives the process (a restarted agent reads the same channel); `destroy` deletes it on a real
teardown. Both ends are kept quiet (no IPv6), so the only packets on it are the program's.

May import: `midonet.datapath.linux` (links, layout, offload, packetsock), the standard library.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass

from midonet.datapath.linux.bpfmaps import SYS_BPF
from midonet.datapath.linux.layout import META_LEN, Meta, Reason, unpack_meta
from midonet.datapath.linux.links import Links
from midonet.datapath.linux.offload import NO_OFFLOAD, VNET_HDR_LEN, finish
from midonet.datapath.linux.packetsock import PacketSocket
from midonet.datapath.linux.writer import SEND, KernelWriter, Returned

log = logging.getLogger(__name__)

Deliver = Callable[[Meta, bytes], None]
Refused = Callable[[bytes, int], None]   # a flow's kernel key, the errno
_BATCH = 64
RING_FRAMES = 8192   # upcalls waiting to be read (16 MiB): a burst of 5,000 new flows' first packets fits
CHANNEL_MTU = 65535
_RETURNED = Meta(Reason.EXECUTE, 0, None, None)


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    received: int = 0    # upcalls read from the channel
    completed: int = 0   # checksum-partial packets whose checksum was completed here
    segmented: int = 0   # GSO super-packets cut into segments here
    malformed: int = 0   # frames that were not upcalls, or could not be finished
    truncated: int = 0   # upcalls cut short in the ring with no whole copy queued (the socket's buffer was full)
    overflowed: int = 0  # upcalls the kernel dropped for want of room: a full ring (the agent `RING_FRAMES` behind)


def _give_back(returned: list[Returned], deliver: Deliver, refused: Refused | None) -> None:
    """What the writer could not do: a frame runs in Python (as a returned execute), a refused flow is reported."""
    for back in returned:
        if back.kind == SEND:
            deliver(_RETURNED, back.data[VNET_HDR_LEN:])
        elif refused is not None:
            refused(back.data, back.errno)


class UpcallChannel:
    """The upcall veth pair `name` (the program's target) / `peer` (read here); see the module docstring."""

    def __init__(self, links: Links, name: str, peer: str, *, writer_process: bool = False) -> None:
        self._links = links
        self.name = name
        self.peer = peer
        self._writer_process = writer_process
        self._sock: PacketSocket | None = None
        self._sender: PacketSocket | None = None
        self._writer: KernelWriter | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = threading.Event()
        self._received = self._completed = self._segmented = self._malformed = 0   # only the reader writes
        self._truncated = self._overflowed = 0   # by sockets closed so far

    def statistics(self) -> ChannelStatistics:
        sock = self._sock
        return ChannelStatistics(self._received, self._completed, self._segmented, self._malformed,
                                 self._truncated + (sock.truncated if sock is not None else 0),
                                 self._overflowed + (sock.dropped() if sock is not None else 0))

    def ensure(self) -> int:
        """Create the pair if it is missing, bring both ends up; the ifindex the program redirects to."""
        if self._links.ifindex(self.name) is None:
            self._links.delete(self.peer)
            self._links.add_veth(self.name, self.peer)
        for end in (self.name, self.peer):
            self._links.quiet(end)
            self._links.set_mtu(end, CHANNEL_MTU)
            self._links.up(end)
        index = self._links.ifindex(self.name)
        if index is None:
            raise OSError(f"upcall device {self.name} vanished")
        return index

    def start(self, deliver: Deliver, *, flows: int | None = None, key_size: int = 0,
              refused: Refused | None = None) -> None:
        """Open the reader socket and start the reader thread (and the writer process, given the flow map's
        descriptor `flows` and its key size, if it writes flows too)."""
        self._stopping.clear()
        self._sock = PacketSocket(self.peer, netns_name=self._links.netns, vnet_hdr=True, ignore_outgoing=True,
                                  ring=RING_FRAMES)
        self._sock.setblocking(False)
        self._sender = PacketSocket(self.peer, netns_name=self._links.netns, receive=False, vnet_hdr=True)
        if self._writer_process:
            self._writer = KernelWriter(self._sender.socket, self.peer, flows=flows, key_size=key_size,
                                        sys_bpf=SYS_BPF)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(self._sock, deliver, refused),
                                        name=f"upcalls-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader thread and close the socket (the veth pair stays)."""
        self._stopping.set()
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            if self._thread is not threading.current_thread():   # a handler closing its own datapath
                self._thread.join()
            self._thread = None
        if self._sock is not None:
            self._truncated += self._sock.truncated
            self._overflowed += self._sock.dropped()
            self._sock.close()
            self._sock = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r, self._wake_w = -1, -1

    def send(self, frame: bytes) -> None:
        """Send a complete packet into the channel (to the program on the veth's ingress); OSError as the kernel
        says, or if the channel is stopped."""
        sender = self._sender
        if sender is None:
            raise OSError(f"upcall channel {self.peer} is stopped")
        writer = self._writer
        if writer is not None:
            if writer.send(NO_OFFLOAD + frame):
                return
            writer.drain()
        sender.send(frame)

    def write_flow(self, key: bytes, value: bytes) -> bool:
        """Give a flow write to the writer process; False if there is none or it cannot take it (then the caller
        drains and writes it itself)."""
        writer = self._writer
        return writer is not None and writer.write_flow(key, value)

    def drain(self) -> None:
        """Wait until the writer process has done everything given to it (nothing to wait for without one)."""
        writer = self._writer
        if writer is not None:
            writer.drain()

    @property
    def writer(self) -> KernelWriter | None:
        """The writer process, if there is one."""
        return self._writer

    def destroy(self) -> None:
        self.stop()
        self._links.delete(self.name)

    def _run(self, sock: PacketSocket, deliver: Deliver, refused: Refused | None) -> None:
        writer = self._writer
        if writer is not None:
            writer.holder = threading.get_ident()   # what this thread gives the writer goes in batches
        watched = [sock.fileno(), self._wake_r] + ([writer.fileno()] if writer is not None else [])
        while not self._stopping.is_set():
            waiting = writer is not None and writer.returned_here()   # a batch done here failed in part
            ready, _, _ = select.select(watched, [], [], 0 if waiting else None)
            if self._wake_r in ready:
                return
            if writer is not None and (writer.fileno() in ready or waiting):
                _give_back(writer.returned(), deliver, refused)
                if not writer.alive():   # gone (its end stays open until stop): no longer watched
                    watched = [sock.fileno(), self._wake_r]
                    writer.flush()       # what it held is done here; what of that failed comes back now
                    _give_back(writer.returned(), deliver, refused)
                    writer = None
            self._receive(sock, deliver)
            if writer is not None:
                writer.flush()   # everything waiting was read: what it gave the writer goes now

    def _receive(self, sock: PacketSocket, deliver: Deliver) -> None:
        """Deliver what waits on the socket, up to `_BATCH` upcalls."""
        for _ in range(_BATCH):
            try:
                received = sock.receive(tag_offset=META_LEN + 12)
            except BlockingIOError:
                break
            except OSError:
                log.exception("upcall channel %s: receive failed", self.peer)
                break
            meta = unpack_meta(received.frame)
            if meta is None:
                self._malformed += 1
                continue
            self._received += 1
            packet, vnet = received.frame[META_LEN:], received.vnet
            try:
                packets = [packet] if vnet.plain else finish(packet, vnet.shifted(-META_LEN))
            except ValueError as e:
                self._malformed += 1
                log.warning("upcall channel %s: cannot finish an offloaded packet: %s", self.peer, e)
                continue
            if len(packets) > 1:
                self._segmented += 1
            elif not vnet.plain:
                self._completed += 1
            for one in packets:
                deliver(meta, one)
            if self._stopping.is_set():   # the handler closed the datapath
                return
