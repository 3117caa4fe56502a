"""The local flow-state log: the flow state an agent sent and received, kept on its disk (spec 4.5).

Role: the original's flow-state minion storage (`FlowStateService`, block files under `/var/db/midolman/flowstate`)
as one append-only log per agent, so that

* a restarted agent imports the state of its connections again (`open` returns what is still fresh), and
* a port that moved to another host gets its state from here (`for_port`: the new host asks, spec 4.5).

Everything this agent sends or accepts is kept (it is interested in all of it by definition), indexed by the ports
each message names (ingress and egress ports); an entry is fresh for `STORAGE_TTL` (120 s, the original's
`minions.flow_state` expiry) after it was last written, as the state is written again whenever a flow is simulated
again (every 30 s at most for a live connection: stateful flows expire that fast).

    <data_dir>/flowstate.lock   flock'ed while an agent has the directory open (one agent per data directory)
    <data_dir>/flowstate.log    records, appended:
        length(4) crc32(4) time(8, float)  payload = one `flowstate_wire` STATE message (ports as egress ports)
        crc32 over time + payload; network byte order

Crash safety (as the store's journal, `store/journal.py`): a record is written with one `write` to a file opened
for appending, so a process crash loses nothing the kernel has; `sync()` (the agent's tick) fsyncs, so a host
crash loses at most one tick. A torn or damaged record ends the log on load: what precedes it is kept, the rest
ignored (and counted). Compaction rewrites the fresh entries to a temporary file, fsyncs it and renames it over the
log (then fsyncs the directory): a crash at any point leaves the old log or the new one, both complete. `open`
compacts, so the torn tail is gone before anything is appended after it.

Times are the agent's clock (`Clock`): it must run on across agent restarts (a host's CLOCK_MONOTONIC does); an
entry from the future (the host rebooted) counts as stale.

Threads: not thread-safe; the agent calls it under its lock.

May import: `midonet.state`, `agent.flowstate_wire`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from midonet.agent.flowstate_wire import MAX_PAYLOAD, FlowStateMessage, MalformedFlowState, decode, encode
from midonet.state.clock import Clock
from midonet.state.conntrack import ConnTrackKey
from midonet.state.nat import NatBinding, NatKey
from midonet.store.files import fsync_directory, lock_directory

log = logging.getLogger(__name__)

STORAGE_TTL = 120.0
LOG_NAME = "flowstate.log"
LOCK_NAME = "flowstate.lock"
COMPACT_AFTER = 10_000
"""Records appended since the last compaction after which `expire` compacts."""

_RECORD = struct.Struct("!II")
_TIME = struct.Struct("!d")

Key = ConnTrackKey | NatKey


class StorageError(Exception):
    """The flow-state directory cannot be used (in use by another agent, not writable)."""


@dataclass(frozen=True, slots=True)
class SavedState:
    """Keys read back: connection-tracking keys and NAT keys with their bindings."""

    conntrack: tuple[ConnTrackKey, ...] = ()
    nat: tuple[tuple[NatKey, NatBinding], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conntrack or self.nat)


@dataclass(slots=True)
class _Entry:
    binding: NatBinding | None
    time: float
    ports: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class StorageStatistics:
    entries: int = 0
    records_written: int = 0
    records_loaded: int = 0
    damaged: int = 0            # records ignored on load (torn tail, bad checksum, undecodable)
    compactions: int = 0


class FlowStateStorage:
    """See the module docstring."""

    def __init__(self, directory: Path | None, host_id: str, clock: Clock, *, ttl: float = STORAGE_TTL,
                 compact_after: int = COMPACT_AFTER) -> None:
        self.directory = directory
        self._host_id = host_id
        self._clock = clock
        self._ttl = ttl
        self._compact_after = compact_after
        self._entries: dict[Key, _Entry] = {}
        self._lock_fd: int | None = None
        self._log_fd: int | None = None
        self._appended = 0
        self._counts = {"written": 0, "loaded": 0, "damaged": 0, "compactions": 0}

    @property
    def path(self) -> Path:
        if self.directory is None:
            raise StorageError("this flow-state storage keeps nothing on disk")
        return self.directory / LOG_NAME

    # ---- lifecycle ----

    def open(self) -> SavedState:
        """Lock the directory, load the log (dropping stale entries), compact; what is fresh. Without a directory
        the index lives in memory only (what a port's new host asks for is still answered) and this is empty."""
        if self.directory is None:
            return SavedState()
        try:
            lock_fd = lock_directory(self.directory, LOCK_NAME)
        except OSError as e:
            raise StorageError(f"cannot open the flow state in {self.directory}: {e}") from e
        if lock_fd is None:
            raise StorageError(f"the flow state in {self.directory} is in use by another agent")
        self._lock_fd = lock_fd
        try:
            self._load()
            self._drop_stale()
            self.compact()
        except BaseException:
            self.close()
            raise
        return self._state(self._entries)

    def close(self) -> None:
        """fsync and close the log, release the directory."""
        if self._log_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._log_fd)
        for name in ("_log_fd", "_lock_fd"):
            fd: int | None = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._entries.clear()

    # ---- writing ----

    def record(self, message: FlowStateMessage) -> None:
        """Keep the keys of `message` under the ports it names (a no-op for a message without keys)."""
        if not message.has_keys:
            return
        now = self._clock.now()
        ports = set(message.ports)
        for ct in message.conntrack:
            self._index(ct, None, now, ports)
        for key, binding in message.nat:
            self._index(key, binding, now, ports)
        if self._log_fd is not None:
                self._append(now, FlowStateMessage(self._host_id, egress_ports=tuple(sorted(ports)),
                                               conntrack=message.conntrack, nat=message.nat))

    def sync(self) -> None:
        """fsync the log (the agent's tick)."""
        if self._log_fd is not None:
            try:
                os.fsync(self._log_fd)
            except OSError as e:
                log.warning("flow state: cannot fsync %s: %s", self.path, e)

    def expire(self) -> int:
        """Forget stale entries; compact when many records were appended since the last time. How many went."""
        gone = self._drop_stale()
        if self._log_fd is not None and self._appended >= self._compact_after:
            try:
                self.compact()
            except StorageError as e:
                log.warning("flow state: %s", e)
        return gone

    def compact(self) -> None:
        """Rewrite the log with the fresh entries only (atomically, see the module docstring)."""
        groups: dict[tuple[float, tuple[str, ...]], list[Key]] = {}
        for key, entry in self._entries.items():
            groups.setdefault((entry.time, tuple(sorted(entry.ports))), []).append(key)
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                for (time, ports), keys in groups.items():
                    message = FlowStateMessage(
                        self._host_id, egress_ports=ports,
                        conntrack=tuple(k for k in keys if isinstance(k, ConnTrackKey)),
                        nat=tuple((k, b) for k in keys if isinstance(k, NatKey)
                                  and (b := self._entries[k].binding) is not None))
                    for payload in encode(message):
                        f.write(_pack(time, payload))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._fsync_directory()
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None
            self._log_fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise StorageError(f"cannot compact {self.path}: {e}") from e
        self._appended = 0
        self._counts["compactions"] += 1

    # ---- reading ----

    def for_port(self, port_id: str) -> SavedState:
        """The fresh keys kept under `port_id` (what its new host asks for)."""
        deadline = self._clock.now() - self._ttl
        return self._state({k: e for k, e in self._entries.items() if port_id in e.ports and e.time > deadline})

    def statistics(self) -> StorageStatistics:
        c = self._counts
        return StorageStatistics(len(self._entries), c["written"], c["loaded"], c["damaged"], c["compactions"])

    # ---- internals ----

    def _index(self, key: Key, binding: NatBinding | None, now: float, ports: Iterable[str]) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(binding, now)
        entry.binding, entry.time = binding, max(entry.time, now)
        entry.ports.update(ports)

    def _append(self, now: float, message: FlowStateMessage) -> None:
        assert self._log_fd is not None
        try:
            for payload in encode(message):
                os.write(self._log_fd, _pack(now, payload))
                self._appended += 1
                self._counts["written"] += 1
        except (OSError, ValueError) as e:
            log.warning("flow state: cannot append to %s: %s", self.path, e)

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            raise StorageError(f"cannot read {self.path}: {e}") from e
        at = 0
        while at < len(data):
            record = _unpack(data, at)
            if record is None:
                self._counts["damaged"] += 1
                log.warning("flow state: %s is damaged at byte %d of %d: ignoring the rest", self.path, at,
                            len(data))
                return
            at, time, message = record
            self._counts["loaded"] += 1
            for ct in message.conntrack:
                self._index(ct, None, time, message.ports)
            for key, binding in message.nat:
                self._index(key, binding, time, message.ports)

    def _drop_stale(self) -> int:
        now = self._clock.now()
        stale = [k for k, e in self._entries.items() if e.time <= now - self._ttl or e.time > now]
        for key in stale:
            del self._entries[key]
        return len(stale)

    @staticmethod
    def _state(entries: dict[Key, _Entry]) -> SavedState:
        return SavedState(tuple(k for k in entries if isinstance(k, ConnTrackKey)),
                          tuple((k, b) for k, e in entries.items() if isinstance(k, NatKey)
                                and (b := e.binding) is not None))

    def _fsync_directory(self) -> None:
        fsync_directory(self.path.parent)


def _pack(time: float, payload: bytes) -> bytes:
    body = _TIME.pack(time) + payload
    return _RECORD.pack(len(body), zlib.crc32(body)) + body


def _unpack(data: bytes, at: int) -> tuple[int, float, FlowStateMessage] | None:
    """The record at `at`: (next offset, time, message), or None if it is torn or damaged."""
    if at + _RECORD.size > len(data):
        return None
    length, crc = _RECORD.unpack_from(data, at)
    start, end = at + _RECORD.size, at + _RECORD.size + length
    if not _TIME.size <= length <= _TIME.size + MAX_PAYLOAD or end > len(data):
        return None
    body = data[start:end]
    if zlib.crc32(body) != crc:
        return None
    try:
        message = decode(body[_TIME.size:])
    except MalformedFlowState:
        return None
    return end, _TIME.unpack_from(body)[0], message
