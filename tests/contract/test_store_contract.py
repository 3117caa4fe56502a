"""The Store conformance suite (store/base.py): every test runs against every backend.

    memory     -- one `MemoryBackend`, sessions from `backend.connect(owner)`
    zookeeper  -- a real ZooKeeper (the session fixture `zookeeper`), one kazoo session per store, a fresh
                  root path per test

A `Cluster` hands out sessions on one backend, so a test can close one and watch its state vanish for
another. Asynchronous results are awaited with `wait_until` (a bounded poll), never with sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

import pytest
from kazoo.client import KazooClient

from midonet.store.base import (
    Create,
    Delete,
    ObjectDeleted,
    ObjectEvent,
    ObjectUpdated,
    StateValue,
    Store,
    UpdateWith,
)
from midonet.store.factory import open_store, parse_zookeeper_url
from midonet.store.journal import Image, ObjectsWritten, TableEntrySet
from midonet.store.memory import MemoryBackend, MemoryStore
from midonet.store.zookeeper import ZooKeeperStore
from midonet.topology.chains import Chain, Rule, RuleAction
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.errors import ConflictError, NotFoundError, StorageError, ValidationError
from midonet.topology.hosts import Host
from midonet.topology.l4lb import LoadBalancer
from midonet.topology.record import Record

T = TypeVar("T")
TableChange = tuple[str, str | None, str | None]

MAC1, MAC2 = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"


def new_id() -> str:
    return str(uuid.uuid4())


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


class Recorder(Generic[T]):
    """A thread-safe list of the values a callback received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[T] = []

    def __call__(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[T]:
        wait_until(lambda: len(self.items) >= count, timeout, f"{count} events (have {self.items})")
        return self.items


class Cluster:
    """Sessions on one backend; closes them all at the end."""

    def __init__(self, kind: str, zookeeper_hosts: str | None = None) -> None:
        self.kind = kind
        self.hosts = zookeeper_hosts
        self.root = f"/contract-{uuid.uuid4().hex}"
        self.backend = MemoryBackend() if kind == "memory" else None
        self._sessions: list[Store] = []

    def session(self, owner: str = "api") -> Store:
        store: Store
        if self.backend is not None:
            store = self.backend.connect(owner)
        else:
            assert self.hosts is not None
            store = ZooKeeperStore(self.hosts, self.root, owner)
        self._sessions.append(store)
        return store

    def close(self) -> None:
        for store in self._sessions:
            store.close()
        if self.backend is not None:
            self.backend.close()
        if self.hosts is not None:
            client = KazooClient(hosts=self.hosts)
            client.start(timeout=10)
            try:
                client.delete(self.root, recursive=True)
            finally:
                client.stop()
                client.close()


@pytest.fixture(params=["memory", "zookeeper"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    hosts = request.getfixturevalue("zookeeper") if request.param == "zookeeper" else None
    c = Cluster(request.param, hosts)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def store(cluster: Cluster) -> Store:
    return cluster.session()


# --- objects ----------------------------------------------------------------------------------------

def test_create_get_find_exists_list(store: Store) -> None:
    b1, b2 = Bridge(id=new_id(), name="one"), Bridge(id=new_id(), name="two")
    store.create(b1)
    store.create(b2)
    assert store.get(Bridge, b1.id) == b1
    assert store.find(Bridge, b2.id) == b2
    assert store.exists(Bridge, b1.id)
    assert store.find(Bridge, new_id()) is None
    assert not store.exists(Router, b1.id)
    assert store.list(Bridge) == [b1, b2]
    missing = new_id()
    assert store.list(Bridge, [b2.id, missing, b1.id]) == [b2, b1]
    assert store.list(Router) == []
    with pytest.raises(NotFoundError):
        store.get(Bridge, missing)
    with pytest.raises(ConflictError):
        store.create(Bridge(id=b1.id))


def test_list_keeps_creation_order_through_updates(store: Store) -> None:
    bridges = [Bridge(id=new_id(), name=f"b{i}") for i in range(4)]
    for bridge in bridges:
        store.create(bridge)
    store.update(bridges[0].replace(name="renamed"))
    store.multi([UpdateWith(Bridge, bridges[2].id, lambda b: b.replace(admin_state_up=False))])
    assert [b.id for b in store.list(Bridge)] == [b.id for b in bridges]


def test_update_and_delete(store: Store) -> None:
    bridge = Bridge(id=new_id(), name="before")
    store.create(bridge)
    store.update(bridge.replace(name="after"))
    assert store.get(Bridge, bridge.id).name == "after"
    store.multi([UpdateWith(Bridge, bridge.id, lambda b: b.replace(admin_state_up=False))])
    assert store.get(Bridge, bridge.id) == bridge.replace(name="after", admin_state_up=False)
    with pytest.raises(NotFoundError):
        store.update(Bridge(id=new_id()))
    store.delete(Bridge, bridge.id)
    assert not store.exists(Bridge, bridge.id)
    with pytest.raises(NotFoundError):
        store.delete(Bridge, bridge.id)
    store.multi([Delete(Bridge, bridge.id, ignore_missing=True)])


def test_a_batch_that_fails_changes_nothing(store: Store) -> None:
    bridge = Bridge(id=new_id())
    kept = Bridge(id=new_id(), name="kept")
    store.create(kept)
    with pytest.raises(NotFoundError):
        store.multi([
            Create(bridge),
            Create(Port(id=new_id(), network_id=bridge.id)),
            UpdateWith(Bridge, kept.id, lambda b: b.replace(name="changed")),
            Create(Port(id=new_id(), network_id=new_id())),   # refers to a missing bridge: fails last
        ])
    assert store.list(Bridge) == [kept]
    assert store.list(Port) == []


def test_ops_see_the_ops_before_them(store: Store) -> None:
    chain, r1, r2 = Chain(id=new_id()), new_id(), new_id()
    store.multi([
        Create(chain),
        Create(Rule(id=r1, chain_id=chain.id)),
        Create(Rule(id=r2, chain_id=chain.id, action=RuleAction.DROP)),
        UpdateWith(Chain, chain.id, lambda c: c.replace(rule_ids=(r2, r1))),
    ])
    assert store.get(Chain, chain.id).rule_ids == (r2, r1)


def test_invalid_update_is_a_validation_error(store: Store) -> None:
    bridge = Bridge(id=new_id())
    store.create(bridge)
    with pytest.raises(ValidationError):
        store.multi([UpdateWith(Bridge, bridge.id, lambda b: b.replace(vni=1 << 30))])


# --- referential integrity ----------------------------------------------------------------------------

def test_ports_are_listed_on_their_bridge_and_cleared_on_delete(store: Store) -> None:
    bridge = Bridge(id=new_id())
    p1, p2 = Port(id=new_id(), network_id=bridge.id), Port(id=new_id(), network_id=bridge.id)
    store.multi([Create(bridge), Create(p1), Create(p2)])
    assert store.get(Bridge, bridge.id).port_ids == (p1.id, p2.id)
    store.delete(Port, p1.id)
    assert store.get(Bridge, bridge.id).port_ids == (p2.id,)


def test_router_delete_cascades_to_ports_and_routes(store: Store) -> None:
    router, bridge = Router(id=new_id()), Bridge(id=new_id())
    rport = Port(id=new_id(), router_id=router.id, port_subnet="10.0.0.0/24", port_address="10.0.0.1")
    bport = Port(id=new_id(), network_id=bridge.id, peer_id=rport.id)
    route = Route(id=new_id(), router_id=router.id, next_hop_port_id=rport.id, dst_subnet="10.0.0.0/24")
    store.multi([Create(router), Create(bridge), Create(rport), Create(bport), Create(route)])
    assert store.get(Router, router.id).route_ids == (route.id,)
    assert store.get(Port, rport.id).peer_id == bport.id
    store.delete(Router, router.id)
    assert not store.exists(Port, rport.id)
    assert not store.exists(Route, route.id)
    assert store.get(Port, bport.id).peer_id is None
    assert store.get(Bridge, bridge.id).port_ids == (bport.id,)


def test_chain_delete_cascades_to_rules_and_clears_filters(store: Store) -> None:
    chain = Chain(id=new_id())
    bridge = Bridge(id=new_id(), inbound_filter_id=chain.id)
    rule = Rule(id=new_id(), chain_id=chain.id)
    store.multi([Create(chain), Create(bridge), Create(rule)])
    assert store.get(Chain, chain.id).network_inbound_ids == (bridge.id,)
    assert store.get(Chain, chain.id).rule_ids == (rule.id,)
    store.delete(Chain, chain.id)
    assert not store.exists(Rule, rule.id)
    assert store.get(Bridge, bridge.id).inbound_filter_id is None


def test_error_binding_refuses_to_delete_a_router_with_a_load_balancer(store: Store) -> None:
    router = Router(id=new_id())
    lb = LoadBalancer(id=new_id(), router_id=router.id)
    store.multi([Create(router), Create(lb)])
    assert store.get(Router, router.id).load_balancer_id == lb.id
    with pytest.raises(ConflictError):
        store.delete(Router, router.id)
    assert store.exists(Router, router.id) and store.exists(LoadBalancer, lb.id)
    store.multi([Delete(LoadBalancer, lb.id), Delete(Router, router.id)])
    assert not store.exists(Router, router.id)


def test_linking_ports_sets_both_peers_and_stealing_is_refused(store: Store) -> None:
    bridge = Bridge(id=new_id())
    ports = [Port(id=new_id(), network_id=bridge.id) for _ in range(3)]
    store.multi([Create(bridge), *(Create(p) for p in ports)])
    a, b, c = (p.id for p in ports)
    store.multi([UpdateWith(Port, a, lambda p: p.replace(peer_id=b))])
    assert store.get(Port, a).peer_id == b
    assert store.get(Port, b).peer_id == a
    with pytest.raises(ConflictError):
        store.multi([UpdateWith(Port, c, lambda p: p.replace(peer_id=b))])
    assert store.get(Port, c).peer_id is None
    assert store.get(Port, b).peer_id == a


def test_a_reference_to_a_missing_object_is_not_found(store: Store) -> None:
    missing = new_id()
    with pytest.raises(NotFoundError) as err:
        store.create(Port(id=new_id(), network_id=missing))
    assert err.value.kind == "Bridge" and err.value.obj_id == missing


def test_concurrent_updates_of_one_object_all_land(cluster: Cluster) -> None:
    bridge = Bridge(id=new_id())
    sessions = [cluster.session(f"api-{i}") for i in range(3)]
    sessions[0].create(bridge)
    rounds = 10

    errors: list[Exception] = []

    def bump(s: Store) -> None:
        try:
            for _ in range(rounds):
                s.multi([UpdateWith(Bridge, bridge.id, lambda b: b.replace(tunnel_key=b.tunnel_key + 1))])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=bump, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sessions[0].get(Bridge, bridge.id).tunnel_key == rounds * len(sessions)


# --- watches ------------------------------------------------------------------------------------------

def test_watch_delivers_the_current_object_then_changes_in_order(store: Store) -> None:
    bridge = Bridge(id=new_id(), name="v1")
    store.create(bridge)
    events: Recorder[ObjectEvent] = Recorder()
    sub = store.watch(Bridge, bridge.id, events)
    assert events.wait_for(1) == [ObjectUpdated(Bridge, bridge.id, bridge)]
    store.update(bridge.replace(name="v2"))
    assert events.wait_for(2)[1] == ObjectUpdated(Bridge, bridge.id, bridge.replace(name="v2"))
    store.delete(Bridge, bridge.id)
    assert events.wait_for(3)[2] == ObjectDeleted(Bridge, bridge.id)
    sub.cancel()


def test_watch_of_a_missing_object_waits_for_its_creation(store: Store) -> None:
    bridge = Bridge(id=new_id())
    events: Recorder[ObjectEvent] = Recorder()
    store.watch(Bridge, bridge.id, events)
    store.create(bridge)
    assert events.wait_for(1) == [ObjectUpdated(Bridge, bridge.id, bridge)]


def test_watch_class_delivers_every_object_and_changes(store: Store) -> None:
    b1, b2 = Bridge(id=new_id(), name="one"), Bridge(id=new_id(), name="two")
    store.create(b1)
    events: Recorder[ObjectEvent] = Recorder()
    store.watch_class(Bridge, events)
    assert events.wait_for(1) == [ObjectUpdated(Bridge, b1.id, b1)]
    store.create(b2)
    assert events.wait_for(2)[1] == ObjectUpdated(Bridge, b2.id, b2)
    store.update(b1.replace(name="uno"))
    assert events.wait_for(3)[2] == ObjectUpdated(Bridge, b1.id, b1.replace(name="uno"))
    store.delete(Bridge, b2.id)
    assert events.wait_for(4)[3] == ObjectDeleted(Bridge, b2.id)


def test_watches_see_changes_of_other_sessions_and_cancel_stops_them(cluster: Cluster) -> None:
    writer, reader = cluster.session("writer"), cluster.session("reader")
    bridge = Bridge(id=new_id(), name="v1")
    writer.create(bridge)
    cancelled: Recorder[ObjectEvent] = Recorder()
    kept: Recorder[ObjectEvent] = Recorder()
    sub = reader.watch(Bridge, bridge.id, cancelled)
    reader.watch(Bridge, bridge.id, kept)
    cancelled.wait_for(1)
    kept.wait_for(1)
    sub.cancel()
    writer.update(bridge.replace(name="v2"))
    assert kept.wait_for(2)[1] == ObjectUpdated(Bridge, bridge.id, bridge.replace(name="v2"))
    assert len(cancelled.items) == 1


def test_a_watch_callback_may_use_the_store(store: Store) -> None:
    bridge = Bridge(id=new_id())
    names: Recorder[str | None] = Recorder()

    def on_event(event: ObjectEvent) -> None:   # runs on the delivery thread, outside the store's lock
        found = store.find(Bridge, event.id)
        names(None if found is None else found.name)
        if isinstance(event, ObjectUpdated) and event.obj.name is None:
            store.update(event.obj.replace(name="named-by-the-watcher"))

    store.watch(Bridge, bridge.id, on_event)
    store.create(bridge)
    wait_until(lambda: "named-by-the-watcher" in names.items, what="the watcher's own update")


# --- state keys ---------------------------------------------------------------------------------------

def test_state_keys_are_shared_and_vanish_with_their_session(cluster: Cluster) -> None:
    agent, api = cluster.session("agent-1"), cluster.session("api")
    host = new_id()
    agent.set_state(Host, host, "alive", "true")
    assert api.get_state(Host, host, "alive") == StateValue("true", "agent-1")
    seen: Recorder[StateValue | None] = Recorder()
    api.watch_state(Host, host, "alive", seen)
    assert seen.wait_for(1) == [StateValue("true", "agent-1")]
    agent.set_state(Host, host, "alive", "yes")
    assert seen.wait_for(2)[1] == StateValue("yes", "agent-1")
    agent.close()
    assert seen.wait_for(3)[2] is None
    assert api.get_state(Host, host, "alive") is None


def test_state_keys_last_write_wins(cluster: Cluster) -> None:
    a, b, reader = cluster.session("a"), cluster.session("b"), cluster.session("reader")
    host = new_id()
    a.set_state(Host, host, "alive", "from-a")
    b.set_state(Host, host, "alive", "from-b")
    assert reader.get_state(Host, host, "alive") == StateValue("from-b", "b")
    a.delete_state(Host, host, "alive")        # not a's any more: stays
    a.close()
    assert reader.get_state(Host, host, "alive") == StateValue("from-b", "b")
    b.delete_state(Host, host, "alive")
    assert reader.get_state(Host, host, "alive") is None


def test_watch_state_of_an_unset_key_starts_with_none(store: Store) -> None:
    seen: Recorder[StateValue | None] = Recorder()
    store.watch_state(Host, new_id(), "alive", seen)
    assert seen.wait_for(1) == [None]


# --- state tables -------------------------------------------------------------------------------------

def test_state_table_put_get_snapshot_remove(store: Store) -> None:
    table = store.state_table(Bridge, new_id(), "mac_table/0")
    assert table.snapshot() == {}
    table.put("aa:bb:cc:00:00:01", "port-1")
    table.put("10.0.0.1/32", "port-2")
    table.put("aa:bb:cc:00:00:01", "port-3")
    assert table.get("aa:bb:cc:00:00:01") == "port-3"
    assert table.get("missing") is None
    assert table.snapshot() == {"aa:bb:cc:00:00:01": "port-3", "10.0.0.1/32": "port-2"}
    table.remove("10.0.0.1/32", "not-its-value")
    assert table.get("10.0.0.1/32") == "port-2"
    table.remove("10.0.0.1/32", "port-2")
    table.remove("aa:bb:cc:00:00:01")
    table.remove("never-there")
    assert table.snapshot() == {}


def test_state_table_watch_delivers_entries_then_changes(cluster: Cluster) -> None:
    writer, reader = cluster.session("writer"), cluster.session("reader")
    bridge = new_id()
    writer.state_table(Bridge, bridge, "mac_table").put("k1", "v1")
    changes: Recorder[tuple[str, str | None, str | None]] = Recorder()
    reader.state_table(Bridge, bridge, "mac_table").watch(lambda k, old, new: changes((k, old, new)))
    assert changes.wait_for(1) == [("k1", None, "v1")]
    table = writer.state_table(Bridge, bridge, "mac_table")
    table.put("k2", "v2")
    assert changes.wait_for(2)[1] == ("k2", None, "v2")
    table.put("k1", "v1b")
    assert changes.wait_for(3)[2] == ("k1", "v1", "v1b")
    table.remove("k2")
    assert changes.wait_for(4)[3] == ("k2", "v2", None)


def test_state_table_entries_vanish_with_their_session_unless_persistent(cluster: Cluster) -> None:
    agent, api = cluster.session("agent-1"), cluster.session("api")
    router = new_id()
    mine = agent.state_table(Router, router, "arp_table")
    mine.put("10.0.0.1", "aa:bb:cc:00:00:01")
    mine.put("10.0.0.2", "aa:bb:cc:00:00:02", persistent=True)
    theirs = api.state_table(Router, router, "arp_table")
    changes: Recorder[tuple[str, str | None, str | None]] = Recorder()
    theirs.watch(lambda k, old, new: changes((k, old, new)))
    changes.wait_for(2)
    agent.close()
    events = changes.wait_for(3)
    assert events[2] == ("10.0.0.1", "aa:bb:cc:00:00:01", None)
    assert theirs.snapshot() == {"10.0.0.2": "aa:bb:cc:00:00:02"}


def test_state_table_last_writer_owns_the_entry(cluster: Cluster) -> None:
    a, b, reader = cluster.session("a"), cluster.session("b"), cluster.session("reader")
    bridge = new_id()
    a.state_table(Bridge, bridge, "t").put("k", "from-a")
    b.state_table(Bridge, bridge, "t").put("k", "from-b")
    a.close()
    assert reader.state_table(Bridge, bridge, "t").get("k") == "from-b"
    b.close()
    assert reader.state_table(Bridge, bridge, "t").get("k") is None


def test_state_table_claim_has_one_winner_until_its_session_ends(cluster: Cluster) -> None:
    a, b = cluster.session("a"), cluster.session("b")
    router = new_id()
    mine, theirs = a.state_table(Router, router, "nat:192.0.2.1"), b.state_table(Router, router, "nat:192.0.2.1")
    assert mine.claim("taken:7", "a")
    assert mine.claim("taken:7", "a")                  # held already: still ours
    assert not theirs.claim("taken:7", "b")
    assert theirs.get("taken:7") == "a"
    results: list[bool] = []
    threads = [threading.Thread(target=lambda s=s: results.append(
        s.state_table(Router, router, "nat:192.0.2.1").claim("taken:8", s.owner))) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    a.close()
    assert theirs.claim("taken:7", "b")                 # gone with its session: free again
    assert theirs.get("taken:7") == "b"


def test_table_names_lists_the_tables_holding_entries(cluster: Cluster) -> None:
    agent, api = cluster.session("agent-1"), cluster.session("api")
    bridge, other = new_id(), new_id()
    assert api.table_names(Bridge, bridge) == []
    agent.state_table(Bridge, bridge, "mac_table:10").put(MAC1, "port-1")
    agent.state_table(Bridge, bridge, "mac_table:0").put(MAC1, "port-2")
    api.state_table(Bridge, bridge, "ip4_mac_table").put("10.0.0.1", MAC1, persistent=True)
    api.state_table(Bridge, other, "mac_table:0").put(MAC2, "port-3")
    api.state_table(Router, bridge, "arp_table").put("10.0.0.1", MAC1)   # same id, another class
    assert api.table_names(Bridge, bridge) == ["ip4_mac_table", "mac_table:0", "mac_table:10"]
    agent.state_table(Bridge, bridge, "mac_table:10").remove(MAC1)       # emptied: not listed
    assert api.table_names(Bridge, bridge) == ["ip4_mac_table", "mac_table:0"]
    agent.close()                                                        # ephemeral entries go
    assert api.table_names(Bridge, bridge) == ["ip4_mac_table"]
    assert api.table_names(Bridge, other) == ["mac_table:0"]
    assert api.table_names(Router, bridge) == ["arp_table"]


# --- deleting an object takes its state with it --------------------------------------------------------

def watch_table(store: Store, cls: type[Record], obj_id: str, name: str) -> Recorder[TableChange]:
    changes: Recorder[TableChange] = Recorder()
    store.state_table(cls, obj_id, name).watch(lambda k, old, new: changes((k, old, new)))
    return changes


def test_deleting_an_object_removes_its_state_keys_and_tables(cluster: Cluster) -> None:
    api, agent, watcher = cluster.session("api"), cluster.session("agent-1"), cluster.session("watcher")
    bridge, kept = Bridge(id=new_id()), Bridge(id=new_id())
    api.multi([Create(bridge), Create(kept)])
    for b in (bridge, kept):
        agent.set_state(Bridge, b.id, "active", "yes")
        agent.state_table(Bridge, b.id, "mac_table:0").put(MAC1, "port-1")
        agent.state_table(Bridge, b.id, "mac_table:10").put(MAC2, "port-2")
        api.state_table(Bridge, b.id, "mac_table:10").put(MAC1, "port-3", persistent=True)
    events: Recorder[ObjectEvent] = Recorder()
    watcher.watch(Bridge, bridge.id, events)
    states: Recorder[StateValue | None] = Recorder()
    watcher.watch_state(Bridge, bridge.id, "active", states)
    untagged = watch_table(watcher, Bridge, bridge.id, "mac_table:0")
    vlan = watch_table(watcher, Bridge, bridge.id, "mac_table:10")
    events.wait_for(1)
    states.wait_for(1)
    untagged.wait_for(1)
    vlan.wait_for(2)

    api.delete(Bridge, bridge.id)

    assert api.table_names(Bridge, bridge.id) == []
    assert api.state_table(Bridge, bridge.id, "mac_table:10").snapshot() == {}
    assert api.get_state(Bridge, bridge.id, "active") is None
    assert events.wait_for(2)[1] == ObjectDeleted(Bridge, bridge.id)
    assert states.wait_for(2)[1] is None
    assert untagged.wait_for(2)[1] == (MAC1, "port-1", None)
    assert sorted(vlan.wait_for(4)[2:]) == [(MAC1, "port-3", None), (MAC2, "port-2", None)]
    # the other bridge keeps everything
    assert api.table_names(Bridge, kept.id) == ["mac_table:0", "mac_table:10"]
    assert api.get_state(Bridge, kept.id, "active") == StateValue("yes", "agent-1")
    # a table watch goes on after its object's delete (an agent that has not seen it yet writes again)
    agent.state_table(Bridge, bridge.id, "mac_table:0").put(MAC2, "port-4")
    assert untagged.wait_for(3)[2] == (MAC2, None, "port-4")
    # the agent still owns its entries of the other bridge
    agent.close()
    assert api.table_names(Bridge, kept.id) == ["mac_table:10"]
    assert api.state_table(Bridge, kept.id, "mac_table:10").snapshot() == {MAC1: "port-3"}


def test_a_cascade_removes_the_state_of_every_object_it_deletes(cluster: Cluster) -> None:
    api, agent = cluster.session("api"), cluster.session("agent-1")
    router = Router(id=new_id())
    rport = Port(id=new_id(), router_id=router.id, port_subnet="10.0.0.0/24", port_address="10.0.0.1")
    route = Route(id=new_id(), router_id=router.id, next_hop_port_id=rport.id, dst_subnet="10.0.0.0/24")
    api.multi([Create(router), Create(rport), Create(route)])
    agent.set_state(Port, rport.id, "active", "yes")
    api.set_state(Router, router.id, "owner-note", "api's own")
    agent.state_table(Router, router.id, "arp_table").put("10.0.0.2", MAC1)
    api.state_table(Port, rport.id, "peering_table").put("10.0.0.9", MAC2, persistent=True)
    peering = watch_table(agent, Port, rport.id, "peering_table")
    peering.wait_for(1)

    api.delete(Router, router.id)

    assert not api.exists(Port, rport.id) and not api.exists(Route, route.id)
    assert api.get_state(Port, rport.id, "active") is None
    assert api.get_state(Router, router.id, "owner-note") is None
    assert api.table_names(Router, router.id) == []
    assert api.table_names(Port, rport.id) == []
    assert peering.wait_for(2)[1] == ("10.0.0.9", MAC2, None)


def test_a_failed_delete_keeps_the_state(store: Store) -> None:
    router = Router(id=new_id())
    lb = LoadBalancer(id=new_id(), router_id=router.id)
    store.multi([Create(router), Create(lb)])
    store.set_state(Router, router.id, "k", "v")
    store.state_table(Router, router.id, "arp_table").put("10.0.0.2", MAC1, persistent=True)
    with pytest.raises(ConflictError):     # the load balancer refuses it (ERROR)
        store.delete(Router, router.id)
    assert store.get_state(Router, router.id, "k") == StateValue("v", "api")
    assert store.table_names(Router, router.id) == ["arp_table"]


# --- sequences and sessions ---------------------------------------------------------------------------

def test_next_sequence_is_unique_across_sessions(cluster: Cluster) -> None:
    sessions = [cluster.session(f"api-{i}") for i in range(2)]
    got: list[list[int]] = [[], []]

    def draw(i: int) -> None:
        got[i].extend(sessions[i].next_sequence("tunnel_key") for _ in range(20))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(got[0] + got[1]) == list(range(1, 41))
    assert sessions[0].next_sequence("other") == 1


def test_connect_opens_another_session_on_the_same_store(cluster: Cluster) -> None:
    api = cluster.session("api")
    assert isinstance(api, MemoryStore | ZooKeeperStore)
    bridge = Bridge(id=new_id())
    api.create(bridge)
    agent = api.connect("agent-1")
    try:
        assert agent.owner == "agent-1"
        assert agent.get(Bridge, bridge.id) == bridge
        agent.state_table(Bridge, bridge.id, "mac_table:0").put(MAC1, "port-1")
        api.state_table(Bridge, bridge.id, "mac_table:0").put(MAC2, "port-2", persistent=True)
    finally:
        agent.close()
    assert api.state_table(Bridge, bridge.id, "mac_table:0").snapshot() == {MAC2: "port-2"}


def test_a_closed_session_refuses_work(cluster: Cluster) -> None:
    store = cluster.session()
    store.close()
    store.close()   # idempotent
    with pytest.raises(StorageError):
        store.create(Bridge(id=new_id()))


# --- factory and the embedded store's files -----------------------------------------------------------

def test_open_store_urls(tmp_path: Path) -> None:
    assert parse_zookeeper_url("zookeeper://h1:2181,h2:2181/mido/") == ("h1:2181,h2:2181", "/mido")
    assert parse_zookeeper_url("zookeeper://h1:2181") == ("h1:2181", "/midonet")
    with pytest.raises(StorageError):
        open_store("etcd://x")
    store = open_store(f"memory:{tmp_path}", owner="agent")
    assert store.owner == "agent"
    store.create(Bridge(id=new_id()))
    store.close()
    assert (tmp_path / "store.snapshot").exists()


def test_memory_store_forgets_a_deleted_objects_persistent_entries(tmp_path: Path) -> None:
    gone, kept = Bridge(id=new_id()), Bridge(id=new_id())
    store = open_store("memory", data_dir=tmp_path)
    store.multi([Create(gone), Create(kept)])
    for b in (gone, kept):
        store.state_table(Bridge, b.id, "mac_table:0").put(MAC1, "port-1", persistent=True)
    store.delete(Bridge, gone.id)
    store.close()
    again = open_store("memory", data_dir=tmp_path)
    try:
        assert again.table_names(Bridge, gone.id) == []
        assert again.table_names(Bridge, kept.id) == ["mac_table:0"]
    finally:
        again.close()


def test_journal_replay_of_a_delete_drops_the_objects_persistent_entries() -> None:
    image = Image()
    image.apply(ObjectsWritten((("Bridge", "b1", {}), ("Bridge", "b2", {}))))
    for obj_id in ("b1", "b2"):
        image.apply(TableEntrySet(("Bridge", obj_id, "mac_table:0"), MAC1, "port-1"))
    image.apply(TableEntrySet(("Port", "b1", "peering_table"), "10.0.0.1", MAC1))   # same id, another kind
    image.apply(ObjectsWritten((("Bridge", "b1", None),)))
    assert image.tables == {("Bridge", "b2", "mac_table:0"): {MAC1: "port-1"},
                            ("Port", "b1", "peering_table"): {"10.0.0.1": MAC1}}


def test_memory_store_persists_across_reopen(tmp_path: Path) -> None:
    bridge = Bridge(id=new_id(), name="kept")
    port = Port(id=new_id(), network_id=bridge.id)
    store = open_store("memory", data_dir=tmp_path)
    store.multi([Create(bridge), Create(port)])
    store.multi([UpdateWith(Bridge, bridge.id, lambda b: b.replace(name="renamed"))])
    assert store.next_sequence("tunnel_key") == 1
    table = store.state_table(Bridge, bridge.id, "ip4_mac_table")
    table.put("10.0.0.1", "aa:bb:cc:00:00:01", persistent=True)
    table.put("10.0.0.2", "aa:bb:cc:00:00:02")
    store.set_state(Bridge, bridge.id, "active", "yes")
    with pytest.raises(StorageError):       # one opener per directory
        open_store("memory", data_dir=tmp_path)
    store.close()

    again = open_store("memory", data_dir=tmp_path)
    try:
        assert again.get(Bridge, bridge.id) == bridge.replace(name="renamed", port_ids=(port.id,))
        assert again.get(Port, port.id) == port
        assert again.next_sequence("tunnel_key") == 2
        assert again.state_table(Bridge, bridge.id, "ip4_mac_table").snapshot() == {
            "10.0.0.1": "aa:bb:cc:00:00:01"}
        assert again.get_state(Bridge, bridge.id, "active") is None
    finally:
        again.close()


CRASHING_WRITER = """
import os, sys
from pathlib import Path
from midonet.store.memory import MemoryBackend
from midonet.topology.devices import Bridge
store = MemoryBackend(Path(sys.argv[1])).connect("api")
for bridge_id in sys.argv[2:]:
    store.create(Bridge(id=bridge_id))
os._exit(0)   # a crash: no close, no compaction
"""


def crash_after_writing(directory: Path, bridge_ids: list[str]) -> None:
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(directory), *bridge_ids], check=True, timeout=60)


@pytest.mark.parametrize("damage", ["torn", "garbled"])
def test_memory_store_loads_despite_a_damaged_last_log_line(tmp_path: Path, damage: str) -> None:
    first, second, third = new_id(), new_id(), new_id()
    crash_after_writing(tmp_path, [first, second, third])
    log = tmp_path / "store.log"
    lines = log.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    if damage == "torn":
        log.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    else:
        log.write_bytes(b"".join(lines[:2]) + b"\x00garbage{\n")
    store = open_store("memory", data_dir=tmp_path)
    try:
        assert {b.id for b in store.list(Bridge)} == {first, second}
        store.create(Bridge(id=third))      # appends after the damage cleanly
    finally:
        store.close()
    store = open_store("memory", data_dir=tmp_path)
    try:
        assert {b.id for b in store.list(Bridge)} == {first, second, third}
    finally:
        store.close()


def test_memory_store_refuses_a_log_damaged_in_the_middle(tmp_path: Path) -> None:
    crash_after_writing(tmp_path, [new_id(), new_id()])
    log = tmp_path / "store.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"not json\n" + lines[1])
    with pytest.raises(StorageError):
        open_store("memory", data_dir=tmp_path)
