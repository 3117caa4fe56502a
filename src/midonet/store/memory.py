"""The embedded store: every object, state key and state table in this process, persisted to a directory.

A `MemoryBackend` holds the data; each `MemoryStore` is one *session* on it (`backend.connect(owner)`), the
way each ZooKeeper client is a session on the ensemble. Sessions share the objects; a session's state keys
and non-persistent table entries vanish when it closes, which is how tests (and `midonet up`) see an agent
die. `open_store("memory", data_dir=...)` gives a session that owns its backend and closes it with itself.

    MemoryBackend (one RLock; journal.Journal when given a directory)
    ├── objects     {class: {id: Record}}, changed only by `multi` through `integrity.plan`
    ├── sequences   {name: last value}
    ├── state keys  {(class, id, key): (StateValue, owning session)}
    ├── tables      {(class, id, name): {key: (value, owning session | None = persistent)}}, never empty
    └── by object   {(class, id): key names} and {(class, id): table names}, indexes of the two above
    MemoryStore (a session: owner name, its own delivery thread, its subscriptions)

Deleting an object (directly or by CASCADE) drops its state keys and every entry of its tables under the
same lock as the commit, after posting the object events, so watchers see `ObjectDeleted` and then the
removals; the journal line of the commit also drops its persistent entries (journal.ObjectsWritten).

Persisted (when a directory is given): objects, sequences and persistent table entries, each commit fsync'ed
to the journal before it becomes visible. State keys and ephemeral entries live only as long as their
session, so they are never written.

Watches: events are posted to the watching session's `Delivery` while the backend lock is held, so every
subscriber sees commits in commit order; callbacks run later on that session's thread, never under the lock,
and may call the store.

May import: `midonet.topology`, `midonet.store`.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from midonet.store import integrity
from midonet.store.base import (
    Create,
    Delete,
    ObjectEvent,
    ObjectUpdated,
    Op,
    StateValue,
    Update,
)
from midonet.store.delivery import Delivery, Subscription
from midonet.store.journal import Image, Journal, ObjectsWritten, SequenceSet, TableEntrySet
from midonet.topology.errors import NotFoundError, StorageError
from midonet.topology.record import Record, from_dict, to_dict
from midonet.topology.registry import BY_KIND

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)
T = TypeVar("T")
A = TypeVar("A")

StateAddress = tuple[type[Record], str, str]
"""(class, object id, state key)."""
TableKey = tuple[type[Record], str, str]
"""(class, object id, table name)."""
TableChange = tuple[str, str | None, str | None]
"""(key, old value, new value), as `StateTable.watch` delivers it."""


@dataclass(frozen=True, slots=True)
class _Watcher(Generic[T]):
    sub: Subscription
    session: MemoryStore
    callback: Callable[[T], None]

    def post(self, value: T) -> None:
        self.session.delivery.post(self.sub, functools.partial(self.callback, value))


@dataclass(frozen=True, slots=True)
class _Entry:
    value: str
    session: MemoryStore | None   # None: persistent


class MemoryBackend:
    """The shared data of every session; thread-safe. Persisted under `data_dir` when given."""

    def __init__(self, data_dir: Path | None = None, *, compact_after: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._objects: dict[type[Record], dict[str, Record]] = {}
        self._sequences: dict[str, int] = {}
        self._state: dict[StateAddress, tuple[StateValue, MemoryStore]] = {}
        self._tables: dict[TableKey, dict[str, _Entry]] = {}
        self._state_keys_of: dict[integrity.Key, set[str]] = {}
        self._table_names_of: dict[integrity.Key, set[str]] = {}
        self._sessions: list[MemoryStore] = []
        self._object_watchers: dict[integrity.Key, list[_Watcher[ObjectEvent]]] = {}
        self._class_watchers: dict[type[Record], list[_Watcher[ObjectEvent]]] = {}
        self._state_watchers: dict[StateAddress, list[_Watcher[StateValue | None]]] = {}
        self._table_watchers: dict[TableKey, list[_Watcher[TableChange]]] = {}
        self._closed = False
        self._journal: Journal | None = None
        if data_dir is not None:
            self._journal = Journal(data_dir, compact_after=compact_after)
            self._load(self._journal.open())

    @property
    def data_dir(self) -> Path | None:
        return None if self._journal is None else self._journal.directory

    def connect(self, owner: str, *, close_backend: bool = False) -> MemoryStore:
        """A new session named `owner`; with `close_backend`, closing it closes the backend too."""
        with self._lock:
            self._check_open()
            session = MemoryStore(self, owner, close_backend=close_backend)
            self._sessions.append(session)
            return session

    def close(self) -> None:
        """Close every session, compact the journal and release the directory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        with self._lock:
            if self._journal is not None:
                try:
                    self._journal.compact(self._image())
                finally:
                    self._journal.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- persistence -----------------------------------------------------------------------------

    def _load(self, image: Image) -> None:
        for kind, objects in image.objects.items():
            cls = BY_KIND.get(kind)
            if cls is None:
                log.warning("ignoring %d stored objects of unknown kind %s", len(objects), kind)
                continue
            self._objects[cls] = {obj_id: from_dict(cls, data, kind) for obj_id, data in objects.items()}
        self._sequences = dict(image.sequences)
        for (kind, obj_id, name), entries in image.tables.items():
            cls = BY_KIND.get(kind)
            if cls is not None and entries:
                self._tables[(cls, obj_id, name)] = {k: _Entry(v, None) for k, v in entries.items()}
                self._table_names_of.setdefault((cls, obj_id), set()).add(name)

    def _image(self) -> Image:
        image = Image()
        for cls, objects in self._objects.items():
            if objects:
                image.objects[cls.kind()] = {obj_id: to_dict(obj) for obj_id, obj in objects.items()}
        image.sequences = dict(self._sequences)
        for (cls, obj_id, name), entries in self._tables.items():
            persistent = {k: e.value for k, e in entries.items() if e.session is None}
            if persistent:
                image.tables[(cls.kind(), obj_id, name)] = persistent
        return image

    def _journal_write(self, entry: ObjectsWritten | SequenceSet | TableEntrySet) -> None:
        if self._journal is not None:
            self._journal.append(entry)

    def _maybe_compact(self) -> None:
        if self._journal is not None and self._journal.needs_compaction:
            self._journal.compact(self._image())

    # --- objects ---------------------------------------------------------------------------------

    def _find(self, cls: type[Record], obj_id: str) -> Record | None:
        return self._objects.get(cls, {}).get(obj_id)

    def _list(self, cls: type[Record], ids: Iterable[str] | None) -> list[Record]:
        with self._lock:
            objects = self._objects.get(cls, {})
            if ids is None:
                return list(objects.values())
            return [objects[i] for i in ids if i in objects]

    def _multi(self, ops: Sequence[Op]) -> None:
        with self._lock:
            self._check_open()
            plan = integrity.plan(self._find, ops)
            if not plan.writes:
                return
            self._journal_write(ObjectsWritten(tuple(
                (cls.kind(), obj_id, None if obj is None else to_dict(obj))
                for (cls, obj_id), obj in plan.writes.items())))
            for (cls, obj_id), obj in plan.writes.items():
                if obj is None:
                    self._objects.get(cls, {}).pop(obj_id, None)
                else:
                    self._objects.setdefault(cls, {})[obj_id] = obj
            for event in plan.events:
                for w in self._object_watchers.get((event.cls, event.id), ()):
                    w.post(event)
                for w in self._class_watchers.get(event.cls, ()):
                    w.post(event)
            for key in plan.deleted:
                self._drop_object_state(key)
            self._maybe_compact()

    def _drop_object_state(self, obj: integrity.Key) -> None:
        """Drop a deleted object's state keys and table entries (the journal line of its delete covers the
        persistent ones), telling their watchers."""
        cls, obj_id = obj
        for key in sorted(self._state_keys_of.get(obj, ())):
            self._drop_state((cls, obj_id, key))
        for name in sorted(self._table_names_of.get(obj, ())):
            table = (cls, obj_id, name)
            for key in list(self._tables[table]):
                self._drop_entry(table, key)

    def _next_sequence(self, name: str) -> int:
        with self._lock:
            self._check_open()
            number = self._sequences.get(name, 0) + 1
            self._journal_write(SequenceSet(name, number))
            self._sequences[name] = number
            self._maybe_compact()
            return number

    def _watch_object(self, session: MemoryStore, cls: type[Record], obj_id: str,
                      callback: Callable[[ObjectEvent], None]) -> Subscription:
        with self._lock:
            watcher = self._add_watcher(self._object_watchers, (cls, obj_id), session, callback)
            obj = self._find(cls, obj_id)
            if obj is not None:
                watcher.post(ObjectUpdated(cls, obj_id, obj))
            return watcher.sub

    def _watch_class(self, session: MemoryStore, cls: type[Record],
                     callback: Callable[[ObjectEvent], None]) -> Subscription:
        with self._lock:
            watcher = self._add_watcher(self._class_watchers, cls, session, callback)
            for obj_id, obj in self._objects.get(cls, {}).items():
                watcher.post(ObjectUpdated(cls, obj_id, obj))
            return watcher.sub

    def _add_watcher(self, table: dict[A, list[_Watcher[T]]], address: A, session: MemoryStore,
                     callback: Callable[[T], None]) -> _Watcher[T]:
        self._check_open()
        session.check_open()
        watchers = table.setdefault(address, [])

        def remove() -> None:
            with self._lock:
                if watcher in watchers:
                    watchers.remove(watcher)
                if not watchers and table.get(address) is watchers:
                    del table[address]
                session.subscriptions.discard(watcher.sub)

        watcher = _Watcher(Subscription(remove), session, callback)
        watchers.append(watcher)
        session.subscriptions.add(watcher.sub)
        return watcher

    # --- state keys ------------------------------------------------------------------------------

    def _set_state(self, session: MemoryStore, address: StateAddress, value: str) -> None:
        with self._lock:
            session.check_open()
            new = StateValue(value, session.owner)
            old = self._state.get(address)
            self._state[address] = (new, session)
            self._state_keys_of.setdefault((address[0], address[1]), set()).add(address[2])
            if old is None or old[0] != new:
                for w in self._state_watchers.get(address, ()):
                    w.post(new)

    def _get_state(self, address: StateAddress) -> StateValue | None:
        with self._lock:
            found = self._state.get(address)
            return None if found is None else found[0]

    def _delete_state(self, session: MemoryStore, address: StateAddress) -> None:
        with self._lock:
            session.check_open()
            found = self._state.get(address)
            if found is not None and found[1] is session:
                self._drop_state(address)

    def _drop_state(self, address: StateAddress) -> None:
        del self._state[address]
        _discard(self._state_keys_of, (address[0], address[1]), address[2])
        for w in self._state_watchers.get(address, ()):
            w.post(None)

    def _watch_state(self, session: MemoryStore, address: StateAddress,
                     callback: Callable[[StateValue | None], None]) -> Subscription:
        with self._lock:
            watcher = self._add_watcher(self._state_watchers, address, session, callback)
            found = self._state.get(address)
            watcher.post(None if found is None else found[0])
            return watcher.sub

    # --- state tables ----------------------------------------------------------------------------

    def _table_put(self, session: MemoryStore, table: TableKey, key: str, value: str,
                   persistent: bool) -> None:
        with self._lock:
            session.check_open()
            entries = self._tables.get(table, {})
            old = entries.get(key)
            new = _Entry(value, None if persistent else session)
            if old == new:
                return
            if persistent or (old is not None and old.session is None):
                self._journal_write(TableEntrySet(_journal_table(table), key, value if persistent else None))
            if not entries:
                self._tables[table] = entries
                self._table_names_of.setdefault((table[0], table[1]), set()).add(table[2])
            entries[key] = new
            if old is None or old.value != value:
                self._table_changed(table, key, None if old is None else old.value, value)
            self._maybe_compact()

    def _table_claim(self, session: MemoryStore, table: TableKey, key: str, value: str) -> bool:
        with self._lock:
            session.check_open()
            old = self._tables.get(table, {}).get(key)
            if old is not None:
                return old.session is session
            self._table_put(session, table, key, value, False)
            return True

    def _table_remove(self, session: MemoryStore, table: TableKey, key: str, value: str | None) -> None:
        with self._lock:
            session.check_open()
            old = self._tables.get(table, {}).get(key)
            if old is None or (value is not None and old.value != value):
                return
            if old.session is None:
                self._journal_write(TableEntrySet(_journal_table(table), key, None))
            self._drop_entry(table, key)
            self._maybe_compact()

    def _drop_entry(self, table: TableKey, key: str) -> None:
        entries = self._tables[table]
        old = entries.pop(key)
        if not entries:
            del self._tables[table]
            _discard(self._table_names_of, (table[0], table[1]), table[2])
        self._table_changed(table, key, old.value, None)

    def _table_changed(self, table: TableKey, key: str, old: str | None, new: str | None) -> None:
        for w in self._table_watchers.get(table, ()):
            w.post((key, old, new))

    def _table_get(self, table: TableKey, key: str) -> str | None:
        with self._lock:
            entry = self._tables.get(table, {}).get(key)
            return None if entry is None else entry.value

    def _table_names(self, obj: integrity.Key) -> list[str]:
        with self._lock:
            return sorted(self._table_names_of.get(obj, ()))

    def _table_snapshot(self, table: TableKey) -> dict[str, str]:
        with self._lock:
            return {k: e.value for k, e in self._tables.get(table, {}).items()}

    def _watch_table(self, session: MemoryStore, table: TableKey,
                     callback: Callable[[TableChange], None]) -> Subscription:
        with self._lock:
            watcher = self._add_watcher(self._table_watchers, table, session, callback)
            for k, e in self._tables.get(table, {}).items():
                watcher.post((k, None, e.value))
            return watcher.sub

    # --- sessions --------------------------------------------------------------------------------

    def _end_session(self, session: MemoryStore) -> None:
        """Cancel the session's watches and drop what it owned, telling the other sessions."""
        with self._lock:
            for sub in list(session.subscriptions):
                sub.cancel()
            for address in [a for a, (_, s) in self._state.items() if s is session]:
                self._drop_state(address)
            for table, entries in list(self._tables.items()):
                for key in [k for k, e in entries.items() if e.session is session]:
                    self._drop_entry(table, key)
            if session in self._sessions:
                self._sessions.remove(session)


