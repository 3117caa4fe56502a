"""The memory datapath: fake hosts with flow tables that really forward, wired by an in-memory underlay.

    runloop     -- run to completion: frame hand-offs are scheduled per thread, so nothing nests and `inject`
                   returns only when everything it caused is done
    interfaces  -- `Interfaces` / `FakeInterface`: a host's VM-side interfaces (inject, capture, link, MTU)
    underlay    -- `MemoryUnderlay`: the flat IPv4 network between hosts, routing VXLAN frames by address
    host        -- `MemoryHost`: a fake hypervisor (name, underlay address, interfaces, UDP endpoints)
    classifier  -- `MegaflowTable`: flows grouped by mask, one dict probe per mask (tuple-space search)
    actions     -- `interpret`: what a list of actions does to a frame, decided without doing it
    datapath    -- `MemoryDatapath`: the `Datapath` contract on a fake host

A fake world::

    underlay = MemoryUnderlay()
    h1, h2 = MemoryHost("h1", "10.0.0.1", underlay), MemoryHost("h2", "10.0.0.2", underlay)
    h1.interfaces.add("vm1"); dp1 = MemoryDatapath("midonet", h1); dp1.add_port("vm1")

May import: `midonet.packets`, `midonet.datapath.base`.
"""

from midonet.datapath.memory.datapath import MemoryDatapath
from midonet.datapath.memory.host import MemoryHost
from midonet.datapath.memory.interfaces import FakeInterface, InterfaceDrop, Interfaces, InterfaceStatistics
from midonet.datapath.memory.underlay import MemoryUnderlay, UnderlayDrop, UnderlayStatistics, underlay_mac

__all__ = [
    "FakeInterface",
    "InterfaceDrop",
    "InterfaceStatistics",
    "Interfaces",
    "MemoryDatapath",
    "MemoryHost",
    "MemoryUnderlay",
    "UnderlayDrop",
    "UnderlayStatistics",
    "underlay_mac",
]
