"""NAT state: bindings keyed by the translated connection, and the SNAT port allocator (spec 3.7, 4.1, 4.2).

Role: what NAT rules and the load balancer read and ask to write. Two tables, each a `Protocol` with an
in-memory implementation; expiry is driven by the clock they are handed.

**Bindings** (`NatTable`). A `NatKey` is (type, source IP, source port, destination IP, destination port, IP
protocol, device id) -- the device is the router (or load balancer) whose rule translated; a `NatBinding` is the
(IP, port) the key translates to. A forward translation writes two keys: the forward key (the packet as it was)
-> the binding it got, and the return key (the reply as it will come back) -> the original address::

    FWD_SNAT (src, sport, dst, dport)            -> (snat ip, snat port)
    REV_SNAT (dst, dport, snat ip, snat port)     -> (src, sport)
    FWD_DNAT (src, sport, dst, dport)             -> (target ip, target port)
    REV_DNAT (target ip, target port, src, sport) -> (dst, dport)
    FWD_STICKY_DNAT / REV_STICKY_DNAT             as DNAT, with the client's port 0 (one backend per client IP)

ICMP echo uses the identifier as both ports. Keys are reference counted by the flows that use them: a forward flow
holds one reference on each of its two keys (`NatBound`, released when the flow goes); a key without references
lives `NAT_IDLE` (60 s) more and is then removed by `expire()`, which gives an expired forward SNAT key's port
back to the leaser (`NatState.releaseBinding`).

**SNAT ports** (`NatLeaser`). Per (device, target IP) a host leases blocks of `BLOCK_SIZE` (64) ports (1,024
blocks cover 0-65535; in the agent a block is a store lease, `/nat/{device}/{ip}/{block}`). `allocate` hands out a
port of a leased block that is free *for this destination*: a port is shared by connections to different
(destination IP, destination port) pairs, the "uniquefier" (`NatLeaser.scala`). Targets, then their addresses,
then their blocks are tried in order; when no leased block has a port left, a new block must be leased first and
the answer is "not yet" (`NatBlockNeeded`; the simulation postpones the packet, the agent leases a block through
the store and the packet is simulated again). The in-memory leaser leases blocks itself -- at once, or, with
``asynchronous=True`` (tests), only when `lease_pending()` is called, as the agent would later. A block with no
port in use is returned `BLOCK_IDLE` (5 min) after its last port went (`expire()`).

The simulation reads both tables and changes neither, but one: `NatLeaser.allocate` reserves the port it answers
(the original's leaser is the same shared, thread-safe allocator); everything else comes back as requested writes::

    NatBound(key, binding)   put the key if absent, one reference for the flow (`StateTables.release` drops it)
    NatDeleted(key)          remove the key (the load balancer, when a backend is no longer valid)

May import: `midonet.topology`, `midonet.state.clock`, `midonet.state.randomness`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from midonet.state.clock import Clock
from midonet.state.randomness import RandomSource
from midonet.topology.chains import NatTarget

NAT_IDLE = 60.0
"""Seconds an unreferenced NAT key survives (`FlowStateStore.DEFAULT_EXPIRATION`)."""
BLOCK_SIZE = 64
BLOCK_COUNT = 65536 // BLOCK_SIZE
BLOCK_IDLE = 300.0
"""Seconds a leased port block with no port in use is kept before it is returned (`NatLeaser.BLOCK_EXPIRATION`)."""
_ICMP = 1


class NatKeyType(enum.Enum):
    FWD_SNAT = "fwd_snat"
    REV_SNAT = "rev_snat"
    FWD_DNAT = "fwd_dnat"
    REV_DNAT = "rev_dnat"
    FWD_STICKY_DNAT = "fwd_sticky_dnat"
    REV_STICKY_DNAT = "rev_sticky_dnat"

    @property
    def inverse(self) -> NatKeyType:
        return _INVERSE[self]


_INVERSE = {
    NatKeyType.FWD_SNAT: NatKeyType.REV_SNAT, NatKeyType.REV_SNAT: NatKeyType.FWD_SNAT,
    NatKeyType.FWD_DNAT: NatKeyType.REV_DNAT, NatKeyType.REV_DNAT: NatKeyType.FWD_DNAT,
    NatKeyType.FWD_STICKY_DNAT: NatKeyType.REV_STICKY_DNAT, NatKeyType.REV_STICKY_DNAT: NatKeyType.FWD_STICKY_DNAT,
}


class NatBinding(NamedTuple):
    """Where a key translates to: an IPv4 address and an L4 port (the echo identifier for ICMP)."""

    ip: str
    port: int


class NatKey(NamedTuple):
    """(type, source IP, source port, destination IP, destination port, IP protocol, device id)."""

    type: NatKeyType
    ip_src: str
    tp_src: int
    ip_dst: str
    tp_dst: int
    proto: int
    device: str

    def return_key(self, binding: NatBinding) -> NatKey:
        """The key the reply carries once this forward key translated to `binding` (`NatKeyOps.returnKey`)."""
        kind = self.type
        if kind is NatKeyType.FWD_SNAT:
            return NatKey(kind.inverse, self.ip_dst, self.tp_dst, binding.ip, binding.port, self.proto, self.device)
        if kind is NatKeyType.FWD_DNAT or kind is NatKeyType.FWD_STICKY_DNAT:
            return NatKey(kind.inverse, binding.ip, binding.port, self.ip_src, self.tp_src, self.proto, self.device)
        raise ValueError(f"{kind.name} is not a forward key")

    def return_binding(self) -> NatBinding:
        """What the return key translates back to: the original source (SNAT) or destination (DNAT)."""
        kind = self.type
        if kind is NatKeyType.FWD_SNAT:
            return NatBinding(self.ip_src, self.tp_src)
        if kind is NatKeyType.FWD_DNAT or kind is NatKeyType.FWD_STICKY_DNAT:
            return NatBinding(self.ip_dst, self.tp_dst)
        raise ValueError(f"{kind.name} is not a forward key")

    def __str__(self) -> str:
        return (f"{self.type.name} {self.ip_src}:{self.tp_src} -> {self.ip_dst}:{self.tp_dst} "
                f"proto {self.proto} on {self.device[:8]}")


@dataclass(frozen=True, slots=True)
class NatBound:
    """Requested write: `key` -> `binding` (kept if the key exists), one reference held by the flow."""

    key: NatKey
    binding: NatBinding


@dataclass(frozen=True, slots=True)
class NatDeleted:
    """Requested write: remove `key` (a load-balanced connection whose backend is no longer valid)."""

    key: NatKey


# ---- bindings ----

class NatTable(Protocol):
    def get(self, key: NatKey) -> NatBinding | None:
        """The binding of `key`, or None."""
        ...

    def bind(self, key: NatKey, binding: NatBinding) -> None:
        """Put `key` -> `binding` unless the key exists, and add a reference to it."""
        ...

    def unref(self, key: NatKey) -> None:
        """Drop a reference taken by `bind`; the key lives `NAT_IDLE` seconds after its last one."""
        ...

    def delete(self, key: NatKey) -> None:
        """Remove `key` now, references or not."""
        ...


class InMemoryNatTable:
    """`NatTable` in dictionaries, expiring unreferenced keys by the clock it is handed; gives an expired SNAT
    key's port back to `leaser`."""

    def __init__(self, clock: Clock, leaser: NatLeaser | None = None, idle: float = NAT_IDLE) -> None:
        self._clock = clock
        self._leaser = leaser
        self._idle = idle
        self._bindings: dict[NatKey, NatBinding] = {}
        self._refs: dict[NatKey, int] = {}
        self._released: dict[NatKey, float] = {}

    def get(self, key: NatKey) -> NatBinding | None:
        return self._bindings.get(key)

    def bind(self, key: NatKey, binding: NatBinding) -> None:
        self._bindings.setdefault(key, binding)
        self._refs[key] = self._refs.get(key, 0) + 1
        self._released.pop(key, None)

    def unref(self, key: NatKey) -> None:
        count = self._refs.get(key, 0) - 1
        if count > 0:
            self._refs[key] = count
        elif key in self._refs:
            del self._refs[key]
            if key in self._bindings:
                self._released[key] = self._clock.now()

    def delete(self, key: NatKey) -> None:
        binding = self._bindings.pop(key, None)
        self._refs.pop(key, None)
        self._released.pop(key, None)
        if binding is not None:
            self._give_back(key, binding)

    def touch(self, key: NatKey, binding: NatBinding) -> None:
        """Import `key` -> `binding` from elsewhere (a peer's flow state, a restart's saved state, spec 4.2): the
        binding replaces ours (the host that translated knows best); with no reference of ours the key lives `idle`
        seconds from now, a key our flows hold keeps its references."""
        self._bindings[key] = binding
        if key not in self._refs:
            self._released[key] = self._clock.now()

    def expire(self) -> list[tuple[NatKey, NatBinding]]:
        """Remove keys unreferenced for `idle` seconds; returns them (flows tagged with them are invalidated)."""
        deadline = self._clock.now() - self._idle
        gone = [key for key, since in self._released.items() if since <= deadline]
        expired = []
        for key in gone:
            del self._released[key]
            binding = self._bindings.pop(key)
            self._give_back(key, binding)
            expired.append((key, binding))
        return expired

    def _give_back(self, key: NatKey, binding: NatBinding) -> None:
        if self._leaser is not None and key.type is NatKeyType.FWD_SNAT and key.proto != _ICMP:
            self._leaser.release(key.device, key.ip_dst, key.tp_dst, binding)

    def references(self, key: NatKey) -> int:
        return self._refs.get(key, 0)

    def __len__(self) -> int:
        return len(self._bindings)


