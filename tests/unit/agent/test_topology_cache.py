"""The virtual-topology cache: load on demand ("not yet", then the device), rebuild and invalidate on change, and
the oracle: what the cache built after a run of changes equals what the simulator's mappers build from scratch."""

from __future__ import annotations

import json

import pytest

from midonet.agent.host import alive_value
from midonet.agent.topology_cache import PortLocation, TopologyCache
from midonet.simulation.mappers import InMemoryTopology
from midonet.simulation.topology import NotYet
from midonet.topology.chains import Chain, Rule, RuleAction
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.hosts import Host
from midonet.topology.ids import BridgeId, ChainId, PortId, RouterId

from .conftest import Recorder, Sessions

HOST = "00000000-0000-4000-8000-00000000aaaa"


@pytest.fixture
def cache(sessions: Sessions, rec: Recorder) -> TopologyCache:
    return TopologyCache(sessions.agent, rec.gate, rec.invalidate, rec.ready)


def load(sessions: Sessions, get: object, *args: object) -> object:
    """Ask until the device is there: each miss subscribes to more, delivered by a flush."""
    for _ in range(6):
        try:
            return get(*args)  # type: ignore[operator]
        except NotYet:
            sessions.flush()
    raise AssertionError("never loaded")


def test_a_miss_is_not_yet_and_the_device_arrives_with_its_watch(sessions: Sessions, cache: TopologyCache,
                                                                rec: Recorder) -> None:
    net = sessions.topology.bridge("net")
    with pytest.raises(NotYet) as missing:
        cache.get_bridge(BridgeId(net.id))
    assert (missing.value.kind, missing.value.id) == ("bridge", net.id)
    sessions.flush()
    assert cache.get_bridge(BridgeId(net.id)).id == net.id
    assert ("bridge", net.id) in rec.readied


def test_a_change_rebuilds_the_device_and_invalidates_its_tag(sessions: Sessions, cache: TopologyCache,
                                                             rec: Recorder) -> None:
    topo = sessions.topology
    net = topo.bridge("net")
    load(sessions, cache.get_bridge, BridgeId(net.id))
    rec.invalidated.clear()
    port = topo.port(net, host_id=None)
    sessions.flush()
    assert cache.get_bridge(BridgeId(net.id)).exterior_ports == ()
    assert net.id not in rec.invalidated          # an unplugged port changes nothing the bridge forwards by
    topo.bind(port, *_host(sessions))
    sessions.flush()
    assert cache.get_bridge(BridgeId(net.id)).exterior_ports == (port.id,)
    assert net.id in rec.invalidated              # a new exterior port: the flood set changed


def _host(sessions: Sessions) -> tuple[str, str]:
    if not sessions.operator.exists(Host, HOST):
        sessions.operator.create(Host(id=HOST, name="h"))
    return HOST, "tap0"


def test_a_deleted_device_is_dropped(sessions: Sessions, cache: TopologyCache) -> None:
    chain = sessions.topology.chain("c")
    load(sessions, cache.get_chain, ChainId(chain.id))
    sessions.topology.delete(Chain, chain.id)
    sessions.flush()
    with pytest.raises(NotYet):
        cache.get_chain(ChainId(chain.id))


def test_routes_through_an_exterior_port_count_only_while_it_is_located(sessions: Sessions, cache: TopologyCache,
                                                                      rec: Recorder) -> None:
    topo = sessions.topology
    host_id, _ = _host(sessions)
    router = topo.router("r")
    uplink = topo.router_port(router, "192.0.2.1/24", "02:00:00:00:ee:01", host_id=host_id, interface="up0")
    route = topo.route(router, "0.0.0.0/0", uplink, gateway="192.0.2.254")
    sessions.agent.set_state(Host, host_id, "alive", alive_value(bound=True))     # its agent runs
    device = load(sessions, cache.get_router, RouterId(router.id))
    assert route.id not in {r.id for r in device.routing_table.routes}   # type: ignore[attr-defined]
    sessions.agent.set_state(Port, uplink.id, "active", json.dumps({"host_id": host_id, "tunnel_key": 5}))
    sessions.flush()
    assert route.id in {r.id for r in cache.get_router(RouterId(router.id)).routing_table.routes}
    assert router.id in rec.invalidated                         # flows through the router, routed before
    sessions.agent.delete_state(Port, uplink.id, "active")
    sessions.flush()
    assert route.id not in {r.id for r in cache.get_router(RouterId(router.id)).routing_table.routes}
    sessions.agent.delete_state(Host, host_id, "alive")          # its agent is away: its datapath still delivers
    sessions.flush()
    assert route.id in {r.id for r in cache.get_router(RouterId(router.id)).routing_table.routes}


def test_port_locations_load_on_demand_and_follow_the_active_key(sessions: Sessions, cache: TopologyCache,
                                                                rec: Recorder) -> None:
    net = sessions.topology.bridge("net")
    port = sessions.topology.port(net)
    with pytest.raises(NotYet):
        cache.port_location(port.id)
    sessions.flush()
    assert cache.port_location(port.id) is None
    sessions.agent.set_state(Port, port.id, "active", '{"host_id": "h2", "tunnel_key": 42}')
    sessions.flush()
    assert cache.port_location(port.id) == PortLocation("h2", 42)
    assert ("port_location", port.id) in rec.readied and port.id in rec.invalidated
    sessions.agent.set_state(Port, port.id, "active", "not json")
    sessions.flush()
    assert cache.port_location(port.id) is None                 # malformed reads as not active


