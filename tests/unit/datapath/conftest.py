"""A small fake world for the memory datapath's own tests: two hosts on one underlay.

    h1 (10.0.0.1): interfaces vm1, vm2 attached to dp1 as ports; a VXLAN port
    h2 (10.0.0.2): interface vm3 attached to dp2; a VXLAN port

`World.upcalls1` / `upcalls2` record the upcalls of each datapath. The datapaths run on a `FakeClock`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from midonet.datapath.base import DpPort, PortKind, Upcall
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.testing.clock import FakeClock

IP1, IP2 = "10.0.0.1", "10.0.0.2"


@dataclass
class World:
    clock: FakeClock
    underlay: MemoryUnderlay
    h1: MemoryHost
    h2: MemoryHost
    dp1: MemoryDatapath
    dp2: MemoryDatapath
    vm1: DpPort
    vm2: DpPort
    vx1: DpPort
    vm3: DpPort
    vx2: DpPort
    upcalls1: list[Upcall]
    upcalls2: list[Upcall]


@pytest.fixture
def world() -> Iterator[World]:
    clock = FakeClock()
    underlay = MemoryUnderlay()
    h1, h2 = MemoryHost("h1", IP1, underlay), MemoryHost("h2", IP2, underlay)
    for host, names in ((h1, ("vm1", "vm2")), (h2, ("vm3",))):
        for name in names:
            host.interfaces.add(name)
    dp1, dp2 = MemoryDatapath("dp1", h1, clock=clock.now), MemoryDatapath("dp2", h2, clock=clock.now)
    upcalls1: list[Upcall] = []
    upcalls2: list[Upcall] = []
    dp1.on_upcall(upcalls1.append)
    dp2.on_upcall(upcalls2.append)
    yield World(
        clock, underlay, h1, h2, dp1, dp2,
        dp1.add_port("vm1"), dp1.add_port("vm2"), dp1.add_port("tnvxlan-overlay", PortKind.VXLAN),
        dp2.add_port("vm3"), dp2.add_port("tnvxlan-overlay", PortKind.VXLAN),
        upcalls1, upcalls2,
    )
    dp1.close()
    dp2.close()
