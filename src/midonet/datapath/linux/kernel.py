"""The program's maps, opened from their pins: typed reads and writes for the datapath.

Role: the one place that knows which map holds what (bpf/dp.c declares them, `tc` pins them under
`<bpffs>/tc/globals`). `KernelTables.open(dir)` opens all six; the methods speak in `layout` terms:

    mn_config    one struct mn_config: upcall ifindex, mask high-water mark, next port number
    mn_ports     port number -> (ifindex, kind)        Output's target
    mn_ifports   ifindex -> port number                 which port a packet came in on
    mn_masks     slot -> mask (a struct mn_key of all-ones fields; mask_id != 0 when in use)
    mn_flows     (slot, masked key) -> struct mn_flow   actions and per-flow stats
    mn_counters  per-CPU u64 counters (layout.Counter)

Only the agent's datapath writes (one writer), the program reads and counts; nothing here caches.

May import: `midonet.datapath.linux` (bpfmaps, layout), the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from midonet.datapath.linux import layout
from midonet.datapath.linux.bpfmaps import BpfMap

MAP_NAMES = ("mn_config", "mn_ports", "mn_ifports", "mn_masks", "mn_flows", "mn_counters")
# (key size, value size, at least this many entries) of each map, as layout.py reads them
_SHAPES = {
    "mn_config": (4, layout.CONFIG.size, 1), "mn_ports": (4, layout.PORT.size, 1), "mn_ifports": (4, 4, 1),
    "mn_masks": (4, layout.KEY_SIZE, layout.MAX_MASKS), "mn_flows": (layout.KEY_SIZE, layout.FLOW_SIZE, 1),
    "mn_counters": (4, 8, len(layout.Counter)),
}


class IncompatibleMaps(RuntimeError):
    """Pinned maps left by a program whose layout differs from this one's."""
_ZERO = layout.U32.pack(0)


@dataclass(frozen=True, slots=True)
class Config:
    upcall_ifindex: int = 0
    n_masks: int = 0
    next_port: int = 1


def pinned(directory: Path) -> bool:
    """Whether every map is pinned in `directory` (a datapath to reattach to)."""
    return all((directory / name).exists() for name in MAP_NAMES)


class KernelTables:
    """The program's maps; see the module docstring."""

    def __init__(self, maps: dict[str, BpfMap]) -> None:
        self._config = maps["mn_config"]
        self._ports = maps["mn_ports"]
        self._ifports = maps["mn_ifports"]
        self._masks = maps["mn_masks"]
        self._flows = maps["mn_flows"]
        self._counters = maps["mn_counters"]
        self._all = maps

    @classmethod
    def open(cls, directory: Path) -> KernelTables:
        """Open the pinned maps; `IncompatibleMaps` if they were made by a program of another layout."""
        maps: dict[str, BpfMap] = {}
        try:
            for name in MAP_NAMES:
                maps[name] = BpfMap.open(str(directory / name))
                info = maps[name].info
                expected = _SHAPES[name]
                if (info.key_size, info.value_size) != expected[:2] or info.max_entries < expected[2]:
                    raise IncompatibleMaps(f"{name} in {directory} is {info}, this program wants {expected}: "
                                           "close() the old datapath (or unmount its bpffs) first")
        except BaseException:
            for opened in maps.values():
                opened.close()
            raise
        return cls(maps)

    def close(self) -> None:
        for bpf_map in self._all.values():
            bpf_map.close()

    # ---- config ----

    def config(self) -> Config:
        raw = self._config.lookup(_ZERO)
        if raw is None:
            return Config()
        upcall, n_masks, next_port, _ = layout.CONFIG.unpack(raw)
        return Config(upcall, n_masks, max(next_port, 1))

    def set_config(self, config: Config) -> None:
        self._config.update(_ZERO, layout.CONFIG.pack(config.upcall_ifindex, config.n_masks, config.next_port, 0))

    # ---- ports ----

    def set_port(self, number: int, ifindex: int, kind: layout.PortType) -> None:
        self._ports.update(layout.U32.pack(number), layout.PORT.pack(ifindex, kind))
        self._ifports.update(layout.U32.pack(ifindex), layout.U32.pack(number))

    def delete_port(self, number: int, ifindex: int) -> None:
        self._ifports.delete(layout.U32.pack(ifindex))
        self._ports.delete(layout.U32.pack(number))

    def ports(self) -> Iterator[tuple[int, int, layout.PortType]]:
        """(number, ifindex, kind) of every port."""
        for key, value in self._ports.items():
            ifindex, kind = layout.PORT.unpack(value)
            yield layout.U32.unpack(key)[0], ifindex, layout.PortType(kind)

    # ---- masks ----

    def set_mask(self, slot: int, mask: bytes) -> None:
        self._masks.update(layout.U32.pack(slot), mask)

    def clear_mask(self, slot: int) -> None:
        self._masks.update(layout.U32.pack(slot), bytes(layout.KEY_SIZE))

    def masks(self) -> dict[int, bytes]:
        """The masks in use, by slot."""
        found = {}
        for slot in range(layout.MAX_MASKS):
            raw = self._masks.lookup(layout.U32.pack(slot))
            if raw is not None and layout.mask_in_use(raw):
                found[slot] = raw
        return found

    # ---- flows ----

    @property
    def flow_map(self) -> BpfMap:
        """mn_flows itself (its descriptor goes to the writer process)."""
        return self._flows

    def set_flow(self, key: bytes, flow: bytes) -> None:
        self._flows.update(key, flow)

    def flow(self, key: bytes) -> bytes | None:
        return self._flows.lookup(key)

    def pop_flow(self, key: bytes) -> bytes | None:
        return self._flows.pop(key)

    def flows(self) -> list[tuple[bytes, bytes]]:
        """Every (kernel key, struct mn_flow), read in batches."""
        return self._flows.dump()

    def clear_flows(self) -> None:
        for key in list(self._flows.keys()):
            self._flows.delete(key)

    # ---- counters ----

    def counters(self) -> dict[layout.Counter, int]:
        values = {}
        for which in layout.Counter:
            per_cpu = self._counters.lookup_percpu(layout.U32.pack(which))
            values[which] = per_cpu or []
        return layout.sum_counters(values)