# ---- SNAT ports ----

class NatBlockNeeded(Exception):
    """"Not yet": no leased block of `device` has a free port; one must be leased first (for `ip` and on)."""

    def __init__(self, device: str, ip: str) -> None:
        super().__init__(f"a NAT port block of {device} for {ip} must be leased first")
        self.device = device
        self.ip = ip


class NatPortsExhausted(Exception):
    """Every port block of every target of `device` is leased and every port is in use for this destination."""

    def __init__(self, device: str) -> None:
        super().__init__(f"no SNAT port left on {device}")
        self.device = device


@dataclass(frozen=True, slots=True)
class NatBlock:
    """Ports `first` .. `first + BLOCK_SIZE - 1` of `ip` on `device`."""

    device: str
    ip: str
    index: int

    @property
    def first(self) -> int:
        return self.index * BLOCK_SIZE


class NatLeaser(Protocol):
    def allocate(self, device: str, targets: Sequence[NatTarget], dst_ip: str, dst_port: int) -> NatBinding:
        """A port of a leased block, free for (dst_ip, dst_port), reserved for it; `NatBlockNeeded` ("not yet")
        when a block must be leased first, `NatPortsExhausted` when there is none left to lease."""
        ...

    def release(self, device: str, dst_ip: str, dst_port: int, binding: NatBinding) -> None:
        """Give back a port `allocate` reserved for (dst_ip, dst_port)."""
        ...


