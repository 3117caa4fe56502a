"""The `Store` contract every backend implements (memory, ZooKeeper).

Ids: every id is a canonical UUID string (lower case, hyphenated: `topology.ids.canonical_id`). The store
compares ids as plain strings, so "ABC..." and "abc..." would be two different objects: callers
canonicalise ids before they reach the store.

Objects: `get`/`find`/`exists`/`list` read; `list(cls)` returns the objects in creation order (an update
keeps an object's place). `multi(ops)` applies a batch of `Create` / `Update` / `UpdateWith` / `Delete`
atomically, keeping referential integrity (topology.bindings): back-references are updated on both sides,
deletes CLEAR / CASCADE / are refused (ERROR), a single-valued reference already pointing elsewhere is
refused (ConflictError), a reference to a missing object is refused (NotFoundError). Either every op of the
batch lands or none does; a rejected batch changes nothing. Ops in a batch see the effects of the ops before
them (create a rule, then reorder its chain).

`Update(obj)` replaces the *whole* stored object with `obj`, so a back-reference another writer added since
`obj` was read (a port created on the bridge being renamed) would be lost: code that changes a few fields of
an object it read earlier uses `UpdateWith(cls, id, fn)`, which applies `fn` to the object as it is inside
the transaction (the API does this through `midonet.api.resource.merge_update`).

Deleting an object, directly or by CASCADE, also removes its state keys and its state tables (every entry of
every table attached to it, persistent or not, whoever wrote it), in the same commit where the backend allows
it (see each backend's docstring); watchers of those keys and tables are told of the removals, after the
`ObjectDeleted` event.

Watches: `watch(cls, id, cb)` delivers the current object (if any) at once, then its changes in commit order
(`ObjectUpdated`, and `ObjectDeleted` once); `watch_class(cls, cb)` does the same for every object of a
class. Order is kept, but a backend may merge intermediate states: ZooKeeper watches carry no data, so
changes that follow each other faster than the watch re-reads arrive as one (the last); the final state is
always delivered. Callbacks run on a store-owned thread, never while the store holds a lock, one at a time
per subscription, and may call the store. `Subscription.cancel()` stops delivery.

State keys: small string values attached to an object (`Host.alive`, `Port.active`, `Host.interfaces`),
owned by the session that wrote them (the store instance, named by `owner`) and removed when that session
ends (`close()`, or a ZooKeeper session expiring). Last write wins, and the last writer owns the key.
`delete_state` removes a key only if this session owns it: a key another session wrote since is left alone.

State tables: replicated string maps attached to an object (a bridge's MAC table per VLAN, named
`mac_table:<vlan>`, its ARP table, a router port's peering table, NAT leases, learned routes). Each entry is
owned by the session that wrote it and vanishes with it, unless written `persistent=True` (the API writes
persistent entries, agents ephemeral ones). `claim(key, value)` is the one conditional write: an ephemeral entry
written only if the key is absent, so that exactly one of several sessions wins it (NAT block leases).
`table_names(cls, id)` lists the tables of an object that hold entries. A table's `watch` delivers (key, old,
new) changes in order, new None = removed, with the same merging of intermediate states as object watches.

Sequences: `next_sequence(name)` returns 1, 2, 3 ... unique across every client of the same store (tunnel
keys).

May import: `midonet.topology`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from midonet.topology.record import Record

R = TypeVar("R", bound=Record)


# --- transaction ops -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Create:
    """Create `obj`; ConflictError if its id exists. Back-references it implies are set on the others."""

    obj: Record


@dataclass(frozen=True, slots=True)
class Update:
    """Replace the whole stored object of `obj`'s class and id with `obj` (NotFoundError if absent).

    References added to the stored object since `obj` was read are lost: prefer `UpdateWith`.
    """

    obj: Record


@dataclass(frozen=True, slots=True)
class UpdateWith:
    """Replace the stored object with `fn(stored)`, `stored` as seen inside the transaction (so a change of
    a few fields keeps whatever else other writers changed meanwhile)."""

    cls: type[Record]
    id: str
    fn: Callable[[Record], Record]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete an object, its state keys and state tables, and apply its bindings' delete actions (NotFoundError
    if absent, unless told)."""

    cls: type[Record]
    id: str
    ignore_missing: bool = False


