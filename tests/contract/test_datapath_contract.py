"""The Datapath conformance suite (midonet.testing.datapath_conformance) against every backend.

    memory  -- `MemoryRig`: fake hosts on one `MemoryUnderlay`, each with its fake interfaces and a
               `MemoryDatapath`; frames are processed to completion before `inject` returns, so `quiesce`
               has nothing to wait for
    linux   -- `midonet.testing.linux_rig.LinuxRig`: each host a network namespace with veths into VM
               namespaces and a `LinuxDatapath` (tc-BPF), hosts bridged on a real VXLAN underlay; `quiesce`
               sends probe and marker frames through the same paths. Skipped, with the reason, when not root
               or without tc/clang/BPF (`midonet.datapath.linux.unavailable()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from midonet.datapath.base import Datapath
from midonet.datapath.linux import unavailable
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.testing.datapath_conformance import CHECKS, TIMEOUT, Check, DatapathRig
from midonet.testing.linux_rig import LinuxRig


class MemoryRig:
    """The memory backend's world for the suite."""

    def __init__(self) -> None:
        self.underlay = MemoryUnderlay()
        self.hosts: dict[str, MemoryHost] = {}
        self.datapaths: dict[str, MemoryDatapath] = {}

    def add_host(self, name: str, underlay_ip: str, interfaces: Sequence[str]) -> Datapath:
        host = MemoryHost(name, underlay_ip, self.underlay)
        for interface in interfaces:
            host.interfaces.add(interface)
        self.hosts[name] = host
        self.datapaths[name] = MemoryDatapath("midonet", host)
        return self.datapaths[name]

    def inject(self, host: str, interface: str, frame: bytes) -> None:
        self.hosts[host].interfaces.inject(interface, frame)

    def wait_frames(self, host: str, interface: str, count: int = 1, timeout: float = TIMEOUT) -> list[bytes]:
        return self.hosts[host].interfaces.wait_frames(interface, count, timeout)

    def take(self, host: str, interface: str) -> list[bytes]:
        return self.hosts[host].interfaces.take(interface)

    def quiesce(self) -> None:
        """Nothing to wait for: the run loop finished every frame before `inject` returned."""

    def close(self) -> None:
        for dp in self.datapaths.values():
            dp.close()
        for host in self.hosts.values():
            host.close()


RIGS: dict[str, Callable[[], DatapathRig]] = {"memory": MemoryRig, "linux": LinuxRig}
NEEDS: dict[str, Callable[[], str | None]] = {"linux": unavailable}


@pytest.fixture(params=sorted(RIGS))
def rig(request: pytest.FixtureRequest) -> Iterator[DatapathRig]:
    missing = NEEDS.get(request.param, lambda: None)()
    if missing is not None:
        pytest.skip(f"{request.param} datapath: {missing}")
    made = RIGS[request.param]()
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_conformance(rig: DatapathRig, check: Check) -> None:
    check(rig)
