"""The host's interfaces and their link state, from netlink: what the agent's host service publishes.

Role: the Linux counterpart of the fake hosts' interface source (the original's `DefaultInterfaceScanner`). The
agent's host service scans an interface source (`midonet.agent.host.InterfaceSource`: `scan() ->
[InterfaceInfo]`, the record is `midonet.datapath.base`'s) and rescans when told something changed; this source is
one as it is.

    LinuxInterfaceSource(netns=None)
    ├── scan() -> [InterfaceInfo]   every link: name, MAC, MTU, up (IFF_UP), has_link (IFF_LOWER_UP), IPv4
    │                               addresses, and a type/endpoint guessed from the link kind (below)
    ├── watch(callback)             a thread on a netlink socket subscribed to link and IPv4 address events;
    │                               after each burst of events, `callback()` (the agent then rescans)
    └── close()                     stops the thread

    kind            type       endpoint     port_type
    loopback        Virtual    LOCALHOST
    none (a NIC)    Physical   PHYSICAL
    tun, veth       Virtual    TUNTAP
    vxlan           Tunnel     UNKNOWN      VXLan
    anything else   Virtual    UNKNOWN

Netlink through pyroute2 for the scan (each scan opens its own `IPRoute` inside the namespace, see `links`);
the event socket is a plain AF_NETLINK socket, since only its arrival matters, not its contents.

May import: `midonet.datapath.base`, `midonet.datapath.linux.netns`, pyroute2, the standard library.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from collections.abc import Callable

from pyroute2 import IPRoute

from midonet.datapath.base import InterfaceInfo
from midonet.datapath.linux import netns

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
NETLINK_ROUTE = 0


def classify(kind: str | None, loopback: bool) -> tuple[str, str, str | None]:
    """(type, endpoint, port_type) of a link of this kind (see the module docstring)."""
    if loopback:
        return "Virtual", "LOCALHOST", None
    if kind is None:
        return "Physical", "PHYSICAL", None
    if kind in ("tun", "veth"):
        return "Virtual", "TUNTAP", None
    if kind == "vxlan":
        return "Tunnel", "UNKNOWN", "VXLan"
    return "Virtual", "UNKNOWN", None


class LinuxInterfaceSource:
    """Interfaces of one network namespace; see the module docstring."""

    def __init__(self, netns_name: str | None = None) -> None:
        self._netns = netns_name
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1

    def scan(self) -> list[InterfaceInfo]:
        with netns.entered(self._netns), IPRoute() as ipr:
            links = ipr.get_links()
            addresses: dict[int, list[str]] = {}
            for addr in ipr.get_addr(family=socket.AF_INET):
                addresses.setdefault(addr["index"], []).append(str(addr.get_attr("IFA_ADDRESS")))
        found = []
        for link in links:
            info = link.get_attr("IFLA_LINKINFO")
            kind = None if info is None else info.get_attr("IFLA_INFO_KIND")
            flags = int(link["flags"])
            kind_type, endpoint, port_type = classify(None if kind is None else str(kind), bool(flags & IFF_LOOPBACK))
            mac = link.get_attr("IFLA_ADDRESS")
            found.append(InterfaceInfo(
                name=str(link.get_attr("IFLA_IFNAME")), mac=None if mac is None else str(mac),
                mtu=int(link.get_attr("IFLA_MTU") or 1500), up=bool(flags & IFF_UP),
                has_link=bool(flags & IFF_LOWER_UP), addresses=tuple(addresses.get(link["index"], ())),
                type=kind_type, endpoint=endpoint, port_type=port_type))
        return found

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every burst of link or address changes, from a thread of our own."""
        if self._thread is not None:
            raise RuntimeError("already watching")
        with netns.entered(self._netns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
        sock.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(sock, callback), name="interfaces", daemon=True)
        self._thread.start()

    def _run(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        try:
            while True:
                ready, _, _ = select.select([sock.fileno(), self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                while True:   # drain the burst
                    try:
                        sock.recv(65536)
                    except BlockingIOError:
                        break
                try:
                    callback()
                except Exception:
                    log.exception("interface change callback failed")
        finally:
            sock.close()

    def close(self) -> None:
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r, self._wake_w = -1, -1
