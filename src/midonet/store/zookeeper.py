"""The ZooKeeper store (kazoo): the layout of ZOOM (spec 1.2), one kazoo client = one session.

    <root>/zoom/0/models/<Kind>/<id>                  JSON of the record (`record.to_dict`)
    <root>/zoom/0/state/<Kind>/<id>/<key>             ephemeral, JSON {"value", "owner"}
    <root>/zoom/0/tables/<Kind>/<id>/<name>/=<key>    an entry: data = the value (UTF-8); ephemeral unless
                                                      written persistent; key percent-encoded after "="
    <root>/zoom/0/sequences/<name>                    a counter (decimal), bumped by versioned set

Path segments (ids, kinds, state keys, table and sequence names) are percent-encoded.

`multi` runs `integrity.plan` reading through kazoo (remembering each node's version), then commits the plan
in one ZooKeeper transaction that creates / sets (with version) / deletes (with version) every written node
and checks the version of every node read but not written: if another writer got in between, the transaction
fails as a whole and the batch is planned again from fresh reads after a short random back-off (up to
`COMMIT_ATTEMPTS` times, then StorageError). Losing the connection maps to StorageError.

State keys and ephemeral table entries are ephemeral nodes of this client's session: they vanish when the
session ends (`close()`, or expiry after the session timeout when the process dies). Last write wins: a
node another session owns is replaced (delete + create in one transaction). `delete_state` only removes a key
this session owns (as ZOOM's `removeValue`).

Deleting an object (directly or by CASCADE) deletes its state keys and state tables, the subtrees
`state/<Kind>/<id>` and `tables/<Kind>/<id>`, *in the commit's transaction*: planning lists those subtrees
(a few asynchronous reads, only for the objects the batch deletes) and the transaction deletes every node
found, children before parents. The subtrees are instead deleted *right after the commit*, by this session,
when the transaction would be too big (past `STATE_DELETES_IN_TRANSACTION` nodes: ZooKeeper bounds a
transaction by jute.maxbuffer, 1 MB by default) or when an entry written or removed between the listing and
the commit (an agent learning a MAC) made the transaction fail: the batch is planned again and commits
without them, so busy writers cannot starve a delete. That deletion is best effort: a failure is logged,
not raised, as the objects are gone. Either way, an entry written after the commit by a session that has
not seen the delete yet makes its table again (ephemeral, it goes with that session).

Watches are kazoo `DataWatch` / `ChildrenWatch` recipes; their callbacks (on kazoo's threads) post events to
this store's `Delivery` thread, which runs the subscribers' callbacks in order. ZooKeeper watches carry no
data, so changes that follow each other faster than a watch re-reads may be coalesced into the last one (a
deleted and re-created node may show as one update); the order is kept and the last state is always
delivered, as with ZOOM's observables. Children watches (a class, a table) follow their node through being
deleted and made again (an object's table deleted with it, then written to).

The watches, the state tables and the path segments are `store.zookeeper_watches`.

May import: `midonet.topology`, `midonet.store`; kazoo.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import functools
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.recipe.watchers import DataWatch

from midonet.store import integrity
from midonet.store.base import Create, Delete, ObjectEvent, Op, StateValue, Update
from midonet.store.delivery import Delivery, Subscription
from midonet.store.zookeeper_watches import (
    WatchFunc,
    ZooKeeperStateTable,
    _ChildWatch,
    _guarded,
    _lost_races,
    _ObjectWatch,
    _races,
    _state_value,
    segment,
    unsegment,
)
from midonet.topology.errors import NotFoundError, StorageError, TopologyError
from midonet.topology.record import Record, from_dict, to_dict
from midonet.topology.registry import RECORD_TYPES

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)

DEFAULT_ROOT = "/midonet"
STATE_DELETES_IN_TRANSACTION = 1000
"""At most this many state nodes of deleted objects go in the commit's transaction; more are deleted after."""

_store_numbers = itertools.count(1)

