"""`LinuxInterfaceSource`: the interfaces of a namespace, their link state, and change events."""

from __future__ import annotations

import threading

from midonet.datapath.base import InterfaceInfo
from midonet.datapath.linux import LinuxInterfaceSource
from midonet.testing.linux_rig import LinuxRig
from midonet.testing.namespaces import ip


def by_name(links: list[InterfaceInfo]) -> dict[str, InterfaceInfo]:
    return {link.name: link for link in links}


def test_scan_watch_and_link_state(rig: LinuxRig) -> None:
    rig.add_linux_host("h1", "10.99.0.1", ["a"])
    ns = rig.host_netns("h1")
    source = LinuxInterfaceSource(ns)
    changed = threading.Event()
    source.watch(changed.set)
    try:
        found = by_name(source.scan())
        assert found["lo"].endpoint == "LOCALHOST"
        assert found["ul0"].addresses == ("10.99.0.1",) and found["ul0"].type == "Virtual"
        assert found["a"].usable and found["a"].endpoint == "TUNTAP" and found["a"].mac is not None
        assert found["midonet-up"].usable                      # the datapath's upcall veth

        changed.clear()
        ip("-n", ns, "link", "set", "dev", "a", "down")
        assert changed.wait(5)
        assert not by_name(source.scan())["a"].up

        changed.clear()
        ip("-n", ns, "link", "set", "dev", "a", "up")
        assert changed.wait(5)
        assert by_name(source.scan())["a"].usable

        changed.clear()
        ip("-n", ns, "link", "add", "name", "mn-new", "type", "vxlan", "external", "dstport", "4790")
        assert changed.wait(5)
        new = by_name(source.scan())["mn-new"]
        assert (new.type, new.port_type, new.up) == ("Tunnel", "VXLan", False)
    finally:
        source.close()
