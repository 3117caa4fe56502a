"""The Linux datapath's flow table: megaflows in the kernel when the program can run them, in userspace if not.

Role: `LinuxDatapath.install/remove/flows` land here. A flow goes to the kernel (`mn_flows`, under the slot of its
mask in `mn_masks`) when `layout` can express its key and actions and a mask slot is free; otherwise it is a
*userspace flow* (ARCHITECTURE.md rule 6, spec 1.7): it lives in a `MegaflowTable` (the memory datapath's
classifier), the kernel misses on its packets and the datapath looks them up here before calling the agent.

    FlowTable
    ├── slots     {mask fields: Slot(index, flows)}    one kernel mask per distinct FlowKey mask, refcounted;
    │                                                  freed (zeroed) when its last flow goes
    ├── kernel    {FlowKey: KernelEntry(slot, flow)}   mirror of mn_flows (stats are read from the map)
    ├── user      MegaflowTable                        userspace flows, with their stats
    └── last      KernelEntry | None                   the kernel flow installed last (the agent installs a
                                                       flow, then executes its packet: `executable`)

Installing a key that exists replaces the flow (stats restart), wherever it was. A kernel flow is written by the
`writer` when it takes it (the channel's writer process, `writer.KernelWriter`: the write lands a little later,
before anything given after it), else here; everything else that reads or changes the kernel's flows and masks
drains the writer first, so it never sees the map behind the mirror, nor overtakes a pending write. When the flow
map is full (`layout.MAX_FLOWS`) a new flow is a userspace one. `reload()` rebuilds the mirror
from the maps: a restarted agent lists the flows the kernel kept forwarding. Kernel `last_used` is
CLOCK_MONOTONIC nanoseconds, the clock of `time.monotonic()`.

Not thread-safe: the datapath holds its lock around every call.

May import: `midonet.datapath.base`, `midonet.datapath.memory.classifier`, `midonet.datapath.linux`, `packets`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from midonet.datapath.base import Action, Flow, FlowKey, FlowStats, Userspace
from midonet.datapath.linux import layout
from midonet.datapath.linux.kernel import KernelTables
from midonet.datapath.memory.classifier import MegaflowTable


@dataclass(slots=True)
class Slot:
    index: int
    flows: int


@dataclass(frozen=True, slots=True)
class KernelEntry:
    slot: int
    flow: Flow
    key_bytes: bytes   # the kernel's flow key (slot + masked values)


def kernel_stats(raw: bytes) -> FlowStats:
    """The stats of a `struct mn_flow`. The agent reads every flow's once a second and most have not moved: the
    record made for a stats header is kept (bounded) and given again, instead of a new frozen record each time."""
    header = raw[:_STATS_LENGTH]
    stats = _STATS.get(header)
    if stats is None:
        if len(_STATS) >= _STATS_MAX:
            _STATS.clear()
        packets, size, last_used = layout.unpack_flow_stats(raw)
        stats = _STATS[header] = FlowStats(packets, size, last_used / 1e9 if last_used else None)
    return stats


_STATS: dict[bytes, FlowStats] = {}
_STATS_MAX = 1 << 12
_STATS_LENGTH = 24   # packets, bytes, last_used: the u64s `layout.unpack_flow_stats` reads
LOOKUPS_BEFORE_DUMP = 256   # `stats_of` reads more flows than this with one dump (a lookup each is ~2 us)


class FlowWriter(Protocol):
    def write_flow(self, key: bytes, value: bytes) -> bool:
        """Take the write of a kernel flow (key, struct mn_flow), or False: the table writes it."""

    def drain(self) -> None:
        """Return once every write taken is in the map."""


class _Here:
    def write_flow(self, key: bytes, value: bytes) -> bool:
        return False

    def drain(self) -> None:
        pass


class FlowTable:
    """See the module docstring."""

    def __init__(self, tables: KernelTables, writer: FlowWriter | None = None) -> None:
        self._tables = tables
        self._writer = writer or _Here()
        self._slots: dict[tuple[str, ...], Slot] = {}
        self._kernel: dict[FlowKey, KernelEntry] = {}
        self.user = MegaflowTable()
        self.last: KernelEntry | None = None

    # ---- installing and removing ----

    def install(self, flow: Flow) -> bool:
        """Install `flow` (replacing one with its key); True if it runs in the kernel, False in userspace."""
        fields = flow.key.mask
        try:
            mask = layout.pack_mask(fields)
            value = layout.pack_flow(flow.actions)
            unslotted = layout.pack_key(flow.key, 0, fields)
        except layout.Inexpressible:
            return self._install_user(flow)
        old = self._kernel.get(flow.key)
        if old is None and len(self._kernel) >= layout.MAX_FLOWS:
            return self._install_user(flow)
        slot = old.slot if old is not None else self._take_slot(fields, mask)
        if slot is None:
            return self._install_user(flow)
        if len(self.user):
            self.user.delete(flow.key)
        entry = KernelEntry(slot, flow, layout.with_slot(unslotted, slot))
        if not self._writer.write_flow(entry.key_bytes, value):
            self._writer.drain()
            self._tables.set_flow(entry.key_bytes, value)
        self._kernel[flow.key] = entry
        self.last = entry
        return True

    def _install_user(self, flow: Flow) -> bool:
        if flow.key in self._kernel:
            self._remove_kernel(flow.key)
        self.user.insert(flow)
        return False

    def remove(self, key: FlowKey) -> FlowStats | None:
        if key in self._kernel:
            return self._remove_kernel(key)
        return self.user.delete(key)

    def _remove_kernel(self, key: FlowKey) -> FlowStats | None:
        self._writer.drain()
        entry = self._kernel.pop(key)
        raw = self._tables.pop_flow(entry.key_bytes)
        self._release_slot(key.mask)
        return None if raw is None else kernel_stats(raw)

    def clear(self) -> None:
        self._writer.drain()
        self._tables.clear_flows()
        for slot in self._slots.values():
            self._tables.clear_mask(slot.index)
        self._slots.clear()
        self._kernel.clear()
        self.user.clear()
        self._write_high_water()

    # ---- reading ----

    def entries(self) -> list[tuple[Flow, FlowStats]]:
        """Every flow with its stats: kernel flows first (stats read from the map now, in batches: one system
        call for a thousand flows), then userspace ones."""
        self._writer.drain()
        held = dict(self._tables.flows())
        found = []
        for entry in self._kernel.values():
            raw = held.get(entry.key_bytes)
            if raw is not None:
                found.append((entry.flow, kernel_stats(raw)))
        return found + self.user.entries()

    def stats_of(self, keys: Sequence[FlowKey]) -> dict[FlowKey, FlowStats]:
        """The stats of the flows among `keys` that are installed: a `bpf()` lookup each for a few, one dump (a
        system call for a thousand) when they are more than `LOOKUPS_BEFORE_DUMP`."""
        self._writer.drain()
        kernel = self._kernel
        read: Callable[[bytes], bytes | None] = self._tables.flow
        if sum(key in kernel for key in keys) > LOOKUPS_BEFORE_DUMP:
            read = dict(self._tables.flows()).get
        found: dict[FlowKey, FlowStats] = {}
        for key in keys:
            entry = kernel.get(key)
            if entry is not None:
                raw = read(entry.key_bytes)
                if raw is not None:
                    found[key] = kernel_stats(raw)
            elif len(self.user):
                held_user = self.user.get(key)
                if held_user is not None:
                    found[key] = held_user[1]
        return found

    def in_kernel(self, key: FlowKey) -> bool:
        return key in self._kernel

    def executable(self, actions: Sequence[Action]) -> KernelEntry | None:
        """The kernel flow installed last, if it is still installed and its actions equal `actions` (and hold no
        Userspace action): the kernel can run them on a packet sent to it with this flow's key."""
        entry = self.last
        if entry is None or self._kernel.get(entry.flow.key) is not entry:
            return None
        installed = entry.flow.actions
        if installed is not actions and tuple(installed) != tuple(actions):
            return None
        for action in installed:
            if type(action) is Userspace:
                return None
        return entry

    def masks(self) -> dict[tuple[str, ...], int]:
        """The kernel masks in use and their slots."""
        return {fields: slot.index for fields, slot in self._slots.items()}

    def __len__(self) -> int:
        return len(self._kernel) + len(self.user)

    # ---- restart ----

    def reload(self) -> None:
        """Rebuild the mirror from the maps (after a restart); forget userspace flows (they died with us)."""
        self._writer.drain()
        self._slots.clear()
        self._kernel.clear()
        self.user.clear()
        fields_of = {index: layout.mask_fields(raw) for index, raw in self._tables.masks().items()}
        for index, fields in fields_of.items():
            self._slots[fields] = Slot(index, 0)
        for key_bytes, raw in self._tables.flows():
            index = layout.key_slot(key_bytes)
            mask = fields_of.get(index)
            if mask is None:   # a flow of a cleared mask: unreachable, drop it
                self._tables.pop_flow(key_bytes)
                continue
            flow = Flow(layout.unpack_key(key_bytes, mask), layout.unpack_flow(raw).actions)
            self._kernel[flow.key] = KernelEntry(index, flow, key_bytes)
            self._slots[mask].flows += 1
        for fields, slot in list(self._slots.items()):
            if slot.flows == 0:
                self._tables.clear_mask(slot.index)
                del self._slots[fields]
        self._write_high_water()

    # ---- mask slots ----

    def _take_slot(self, fields: tuple[str, ...], mask: bytes) -> int | None:
        slot = self._slots.get(fields)
        if slot is None:
            used = {s.index for s in self._slots.values()}
            free = next((i for i in range(layout.MAX_MASKS) if i not in used), None)
            if free is None:
                return None
            self._tables.set_mask(free, mask)
            slot = self._slots[fields] = Slot(free, 0)
            self._write_high_water()
        slot.flows += 1
        return slot.index

    def _release_slot(self, fields: tuple[str, ...]) -> None:
        slot = self._slots[fields]
        slot.flows -= 1
        if slot.flows == 0:
            self._tables.clear_mask(slot.index)
            del self._slots[fields]
            self._write_high_water()

    def _write_high_water(self) -> None:
        high = max((s.index for s in self._slots.values()), default=-1) + 1
        config = self._tables.config()
        if config.n_masks != high:
            self._tables.set_config(replace(config, n_masks=high))
