"""The network devices the Linux datapath owns or looks at, through netlink (pyroute2), in one namespace.

Role: device plumbing for `LinuxDatapath`, and nothing else: look interfaces up by name or index, create the
upcall veth pair and the VXLAN tunnel device, delete them, bring them up, keep IPv6 off them (a device of the
datapath must not chatter: router solicitations would come up as upcalls).

    Links(netns)                    every call runs with this thread inside `netns` (None: where it is)
    ifindex(name) / name(ifindex)   None when absent
    add_veth(a, b) / add_vxlan(name, udp_port) / delete(name) / up(name) / quiet(name)

pyroute2 0.9 opens its netlink socket lazily in the thread that first uses it, so each call makes its own
`IPRoute` inside `netns.entered`: a few milliseconds, and these are configuration calls, never per packet.

May import: `midonet.datapath.linux.netns`, pyroute2, the standard library.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from midonet.datapath.linux import netns


class Links:
    """Netlink in one namespace; see the module docstring."""

    def __init__(self, netns_name: str | None = None) -> None:
        self.netns = netns_name

    @contextlib.contextmanager
    def _ipr(self) -> Iterator[IPRoute]:
        with netns.entered(self.netns), IPRoute() as ipr:
            yield ipr

    def ifindex(self, name: str) -> int | None:
        with netns.entered(self.netns):
            try:
                return socket.if_nametoindex(name)
            except OSError:
                return None

    def name(self, ifindex: int) -> str | None:
        with netns.entered(self.netns):
            try:
                return socket.if_indextoname(ifindex)
            except OSError:
                return None

    def kind(self, name: str) -> str | None:
        """The link kind ("veth", "vxlan", ...; None for a plain device or an absent one)."""
        with self._ipr() as ipr:
            try:
                found = ipr.get_links(ifname=name)
            except NetlinkError:
                return None
            if not found:
                return None
            link = found[0]
            info = link.get_attr("IFLA_LINKINFO")
            return None if info is None else str(info.get_attr("IFLA_INFO_KIND"))

    def add_veth(self, name: str, peer: str) -> None:
        with self._ipr() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer=peer)

    def add_vxlan(self, name: str, udp_port: int) -> None:
        """A collect-metadata VXLAN device (`ip link add NAME type vxlan external dstport PORT`)."""
        with self._ipr() as ipr:
            ipr.link("add", ifname=name, kind="vxlan", vxlan_collect_metadata=1, vxlan_port=udp_port,
                     vxlan_learning=0)

    def up(self, name: str) -> None:
        with self._ipr() as ipr:
            ipr.link("set", index=self._index(ipr, name), state="up")

    def set_mtu(self, name: str, mtu: int) -> None:
        with self._ipr() as ipr:
            ipr.link("set", index=self._index(ipr, name), mtu=mtu)

    def delete(self, name: str) -> None:
        """Delete device `name` (a veth takes its peer with it); nothing if it is gone."""
        with self._ipr() as ipr:
            try:
                ipr.link("del", index=self._index(ipr, name))
            except (NetlinkError, LookupError):
                pass

    def quiet(self, name: str) -> None:
        """Keep IPv6 (and so router solicitations, MLD, DAD) off device `name`."""
        with netns.entered(self.netns):
            try:
                with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                    f.write("1")
            except FileNotFoundError:   # a kernel without IPv6
                pass

    @staticmethod
    def _index(ipr: IPRoute, name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise LookupError(errno.ENODEV, f"no device {name}")
        index: int = found[0]
        return index
