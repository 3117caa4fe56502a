"""Real traffic between network namespaces, from Python: ping, a TCP transfer, a UDP burst.

Role: what system tests and the Linux datapath benchmark send through a datapath, without depending on iputils
or a traffic generator. Sockets are made inside a namespace with `netns.entered` and then used from any thread.

    ping(netns, dst, count=1, timeout=2.0) -> replies        ICMP echo over a raw socket; the peer's kernel
                                                            answers
    tcp_transfer(client_ns, server_ns, server_ip, data)     one TCP connection carrying `data`; returns what the
        -> bytes                                            server read (the kernel's TCP, offloads as configured)
    udp_burst(src_ns, dst_ns, dst_ip, count, size)          `count` datagrams; returns how many arrived

May import: `midonet.datapath.linux.netns`, `midonet.packets`.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from midonet.datapath.linux import netns
from midonet.packets import icmp


def ping(netns_name: str, dst: str, *, count: int = 1, timeout: float = 2.0, interval: float = 0.0) -> int:
    """Send `count` echo requests to `dst`; the number of matching replies (each awaited up to `timeout`)."""
    with netns.entered(netns_name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    replies = 0
    try:
        for seq in range(1, count + 1):
            sock.sendto(icmp.build(icmp.echo_request(ident, seq, b"midonet-ping")), (dst, 0))
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    data, (source, _) = sock.recvfrom(2048)
                except TimeoutError:
                    break
                at = (data[0] & 0x0F) * 4
                kind, rest = data[at], data[at + 4 : at + 8]
                if source == dst and kind == 0 and rest == ident.to_bytes(2, "big") + seq.to_bytes(2, "big"):
                    replies += 1
                    break
            if interval:
                time.sleep(interval)
    finally:
        sock.close()
    return replies


def tcp_transfer(client_ns: str, server_ns: str, server_ip: str, data: bytes, *, port: int = 5201,
                 timeout: float = 10.0) -> bytes:
    """Send `data` over one TCP connection from `client_ns` to `server_ip:port` in `server_ns`; what arrived."""
    with netns.entered(server_ns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((server_ip, port))
    listener.listen(1)
    listener.settimeout(timeout)
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(timeout)
            while chunk := conn.recv(1 << 16):
                received.append(chunk)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with netns.entered(client_ns):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client:
            client.settimeout(timeout)
            client.connect((server_ip, port))
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            client.recv(1)   # the server closes after reading everything
        server.join(timeout)
    finally:
        listener.close()
    return b"".join(received)


def udp_burst(src_ns: str, dst_ns: str, dst_ip: str, *, count: int, size: int = 18, port: int = 5202,
              settle: float = 0.5) -> int:
    """Send `count` UDP datagrams of `size` payload bytes; how many the receiver got."""
    with netns.entered(dst_ns):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with netns.entered(src_ns):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        receiver.bind((dst_ip, port))
        receiver.setblocking(False)
        payload = bytes(size)
        got = 0
        for _ in range(count):
            sender.sendto(payload, (dst_ip, port))
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            try:
                receiver.recv(2048)
                got += 1
                deadline = time.monotonic() + settle
            except BlockingIOError:
                time.sleep(0.005)
        return got
    finally:
        sender.close()
        receiver.close()
