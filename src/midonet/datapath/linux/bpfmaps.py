"""BPF maps from Python: the `bpf()` system call through `ctypes`, no extra package.

Role: how the Linux datapath reads and writes the maps its tc programs use (the flow table, the masks, the
ports, the counters). The maps are pinned in a bpffs by `tc` (`LIBBPF_PIN_BY_NAME`); `BpfMap.open(path)` gets a
file descriptor for one (`BPF_OBJ_GET`), reads its shape (`BPF_OBJ_GET_INFO_BY_FD`) and then offers::

    lookup(key) -> bytes | None        update(key, value, flags)      delete(key) -> bool
    pop(key) -> bytes | None           keys() / items()               (lookup-and-delete, iteration)
    lookup_percpu(key) -> [bytes]      per-CPU maps: one value per possible CPU
    dump() -> [(key, value)]           every element, `BATCH` at a time (BPF_MAP_LOOKUP_BATCH, kernel 5.6)

and `pin_program(id, path)`, which pins a loaded program (the loader attaches it again by path).

Keys and values are raw `bytes` of exactly the map's sizes; `midonet.datapath.linux.layout` packs them. The
numbers (system call 321, commands, `union bpf_attr` layouts) are the x86-64 kernel ABI (`linux/bpf.h`).
Measured on this kind of machine: about 400k updates/s, 520k lookups/s (notes/linux-datapath.md). `dump` reads a
5,000-flow table in one system call a `BATCH` instead of one a flow (what `items` does): the agent reads every
flow's stats once a second to expire idle flows.

Errors: `BpfError` (an `OSError` with the errno) for a failing call; a missing key is not an error.
Threads: a `BpfMap` is safe to share; each call uses its own buffers.

May import: the standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

SYS_BPF = 321   # x86-64

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21
BPF_MAP_LOOKUP_BATCH = 24

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2
MAP_TYPE_PERCPU_HASH = 5
MAP_TYPE_PERCPU_ARRAY = 6
_PERCPU_TYPES = frozenset({MAP_TYPE_PERCPU_HASH, MAP_TYPE_PERCPU_ARRAY})

_ATTR_SIZE = 128           # a union bpf_attr large enough for every command used here
_ELEM = struct.Struct("=IIQQQ")    # map_fd, pad, key, value (or next_key), flags
_BATCH_ATTR = struct.Struct("=QQQQIIQQ")   # in_batch, out_batch, keys, values, count, map_fd, elem_flags, flags
_COUNT_AT = 32                     # offset of `count` in the batch attributes (the kernel writes it back)
_TOKEN = 8                         # a batch position: a hash map's bucket (u32), an array's index (u32)
BATCH = 1024                       # elements a `dump` system call reads
_NO_BATCH = frozenset({errno.EINVAL, errno.EOPNOTSUPP, 524})   # 524: ENOTSUPP, the kernel's own "no batch ops"
_OBJ_GET = struct.Struct("=QII")   # pathname, bpf_fd, file_flags (BPF_OBJ_GET and BPF_OBJ_PIN)
_GET_BY_ID = struct.Struct("=III")  # id, next_id, open_flags
_INFO_BY_FD = struct.Struct("=IIQ")  # bpf_fd, info_len, info
_MAP_INFO = struct.Struct("=IIIIII16s")  # type, id, key_size, value_size, max_entries, map_flags, name
_MAP_INFO_SIZE = 88        # sizeof(struct bpf_map_info) as of 6.1; the kernel fills what it knows

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


class BpfError(OSError):
    """A bpf() call failed."""


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    result: int = _syscall(SYS_BPF, cmd, ctypes.addressof(attr), _ATTR_SIZE)
    if result < 0:
        code = ctypes.get_errno()
        raise BpfError(code, f"bpf({cmd}): {os.strerror(code)}")
    return result


def _address(buffer: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buffer)


def possible_cpus() -> int:
    """How many CPUs the kernel may ever have (the number of slots of a per-CPU map value)."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


@dataclass(frozen=True, slots=True)
class MapInfo:
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