class _LeasedBlock:
    __slots__ = ("block", "cursor", "idle_since", "in_use", "ports")

    def __init__(self, block: NatBlock, now: float) -> None:
        self.block = block
        self.ports: list[set[tuple[str, int]]] = [set() for _ in range(BLOCK_SIZE)]
        self.cursor = 0
        self.in_use = 0
        self.idle_since: float | None = now


def _ip_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _ip_text(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def target_ips(target: NatTarget) -> list[str]:
    """The addresses of `target`, in order."""
    if target.nw_start == target.nw_end:
        return [target.nw_start]
    return [_ip_text(i) for i in range(_ip_int(target.nw_start), _ip_int(target.nw_end) + 1)]


class InMemoryNatLeaser:
    """`NatLeaser` leasing its blocks itself: at once, or (``asynchronous=True``) on `lease_pending()`.

    A block is picked at random among the free ones of a target's port range when `rng` is given, else the lowest
    free one; `leased` lists what is leased, `pending` what a "not yet" answer asked for.

    As the port allocator of a leaser whose blocks come from elsewhere (the agent's, through the store):
    `unavailable(device, ip)` names the blocks others hold (never leased here: when they are all that is left the
    answer is `NatPortsExhausted`, not "not yet"), `add_block` installs a block leased elsewhere, `reserve` marks a
    port of a leased block in use (a connection restored from saved flow state).
    """

    def __init__(self, clock: Clock, *, asynchronous: bool = False, rng: RandomSource | None = None,
                 idle: float = BLOCK_IDLE, unavailable: Callable[[str, str], Collection[int]] | None = None) -> None:
        self._clock = clock
        self._rng = rng
        self._idle = idle
        self._unavailable = unavailable
        self.asynchronous = asynchronous
        self._blocks: dict[tuple[str, str], dict[int, _LeasedBlock]] = {}
        self.pending: list[tuple[str, tuple[NatTarget, ...]]] = []

    def allocate(self, device: str, targets: Sequence[NatTarget], dst_ip: str, dst_port: int) -> NatBinding:
        uniquefier = (dst_ip, dst_port)
        for target in targets:
            for ip in target_ips(target):
                port = self._in_leased(device, ip, target.tp_start, target.tp_end, uniquefier)
                if port is not None:
                    return NatBinding(ip, port)
        if self.asynchronous:
            free_ip = self._free_block_ip(device, targets)
            if free_ip is None:
                raise NatPortsExhausted(device)
            self.pending.append((device, tuple(targets)))
            raise NatBlockNeeded(device, free_ip)
        block = self._lease(device, targets)
        for target in targets:
            if _ip_int(target.nw_start) <= _ip_int(block.ip) <= _ip_int(target.nw_end):
                port = self._in_leased(device, block.ip, target.tp_start, target.tp_end, uniquefier)
                if port is not None:
                    return NatBinding(block.ip, port)
        raise NatPortsExhausted(device)

    def release(self, device: str, dst_ip: str, dst_port: int, binding: NatBinding) -> None:
        leased = self._blocks.get((device, binding.ip), {}).get(binding.port // BLOCK_SIZE)
        if leased is None:
            return
        users = leased.ports[binding.port % BLOCK_SIZE]
        if (dst_ip, dst_port) in users:
            users.discard((dst_ip, dst_port))
            leased.in_use -= 1
            if leased.in_use == 0:
                leased.idle_since = self._clock.now()

    def lease_pending(self) -> list[NatBlock]:
        """Lease a block for each request a "not yet" answer left (what the agent does through the store)."""
        requests, self.pending = self.pending, []
        return [self._lease(device, targets) for device, targets in requests
                if self._free_block_ip(device, targets) is not None]

    def add_block(self, block: NatBlock) -> bool:
        """Install a block leased elsewhere (idle until a port is used); False if it was leased here already."""
        blocks = self._blocks.setdefault((block.device, block.ip), {})
        if block.index in blocks:
            return False
        blocks[block.index] = _LeasedBlock(block, self._clock.now())
        return True

    def reserve(self, device: str, binding: NatBinding, dst_ip: str, dst_port: int) -> bool:
        """Mark `binding`'s port in use towards (dst_ip, dst_port), as `allocate` would have; False when its block
        is not leased here or the port is taken for that destination already."""
        leased = self._blocks.get((device, binding.ip), {}).get(binding.port // BLOCK_SIZE)
        if leased is None:
            return False
        users = leased.ports[binding.port % BLOCK_SIZE]
        if (dst_ip, dst_port) in users:
            return False
        users.add((dst_ip, dst_port))
        leased.in_use += 1
        leased.idle_since = None
        return True

    def expire(self) -> list[NatBlock]:
        """Return blocks with no port in use for `idle` seconds; returns them."""
        deadline = self._clock.now() - self._idle
        gone: list[NatBlock] = []
        for blocks in self._blocks.values():
            for index, leased in list(blocks.items()):
                if leased.idle_since is not None and leased.idle_since <= deadline:
                    del blocks[index]
                    gone.append(leased.block)
        return gone

    def leased(self, device: str | None = None) -> list[NatBlock]:
        return [b.block for (dev, _), blocks in self._blocks.items() for b in blocks.values()
                if device is None or dev == device]

    def _in_leased(self, device: str, ip: str, tp_start: int, tp_end: int,
                   uniquefier: tuple[str, int]) -> int | None:
        blocks = self._blocks.get((device, ip))
        if not blocks:
            return None
        for index in range(tp_start // BLOCK_SIZE, tp_end // BLOCK_SIZE + 1):
            leased = blocks.get(index)
            if leased is not None:
                port = self._in_block(leased, tp_start, tp_end, uniquefier)
                if port is not None:
                    return port
        return None

    @staticmethod
    def _in_block(leased: _LeasedBlock, tp_start: int, tp_end: int, uniquefier: tuple[str, int]) -> int | None:
        first = leased.block.first
        for i in range(BLOCK_SIZE):
            offset = (leased.cursor + i) % BLOCK_SIZE
            port = first + offset
            if tp_start <= port <= tp_end and uniquefier not in leased.ports[offset]:
                leased.ports[offset].add(uniquefier)
                leased.cursor = (offset + 1) % BLOCK_SIZE
                leased.in_use += 1
                leased.idle_since = None
                return port
        return None

    def _free_blocks(self, device: str, ip: str, target: NatTarget) -> list[int]:
        blocks = self._blocks.get((device, ip), {})
        others = self._unavailable(device, ip) if self._unavailable is not None else ()
        return [i for i in range(target.tp_start // BLOCK_SIZE, target.tp_end // BLOCK_SIZE + 1)
                if i not in blocks and i not in others]

    def _free_block_ip(self, device: str, targets: Sequence[NatTarget]) -> str | None:
        """The first target address with a block left to lease, or None."""
        for target in targets:
            for ip in target_ips(target):
                if self._free_blocks(device, ip, target):
                    return ip
        return None

    def _lease(self, device: str, targets: Sequence[NatTarget]) -> NatBlock:
        """A free block of the first target address that has one (`doFetchNatBlock`)."""
        for target in targets:
            for ip in target_ips(target):
                free = self._free_blocks(device, ip, target)
                if free:
                    index = free[self._rng.randrange(0, len(free))] if self._rng is not None else free[0]
                    block = NatBlock(device, ip, index)
                    self._blocks.setdefault((device, ip), {})[index] = _LeasedBlock(block, self._clock.now())
                    return block
        raise NatPortsExhausted(device)
