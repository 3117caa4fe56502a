"""The ZooKeeper store's watches and state tables, and its path segments (`store.zookeeper` is the store).

    segment / unsegment        an id, kind or key as one path segment (percent-encoded, never "", ".", "..")
    entry_name / entry_key     a state-table entry's node name ("=" + the percent-encoded key)
    _ObjectWatch               one node's DataWatch -> ObjectUpdated / ObjectDeleted (deduplicated)
    _ChildWatch                a node's children, each with its own data watch, following the node through
                               being deleted and made again (a class of records, a state table)
    ZooKeeperStateTable        a state table: entries as child nodes (`StateTable`)

They run on kazoo's threads and post to the store's `Delivery` (`ZooKeeperStore._post`); they read and write
through the store's client and its error mapping (`_errors`, `_write_owned`): the store's package-private helpers.

May import: `midonet.topology`, `midonet.store`; kazoo.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from midonet.store.base import ObjectDeleted, ObjectEvent, ObjectUpdated, StateValue
from midonet.store.delivery import Subscription
from midonet.topology.errors import StorageError
from midonet.topology.record import Record

if TYPE_CHECKING:
    from midonet.store.zookeeper import ZooKeeperStore

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 20
"""Read-modify-writes other sessions may race (a commit, a table entry's compare-and-set) are tried this often."""


def _races() -> Iterator[int]:
    """Attempts at a read-modify-write other sessions may race, with a random back-off (up to 64 ms)
    before each retry, so racing writers spread out. The caller raises `_lost_races()` after the last."""
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.001 * (1 << min(attempt, 6))))
        yield attempt


def _lost_races() -> StorageError:
    return StorageError(f"lost {COMMIT_ATTEMPTS} races with other writers; try again")


WatchFunc = Callable[..., bool | None]
"""A kazoo DataWatch / ChildrenWatch function: returning False stops the watch."""


_AWKWARD = {"": "%", ".": "%2E", "..": "%2E%2E"}   # names ZooKeeper refuses, and what they become


def segment(text: str) -> str:
    """`text` as one path segment: percent-encoded (so no "/"), never empty, "." or ".."."""
    encoded = quote(text, safe="")
    return _AWKWARD.get(encoded, encoded)


def unsegment(name: str) -> str:
    """The text of a path segment made by `segment`."""
    return "" if name == "%" else unquote(name)


def entry_name(key: str) -> str:
    return "=" + quote(key, safe="")


def entry_key(name: str) -> str | None:
    return unquote(name[1:]) if name.startswith("=") else None


