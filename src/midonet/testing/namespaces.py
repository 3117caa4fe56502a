"""Worlds of network namespaces for tests and benchmarks: hosts, VMs, an underlay, all named with one prefix.

Role: the plumbing behind the Linux datapath's conformance rig, the system tests and the datapath benchmark
(mininet's habit: topology as data, cleanup as a feature). Everything a `NamespaceWorld` makes carries its
prefix (``mn-<4 hex>``), so `leftovers()` can list what this process's worlds left and `sweep(prefix)` remove
it (a crashed run's world).

    NamespaceWorld(prefix)
    ├── namespace(suffix) -> name       `ip netns add <prefix>-<suffix>`, loopback up, IPv6 off (no chatter:
    │                                   router solicitations would reach a datapath as upcalls)
    ├── veth(ns_a, a, ns_b, b)          a veth pair between two namespaces, both ends up
    ├── underlay() -> name              a namespace with a Linux bridge `br0`: the hosts' physical network
    ├── plug_underlay(ns, ip)           a veth `ul0` in `ns` (address ip/24, MTU 9000) into that bridge
    ├── address(ns, ifname, cidr)       an IPv4 address on an interface
    └── close()                         deletes every namespace it made (their interfaces go with them)

VM ends are named ``eth0`` inside their own namespace; interfaces in a host namespace take the names the caller
gives. Commands run through iproute2 (`ip -n`); a failing command raises `subprocess.CalledProcessError` with
its stderr.

May import: the standard library.
"""

from __future__ import annotations

import secrets
import subprocess

PREFIX = "mn-"
UNDERLAY_MTU = 9000


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["ip", *args], done.stdout, done.stderr)
    return done


def namespaces(prefix: str = PREFIX) -> list[str]:
    """The network namespaces whose names start with `prefix`."""
    listed = ip("netns", "list", check=False).stdout.splitlines()
    return sorted(name for name in (line.split()[0] for line in listed if line.strip()) if name.startswith(prefix))


_PREFIXES: set[str] = set()   # the prefixes of every world this process made


def made_prefixes() -> list[str]:
    """The prefixes of every world this process made."""
    return sorted(_PREFIXES)


def leftovers() -> list[str]:
    """Namespaces of worlds made by this process that still exist (other processes' worlds are not ours)."""
    return sorted(name for prefix in _PREFIXES for name in namespaces(prefix + "-"))


def sweep(prefix: str) -> None:
    """Delete every namespace named with `prefix` (a crashed run's world)."""
    for name in namespaces(prefix):
        ip("netns", "del", name, check=False)


def new_prefix() -> str:
    return f"{PREFIX}{secrets.token_hex(2)}"


class NamespaceWorld:
    """See the module docstring."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or new_prefix()
        _PREFIXES.add(self.prefix)
        self._made: list[str] = []
        self._underlay: str | None = None
        self._underlay_ports = 0

    def namespace(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        ip("netns", "add", name)
        self._made.append(name)
        sysctl = ["ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1"]
        subprocess.run(sysctl, capture_output=True, check=False)
        ip("-n", name, "link", "set", "dev", "lo", "up")
        return name

    def veth(self, ns_a: str, a: str, ns_b: str, b: str, *, mtu: int | None = None, mac_b: str | None = None) -> None:
        ip("link", "add", "name", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
        for ns, name in ((ns_a, a), (ns_b, b)):
            if mtu is not None:
                ip("-n", ns, "link", "set", "dev", name, "mtu", str(mtu))
            if ns == ns_b and name == b and mac_b is not None:
                ip("-n", ns, "link", "set", "dev", name, "address", mac_b)
            ip("-n", ns, "link", "set", "dev", name, "up")

    def vm(self, host_ns: str, host_ifname: str, suffix: str, *, mac: str | None = None,
           cidr: str | None = None, mtu: int | None = None) -> str:
        """A VM: a namespace whose `eth0` is the peer of `host_ifname` in `host_ns`."""
        name = self.namespace(suffix)
        self.veth(host_ns, host_ifname, name, "eth0", mtu=mtu, mac_b=mac)
        if cidr is not None:
            self.address(name, "eth0", cidr)
        return name

    def address(self, ns: str, ifname: str, cidr: str) -> None:
        ip("-n", ns, "addr", "add", cidr, "dev", ifname)

    def underlay(self) -> str:
        """The underlay namespace with its bridge (made on first use)."""
        if self._underlay is None:
            self._underlay = self.namespace("ul")
            ip("-n", self._underlay, "link", "add", "name", "br0", "type", "bridge")
            ip("-n", self._underlay, "link", "set", "dev", "br0", "mtu", str(UNDERLAY_MTU), "up")
        return self._underlay

    def plug_underlay(self, ns: str, address: str, *, ifname: str = "ul0", prefix_len: int = 24) -> None:
        """Give `ns` a NIC on the underlay: `ifname` with `address`, bridged with every other host's."""
        underlay = self.underlay()
        self._underlay_ports += 1
        port = f"p{self._underlay_ports}"
        self.veth(ns, ifname, underlay, port, mtu=UNDERLAY_MTU)
        ip("-n", underlay, "link", "set", "dev", port, "master", "br0")
        self.address(ns, ifname, f"{address}/{prefix_len}")

    @property
    def made(self) -> list[str]:
        return list(self._made)

    def close(self) -> None:
        """Delete every namespace this world made (idempotent)."""
        for name in reversed(self._made):
            ip("netns", "del", name, check=False)
        self._made.clear()
        self._underlay = None
