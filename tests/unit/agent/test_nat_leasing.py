"""SNAT blocks leased through the store (spec 3.7): "not yet" until a block is claimed, one host per block even when
they race, random unused blocks first then the least recently given back, idle blocks given back, blocks of a dead
agent free again, a restored connection's block leased again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from midonet.agent.events import EventGate
from midonet.agent.nat_leasing import TAKEN, USED, StoreNatLeaser, release_unapplied, table_name
from midonet.state.nat import (
    BLOCK_IDLE,
    BLOCK_SIZE,
    NatBinding,
    NatBlock,
    NatBlockNeeded,
    NatBound,
    NatKey,
    NatKeyType,
    NatPortsExhausted,
)
from midonet.state.randomness import SeededRandom
from midonet.state.tables import in_memory
from midonet.store.memory import MemoryBackend, MemoryStore
from midonet.testing.clock import FakeClock
from midonet.topology.chains import NatTarget
from midonet.topology.devices import Router
from midonet.topology.ids import new_id

IP = "203.0.113.1"
FOUR_BLOCKS = NatTarget(nw_start=IP, nw_end=IP, tp_start=1024, tp_end=1024 + 4 * BLOCK_SIZE - 1)


class Host:
    """A leaser on its own session, with the waiting packets it woke."""

    def __init__(self, backend: MemoryBackend, name: str, clock: FakeClock, seed: int = 0) -> None:
        self.session: MemoryStore = backend.connect(name)
        self.gate = EventGate()
        self.ready: list[tuple[str, str]] = []
        self.leaser = StoreNatLeaser(self.session, self.gate, clock, SeededRandom(seed),
                                     lambda kind, ident: self.ready.append((kind, ident)))

    def allocate(self, router: str, dst_port: int = 53, dst_ip: str = "10.0.2.1") -> NatBinding:
        """A port, leasing a block first if the leaser answers "not yet" (what the agent's after hook does)."""
        with self.gate.lock:
            try:
                return self.leaser.allocate(router, (FOUR_BLOCKS,), dst_ip, dst_port)
            except NatBlockNeeded:
                pass
        self.leaser.lease_pending()
        with self.gate.lock:
            return self.leaser.allocate(router, (FOUR_BLOCKS,), dst_ip, dst_port)

    def blocks(self) -> set[int]:
        return {b.index for b in self.leaser.allocator.leased()}


@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    b = MemoryBackend()
    yield b
    b.close()


@pytest.fixture
def router(backend: MemoryBackend) -> str:
    operator = backend.connect("operator")
    router = Router(id=new_id(), name="r")
    operator.create(router)
    return router.id


def _leases(backend: MemoryBackend, router: str) -> dict[str, str]:
    return backend.connect("reader").state_table(Router, router, table_name(IP)).snapshot()


def test_not_yet_until_a_block_is_claimed_then_ports_from_it(backend: MemoryBackend, router: str) -> None:
    h1 = Host(backend, "h1", FakeClock())
    with pytest.raises(NatBlockNeeded):
        h1.leaser.allocate(router, (FOUR_BLOCKS,), "10.0.2.1", 53)
    assert h1.leaser.has_pending
    [block] = h1.leaser.lease_pending()
    assert h1.ready == [("nat_block", f"{router}/{IP}")]
    assert _leases(backend, router) == {f"{TAKEN}{block.index}": "h1"}
    binding = h1.allocate(router)
    assert binding.ip == IP and binding.port // BLOCK_SIZE == block.index


def test_two_hosts_never_hold_the_same_block_and_then_run_out(backend: MemoryBackend, router: str) -> None:
    clock = FakeClock()
    h1, h2 = Host(backend, "h1", clock, seed=1), Host(backend, "h2", clock, seed=1)   # same draws: they collide
    for _ in range(2 * BLOCK_SIZE):                     # two blocks' worth of ports to one destination each
        h1.allocate(router)
        h2.allocate(router)
    assert len(h1.blocks()) == len(h2.blocks()) == 2 and not h1.blocks() & h2.blocks()
    assert sorted(_leases(backend, router).values()) == ["h1", "h1", "h2", "h2"]
    with h1.gate.lock, pytest.raises((NatBlockNeeded, NatPortsExhausted)):   # "not yet" if h2's last lease
        h1.leaser.allocate(router, (FOUR_BLOCKS,), "10.0.2.1", 53)           # has not reached h1's mirror
    assert h1.leaser.lease_pending() == []              # the store has nothing left to lease ...
    with h1.gate.lock, pytest.raises(NatPortsExhausted):   # ... and now h1 knows
        h1.leaser.allocate(router, (FOUR_BLOCKS,), "10.0.2.1", 53)
    assert h1.allocate(router, dst_port=54).ip == IP    # a port is still free towards another destination


def test_racing_hosts_split_the_blocks(backend: MemoryBackend, router: str) -> None:
    clock = FakeClock()
    hosts = [Host(backend, f"h{i}", clock, seed=7) for i in range(4)]
    errors: list[BaseException] = []

    def lease(host: Host) -> None:
        try:
            host.allocate(router)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=lease, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    held = [h.blocks() for h in hosts]
    assert all(len(b) == 1 for b in held) and len(set().union(*held)) == 4


def test_idle_blocks_go_back_and_the_least_recently_used_is_leased_first(backend: MemoryBackend,
                                                                         router: str) -> None:
    clock = FakeClock()
    h1 = Host(backend, "h1", clock)
    bindings = [h1.allocate(router, dst_port=p) for p in range(4 * BLOCK_SIZE)]  # one port each: one block
    first = {b.port // BLOCK_SIZE for b in bindings}
    assert len(first) == 1
    with h1.gate.lock:
        for p, b in enumerate(bindings):
            h1.leaser.release(router, "10.0.2.1", p, b)
        clock.advance(BLOCK_IDLE)
        [gone] = h1.leaser.expire()
    leases = _leases(backend, router)
    assert f"{TAKEN}{gone.index}" not in leases and f"{USED}{gone.index}" in leases
    for index in {0, 1, 2, 3} - {gone.index - 16}:      # every other block used once, given back later
        table = h1.session.state_table(Router, router, table_name(IP))
        table.put(f"{USED}{16 + index}", f"{h1.session.next_sequence('nat_block_release'):016d}", persistent=True)
    h2 = Host(backend, "h2", clock, seed=3)
    assert h2.allocate(router).port // BLOCK_SIZE == gone.index      # the least recently given back


def test_a_dead_agents_blocks_are_free_again(backend: MemoryBackend, router: str) -> None:
    clock = FakeClock()
    h1, h2 = Host(backend, "h1", clock), Host(backend, "h2", clock)
    h1.allocate(router)
    h1.session.close()
    assert _leases(backend, router) == {}
    for _ in range(4 * BLOCK_SIZE):
        h2.allocate(router)
    assert len(h2.blocks()) == 4


def test_a_restored_connection_gets_its_block_and_port_back(backend: MemoryBackend, router: str) -> None:
    clock = FakeClock()
    h1 = Host(backend, "h1", clock)
    fwd = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, router)
    binding = NatBinding(IP, 17 * BLOCK_SIZE + 5)
    with h1.gate.lock:
        assert h1.leaser.restore(fwd, binding)
        assert not h1.leaser.restore(fwd._replace(type=NatKeyType.REV_SNAT), binding)
    assert _leases(backend, router) == {f"{TAKEN}17": "h1"}
    ports = {h1.allocate(router).port for _ in range(BLOCK_SIZE - 1)}
    assert binding.port not in ports and all(p // BLOCK_SIZE == 17 for p in ports)
    h2 = Host(backend, "h2", clock)
    with h2.gate.lock:
        assert not h2.leaser.restore(fwd, binding)       # h1 holds it: h2 cannot have it back


def test_a_postponed_simulation_gives_its_ports_back() -> None:
    tables = in_memory(FakeClock())
    fwd = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, "d")
    binding = tables.nat_leaser.allocate("d", (FOUR_BLOCKS,), "10.0.2.1", 53)
    refresh = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5001, "10.0.2.1", 53, 17, "d")
    tables.nat.bind(refresh, NatBinding(IP, 1030))
    writes = (NatBound(fwd, binding), NatBound(refresh, NatBinding(IP, 1030)))
    assert release_unapplied(tables, writes) == 1         # the key that exists keeps its port
    again = {tables.nat_leaser.allocate("d", (FOUR_BLOCKS,), "10.0.2.1", 53).port for _ in range(BLOCK_SIZE)}
    assert binding.port in again and tables.nat_leaser.leased() == [NatBlock("d", IP, 16)]
