"""`open_store(url)`: a `Store` session from a URL, for the processes' `--store` option.

    memory                                  embedded; persisted under `data_dir` when given
    memory:DIR                              embedded, persisted under DIR
    zookeeper://HOST:PORT[,HOST:PORT...][/ROOT]   a ZooKeeper ensemble; ROOT defaults to /midonet

The store returned owns what it opened: closing it ends the session (and, for memory, closes the backend
and releases its directory).

May import: `midonet.store`.
"""

from __future__ import annotations

from pathlib import Path

from midonet.store.base import Store
from midonet.store.memory import MemoryBackend
from midonet.store.zookeeper import DEFAULT_ROOT, ZooKeeperStore
from midonet.topology.errors import StorageError


def open_store(url: str, owner: str = "api", data_dir: Path | None = None) -> Store:
    """Open a session on the store named by `url` (see the module docstring); StorageError if it cannot."""
    if url == "memory" or url.startswith("memory:"):
        directory = url.removeprefix("memory").removeprefix(":")
        path = Path(directory) if directory else data_dir
        return MemoryBackend(path).connect(owner, close_backend=True)
    if url.startswith("zookeeper://"):
        hosts, root = parse_zookeeper_url(url)
        return ZooKeeperStore(hosts, root, owner)
    raise StorageError(f"unknown store {url!r}: use 'memory', 'memory:DIR' or 'zookeeper://HOST:PORT[/ROOT]'")


def parse_zookeeper_url(url: str) -> tuple[str, str]:
    """(hosts, root) of `zookeeper://HOST:PORT[,HOST:PORT...][/ROOT]`."""
    rest = url.removeprefix("zookeeper://")
    hosts, slash, root = rest.partition("/")
    if not hosts:
        raise StorageError(f"{url!r} names no ZooKeeper server")
    return hosts, ("/" + root.strip("/")) if slash and root.strip("/") else DEFAULT_ROOT