def _active_port(sessions: Sessions, cache: TopologyCache) -> tuple[Port, PortLocation]:
    """A port bound to an interface of a host whose agent runs and made it active; the port, its location."""
    host_id, interface = _host(sessions)
    port = sessions.topology.port(sessions.topology.bridge("net"), host_id=host_id, interface=interface)
    here = PortLocation(host_id, port.tunnel_key)
    sessions.agent.set_state(Host, host_id, "alive", alive_value(bound=True))
    sessions.agent.set_state(Port, port.id, "active", json.dumps({"host_id": host_id, "tunnel_key": port.tunnel_key}))
    assert load(sessions, cache.port_location, port.id) == here
    return port, here


def test_a_bound_port_without_active_key_is_at_its_host_only_while_that_agent_is_away(
        sessions: Sessions, cache: TopologyCache, rec: Recorder) -> None:
    port, here = _active_port(sessions, cache)
    host_id = here.host_id
    # Its agent, alive, withdrew the key (the interface went down): nowhere, and the flows through it go.
    rec.invalidated.clear()
    sessions.agent.delete_state(Port, port.id, "active")
    sessions.flush()
    assert cache.port_location(port.id) is None and port.id in rec.invalidated
    # Its agent is away (stopped, restarting): its kernel still delivers what the port's binding says.
    sessions.agent.delete_state(Host, host_id, "alive")
    sessions.flush()
    assert cache.port_location(port.id) == here
    # Back, but not through its bindings yet: still there.
    sessions.agent.set_state(Host, host_id, "alive", alive_value(bound=False))
    sessions.flush()
    assert cache.port_location(port.id) == here


def test_an_agent_restart_changes_no_location_and_invalidates_nothing(sessions: Sessions, cache: TopologyCache,
                                                                      rec: Recorder) -> None:
    port, here = _active_port(sessions, cache)
    host_id = here.host_id
    rec.invalidated.clear()
    sessions.agent.delete_state(Host, host_id, "alive")          # the stopping agent says so first (detach)
    sessions.flush()
    sessions.agent.delete_state(Port, port.id, "active")         # then its session ends
    sessions.flush()
    assert cache.port_location(port.id) == here
    for state, key, value in ((Host, host_id, alive_value(bound=False)),       # the new agent starts,
                              (Port, port.id, json.dumps({"host_id": host_id, "tunnel_key": port.tunnel_key})),
                              (Host, host_id, alive_value(bound=True))):       # binds, and says so
        sessions.agent.set_state(state, key, "alive" if state is Host else "active", value)
        sessions.flush()
    assert cache.port_location(port.id) == here
    assert port.id not in rec.invalidated


def test_sources_no_device_needs_are_unsubscribed(sessions: Sessions, cache: TopologyCache) -> None:
    topo = sessions.topology
    net = topo.bridge("net")
    ports = [topo.port(net) for _ in range(3)]
    load(sessions, cache.get_bridge, BridgeId(net.id))
    watched = cache.watched()
    for port in ports:
        topo.delete(Port, port.id)
    sessions.flush()
    cache.get_bridge(BridgeId(net.id))
    assert cache.watched() == watched - 3


def test_incremental_updates_build_what_a_full_recompute_builds(sessions: Sessions, cache: TopologyCache) -> None:
    """OVN's oracle: after a run of changes, the cache's devices equal the mappers' over the final records."""
    topo = sessions.topology
    host_id, _ = _host(sessions)
    net, router = topo.bridge("net"), topo.router("r")
    rp = topo.router_port(router, "10.0.0.1/24", "02:00:00:00:ee:01")
    link = topo.port(net)
    vm = topo.port(net, host_id=host_id, interface="tap0")
    chain = topo.chain("c")
    load(sessions, cache.get_bridge, BridgeId(net.id))
    load(sessions, cache.get_router, RouterId(router.id))
    load(sessions, cache.get_chain, ChainId(chain.id))
    load(sessions, cache.get_port, PortId(vm.id))
    # changes, each delivered through the watches
    topo.link(rp, link)
    topo.route(router, "10.0.0.0/24", rp)
    topo.rule(chain, RuleAction.DROP, nw_dst_ip="10.0.0.9/32")
    topo.rule(chain, RuleAction.ACCEPT)
    topo.filters(Bridge, net.id, inbound=chain)
    topo.unbind(vm)
    extra = topo.port(net, host_id=host_id, interface="tap1")
    sessions.flush()
    records = [*sessions.operator.list(Bridge), *sessions.operator.list(Port), *sessions.operator.list(Router),
               *sessions.operator.list(Route), *sessions.operator.list(Chain), *sessions.operator.list(Rule)]
    oracle = InMemoryTopology(records, inactive_ports={p.id for p in records if isinstance(p, Port)})
    assert cache.get_bridge(BridgeId(net.id)) == oracle.get_bridge(BridgeId(net.id))
    assert cache.get_port(PortId(vm.id)) == oracle.get_port(PortId(vm.id))
    assert load(sessions, cache.get_port, PortId(extra.id)) == oracle.get_port(PortId(extra.id))
    mine, theirs = cache.get_router(RouterId(router.id)), oracle.get_router(RouterId(router.id))
    assert mine.routing_table.routes == theirs.routing_table.routes
    assert [r.id for r in cache.get_chain(ChainId(chain.id)).rules] == [
        r.id for r in oracle.get_chain(ChainId(chain.id)).rules]
