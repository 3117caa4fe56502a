"""The transaction engine every backend shares: a batch of ops in, the writes that keep integrity out.

`plan(reader, ops)` runs `Create` / `Update` / `UpdateWith` / `Delete` ops against a *reader* (a function
returning the stored object of a class and id, or None) and returns a `Plan`: the final value of every object
the batch changes (None for a deleted one), the value it read for every object it looked at (so a backend can
check nothing changed under it before committing: ZooKeeper versions), and the watch events the commit
produces. It writes nothing; the backend commits the plan atomically or not at all.

Semantics, as ZOOM's (spec 1.2, `topology.bindings`):

* ops see the effects of the ops before them in the same batch;
* `Create` of an existing id -> ConflictError; `Update` / `UpdateWith` / `Delete` of a missing object ->
  NotFoundError (`Delete(ignore_missing=True)` skips it);
* for every binding side of a written object, the referenced ids are diffed old vs new: an added reference
  loads the other object (missing -> NotFoundError naming its kind and id) and adds this id to the other
  side's field; if that field is single-valued and already points at a *different* id -> ConflictError
  ("no stealing"); a removed reference clears the back-reference;
* on delete, for each side: CLEAR removes the deleted id from the referenced objects' field (None for a
  single-valued one); CASCADE deletes the referenced objects, recursively (an object is deleted once, so
  cycles end); ERROR refuses (ConflictError) while the field references an object that still exists.

`TunnelZone.host_ids` is derived from `TunnelZone.hosts` (each member carries its address): clearing a host
from a zone removes its member entry; a zone cannot be added from the host side (`Host.tunnel_zone_ids`)
unless the zone already lists the host (ValidationError: membership is written on the zone).

May import: `midonet.topology`, `midonet.store.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never

from midonet.store.base import (
    Create,
    Delete,
    ObjectDeleted,
    ObjectEvent,
    ObjectUpdated,
    Op,
    Update,
    UpdateWith,
)
from midonet.topology.bindings import OnDelete, is_single, referenced_ids, sides_of
from midonet.topology.errors import ConflictError, NotFoundError, ValidationError, Violation
from midonet.topology.hosts import TunnelZone
from midonet.topology.record import Record

Key = tuple[type[Record], str]
"""An object's address in a store: its class and id."""

Reader = Callable[[type[Record], str], Record | None]
"""Reads the committed object of a class and id (None if absent)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a batch does: `writes` (in the order first changed) and `before` (every value it read)."""

    writes: Mapping[Key, Record | None]
    before: Mapping[Key, Record | None]

    @property
    def reads(self) -> frozenset[Key]:
        """Every key the batch read through the reader, written or not."""
        return frozenset(self.before)

    @property
    def deleted(self) -> list[Key]:
        """The objects the batch deletes (they existed before it), in `writes` order: their state keys and
        state tables go with them."""
        return [key for key, new in self.writes.items() if new is None and self.before.get(key) is not None]

    @property
    def events(self) -> list[ObjectEvent]:
        """The watch events of the commit, one per changed object, in `writes` order."""
        out: list[ObjectEvent] = []
        for (cls, obj_id), new in self.writes.items():
            out.append(ObjectDeleted(cls, obj_id) if new is None else ObjectUpdated(cls, obj_id, new))
        return out


def plan(reader: Reader, ops: Sequence[Op]) -> Plan:
    """Run `ops` against `reader`; raises ValidationError / NotFoundError / ConflictError on the first failure."""
    batch = _Batch(reader)
    for op in ops:
        batch.apply(op)
    return batch.result()


def key_of(obj: Record) -> Key:
    return (type(obj), obj.id)


def _describe(key: Key) -> str:
    return f"{key[0].kind()} {key[1]}"