def _state_value(data: bytes) -> StateValue | None:
    try:
        decoded = json.loads(data)
        return StateValue(str(decoded["value"]), str(decoded["owner"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a malformed state value %r", data[:100])
        return None


def _guarded(fn: WatchFunc) -> WatchFunc:
    """A kazoo watch function that logs its failures (kazoo retries a TypeError with fewer arguments)."""
    @functools.wraps(fn)
    def guarded(*args: Any) -> bool | None:
        try:
            return fn(*args)
        except Exception:
            log.exception("watch handler failed")
            return None
    return guarded


class _ObjectWatch:
    """Turns one node's DataWatch calls into ObjectUpdated / ObjectDeleted events (deduplicated)."""

    def __init__(self, store: ZooKeeperStore, sub: Subscription, cls: type[Record], obj_id: str,
                 callback: Callable[[ObjectEvent], None]) -> None:
        self._store = store
        self._sub = sub
        self._cls = cls
        self._id = obj_id
        self._callback = callback
        self._last: tuple[int, int] | None = None   # (czxid, mzxid) delivered; None: absent
        self.on_data = _guarded(self._on_data)

    def _on_data(self, data: bytes | None, stat: Any, event: Any = None) -> bool | None:
        if not self._sub.active or self._store._closed:
            return False
        if stat is None:
            if self._last is not None:
                self._last = None
                self._store._post(self._sub, functools.partial(self._callback, ObjectDeleted(self._cls, self._id)))
            return None
        version = (stat.czxid, stat.mzxid)
        if version != self._last:
            self._last = version
            obj = self._store._decode(self._cls, data or b"")
            self._store._post(self._sub, functools.partial(self._callback, ObjectUpdated(self._cls, self._id, obj)))
        return None


class _ChildWatch:
    """Starts one DataWatch per child of `path` (`make(name)` gives its function, or None to ignore the
    child), each stopped once its child is gone.

    `path` may not exist yet, or be deleted and made again (a table goes with its object): a DataWatch on
    `path` itself starts a ChildrenWatch on each incarnation of the node (told apart by czxid), and a
    ChildrenWatch of an earlier incarnation stops at its next call.
    """

    def __init__(self, store: ZooKeeperStore, sub: Subscription, path: str,
                 make: Callable[[str], WatchFunc | None]) -> None:
        self._store = store
        self._sub = sub
        self._path = path
        self._make = make
        self._lock = threading.Lock()
        self._watching: set[str] = set()
        self._czxid: int | None = None     # the incarnation of `path` watched
        self._generation = 0               # bumped per incarnation
        DataWatch(store.client, path, _guarded(self._on_node))

    def _on_node(self, data: bytes | None, stat: Any, event: Any = None) -> bool | None:
        if not self._sub.active or self._store._closed:
            return False
        if stat is None:
            return None
        with self._lock:
            if stat.czxid == self._czxid:
                return None
            self._czxid = stat.czxid
            self._generation += 1
            generation = self._generation
        ChildrenWatch(self._store.client, self._path,
                      _guarded(functools.partial(self._on_children, generation)))
        return None

    def _on_children(self, generation: int, children: list[str]) -> bool | None:
        if not self._sub.active or self._store._closed or generation != self._generation:
            return False
        for name in children:
            with self._lock:
                if name in self._watching:
                    continue
                self._watching.add(name)
            handler = self._make(name)
            if handler is not None:
                DataWatch(self._store.client, f"{self._path}/{name}",
                          _guarded(functools.partial(self._on_child_data, name, handler)))
        return None

    def _on_child_data(self, name: str, handler: WatchFunc, data: bytes | None, stat: Any,
                       event: Any = None) -> bool | None:
        result = handler(data, stat, event)
        if result is False or stat is None:
            with self._lock:
                self._watching.discard(name)
            return False
        return None


class _TableView:
    """What one table subscription has been told so far: {key: value}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}

    def tell(self, key: str, new: str | None) -> str | None:
        """Record `key` = `new` (None: removed); returns the value told before."""
        with self._lock:
            old = self._values.get(key)
            if new is None:
                self._values.pop(key, None)
            else:
                self._values[key] = new
            return old


class _EntryWatch:
    """Turns one table entry's DataWatch calls into (key, old, new) changes."""

    def __init__(self, store: ZooKeeperStore, sub: Subscription, view: _TableView, key: str,
                 callback: Callable[[str, str | None, str | None], None]) -> None:
        self._store = store
        self._sub = sub
        self._view = view
        self._key = key
        self._callback = callback
        self.on_data = _guarded(self._on_data)

    def _on_data(self, data: bytes | None, stat: Any, event: Any = None) -> bool | None:
        if not self._sub.active or self._store._closed:
            return False
        new = None if stat is None else (data or b"").decode()
        old = self._view.tell(self._key, new)
        if old != new:
            self._store._post(self._sub, functools.partial(self._callback, self._key, old, new))
        return None


class ZooKeeperStateTable:
    """A state table of a `ZooKeeperStore` (see `base.StateTable` and the module docstring)."""

    def __init__(self, store: ZooKeeperStore, path: str) -> None:
        self.store = store
        self.path = path

    def _entry_path(self, key: str) -> str:
        return f"{self.path}/{entry_name(key)}"

    def put(self, key: str, value: str, persistent: bool = False) -> None:
        with self.store._errors():
            self.store._write_owned(self._entry_path(key), value.encode(), ephemeral=not persistent)

    def claim(self, key: str, value: str) -> bool:
        path = self._entry_path(key)
        with self.store._errors():
            try:
                self.store.client.create(path, value.encode(), ephemeral=True, makepath=True)
                return True
            except NodeExistsError:
                pass
            try:
                _, stat = self.store.client.get(path)
            except NoNodeError:   # released meanwhile: a claim that lost a race it could have won is still a loss
                return False
            return bool(stat.ephemeralOwner == self.store.session_id)

    def remove(self, key: str, value: str | None = None) -> None:
        path = self._entry_path(key)
        with self.store._errors():
            for _ in _races():
                try:
                    data, stat = self.store.client.get(path)
                    if value is not None and data.decode() != value:
                        return
                    self.store.client.delete(path, version=stat.version)
                    return
                except NoNodeError:
                    return
                except BadVersionError:
                    continue
            raise _lost_races()

    def get(self, key: str) -> str | None:
        with self.store._errors():
            try:
                data, _ = self.store.client.get(self._entry_path(key))
            except NoNodeError:
                return None
            return cast(bytes, data).decode()

    def snapshot(self) -> dict[str, str]:
        with self.store._errors():
            try:
                names = self.store.client.get_children(self.path)
            except NoNodeError:
                return {}
            pending = [(name, self.store.client.get_async(f"{self.path}/{name}")) for name in names]
            out: dict[str, str] = {}
            for name, result in pending:
                key = entry_key(name)
                try:
                    data, _ = result.get()
                except NoNodeError:
                    continue
                if key is not None:
                    out[key] = data.decode()
            return out

    def watch(self, callback: Callable[[str, str | None, str | None], None]) -> Subscription:
        sub = self.store._subscription()
        with self.store._errors():
            view = _TableView()

            def make(name: str) -> WatchFunc | None:
                key = entry_key(name)
                return None if key is None else _EntryWatch(self.store, sub, view, key, callback).on_data

            _ChildWatch(self.store, sub, self.path, make)
        return sub


if TYPE_CHECKING:
    from midonet.store.base import StateTable, Store

    def _is_store(store: ZooKeeperStore) -> Store:
        return store

    def _is_state_table(table: ZooKeeperStateTable) -> StateTable:
        return table
