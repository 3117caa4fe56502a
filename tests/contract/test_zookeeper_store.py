"""What only the ZooKeeper store and its launcher promise: the node layout, connection loss as StorageError,
and a launcher that leaves nothing behind."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence

import pytest
from kazoo.client import KazooClient

from midonet.store import zookeeper as zkstore
from midonet.store.factory import open_store
from midonet.store.zookeeper import ZooKeeperStore
from midonet.store.zookeeper_watches import segment, unsegment
from midonet.testing.zookeeper import ZooKeeperServer, unavailable_reason
from midonet.topology.devices import Bridge
from midonet.topology.errors import StorageError

needs_zookeeper = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_segments_round_trip() -> None:
    for text in ["", ".", "..", "a/b", "10.0.0.0/24", "%", "é", "aa:bb"]:
        encoded = segment(text)
        assert "/" not in encoded and encoded not in ("", ".", "..")
        assert unsegment(encoded) == text


def test_layout(zookeeper: str) -> None:
    root = f"/layout-{uuid.uuid4().hex}"
    store = open_store(f"zookeeper://{zookeeper}{root}")
    assert isinstance(store, ZooKeeperStore)
    try:
        bridge = Bridge(id=str(uuid.uuid4()))
        store.create(bridge)
        store.set_state(Bridge, bridge.id, "active", "yes")
        store.state_table(Bridge, bridge.id, "mac_table").put("aa:bb:cc:00:00:01", "port")
        assert store.next_sequence("tunnel_key") == 1
        base = f"{root}/zoom/0"
        assert store.client.exists(f"{base}/models/Bridge/{bridge.id}") is not None
        stat = store.client.exists(f"{base}/state/Bridge/{bridge.id}/active")
        assert stat is not None and stat.ephemeralOwner == store.session_id
        assert store.client.get_children(f"{base}/tables/Bridge/{bridge.id}/mac_table") == [
            "=aa%3Abb%3Acc%3A00%3A00%3A01"]
        assert store.client.get(f"{base}/sequences/tunnel_key")[0] == b"1"
    finally:
        store.close()
        client = KazooClient(hosts=zookeeper)
        client.start(timeout=10)
        client.delete(root, recursive=True)
        client.stop()
        client.close()


@pytest.mark.parametrize("how", ["in-the-transaction", "after-the-commit", "after-a-race"])
def test_a_deleted_objects_state_and_table_nodes_are_gone(zookeeper: str, how: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of deleting an object's state: in the commit's transaction, or right after it when there
    are too many nodes or when they changed between the listing and the commit."""
    swept: list[Sequence[str]] = []
    sweep = ZooKeeperStore._delete_subtrees

    def recorded_sweep(self: ZooKeeperStore, roots: Sequence[str]) -> None:
        swept.append(roots)
        sweep(self, roots)

    monkeypatch.setattr(ZooKeeperStore, "_delete_subtrees", recorded_sweep)
    if how == "after-the-commit":
        monkeypatch.setattr(zkstore, "STATE_DELETES_IN_TRANSACTION", 0)
    elif how == "after-a-race":
        listed = ZooKeeperStore._subtrees
        calls: list[int] = []

        def subtrees_missing_a_removed_entry(self: ZooKeeperStore, roots: Sequence[str]) -> list[list[str]]:
            layers = listed(self, roots)
            if not calls:     # the first listing names an entry that is gone by the commit
                calls.append(1)
                layers[0].append(f"{roots[0]}/removed-meanwhile")
            return layers

        monkeypatch.setattr(ZooKeeperStore, "_subtrees", subtrees_missing_a_removed_entry)
    root = f"/state-delete-{uuid.uuid4().hex}"
    api = ZooKeeperStore(zookeeper, root, "api")
    agent = api.connect("agent-1")
    try:
        assert (agent.hosts, agent.root) == (zookeeper, root)
        bridge, kept = Bridge(id=str(uuid.uuid4())), Bridge(id=str(uuid.uuid4()))
        api.create(bridge)
        api.create(kept)
        for b in (bridge, kept):
            agent.set_state(Bridge, b.id, "active", "yes")
            for vlan in range(3):
                agent.state_table(Bridge, b.id, f"mac_table:{vlan}").put(f"aa:bb:cc:00:00:0{vlan}", "port")
            api.state_table(Bridge, b.id, "ip4_mac_table").put("10.0.0.1", "aa:bb:cc:00:00:01", persistent=True)
        api.delete(Bridge, bridge.id)
        assert len(swept) == (0 if how == "in-the-transaction" else 1)
        base = f"{root}/zoom/0"
        for sub in ("models", "state", "tables"):
            assert api.client.exists(f"{base}/{sub}/Bridge/{bridge.id}") is None, sub
            assert api.client.exists(f"{base}/{sub}/Bridge/{kept.id}") is not None, sub
        assert api.table_names(Bridge, kept.id) == ["ip4_mac_table", "mac_table:0", "mac_table:1", "mac_table:2"]
    finally:
        agent.close()
        api.close()
        client = KazooClient(hosts=zookeeper)
        client.start(timeout=10)
        client.delete(root, recursive=True)
        client.stop()
        client.close()


@needs_zookeeper
def test_losing_the_server_is_a_storage_error_and_the_launcher_cleans_up() -> None:
    server = ZooKeeperServer()
    hosts = server.start()
    pid, directory = server.pid, server.directory
    assert pid is not None and directory is not None and directory.is_dir()
    store = ZooKeeperStore(hosts, "/loss", "api")
    try:
        bridge = Bridge(id=str(uuid.uuid4()))
        store.create(bridge)
        server.stop()
        assert not directory.exists()
        assert not os.path.exists(f"/proc/{pid}")

        def refused() -> bool:
            try:
                store.get(Bridge, bridge.id)
            except StorageError:
                return True
            return False

        wait_until(refused, what="a StorageError once the server is gone")
        with pytest.raises(StorageError):
            store.create(Bridge(id=str(uuid.uuid4())))
    finally:
        store.close()
        server.stop()
