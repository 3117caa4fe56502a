"""The embedded store's files: a snapshot plus an append-only log of committed changes, crash-safe.

    <data_dir>/store.lock       flock'ed while a store has the directory open (one opener at a time)
    <data_dir>/store.snapshot   JSON: every object, sequence and persistent table entry at some point
    <data_dir>/store.log        JSON lines, one per committed change after that point, fsync'ed

Every entry is absolute (the new value of an object, a sequence, a table entry; null when removed; an object
written as null takes its persistent table entries with it, as deleting an object deletes its tables), so
replaying the log onto a snapshot that already contains some of it gives the same image: compaction writes
the snapshot to a temporary file, fsyncs it, renames it over the old one (`os.replace`), and only then
truncates the log; a crash at any point leaves a snapshot and a log that replay to the last commit.

A commit is durable once `append` returns. A crash in the middle of an append leaves a torn (partial or
garbled) last line: it is ignored on load, as the commit it belonged to never returned. A bad line anywhere
else is corruption and refuses to load (StorageError). Opening compacts, so the torn tail is gone before
anything is appended after it.

This module deals in JSON data and kind names only; `memory` turns them into records.

May import: `midonet.topology.errors`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

from midonet.store.files import fsync_directory, lock_directory
from midonet.topology.errors import StorageError

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
TableAddress = tuple[str, str, str]
"""(kind, object id, table name)."""

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ObjectsWritten:
    """One committed batch: (kind, id, data or None when deleted) per changed object. A deleted object's
    persistent table entries are gone too: the same line records both, so they go atomically."""

    writes: tuple[tuple[str, str, JsonObject | None], ...]


@dataclass(frozen=True, slots=True)
class SequenceSet:
    name: str
    value: int


@dataclass(frozen=True, slots=True)
class TableEntrySet:
    """A persistent table entry written (`value`) or gone (None)."""

    table: TableAddress
    key: str
    value: str | None


Entry = ObjectsWritten | SequenceSet | TableEntrySet


@dataclass(slots=True)
class Image:
    """Everything the files hold: objects by kind and id (as JSON data), sequences, persistent entries."""

    objects: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    tables: dict[TableAddress, dict[str, str]] = field(default_factory=dict)

    def apply(self, entry: Entry) -> None:
        match entry:
            case ObjectsWritten(writes=writes):
                deleted: set[tuple[str, str]] = set()
                for kind, obj_id, data in writes:
                    of_kind = self.objects.setdefault(kind, {})
                    if data is None:
                        of_kind.pop(obj_id, None)
                        deleted.add((kind, obj_id))
                    else:
                        of_kind[obj_id] = data
                if deleted and self.tables:
                    for table in [t for t in self.tables if (t[0], t[1]) in deleted]:
                        del self.tables[table]
            case SequenceSet(name=name, value=number):
                self.sequences[name] = number
            case TableEntrySet(table=table, key=key, value=val):
                entries = self.tables.setdefault(table, {})
                if val is None:
                    entries.pop(key, None)
                    if not entries:
                        del self.tables[table]
                else:
                    entries[key] = val


def _encode(entry: Entry) -> JsonObject:
    match entry:
        case ObjectsWritten(writes=writes):
            return {"objects": [[k, i, d] for k, i, d in writes]}
        case SequenceSet(name=name, value=number):
            return {"sequence": [name, number]}
        case TableEntrySet(table=(kind, obj_id, name), key=key, value=val):
            return {"table": [kind, obj_id, name, key, val]}
        case _:
            assert_never(entry)


def _decode(data: Any) -> Entry:
    if not isinstance(data, dict):
        raise ValueError("not an object")
    if "objects" in data:
        return ObjectsWritten(tuple((str(k), str(i), d) for k, i, d in data["objects"]))
    if "sequence" in data:
        name, number = data["sequence"]
        return SequenceSet(str(name), int(number))
    if "table" in data:
        kind, obj_id, name, key, val = data["table"]
        return TableEntrySet((str(kind), str(obj_id), str(name)), str(key), None if val is None else str(val))
    raise ValueError(f"unknown entry {sorted(data)}")


class Journal:
    """The files of one data directory, opened by one store at a time."""

    def __init__(self, directory: Path, compact_after: int = 10_000) -> None:
        self.directory = directory
        self.compact_after = compact_after
        self._lock_fd: int | None = None
        self._log_fd: int | None = None
        self._appended = 0

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "store.snapshot"

    @property
    def log_path(self) -> Path:
        return self.directory / "store.log"

    def open(self) -> Image:
        """Lock the directory, load the snapshot and replay the log; compacts before returning."""
        try:
            lock_fd = lock_directory(self.directory, "store.lock")
        except OSError as e:
            raise StorageError(f"cannot open the store in {self.directory}: {e}") from e
        if lock_fd is None:
            raise StorageError(f"the store in {self.directory} is in use by another process")
        self._lock_fd = lock_fd
        try:
            image = self._load()
            self.compact(image)
        except BaseException:
            self.close()
            raise
        return image

    def _load(self) -> Image:
        image = Image()
        try:
            raw = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            pass
        else:
            try:
                snap = json.loads(raw)
                image.objects = {k: dict(v) for k, v in snap["objects"].items()}
                image.sequences = {k: int(v) for k, v in snap["sequences"].items()}
                image.tables = {(t[0], t[1], t[2]): dict(t[3]) for t in snap["tables"]}
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise StorageError(f"{self.snapshot_path} is corrupt: {e}") from e
        try:
            lines = self.log_path.read_bytes().split(b"\n")
        except FileNotFoundError:
            lines = []
        # the part after the last newline is a torn write (or empty)
        complete, tail = lines[:-1], lines[-1] if lines else b""
        if tail.strip():
            log.warning("%s: ignoring a torn last line (%d bytes)", self.log_path, len(tail))
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                entry = _decode(json.loads(line))
            except (ValueError, TypeError) as e:
                if number == len(complete) and not tail.strip():
                    log.warning("%s: ignoring a garbled last line", self.log_path)
                    break
                raise StorageError(f"{self.log_path} is corrupt at line {number}: {e}") from e
            image.apply(entry)
        return image

    def append(self, entry: Entry) -> None:
        """Write `entry` durably (fsync) before returning; StorageError if the disk refuses."""
        if self._log_fd is None:
            raise StorageError("the store's journal is closed")
        line = json.dumps(_encode(entry), separators=(",", ":")).encode() + b"\n"
        try:
            os.write(self._log_fd, line)
            os.fsync(self._log_fd)
        except OSError as e:
            raise StorageError(f"cannot write {self.log_path}: {e}") from e
        self._appended += 1

    @property
    def needs_compaction(self) -> bool:
        return self._appended >= self.compact_after

    def compact(self, image: Image) -> None:
        """Replace the snapshot with `image` (atomically) and empty the log."""
        snap = {
            "format": _FORMAT,
            "objects": image.objects,
            "sequences": image.sequences,
            "tables": [[*address, entries] for address, entries in image.tables.items()],
        }
        tmp = self.snapshot_path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps(snap, separators=(",", ":")).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.snapshot_path)
            self._fsync_directory()
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None
            self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            os.fsync(self._log_fd)
            self._fsync_directory()
        except OSError as e:
            raise StorageError(f"cannot compact the store in {self.directory}: {e}") from e
        self._appended = 0

    def _fsync_directory(self) -> None:
        fsync_directory(self.directory)

    def close(self) -> None:
        for name in ("_log_fd", "_lock_fd"):
            fd: int | None = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)
