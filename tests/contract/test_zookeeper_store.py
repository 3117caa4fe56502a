"""What only the ZooKeeper store and its launcher promise: the node layout, connection loss as StorageError,
and a launcher that leaves nothing behind."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient

from midonet.store.factory import open_store
from midonet.store.zookeeper import ZooKeeperStore, segment, unsegment
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