class ZooKeeperStore:
    """A `Store` session on a ZooKeeper ensemble (see the module docstring)."""

    def __init__(self, hosts: str, root: str = DEFAULT_ROOT, owner: str = "api", *,
                 connect_timeout: float = 10.0, session_timeout: float = 10.0) -> None:
        self._owner = owner
        self._hosts = hosts
        self._timeouts = (connect_timeout, session_timeout)
        self._root = "/" + root.strip("/") if root.strip("/") else ""
        self._base = f"{self._root}/zoom/0"
        self._closed = False
        self._close_lock = threading.Lock()
        self._kinds_ready: set[type[Record]] = set()
        self._client = KazooClient(hosts=hosts, timeout=session_timeout)
        try:
            self._client.start(timeout=connect_timeout)
        except (KazooTimeoutError, KazooException) as e:
            self._stop_client()
            raise StorageError(f"cannot connect to ZooKeeper at {hosts}: {e}") from e
        try:
            with self._errors():
                for sub in ("state", "tables", "sequences"):
                    self._client.ensure_path(f"{self._base}/{sub}")
                for cls in RECORD_TYPES:
                    self._ensure_kind(cls)
        except BaseException:
            self._stop_client()
            raise
        self.delivery = Delivery(f"zookeeper-store-{owner}-{next(_store_numbers)}")

    def __repr__(self) -> str:
        return f"<ZooKeeperStore owner={self._owner!r} root={self._root or '/'!r}>"

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def hosts(self) -> str:
        """The ensemble's connection string, as given ("host:port[,host:port...]")."""
        return self._hosts

    @property
    def root(self) -> str:
        """The root path the store lives under."""
        return self._root or "/"

    def connect(self, owner: str) -> ZooKeeperStore:
        """A new session on the same ensemble and root, named `owner` (as `MemoryBackend.connect`); the caller
        closes it. StorageError if it cannot connect."""
        self._check_open()
        connect_timeout, session_timeout = self._timeouts
        return ZooKeeperStore(self._hosts, self.root, owner, connect_timeout=connect_timeout,
                              session_timeout=session_timeout)

    @property
    def client(self) -> KazooClient:
        """The kazoo client (one ZooKeeper session)."""
        return self._client

    @property
    def session_id(self) -> int:
        client_id: tuple[int, bytes] | None = self._client.client_id
        if client_id is None:
            raise StorageError("not connected to ZooKeeper")
        return client_id[0]

    # --- paths and errors ------------------------------------------------------------------------

    def _kind_path(self, cls: type[Record]) -> str:
        return f"{self._base}/models/{segment(cls.kind())}"

    def _model_path(self, cls: type[Record], obj_id: str) -> str:
        return f"{self._kind_path(cls)}/{segment(obj_id)}"

    def _object_state_path(self, cls: type[Record], obj_id: str) -> str:
        return f"{self._base}/state/{segment(cls.kind())}/{segment(obj_id)}"

    def _object_tables_path(self, cls: type[Record], obj_id: str) -> str:
        return f"{self._base}/tables/{segment(cls.kind())}/{segment(obj_id)}"

    def _state_path(self, cls: type[Record], obj_id: str, key: str) -> str:
        return f"{self._object_state_path(cls, obj_id)}/{segment(key)}"

    def _table_path(self, cls: type[Record], obj_id: str, name: str) -> str:
        return f"{self._object_tables_path(cls, obj_id)}/{segment(name)}"

    def _ensure_kind(self, cls: type[Record]) -> None:
        if cls not in self._kinds_ready:
            self._client.ensure_path(self._kind_path(cls))
            self._kinds_ready.add(cls)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the store session {self._owner!r} is closed")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Map kazoo's failures (connection loss, session expiry, timeouts) to StorageError.

        While the client is reconnecting, refuse at once: kazoo would queue the request until the connection
        is back, however long that takes.
        """
        self._check_open()
        if not self._client.connected:
            raise StorageError(f"not connected to ZooKeeper ({self._client.state}); try again")
        try:
            yield
        except TopologyError:
            raise
        except (KazooException, KazooTimeoutError) as e:
            raise StorageError(f"ZooKeeper: {type(e).__name__}: {e}") from e

    # --- objects ---------------------------------------------------------------------------------

    @staticmethod
    def _decode(cls: type[R], data: bytes) -> R:
        return from_dict(cls, json.loads(data), cls.kind())

    @staticmethod
    def _encode(obj: Record) -> bytes:
        return json.dumps(to_dict(obj), separators=(",", ":")).encode()

    def get(self, cls: type[R], obj_id: str) -> R:
        obj = self.find(cls, obj_id)
        if obj is None:
            raise NotFoundError(cls.kind(), obj_id)
        return obj

    def find(self, cls: type[R], obj_id: str) -> R | None:
        with self._errors():
            try:
                data, _ = self._client.get(self._model_path(cls, obj_id))
            except NoNodeError:
                return None
            return self._decode(cls, data)

    def exists(self, cls: type[Record], obj_id: str) -> bool:
        with self._errors():
            return self._client.exists(self._model_path(cls, obj_id)) is not None

    def list(self, cls: type[R], ids: Iterable[str] | None = None) -> list[R]:
        """Every object of `cls` in creation order (or those of `ids` that exist, in that order)."""
        with self._errors():
            kind_path = self._kind_path(cls)
            if ids is None:
                try:
                    names = self._client.get_children(kind_path)
                except NoNodeError:
                    return []
            else:
                names = [segment(i) for i in ids]
            pending = [self._client.get_async(f"{kind_path}/{name}") for name in names]
            found: list[tuple[int, R]] = []
            for result in pending:
                try:
                    data, stat = result.get()
                except NoNodeError:
                    continue
                found.append((stat.czxid, self._decode(cls, data)))
            if ids is None:
                found.sort(key=lambda pair: pair[0])
            return [obj for _, obj in found]

    def multi(self, ops: Sequence[Op]) -> None:
        with self._errors():
            state_in_transaction = True
            for _ in _races():
                match self._commit_once(ops, state_in_transaction):
                    case _Outcome.COMMITTED:
                        return
                    case _Outcome.STATE_RACED:
                        state_in_transaction = False
                    case _Outcome.RACED:
                        pass
            raise _lost_races()

    def _commit_once(self, ops: Sequence[Op], state_in_transaction: bool) -> _Outcome:
        """Plan and commit, deleting the state of deleted objects in the transaction or right after it."""
        versions: dict[integrity.Key, int] = {}

        def read(cls: type[Record], obj_id: str) -> Record | None:
            try:
                data, stat = self._client.get(self._model_path(cls, obj_id))
            except NoNodeError:
                versions[(cls, obj_id)] = -1
                return None
            versions[(cls, obj_id)] = stat.version
            return self._decode(cls, data)

        plan = integrity.plan(read, ops)
        if not plan.writes:
            return _Outcome.COMMITTED
        state_roots = [path for key in plan.deleted
                       for path in (self._object_state_path(*key), self._object_tables_path(*key))]
        state_nodes: builtins.list[str] = []
        if state_roots and state_in_transaction:
            state_nodes = [path for layer in self._subtrees(state_roots) for path in layer]
            state_in_transaction = len(state_nodes) <= STATE_DELETES_IN_TRANSACTION
        tx = self._client.transaction()
        for key in plan.before:
            if key not in plan.writes and versions[key] >= 0:
                tx.check(self._model_path(*key), versions[key])
        for key, new in plan.writes.items():
            path = self._model_path(*key)
            if plan.before[key] is None:
                assert new is not None
                self._ensure_kind(key[0])
                tx.create(path, self._encode(new))
            elif new is None:
                tx.delete(path, version=versions[key])
            else:
                tx.set_data(path, self._encode(new), version=versions[key])
        first_state_op = len(tx.operations)
        if state_in_transaction:
            for path in state_nodes:
                tx.delete(path)
        results = tx.commit()
        # the ops before the one that failed report RolledBackError, those after it RuntimeInconsistency
        failures = [(i, r) for i, r in enumerate(results)
                    if isinstance(r, Exception) and not isinstance(r, (RolledBackError, RuntimeInconsistency))]
        if not failures:
            if not state_in_transaction:
                self._delete_subtrees(state_roots)
            return _Outcome.COMMITTED
        if all(isinstance(f, (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError)) for _, f in failures):
            log.debug("transaction raced another writer (%s); planning again", failures)
            if all(i >= first_state_op for i, _ in failures):
                return _Outcome.STATE_RACED
            return _Outcome.RACED
        raise StorageError(f"ZooKeeper refused the transaction: {[f for _, f in failures]}")

    def _subtrees(self, roots: Sequence[str]) -> builtins.list[builtins.list[str]]:
        """The existing nodes of the subtrees at `roots`, deepest layer first (each layer read in parallel)."""
        layers: builtins.list[builtins.list[str]] = []
        level = list(roots)
        while level:
            pending = [(path, self._client.get_children_async(path)) for path in level]
            found: builtins.list[str] = []
            level = []
            for path, result in pending:
                try:
                    children = result.get()
                except NoNodeError:
                    continue
                found.append(path)
                level.extend(f"{path}/{child}" for child in children)
            layers.append(found)
        layers.reverse()
        return layers

    def _delete_subtrees(self, roots: Sequence[str]) -> None:
        """Delete the subtrees at `roots`, children before parents, again while other sessions add to them;
        best effort: a failure is logged (the commit that called this has already happened)."""
        try:
            for _ in _races():
                raced = False
                for layer in self._subtrees(roots):
                    pending = [self._client.delete_async(path) for path in layer]
                    for result in pending:
                        try:
                            result.get()
                        except NoNodeError:
                            pass
                        except NotEmptyError:
                            raced = True
                    if raced:
                        break
                if not raced:
                    return
            log.warning("could not delete all of %s: other sessions kept writing", roots)
        except (KazooException, KazooTimeoutError) as e:
            log.warning("could not delete the state of deleted objects (%s): %s", roots, e)

    def create(self, obj: Record) -> None:
        self.multi([Create(obj)])

    def update(self, obj: Record) -> None:
        self.multi([Update(obj)])

    def delete(self, cls: type[Record], obj_id: str) -> None:
        self.multi([Delete(cls, obj_id)])

    def next_sequence(self, name: str) -> int:
        path = f"{self._base}/sequences/{segment(name)}"
        with self._errors():
            for _ in _races():
                try:
                    data, stat = self._client.get(path)
                except NoNodeError:
                    with contextlib.suppress(NodeExistsError):
                        self._client.create(path, b"0", makepath=True)
                    continue
                number = int(data or b"0") + 1
                try:
                    self._client.set(path, str(number).encode(), version=stat.version)
                except BadVersionError:
                    continue
                return number
            raise _lost_races()

    # --- watches ---------------------------------------------------------------------------------

    def _subscription(self) -> Subscription:
        self._check_open()
        return Subscription()

    def _post(self, sub: Subscription, fn: Callable[[], None]) -> None:
        self.delivery.post(sub, fn)

    def watch(self, cls: type[Record], obj_id: str, callback: Callable[[ObjectEvent], None]) -> Subscription:
        sub = self._subscription()
        with self._errors():
            DataWatch(self._client, self._model_path(cls, obj_id),
                      _ObjectWatch(self, sub, cls, obj_id, callback).on_data)
        return sub

    def watch_class(self, cls: type[Record], callback: Callable[[ObjectEvent], None]) -> Subscription:
        sub = self._subscription()
        with self._errors():
            self._ensure_kind(cls)

            def make(name: str) -> WatchFunc:
                return _ObjectWatch(self, sub, cls, unsegment(name), callback).on_data

            _ChildWatch(self, sub, self._kind_path(cls), make)
        return sub

    # --- state keys ------------------------------------------------------------------------------

    def set_state(self, cls: type[Record], obj_id: str, key: str, value: str) -> None:
        data = json.dumps({"value": value, "owner": self._owner}).encode()
        with self._errors():
            self._write_owned(self._state_path(cls, obj_id, key), data, ephemeral=True)

    def _write_owned(self, path: str, data: bytes, ephemeral: bool) -> None:
        """Make `path` hold `data`, owned by this session (ephemeral) or by nobody; last write wins."""
        want_owner = self.session_id if ephemeral else 0
        for _ in _races():
            try:
                current, stat = self._client.get(path)
            except NoNodeError:
                try:
                    self._client.create(path, data, ephemeral=ephemeral, makepath=True)
                    return
                except NodeExistsError:
                    continue
            if stat.ephemeralOwner == want_owner:
                if current == data:
                    return
                try:
                    self._client.set(path, data, version=stat.version)
                    return
                except (BadVersionError, NoNodeError):
                    continue
            tx = self._client.transaction()
            tx.delete(path, version=stat.version)
            tx.create(path, data, ephemeral=ephemeral)
            if not any(isinstance(r, Exception) for r in tx.commit()):
                return
        raise _lost_races()

    def get_state(self, cls: type[Record], obj_id: str, key: str) -> StateValue | None:
        with self._errors():
            try:
                data, _ = self._client.get(self._state_path(cls, obj_id, key))
            except NoNodeError:
                return None
            return _state_value(data)

    def delete_state(self, cls: type[Record], obj_id: str, key: str) -> None:
        """Remove the key if this session wrote it (a key another session owns is left alone)."""
        path = self._state_path(cls, obj_id, key)
        with self._errors():
            try:
                _, stat = self._client.get(path)
                if stat.ephemeralOwner == self.session_id:
                    self._client.delete(path, version=stat.version)
            except (NoNodeError, BadVersionError):
                pass

    def watch_state(self, cls: type[Record], obj_id: str, key: str,
                    callback: Callable[[StateValue | None], None]) -> Subscription:
        sub = self._subscription()
        last: list[StateValue | bool | None] = [False]   # False: nothing delivered yet

        def on_data(data: bytes | None, stat: Any, event: Any = None) -> bool | None:
            if not sub.active or self._closed:
                return False
            value = None if stat is None else _state_value(data or b"")
            if last[0] is False or last[0] != value:
                last[0] = value
                self._post(sub, functools.partial(callback, value))
            return None

        with self._errors():
            DataWatch(self._client, self._state_path(cls, obj_id, key), _guarded(on_data))
        return sub

    # --- state tables ----------------------------------------------------------------------------

    def state_table(self, cls: type[Record], obj_id: str, name: str) -> ZooKeeperStateTable:
        return ZooKeeperStateTable(self, self._table_path(cls, obj_id, name))

    def table_names(self, cls: type[Record], obj_id: str) -> builtins.list[str]:
        """The names of the object's tables that hold entries, sorted (an emptied table's node may remain)."""
        path = self._object_tables_path(cls, obj_id)
        with self._errors():
            try:
                names = self._client.get_children(path)
            except NoNodeError:
                return []
            pending = [(name, self._client.exists_async(f"{path}/{name}")) for name in names]
            return sorted(unsegment(name) for name, result in pending
                          if (stat := result.get()) is not None and stat.numChildren > 0)

    # --- session ---------------------------------------------------------------------------------

    def close(self) -> None:
        """End the session: ZooKeeper removes its ephemeral nodes (state keys, ephemeral entries) at once."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop_client()
        self.delivery.close()

    def _stop_client(self) -> None:
        with contextlib.suppress(Exception):
            self._client.stop()
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> ZooKeeperStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Outcome(enum.Enum):
    """How one attempt at committing a batch went."""

    COMMITTED = enum.auto()
    RACED = enum.auto()         # another writer changed an object the plan read: plan again
    STATE_RACED = enum.auto()   # only the state of a deleted object changed: plan again, delete it after
