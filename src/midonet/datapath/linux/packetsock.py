"""AF_PACKET sockets: whole Ethernet frames in and out of one interface, VLAN tags and offloads included.

Role: the Linux datapath's packet I/O outside the fast path: it reads upcalls from the upcall veth and sends
executed packets out of port interfaces; test rigs use the same sockets to play a VM in its namespace. One
`PacketSocket` is bound to one interface (in one network namespace, see `netns.entered`)::

    PacketSocket(ifname, netns=None, receive=True, vnet_hdr=False, ignore_outgoing=False, ring=0)
    receive() -> Received(frame, vnet)      blocking; the frame with its VLAN tag put back (see below)
    send(frame, vnet=NO_OFFLOAD)            the frame as is (a zero virtio-net header on a vnet socket)

What the kernel does that a reader must undo: the receive path takes the outermost 802.1Q/802.1ad tag off the
frame into the packet's metadata ("VLAN acceleration"), and AF_PACKET reports it only in `PACKET_AUXDATA`;
`receive` puts it back in the frame (at `tag_offset`, 12 for a plain frame). With `vnet_hdr` the socket passes
the 10-byte virtio-net header (`offload.VnetHeader`): checksum-partial and GSO packets arrive as they are, and
the reader decides (`offload.finish`). A send-only socket (`receive=False`) binds with protocol 0 and so never
queues anything.

With `ring` (a number of frames) the socket receives through a `TPACKET_V2` ring it shares with the kernel
(`PACKET_RX_RING`, packet_mmap.rst): the kernel copies each packet into the next free frame of `RING_FRAME` bytes
as it arrives, on the CPU that sent it, and frees it there; `receive` reads the frame from the mapping and hands
it back (its status to `TP_STATUS_KERNEL`). No system call and no socket buffer a packet: 1.1 us a frame against
3.4 us through `recvmsg`, and the packet's memory is freed where it was made (the upcall channel's reader is the
agent's busiest thread). The tag and the virtio-net header come in the frame's header instead of ancillary data.
A packet too big for a frame (a GSO super-packet from a VM with offloads on) is queued on the socket as well
(`PACKET_COPY_THRESH`), its frame marked `TP_STATUS_COPY`: `receive` reads it from the socket, so packets still
come in arrival order. A frame cut short with no copy queued (the socket's buffer was full) is dropped and counted
(`truncated`); a packet that found the ring full is dropped by the kernel, which counts it (`dropped()`, from
`PACKET_STATISTICS`, which the kernel resets at every read: the socket keeps the sum). The ring only reads: `send`
is the same either way.

Constants: Python 3.11 has no `socket.SOL_PACKET` (263); PACKET_RX_RING 5, PACKET_STATISTICS 6, PACKET_COPY_THRESH 7,
PACKET_AUXDATA 8, PACKET_VERSION 10, PACKET_VNET_HDR 15, PACKET_IGNORE_OUTGOING 23, TPACKET_V2 1 (linux/if_packet.h).

May import: `midonet.datapath.linux` (netns, offload), the standard library.
"""

from __future__ import annotations

import mmap
import select
import socket
import struct
import threading
from dataclasses import dataclass

from midonet.datapath.linux import netns
from midonet.datapath.linux.offload import NO_OFFLOAD, VNET_HDR_LEN, VnetHeader

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_COPY_THRESH = 7
PACKET_AUXDATA = 8
PACKET_VERSION = 10
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 0x1
TP_STATUS_COPY = 0x2
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
AUXDATA = struct.Struct("=IIIHHHH")   # status len snaplen mac net vlan_tci vlan_tpid
TPACKET2_HDR = struct.Struct("=IIIHHIIHH4x")   # status len snaplen mac net sec nsec vlan_tci vlan_tpid
TPACKET_REQ = struct.Struct("=IIII")   # block_size block_nr frame_size frame_nr
TPACKET_STATS = struct.Struct("=II")   # packets drops (since the last read)
_STATUS = struct.Struct("=I")
RING_FRAME = 2048          # a 1,500-byte packet with a VLAN tag, the upcall header and the frame's own header
RING_BLOCK = 1 << 16       # frames come in blocks of contiguous pages: 32 a block, no frame across two
MAX_FRAME = 65536 + 256               # a GSO super-packet, its headers and the virtio-net header
_ANCILLARY = socket.CMSG_SPACE(AUXDATA.size)
_PLAIN = VnetHeader()


@dataclass(frozen=True, slots=True)
class Received:
    frame: bytes
    vnet: VnetHeader       # all zeros on a socket without PACKET_VNET_HDR


def insert_tag(frame: bytes, at: int, tpid: int, tci: int) -> bytes:
    """`frame` with a 4-byte VLAN tag inserted at offset `at`."""
    return frame[:at] + struct.pack("!HH", tpid, tci) + frame[at:]


def _tagged(data: bytes, vnet: VnetHeader, at: int, tpid: int, tci: int) -> Received:
    """A frame whose outer VLAN tag the receive path took off, with it put back at `at`."""
    return Received(insert_tag(data, at, tpid, tci), vnet.shifted(4) if vnet.csum_start >= at else vnet)


