"""The host service (registration, alive, interfaces) and tunnel-zone membership (peer routes)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from midonet.agent.host import HostService
from midonet.agent.tunnel_zones import TunnelRoute, TunnelZones, tunnel_tag
from midonet.datapath.base import InterfaceInfo
from midonet.topology.hosts import Host, TunnelZoneType

from .conftest import Recorder, Sessions

ME = "00000000-0000-4000-8000-000000000001"
PEER = "00000000-0000-4000-8000-000000000002"
OTHER = "00000000-0000-4000-8000-000000000003"


class Source:
    def __init__(self, *interfaces: InterfaceInfo) -> None:
        self.interfaces = list(interfaces)
        self.fail = False

    def scan(self) -> list[InterfaceInfo]:
        if self.fail:
            raise OSError("netlink went away")
        return list(self.interfaces)


def test_the_host_service_registers_and_publishes(sessions: Sessions) -> None:
    source = Source(InterfaceInfo("eth0", mac="02:00:00:00:00:aa", addresses=("10.0.0.1",), type="Physical"))
    seen: list[Mapping[str, InterfaceInfo]] = []
    service = HostService(ME, sessions.agent, source, name="node-1")
    service.on_interfaces(seen.append)
    service.start()
    assert sessions.operator.get(Host, ME).name == "node-1"
    assert sessions.operator.get_state(Host, ME, "alive") is not None
    state = sessions.operator.get_state(Host, ME, "interfaces")
    assert state is not None and json.loads(state.value) == [
        {"name": "eth0", "mac": "02:00:00:00:00:aa", "mtu": 1500, "status": 3, "type": "Physical",
         "addresses": ["10.0.0.1"], "endpoint": "UNKNOWN", "portType": None}]
    assert list(seen[-1]) == ["eth0"]


def test_a_rescan_publishes_only_changes_and_survives_a_failing_source(sessions: Sessions) -> None:
    source = Source(InterfaceInfo("tap0"))
    service = HostService(ME, sessions.agent, source)
    seen: list[Mapping[str, InterfaceInfo]] = []
    service.on_interfaces(seen.append)
    service.start()
    assert not service.rescan()
    source.interfaces = [InterfaceInfo("tap0", up=False)]
    assert service.rescan() and not seen[-1]["tap0"].usable
    source.fail = True
    assert not service.rescan()
    assert len(seen) == 2
    service.stop()
    assert sessions.operator.get_state(Host, ME, "alive") is None


def _zones(sessions: Sessions, rec: Recorder) -> TunnelZones:
    for host_id in (ME, PEER, OTHER):
        sessions.operator.create(Host(id=host_id))
    zones = TunnelZones(ME, sessions.agent, rec.gate, rec.invalidate)
    zones.start()
    return zones


def test_peers_get_a_route_from_the_first_zone_we_share(sessions: Sessions, rec: Recorder) -> None:
    zones = _zones(sessions, rec)
    topo = sessions.topology
    first = topo.tunnel_zone("a")
    topo.join(first, ME, "10.0.0.1")
    topo.join(first, PEER, "10.0.0.2")
    second = topo.tunnel_zone("b")
    topo.join(second, ME, "192.168.0.1")
    topo.join(second, PEER, "192.168.0.2")
    topo.join(second, OTHER, "192.168.0.3")
    sessions.flush()
    assert zones.my_ip() == "10.0.0.1"
    assert zones.route(PEER) == TunnelRoute("10.0.0.1", "10.0.0.2", first.id)
    assert zones.route(OTHER) == TunnelRoute("192.168.0.1", "192.168.0.3", second.id)
    assert tunnel_tag(OTHER) in rec.invalidated
    rec.invalidated.clear()
    topo.join(first, PEER, "10.0.0.22")                          # the peer moved
    sessions.flush()
    assert zones.route(PEER) == TunnelRoute("10.0.0.1", "10.0.0.22", first.id)
    assert rec.invalidated == [tunnel_tag(PEER)]
    zones.stop()


def test_vtep_zones_give_no_peer_routes(sessions: Sessions, rec: Recorder) -> None:
    zones = _zones(sessions, rec)
    vtep = sessions.topology.tunnel_zone("vtep", TunnelZoneType.VTEP)
    sessions.topology.join(vtep, ME, "10.0.0.1")
    sessions.topology.join(vtep, PEER, "10.0.0.2")
    sessions.flush()
    assert zones.routes() == {} and zones.my_ip() is None