class BpfMap:
    """One BPF map, by file descriptor; see the module docstring. Close it (or use `with`) when done."""

    def __init__(self, fd: int, info: MapInfo) -> None:
        self._fd = fd
        self.info = info
        self._percpu = info.type in _PERCPU_TYPES
        self._cpus = possible_cpus() if self._percpu else 1
        self._slot = (info.value_size + 7) & ~7   # per-CPU values are 8-byte aligned, one per possible CPU

    @classmethod
    def open(cls, path: str) -> BpfMap:
        """The map pinned at `path`; `BpfError` (ENOENT ...) if there is none."""
        name = ctypes.create_string_buffer(os.fsencode(path))
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        _OBJ_GET.pack_into(attr, 0, _address(name), 0, 0)
        fd = _bpf(BPF_OBJ_GET, attr)
        try:
            return cls(fd, _map_info(fd))
        except BaseException:
            os.close(fd)
            raise

    @property
    def fd(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- elements ----

    @property
    def _value_length(self) -> int:
        return self._slot * self._cpus if self._percpu else self.info.value_size

    def _key_buffer(self, key: bytes) -> ctypes.Array[ctypes.c_char]:
        if len(key) != self.info.key_size:
            raise ValueError(f"map {self.info.name}: key of {len(key)} bytes, expected {self.info.key_size}")
        return ctypes.create_string_buffer(key, len(key))

    def _elem(self, cmd: int, key: ctypes.Array[ctypes.c_char], value: ctypes.Array[ctypes.c_char] | None,
              flags: int = 0) -> bool:
        """Run an element command; False when the key is absent (ENOENT)."""
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        _ELEM.pack_into(attr, 0, self._fd, 0, _address(key), 0 if value is None else _address(value), flags)
        try:
            _bpf(cmd, attr)
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def lookup(self, key: bytes) -> bytes | None:
        """The value of `key` (all CPUs' slots concatenated for a per-CPU map), or None."""
        value = ctypes.create_string_buffer(self._value_length)
        if not self._elem(BPF_MAP_LOOKUP_ELEM, self._key_buffer(key), value):
            return None
        return value.raw

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        """A per-CPU map's values of `key`, one per possible CPU, or None."""
        raw = self.lookup(key)
        if raw is None:
            return None
        size = self.info.value_size
        return [raw[i * self._slot : i * self._slot + size] for i in range(self._cpus)]

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        if len(value) != self._value_length:
            raise ValueError(f"map {self.info.name}: value of {len(value)} bytes, expected {self._value_length}")
        buffer = ctypes.create_string_buffer(value, len(value))
        self._elem(BPF_MAP_UPDATE_ELEM, self._key_buffer(key), buffer, flags)

    def delete(self, key: bytes) -> bool:
        """Remove `key`; False if it was absent."""
        return self._elem(BPF_MAP_DELETE_ELEM, self._key_buffer(key), None)

    def pop(self, key: bytes) -> bytes | None:
        """Look up and delete `key` in one step (hash maps), or None if it was absent."""
        value = ctypes.create_string_buffer(self._value_length)
        if not self._elem(BPF_MAP_LOOKUP_AND_DELETE_ELEM, self._key_buffer(key), value):
            return None
        return value.raw

    def keys(self) -> Iterator[bytes]:
        """Every key (a snapshot as the iteration goes: keys added or removed meanwhile may be missed)."""
        size = self.info.key_size
        current: ctypes.Array[ctypes.c_char] | None = None
        while True:
            following = ctypes.create_string_buffer(size)
            attr = ctypes.create_string_buffer(_ATTR_SIZE)
            _ELEM.pack_into(attr, 0, self._fd, 0, 0 if current is None else _address(current),
                            _address(following), 0)
            try:
                _bpf(BPF_MAP_GET_NEXT_KEY, attr)
            except BpfError as e:
                if e.errno == errno.ENOENT:
                    return
                raise
            yield following.raw
            current = following

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs; keys deleted during the iteration are skipped."""
        for key in list(self.keys()):
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value), read `BATCH` elements a system call; what `items` gives on a kernel without batch
        operations. Elements added or removed meanwhile may be missed or seen, as with `items`."""
        size, length = self.info.key_size, self._value_length
        count = BATCH
        while True:
            try:
                return self._dump(size, length, count)
            except BpfError as e:
                if e.errno == errno.ENOSPC:   # a hash bucket holds more than `count` elements
                    count *= 2
                    continue
                if e.errno in _NO_BATCH:
                    return list(self.items())
                raise

    def _dump(self, size: int, length: int, count: int) -> list[tuple[bytes, bytes]]:
        keys = ctypes.create_string_buffer(size * count)
        values = ctypes.create_string_buffer(length * count)
        here, following = ctypes.create_string_buffer(_TOKEN), ctypes.create_string_buffer(_TOKEN)
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        found: list[tuple[bytes, bytes]] = []
        start = 0   # NULL: from the beginning
        while True:
            _BATCH_ATTR.pack_into(attr, 0, start, _address(following), _address(keys), _address(values), count,
                                  self._fd, 0, 0)
            try:
                _bpf(BPF_MAP_LOOKUP_BATCH, attr)
                last = False
            except BpfError as e:
                if e.errno != errno.ENOENT:
                    raise
                last = True   # ENOENT: the end; `count` says how many this last call still returned
            got = struct.unpack_from("=I", attr, _COUNT_AT)[0]
            raw_keys, raw_values = keys.raw, values.raw
            found += [(raw_keys[i * size : (i + 1) * size], raw_values[i * length : (i + 1) * length])
                      for i in range(got)]
            if last:
                return found
            ctypes.memmove(here, following, _TOKEN)
            start = _address(here)

    def __repr__(self) -> str:
        return f"BpfMap({self.info.name!r}, fd={self._fd})"


def _map_info(fd: int) -> MapInfo:
    info = ctypes.create_string_buffer(_MAP_INFO_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _INFO_BY_FD.pack_into(attr, 0, fd, _MAP_INFO_SIZE, _address(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    kind, ident, key_size, value_size, max_entries, flags, name = _MAP_INFO.unpack_from(info, 0)
    return MapInfo(kind, ident, key_size, value_size, max_entries, flags, name.rstrip(b"\0").decode())


def pin_program(prog_id: int, path: str) -> None:
    """Pin the loaded program `prog_id` at `path` (in a bpffs)."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _GET_BY_ID.pack_into(attr, 0, prog_id, 0, 0)
    fd = _bpf(BPF_PROG_GET_FD_BY_ID, attr)
    try:
        name = ctypes.create_string_buffer(os.fsencode(path))
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        _OBJ_GET.pack_into(attr, 0, _address(name), fd, 0)
        _bpf(BPF_OBJ_PIN, attr)
    finally:
        os.close(fd)