class _Batch:
    """The objects of one transaction as the ops see them: read through once, then kept here."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._before: dict[Key, Record | None] = {}
        self._current: dict[Key, Record | None] = {}
        self._written: dict[Key, None] = {}   # insertion-ordered set of changed keys

    # --- reading and writing -------------------------------------------------------------------

    def load(self, key: Key) -> Record | None:
        if key not in self._current:
            obj = self._reader(*key)
            if obj is not None and not isinstance(obj, key[0]):
                raise TypeError(f"reader returned a {type(obj).__name__} for {_describe(key)}")
            self._before[key] = obj
            self._current[key] = obj
        return self._current[key]

    def _put(self, key: Key, obj: Record | None) -> None:
        self.load(key)
        self._current[key] = obj
        self._written[key] = None

    def result(self) -> Plan:
        writes = {k: self._current[k] for k in self._written if self._current[k] != self._before[k]}
        return Plan(writes=writes, before=dict(self._before))

    # --- ops -------------------------------------------------------------------------------------

    def apply(self, op: Op) -> None:
        match op:
            case Create(obj=obj):
                key = key_of(obj)
                if self.load(key) is not None:
                    raise ConflictError(f"{_describe(key)} already exists")
                self._write(key, None, obj)
            case Update(obj=obj):
                key = key_of(obj)
                old = self.load(key)
                if old is None:
                    raise NotFoundError(key[0].kind(), key[1])
                self._write(key, old, obj)
            case UpdateWith(cls=cls, id=obj_id, fn=fn):
                key = (cls, obj_id)
                old = self.load(key)
                if old is None:
                    raise NotFoundError(cls.kind(), obj_id)
                new = fn(old)
                if type(new) is not cls or new.id != old.id:
                    raise ValidationError(Violation("id", f"an update of {_describe(key)} must keep its "
                                                          "class and id"))
                self._write(key, old, new)
            case Delete(cls=cls, id=obj_id, ignore_missing=ignore_missing):
                if self.load((cls, obj_id)) is None:
                    if ignore_missing:
                        return
                    raise NotFoundError(cls.kind(), obj_id)
                self._delete((cls, obj_id))
            case _:
                assert_never(op)

    def _write(self, key: Key, old: Record | None, new: Record) -> None:
        """Store `new` at `key` and bring the other side of every binding whose ids changed in line."""
        self._put(key, new)
        for side in sides_of(key[0]):
            old_ids = referenced_ids(old, side.field) if old is not None else ()
            new_ids = referenced_ids(new, side.field)
            for ref in old_ids:
                if ref not in new_ids:
                    other_key = (side.other, ref)
                    other = self.load(other_key)
                    if other is not None:
                        self._put(other_key, _without(other, side.other_field, key[1]))
            for ref in new_ids:
                if ref not in old_ids:
                    other_key = (side.other, ref)
                    other = self.load(other_key)
                    if other is None:
                        raise NotFoundError(side.other.kind(), ref,
                                            f"{side.other.kind()} {ref} (referenced by {key[0].kind()}."
                                            f"{side.field}) does not exist")
                    self._put(other_key, _with(other, side.other_field, key[1], key[0]))

    def _delete(self, key: Key) -> None:
        """Delete an existing object and apply the delete action of each of its binding sides."""
        obj = self.load(key)
        if obj is None:   # already deleted by this batch (a cascade cycle) or never there
            return
        sides = sides_of(key[0])
        for side in sides:
            if side.on_delete is OnDelete.ERROR:
                for ref in referenced_ids(obj, side.field):
                    if self.load((side.other, ref)) is not None:
                        raise ConflictError(
                            f"{_describe(key)} cannot be deleted while its {side.field} refers to "
                            f"{side.other.kind()} {ref}")
        self._put(key, None)
        for side in sides:
            for ref in referenced_ids(obj, side.field):
                other_key = (side.other, ref)
                match side.on_delete:
                    case OnDelete.CLEAR:
                        other = self.load(other_key)
                        if other is not None:
                            self._put(other_key, _without(other, side.other_field, key[1]))
                    case OnDelete.CASCADE:
                        self._delete(other_key)
                    case OnDelete.ERROR:
                        pass   # checked above: nothing it refers to exists
                    case _:
                        assert_never(side.on_delete)


# --- one side of a reference ----------------------------------------------------------------------

def _with(obj: Record, field: str, ref: str, holder: type[Record]) -> Record:
    """`obj` with `ref` added to `obj.field` (a back-reference from a `holder`)."""
    if isinstance(obj, TunnelZone) and field == "host_ids":
        if ref in obj.host_ids:
            return obj
        raise ValidationError(Violation(
            "tunnel_zone_ids", f"host {ref} is not a member of tunnel zone {obj.id}: add it to the zone's "
                               "hosts (with its address) instead"))
    current = getattr(obj, field)
    if is_single(type(obj), field):
        if current == ref:
            return obj
        if current is not None:
            raise ConflictError(
                f"{obj.kind()} {obj.id} is already bound: its {field} refers to {current}, not "
                f"{holder.kind()} {ref}")
        return obj.replace(**{field: ref})
    if ref in current:
        return obj
    return obj.replace(**{field: (*current, ref)})


def _without(obj: Record, field: str, ref: str) -> Record:
    """`obj` with `ref` removed from `obj.field` (None for a single-valued field pointing at it)."""
    if isinstance(obj, TunnelZone) and field == "host_ids":
        if ref not in obj.host_ids:
            return obj
        return obj.replace(hosts=tuple(h for h in obj.hosts if h.host_id != ref))
    current = getattr(obj, field)
    if is_single(type(obj), field):
        return obj.replace(**{field: None}) if current == ref else obj
    if ref not in current:
        return obj
    return obj.replace(**{field: tuple(x for x in current if x != ref)})