Op = Create | Update | UpdateWith | Delete


# --- watch events --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ObjectUpdated:
    cls: type[Record]
    id: str
    obj: Record


@dataclass(frozen=True, slots=True)
class ObjectDeleted:
    cls: type[Record]
    id: str


ObjectEvent = ObjectUpdated | ObjectDeleted


@dataclass(frozen=True, slots=True)
class StateValue:
    """A state key's value and the owner (session) that wrote it."""

    value: str
    owner: str


class Subscription(Protocol):
    def cancel(self) -> None: ...


class StateTable(Protocol):
    """A replicated map of strings attached to one object (see the module docstring)."""

    def put(self, key: str, value: str, persistent: bool = False) -> None: ...

    def claim(self, key: str, value: str) -> bool:
        """Write `key` -> `value` owned by this session (ephemeral) only if no entry has that key: whether this
        session holds the entry now (True also when it held it already). Atomic: of several sessions claiming one
        key at once exactly one wins (NAT block leases, spec 3.7)."""

    def remove(self, key: str, value: str | None = None) -> None:
        """Remove `key` (only if its value is `value`, when given). No error if absent."""

    def get(self, key: str) -> str | None: ...

    def snapshot(self) -> dict[str, str]: ...

    def watch(self, callback: Callable[[str, str | None, str | None], None]) -> Subscription:
        """Deliver (key, old, new) for every change; the current entries first, as (key, None, value)."""


class Store(Protocol):
    """See the module docstring for the semantics every backend keeps."""

    @property
    def owner(self) -> str:
        """The name of this session (a host id for agents, 'api' for API servers)."""

    # objects
    def get(self, cls: type[R], obj_id: str) -> R:
        """The object, or NotFoundError."""

    def find(self, cls: type[R], obj_id: str) -> R | None: ...

    def exists(self, cls: type[Record], obj_id: str) -> bool: ...

    def list(self, cls: type[R], ids: Iterable[str] | None = None) -> list[R]:
        """Every object of `cls` in creation order (or those of `ids` that exist, in that order)."""

    def multi(self, ops: Sequence[Op]) -> None:
        """Apply `ops` atomically; raises ValidationError / NotFoundError / ConflictError / StorageError."""

    def create(self, obj: Record) -> None: ...

    def update(self, obj: Record) -> None: ...

    def delete(self, cls: type[Record], obj_id: str) -> None: ...

    def next_sequence(self, name: str) -> int: ...

    # watches
    def watch(self, cls: type[Record], obj_id: str, callback: Callable[[ObjectEvent], None]) -> Subscription: ...

    def watch_class(self, cls: type[Record], callback: Callable[[ObjectEvent], None]) -> Subscription: ...

    # state keys
    def set_state(self, cls: type[Record], obj_id: str, key: str, value: str) -> None: ...

    def get_state(self, cls: type[Record], obj_id: str, key: str) -> StateValue | None: ...

    def delete_state(self, cls: type[Record], obj_id: str, key: str) -> None:
        """Remove the key if this session owns it (wrote it last); otherwise leave it alone."""

    def watch_state(self, cls: type[Record], obj_id: str, key: str,
                    callback: Callable[[StateValue | None], None]) -> Subscription:
        """Deliver the current value (or None) at once, then every change."""

    # state tables
    def state_table(self, cls: type[Record], obj_id: str, name: str) -> StateTable: ...

    def table_names(self, cls: type[Record], obj_id: str) -> builtins.list[str]:
        """The names of the object's state tables that hold entries now, sorted (`mac_table:0`, ...)."""

    def connect(self, owner: str) -> Store:
        """Another session on the same store, named `owner` (its own state keys and watches); the caller closes it."""
        ...

    def close(self) -> None:
        """End this session: its state keys and non-persistent table entries vanish."""
