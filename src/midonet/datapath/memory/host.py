"""A fake host (hypervisor or gateway): a name, an underlay address, its fake interfaces, its UDP endpoints.

Role: the unit a scenario test or the sandbox builds fake worlds from (OVN's "fake hypervisors")::

    underlay = MemoryUnderlay()
    host = MemoryHost("host1", "10.0.0.1", underlay)
    host.interfaces.add("tap-vm1")
    dp = MemoryDatapath("midonet", host)                  # the host's datapath
    dp.add_port("tap-vm1"); dp.add_port("tnvxlan-overlay", PortKind.VXLAN)
    host.interfaces.inject("tap-vm1", frame)               # as if the VM sent it
    host.interfaces.take("tap-vm1")                        # what the VM received

A host joins the underlay when it is made and leaves it on `close`. A datapath binds the overlay UDP port on its
host for its VXLAN port (`bind_udp`); one binding per port, so at most one datapath per host runs the overlay.

Threads: a lock guards the endpoint table; `send_underlay` needs none.

May import: `midonet.datapath.base`, `midonet.datapath.memory` (interfaces, underlay).
"""

from __future__ import annotations

import threading

from midonet.datapath.base import DatapathError
from midonet.datapath.memory.interfaces import Interfaces
from midonet.datapath.memory.underlay import Endpoint, MemoryUnderlay, underlay_mac


class MemoryHost:
    """A fake host on a `MemoryUnderlay`; see the module docstring."""

    def __init__(self, name: str, underlay_ip: str, underlay: MemoryUnderlay) -> None:
        self._name = name
        self._ip = underlay_ip
        self._underlay = underlay
        self._lock = threading.Lock()
        self._endpoints: dict[int, Endpoint] = {}
        self.interfaces = Interfaces(name)
        underlay.add_host(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def underlay_ip(self) -> str:
        return self._ip

    @property
    def underlay_mac(self) -> str:
        return underlay_mac(self._ip)

    @property
    def underlay(self) -> MemoryUnderlay:
        return self._underlay

    def bind_udp(self, udp_port: int, endpoint: Endpoint) -> None:
        """Receive the underlay frames sent to this host's `udp_port`; DatapathError if something else does."""
        with self._lock:
            if udp_port in self._endpoints:
                raise DatapathError(f"UDP port {udp_port} of host {self._name} is already bound")
            self._endpoints[udp_port] = endpoint

    def unbind_udp(self, udp_port: int) -> None:
        with self._lock:
            self._endpoints.pop(udp_port, None)

    def endpoint(self, udp_port: int) -> Endpoint | None:
        with self._lock:
            return self._endpoints.get(udp_port)

    def send_underlay(self, frame: bytes) -> None:
        """Put an outer frame on the underlay (it is routed by its outer IPv4 destination)."""
        self._underlay.deliver(frame)

    def close(self) -> None:
        """Leave the underlay: frames to this host's address are dropped from now on."""
        with self._lock:
            self._endpoints.clear()
        self._underlay.remove_host(self._ip)

    def __repr__(self) -> str:
        return f"MemoryHost({self._name!r}, {self._ip})"