def _journal_table(table: TableKey) -> tuple[str, str, str]:
    return (table[0].kind(), table[1], table[2])


def _discard(index: dict[integrity.Key, set[str]], obj: integrity.Key, name: str) -> None:
    names = index.get(obj)
    if names is not None:
        names.discard(name)
        if not names:
            del index[obj]


class MemoryStateTable:
    """A state table of a `MemoryStore` (see `base.StateTable`)."""

    def __init__(self, store: MemoryStore, table: TableKey) -> None:
        self._store = store
        self._table = table

    def put(self, key: str, value: str, persistent: bool = False) -> None:
        self._store.backend._table_put(self._store, self._table, key, value, persistent)

    def claim(self, key: str, value: str) -> bool:
        return self._store.backend._table_claim(self._store, self._table, key, value)

    def remove(self, key: str, value: str | None = None) -> None:
        self._store.backend._table_remove(self._store, self._table, key, value)

    def get(self, key: str) -> str | None:
        return self._store.backend._table_get(self._table, key)

    def snapshot(self) -> dict[str, str]:
        return self._store.backend._table_snapshot(self._table)

    def watch(self, callback: Callable[[str, str | None, str | None], None]) -> Subscription:
        return self._store.backend._watch_table(self._store, self._table, lambda c: callback(*c))