class PacketSocket:
    """An AF_PACKET raw socket on one interface; see the module docstring."""

    def __init__(self, ifname: str, *, netns_name: str | None = None, receive: bool = True,
                 vnet_hdr: bool = False, ignore_outgoing: bool = False, rcvbuf: int = 4 << 20,
                 ring: int = 0) -> None:
        self.ifname = ifname
        self.vnet_hdr = vnet_hdr
        self.truncated = 0   # ring frames cut short with no whole copy queued: dropped
        self._dropped = 0    # the kernel's drops read so far (its counter restarts at every read)
        self._stats_lock = threading.Lock()
        self._ring: mmap.mmap | None = None
        self._frames = self._next = 0
        with netns.entered(netns_name):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                if vnet_hdr:   # before the ring: the kernel refuses it once there is one
                    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
                if receive:
                    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                    if ignore_outgoing:
                        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                    if ring:
                        self._map_ring(sock, ring)
                sock.bind((ifname, ETH_P_ALL if receive else 0))
            except BaseException:
                if self._ring is not None:
                    self._ring.close()
                sock.close()
                raise
        self._sock = sock
        self._buffer = bytearray(MAX_FRAME)
        self._view = memoryview(self._buffer)

    def _map_ring(self, sock: socket.socket, frames: int) -> None:
        """A receive ring of at least `frames` frames, mapped here."""
        per_block = RING_BLOCK // RING_FRAME
        blocks = -(-frames // per_block)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)   # too big for a frame: a whole copy on the socket
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, TPACKET_REQ.pack(RING_BLOCK, blocks, RING_FRAME,
                                                                     blocks * per_block))
        self._ring = mmap.mmap(sock.fileno(), RING_BLOCK * blocks, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE)
        self._frames = blocks * per_block

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, tag_offset: int = 12) -> Received:
        """The next frame (blocking unless the socket is non-blocking: then BlockingIOError)."""
        if self._ring is not None:
            return self._from_ring(self._ring, tag_offset)
        return self._from_socket(tag_offset)

    def _from_ring(self, ring: mmap.mmap, tag_offset: int) -> Received:
        while True:
            at = self._next * RING_FRAME
            status, length, snaplen, mac, _, _, _, tci, tpid = TPACKET2_HDR.unpack_from(ring, at)
            if not status & TP_STATUS_USER:
                timeout = self._sock.gettimeout()
                if timeout == 0.0:
                    raise BlockingIOError("no frame in the ring")
                if not select.select([self._sock], [], [], timeout)[0]:
                    raise TimeoutError("no frame in the ring")
                continue
            self._next = self._next + 1 if self._next + 1 < self._frames else 0
            if status & TP_STATUS_COPY:   # the whole packet waits on the socket: read it there
                _STATUS.pack_into(ring, at, TP_STATUS_KERNEL)
                return self._from_socket(tag_offset)
            data = ring[at + mac:at + mac + snaplen]
            vnet = VnetHeader.unpack(ring[at + mac - VNET_HDR_LEN:at + mac]) if self.vnet_hdr else _PLAIN
            _STATUS.pack_into(ring, at, TP_STATUS_KERNEL)
            if snaplen < length:
                self.truncated += 1
                continue
            if status & TP_STATUS_VLAN_VALID:
                return _tagged(data, vnet, tag_offset, tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci)
            return Received(data, vnet)

    def _from_socket(self, tag_offset: int) -> Received:
        size, ancillary, _, _ = self._sock.recvmsg_into([self._view], _ANCILLARY)
        data = bytes(self._view[:size])
        vnet = _PLAIN
        if self.vnet_hdr:
            vnet = VnetHeader.unpack(data)
            data = data[VNET_HDR_LEN:]
        for level, kind, payload in ancillary:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= AUXDATA.size:
                status, _, _, _, _, tci, tpid = AUXDATA.unpack_from(payload, 0)
                if status & TP_STATUS_VLAN_VALID:
                    return _tagged(data, vnet, tag_offset,
                                   tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci)
        return Received(data, vnet)

    def send(self, frame: bytes, vnet: bytes = NO_OFFLOAD) -> None:
        """Send `frame` out of the interface; OSError (ENETDOWN, EMSGSIZE ...) as the kernel says."""
        self._sock.send(vnet + frame if self.vnet_hdr else frame)

    def dropped(self) -> int:
        """Packets the kernel dropped for want of room (a full ring, or a full socket buffer) since the socket
        was made."""
        with self._stats_lock:
            try:
                raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
            except OSError:   # closed: nothing more can drop
                return self._dropped
            self._dropped += TPACKET_STATS.unpack(raw)[1]
            return self._dropped

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def settimeout(self, seconds: float | None) -> None:
        """`receive` waits at most this long (then TimeoutError)."""
        self._sock.settimeout(seconds)

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._sock.close()

    def __repr__(self) -> str:
        return f"PacketSocket({self.ifname!r})"
