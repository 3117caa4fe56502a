"""AF_PACKET sockets: whole Ethernet frames in and out of one interface, VLAN tags and offloads included.

Role: the Linux datapath's packet I/O outside the fast path: it reads upcalls from the upcall veth and sends
executed packets out of port interfaces; test rigs use the same sockets to play a VM in its namespace. One
`PacketSocket` is bound to one interface (in one network namespace, see `netns.entered`)::

    PacketSocket(ifname, netns=None, receive=True, vnet_hdr=False, ignore_outgoing=False)
    receive() -> Received(frame, vnet)      blocking; the frame with its VLAN tag put back (see below)
    send(frame, vnet=NO_OFFLOAD)            the frame as is (a zero virtio-net header on a vnet socket)

What the kernel does that a reader must undo: the receive path takes the outermost 802.1Q/802.1ad tag off the
frame into the packet's metadata ("VLAN acceleration"), and AF_PACKET reports it only in `PACKET_AUXDATA`;
`receive` puts it back in the frame (at `tag_offset`, 12 for a plain frame). With `vnet_hdr` the socket passes
the 10-byte virtio-net header (`offload.VnetHeader`): checksum-partial and GSO packets arrive as they are, and
the reader decides (`offload.finish`). A send-only socket (`receive=False`) binds with protocol 0 and so never
queues anything.

Constants: Python 3.11 has no `socket.SOL_PACKET` (263); PACKET_AUXDATA 8, PACKET_VNET_HDR 15,
PACKET_IGNORE_OUTGOING 23 (linux/if_packet.h).

May import: `midonet.datapath.linux` (netns, offload), the standard library.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from midonet.datapath.linux import netns
from midonet.datapath.linux.offload import NO_OFFLOAD, VNET_HDR_LEN, VnetHeader

SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
AUXDATA = struct.Struct("=IIIHHHH")   # status len snaplen mac net vlan_tci vlan_tpid
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


class PacketSocket:
    """An AF_PACKET raw socket on one interface; see the module docstring."""

    def __init__(self, ifname: str, *, netns_name: str | None = None, receive: bool = True,
                 vnet_hdr: bool = False, ignore_outgoing: bool = False, rcvbuf: int = 4 << 20) -> None:
        self.ifname = ifname
        self.vnet_hdr = vnet_hdr
        with netns.entered(netns_name):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                if vnet_hdr:
                    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
                if receive:
                    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                    if ignore_outgoing:
                        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                sock.bind((ifname, ETH_P_ALL if receive else 0))
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._buffer = bytearray(MAX_FRAME)
        self._view = memoryview(self._buffer)

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, tag_offset: int = 12) -> Received:
        """The next frame (blocking unless the socket is non-blocking: then BlockingIOError)."""
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
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = insert_tag(data, tag_offset, tpid, tci)
                    if vnet.csum_start >= tag_offset:
                        vnet = vnet.shifted(4)
        return Received(data, vnet)

    def send(self, frame: bytes, vnet: bytes = NO_OFFLOAD) -> None:
        """Send `frame` out of the interface; OSError (ENETDOWN, EMSGSIZE ...) as the kernel says."""
        self._sock.send(vnet + frame if self.vnet_hdr else frame)

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"PacketSocket({self.ifname!r})"