_session_numbers = itertools.count(1)


class MemoryStore:
    """One session on a `MemoryBackend`: the `Store` protocol (base.py)."""

    def __init__(self, backend: MemoryBackend, owner: str, *, close_backend: bool = False) -> None:
        self.backend = backend
        self._owner = owner
        self._close_backend = close_backend
        self._closed = False
        self.subscriptions: set[Subscription] = set()
        self.delivery = Delivery(f"memory-store-{owner}-{next(_session_numbers)}")

    def __repr__(self) -> str:
        return f"<MemoryStore owner={self._owner!r}{' closed' if self._closed else ''}>"

    @property
    def owner(self) -> str:
        return self._owner

    def check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the store session {self._owner!r} is closed")

    # objects
    def get(self, cls: type[R], obj_id: str) -> R:
        obj = self.find(cls, obj_id)
        if obj is None:
            raise NotFoundError(cls.kind(), obj_id)
        return obj

    def find(self, cls: type[R], obj_id: str) -> R | None:
        self.check_open()
        with self.backend._lock:
            return cast(R | None, self.backend._find(cls, obj_id))

    def exists(self, cls: type[Record], obj_id: str) -> bool:
        return self.find(cls, obj_id) is not None

    def list(self, cls: type[R], ids: Iterable[str] | None = None) -> list[R]:
        self.check_open()
        return cast(list[R], self.backend._list(cls, ids))

    def multi(self, ops: Sequence[Op]) -> None:
        self.check_open()
        self.backend._multi(ops)

    def create(self, obj: Record) -> None:
        self.multi([Create(obj)])

    def update(self, obj: Record) -> None:
        self.multi([Update(obj)])

    def delete(self, cls: type[Record], obj_id: str) -> None:
        self.multi([Delete(cls, obj_id)])

    def next_sequence(self, name: str) -> int:
        self.check_open()
        return self.backend._next_sequence(name)

    # watches
    def watch(self, cls: type[Record], obj_id: str, callback: Callable[[ObjectEvent], None]) -> Subscription:
        return self.backend._watch_object(self, cls, obj_id, callback)

    def watch_class(self, cls: type[Record], callback: Callable[[ObjectEvent], None]) -> Subscription:
        return self.backend._watch_class(self, cls, callback)

    # state keys
    def set_state(self, cls: type[Record], obj_id: str, key: str, value: str) -> None:
        self.backend._set_state(self, (cls, obj_id, key), value)

    def get_state(self, cls: type[Record], obj_id: str, key: str) -> StateValue | None:
        self.check_open()
        return self.backend._get_state((cls, obj_id, key))

    def delete_state(self, cls: type[Record], obj_id: str, key: str) -> None:
        """Remove the key if this session wrote it (a key another session owns is left alone)."""
        self.backend._delete_state(self, (cls, obj_id, key))

    def watch_state(self, cls: type[Record], obj_id: str, key: str,
                    callback: Callable[[StateValue | None], None]) -> Subscription:
        return self.backend._watch_state(self, (cls, obj_id, key), callback)

    # state tables
    def state_table(self, cls: type[Record], obj_id: str, name: str) -> MemoryStateTable:
        return MemoryStateTable(self, (cls, obj_id, name))

    def table_names(self, cls: type[Record], obj_id: str) -> builtins.list[str]:
        """The names of the object's tables that hold entries, sorted."""
        self.check_open()
        return self.backend._table_names((cls, obj_id))

    # sessions
    def connect(self, owner: str) -> MemoryStore:
        """Another session on the same backend, named `owner` (`MemoryBackend.connect`); the caller closes it,
        or closing the backend does."""
        self.check_open()
        return self.backend.connect(owner)

    def close(self) -> None:
        """End the session: its watches stop, its state keys and ephemeral table entries vanish."""
        with self.backend._lock:
            if self._closed:
                return
            self.backend._end_session(self)
            self._closed = True
        self.delivery.close()
        if self._close_backend:
            self.backend.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    from midonet.store.base import StateTable, Store

    def _is_store(store: MemoryStore) -> Store:
        return store

    def _is_state_table(table: MemoryStateTable) -> StateTable:
        return table
