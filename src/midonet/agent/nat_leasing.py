"""SNAT port blocks leased through the store: one host per block, gone with a dead agent (spec 1.2, 3.7).

Role: the agent's `NatLeaser` (the original's `NatLeaser` + `ZkNatBlockAllocator`, `docs/nat-leasing.md`). Ports
are handed out by an `InMemoryNatLeaser` (`state.nat`: 64-port blocks, a port shared across destinations, blocks
returned 5 minutes after their last port went); the blocks it hands ports from are leased here, through a state
table of the translating device (a router, or whatever device the SNAT rule ran on)::

    state table  (<device class>, device id, "nat:<target ip>")
        taken:<block>  -> host id     ephemeral, written with `claim` (one winner): the lease; it vanishes with
                                      the agent's store session, so a dead agent's blocks come free
        used:<block>   -> sequence    persistent: when the block was last given back (a global store sequence,
                                      the original's pzxid), the least recently used order

Leasing a block (`lease_pending`, after a simulation answered "not yet", `Postponed("nat_block", "dev/ip")`): for
each target address in order, read the table, take the free blocks of the target's port range (no `taken:`),
prefer one never used (a random one: hosts that start together spread out), else the least recently given back,
and `claim` it; a lost race reads again. The block lands in the allocator and the waiting packets are simulated
again (`ready("nat_block", "dev/ip")`). No free block anywhere: the packets are simulated again and the allocator,
which knows the blocks others hold (`unavailable`, a mirror of the table), answers `NatPortsExhausted`: the rule
drops the packet.

Giving back (`expire`, the agent's tick): a block with no port in use for 5 minutes: `taken:` removed, `used:`
written. On `stop` every block is given back. On a restart the connections restored from the flow-state log keep
their ports: `restore` leases their blocks again (if nobody took them meanwhile) and reserves the ports.

Threads: `allocate` / `release` / `restore` / `expire` run under the agent's lock; `lease_pending` runs in the
agent's after-event hook and takes the lock only around what it changes (the store is read and written outside it).

May import: `midonet.state`, `midonet.store`, `midonet.topology`, `agent.events`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from midonet.agent.events import EventGate
from midonet.state.clock import Clock
from midonet.state.nat import (
    BLOCK_IDLE,
    BLOCK_SIZE,
    InMemoryNatLeaser,
    NatBinding,
    NatBlock,
    NatBlockNeeded,
    NatBound,
    NatKey,
    NatKeyType,
    target_ips,
)
from midonet.state.randomness import RandomSource
from midonet.state.tables import StateTables, StateWrite
from midonet.store.base import StateTable, Store, Subscription
from midonet.topology.chains import NatTarget
from midonet.topology.devices import Bridge, Router
from midonet.topology.l4lb import LoadBalancer
from midonet.topology.record import Record

log = logging.getLogger(__name__)

TAKEN, USED = "taken:", "used:"
CLAIM_TRIES = 8
RELEASE_SEQUENCE = "nat_block_release"
_ICMP = 1

Ready = Callable[[str, str], None]


def table_name(ip: str) -> str:
    return f"nat:{ip}"


def release_unapplied(tables: StateTables, writes: Iterable[StateWrite]) -> int:
    """Give back the SNAT ports a simulation reserved for keys it will not write (it was postponed: the packet is
    simulated again from scratch and takes a port then); how many."""
    released = 0
    for write in writes:
        if (isinstance(write, NatBound) and write.key.type is NatKeyType.FWD_SNAT and write.key.proto != _ICMP
                and tables.nat.get(write.key) is None):
            tables.nat_leaser.release(write.key.device, write.key.ip_dst, write.key.tp_dst, write.binding)
            released += 1
    return released


class StoreNatLeaser:
    """See the module docstring."""

    def __init__(self, store: Store, gate: EventGate, clock: Clock, rng: RandomSource, ready: Ready, *,
                 idle: float = BLOCK_IDLE) -> None:
        self._store = store
        self._gate = gate
        self._rng = rng
        self._ready = ready
        self.owner = store.owner
        self.allocator = InMemoryNatLeaser(clock, asynchronous=True, idle=idle, unavailable=self._held_elsewhere)
        self._pending: dict[str, tuple[str, tuple[NatTarget, ...]]] = {}
        self._classes: dict[str, type[Record]] = {}
        self._mirrors: dict[tuple[str, str], dict[str, str]] = {}
        self._subs: list[Subscription] = []

    # ---- the simulation's NatLeaser (under the lock) ----

    def allocate(self, device: str, targets: Sequence[NatTarget], dst_ip: str, dst_port: int) -> NatBinding:
        try:
            return self.allocator.allocate(device, targets, dst_ip, dst_port)
        except NatBlockNeeded as needed:
            self.allocator.pending.clear()           # ours is `_pending`, keyed like the waiting packets
            self._pending.setdefault(f"{device}/{needed.ip}", (device, tuple(targets)))
            raise

    def release(self, device: str, dst_ip: str, dst_port: int, binding: NatBinding) -> None:
        self.allocator.release(device, dst_ip, dst_port, binding)

    # ---- leasing (the after-event hook, outside the lock) ----

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def lease_pending(self) -> list[NatBlock]:
        """Lease a block for every "not yet" answer since the last call; wake the packets waiting for them."""
        with self._gate.lock:
            requests, self._pending = self._pending, {}
        leased: list[NatBlock] = []
        for ident, (device, targets) in requests.items():
            block = None
            try:
                block = self._lease(device, targets)
            except Exception:
                log.exception("NAT leasing: cannot lease a block of %s", device)
            with self._gate.lock:
                if block is not None and self.allocator.add_block(block):
                    leased.append(block)
                self._ready("nat_block", ident)
        return leased

    def _lease(self, device: str, targets: Sequence[NatTarget]) -> NatBlock | None:
        for target in targets:
            first, last = target.tp_start // BLOCK_SIZE, target.tp_end // BLOCK_SIZE
            for ip in target_ips(target):
                table = self._table(device, ip)
                for _ in range(CLAIM_TRIES):
                    entries = table.snapshot()
                    with self._gate.lock:
                        self._mirror(device, ip).update(entries)
                        mine = {b.index for b in self.allocator.leased(device) if b.ip == ip}
                        index = self._choose(entries, range(first, last + 1), mine)
                    if index is None:
                        break
                    if table.claim(f"{TAKEN}{index}", self.owner):
                        log.info("NAT leasing: %s leased block %d (ports %d-%d) of %s on %s", self.owner, index,
                                 index * BLOCK_SIZE, index * BLOCK_SIZE + BLOCK_SIZE - 1, ip, device)
                        return NatBlock(device, ip, index)
        return None

    def _choose(self, entries: dict[str, str], blocks: range, mine: set[int]) -> int | None:
        """A block nobody holds: a never used one at random, else the least recently given back."""
        free = [i for i in blocks if i not in mine and entries.get(f"{TAKEN}{i}", self.owner) == self.owner]
        if not free:
            return None
        virgin = [i for i in free if f"{USED}{i}" not in entries]
        if virgin:
            return virgin[self._rng.randrange(0, len(virgin))]
        return min(free, key=lambda i: entries[f"{USED}{i}"])

    # ---- giving back, restoring (under the lock) ----

    def expire(self) -> list[NatBlock]:
        """Give back the blocks idle for 5 minutes (the agent's tick)."""
        gone = self.allocator.expire()
        for block in gone:
            self._give_back(block)
        return gone

    def restore(self, key: NatKey, binding: NatBinding) -> bool:
        """A forward SNAT key restored from saved flow state: lease its block again and reserve its port."""
        if key.type is not NatKeyType.FWD_SNAT or key.proto == _ICMP:
            return False
        block = NatBlock(key.device, binding.ip, binding.port // BLOCK_SIZE)
        if block not in self.allocator.leased(key.device):
            try:
                won = self._table(block.device, block.ip).claim(f"{TAKEN}{block.index}", self.owner)
            except Exception:
                log.exception("NAT leasing: cannot lease block %d of %s again", block.index, block.ip)
                return False
            if not won:
                log.warning("NAT leasing: block %d of %s on %s went to another host while %s was away",
                            block.index, block.ip, block.device, self.owner)
                return False
            self.allocator.add_block(block)
        return self.allocator.reserve(key.device, binding, key.ip_dst, key.tp_dst)

    def stop(self) -> None:
        """Give back every block and stop watching."""
        for block in self.allocator.leased():
            self._give_back(block)
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        self._mirrors.clear()

    def _give_back(self, block: NatBlock) -> None:
        try:
            table = self._table(block.device, block.ip)
            table.put(f"{USED}{block.index}", f"{self._store.next_sequence(RELEASE_SEQUENCE):016d}",
                      persistent=True)
            table.remove(f"{TAKEN}{block.index}", self.owner)
        except Exception:   # the device is gone (its tables with it), or the session is closing
            log.debug("NAT leasing: giving back block %d of %s", block.index, block.ip, exc_info=True)

    # ---- the store's tables ----

    def _table(self, device: str, ip: str) -> StateTable:
        cls = self._classes.get(device)
        if cls is None:
            cls = next((c for c in (Router, Bridge, LoadBalancer) if self._store.exists(c, device)), Router)
            self._classes[device] = cls
        return self._store.state_table(cls, device, table_name(ip))

    def _mirror(self, device: str, ip: str) -> dict[str, str]:
        """The table's entries as last seen (a watch keeps them; loaded on first use)."""
        found = self._mirrors.get((device, ip))
        if found is not None:
            return found
        entries: dict[str, str] = {}
        self._mirrors[(device, ip)] = entries

        def changed(key: str, old: str | None, new: str | None) -> None:
            def apply() -> None:
                if new is None:
                    entries.pop(key, None)
                else:
                    entries[key] = new
            self._gate.run(apply)

        table = self._table(device, ip)
        self._subs.append(table.watch(changed))
        entries.update(table.snapshot())
        return entries

    def _held_elsewhere(self, device: str, ip: str) -> set[int]:
        """The blocks of (device, ip) other hosts hold (the allocator never asks for those)."""
        return {int(k[len(TAKEN):]) for k, v in self._mirror(device, ip).items()
                if k.startswith(TAKEN) and v != self.owner}
