"""Port bindings: bound port + usable interface -> datapath port and `Port.active`; and back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from midonet.agent.bindings import PortBindings, dp_port_tag, tunnel_key_tag
from midonet.agent.translate import AgentResolver
from midonet.datapath.base import InterfaceInfo, Output, PortKind
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.topology.devices import Port
from midonet.topology.hosts import Host

from .conftest import Recorder, Sessions

ME = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def dp() -> Iterator[MemoryDatapath]:
    host = MemoryHost("h", "10.0.0.1", MemoryUnderlay())
    host.interfaces.add("tap0")
    datapath = MemoryDatapath("dp", host)
    yield datapath
    datapath.close()


@pytest.fixture
def bindings(sessions: Sessions, rec: Recorder, dp: MemoryDatapath) -> PortBindings:
    sessions.operator.create(Host(id=ME))
    b = PortBindings(ME, sessions.agent, dp, rec.gate, rec.invalidate)
    b.start()
    return b


def interfaces(rec: Recorder, bindings: PortBindings, **up: bool) -> None:
    rec.gate.run(lambda: bindings.set_interfaces({n: InterfaceInfo(n, up=u) for n, u in up.items()}))


def test_the_overlay_port_is_created_on_start(bindings: PortBindings, dp: MemoryDatapath) -> None:
    assert [(p.name, p.kind) for p in dp.ports()] == [("tnvxlan-overlay", PortKind.VXLAN)]
    assert bindings.vxlan_port == dp.ports()[0].number


def test_a_bound_port_with_its_interface_up_is_activated(sessions: Sessions, rec: Recorder,
                                                        bindings: PortBindings, dp: MemoryDatapath) -> None:
    net = sessions.topology.bridge("net")
    port = sessions.topology.port(net, host_id=ME, interface="tap0")
    sessions.flush()
    assert bindings.binding(port.id) is None                    # no interface known yet
    interfaces(rec, bindings, tap0=True)
    binding = bindings.binding(port.id)
    assert binding is not None and binding.tunnel_key == port.tunnel_key
    assert bindings.for_dp_port(binding.dp_port) is binding
    assert bindings.for_tunnel_key(port.tunnel_key) is binding
    assert "tap0" in [p.name for p in dp.ports()]
    state = sessions.operator.get_state(Port, port.id, "active")
    assert state is not None and json.loads(state.value) == {"host_id": ME, "tunnel_key": port.tunnel_key}
    assert port.id in rec.invalidated


def test_interface_down_deactivates_and_up_activates_on_a_new_datapath_port(
        sessions: Sessions, rec: Recorder, bindings: PortBindings) -> None:
    net = sessions.topology.bridge("net")
    port = sessions.topology.port(net, host_id=ME, interface="tap0")
    interfaces(rec, bindings, tap0=True)
    sessions.flush()
    first = bindings.binding(port.id)
    assert first is not None
    rec.invalidated.clear()
    interfaces(rec, bindings, tap0=False)
    assert bindings.binding(port.id) is None
    assert sessions.operator.get_state(Port, port.id, "active") is None
    assert set(rec.invalidated) >= {port.id, dp_port_tag(first.dp_port), tunnel_key_tag(first.tunnel_key)}
    interfaces(rec, bindings, tap0=True)
    second = bindings.binding(port.id)
    assert second is not None and second.dp_port != first.dp_port      # never reused


def test_unbinding_or_deleting_the_port_deactivates_it(sessions: Sessions, rec: Recorder,
                                                        bindings: PortBindings) -> None:
    net = sessions.topology.bridge("net")
    port = sessions.topology.port(net, host_id=ME, interface="tap0")
    interfaces(rec, bindings, tap0=True)
    sessions.flush()
    assert bindings.binding(port.id) is not None
    sessions.topology.unbind(port)
    sessions.flush()
    assert bindings.active() == {}
    sessions.topology.bind(port, ME, "tap0")
    sessions.flush()
    assert bindings.binding(port.id) is not None
    sessions.topology.delete(Port, port.id)
    sessions.flush()
    assert bindings.active() == {}


def test_an_interface_the_datapath_cannot_attach_is_counted(sessions: Sessions, rec: Recorder,
                                                             bindings: PortBindings) -> None:
    net = sessions.topology.bridge("net")
    sessions.topology.port(net, host_id=ME, interface="ghost")
    sessions.flush()
    interfaces(rec, bindings, ghost=True)                        # the source says so; the datapath has none
    assert bindings.active() == {} and bindings.failures["add_port"] == 1


def test_ports_a_previous_agent_left_on_the_datapath_are_adopted(sessions: Sessions, rec: Recorder,
                                                                 dp: MemoryDatapath) -> None:
    overlay = dp.add_port("tnvxlan-overlay", PortKind.VXLAN).number      # a reattached datapath keeps its ports
    tap = dp.add_port("tap0").number
    sessions.operator.create(Host(id=ME))
    bindings = PortBindings(ME, sessions.agent, dp, rec.gate, rec.invalidate)
    bindings.start()
    net = sessions.topology.bridge("net")
    port = sessions.topology.port(net, host_id=ME, interface="tap0")
    sessions.flush()
    interfaces(rec, bindings, tap0=True)
    binding = bindings.binding(port.id)
    assert bindings.vxlan_port == overlay
    assert binding is not None and binding.dp_port == tap
    assert sorted(p.number for p in dp.ports()) == sorted([overlay, tap])


class _Nowhere:
    """A topology cache whose ports are nowhere (the resolver asks it only for ports not bound here)."""

    def port_location(self, port_id: str) -> None:
        return None


def test_the_resolver_follows_a_port_to_its_new_interface(sessions: Sessions, rec: Recorder,
                                                          bindings: PortBindings, dp: MemoryDatapath) -> None:
    dp.host.interfaces.add("tap1")
    resolver = AgentResolver(ME, bindings, _Nowhere(), None)  # type: ignore[arg-type]
    port = sessions.topology.port(sessions.topology.bridge("net"), host_id=ME, interface="tap0")
    sessions.flush()
    interfaces(rec, bindings, tap0=True, tap1=True)
    first = bindings.binding(port.id)
    assert first is not None
    assert resolver.destination(port.id).actions == (Output(first.dp_port),)
    assert resolver.destination(port.id) is resolver.destination(port.id)   # made once while the binding holds
    sessions.operator.update(dataclasses.replace(sessions.operator.get(Port, port.id), interface_name="tap1"))
    sessions.flush()
    moved = bindings.binding(port.id)
    assert moved is not None and moved.dp_port != first.dp_port
    assert resolver.destination(port.id).actions == (Output(moved.dp_port),)
    interfaces(rec, bindings, tap0=True, tap1=False)
    assert bindings.binding(port.id) is None and resolver.destination(port.id).actions == ()
