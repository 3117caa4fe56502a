"""The flow table: install, tags, invalidation, expiry classes, idle expiry from datapath stats, reconcile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from midonet.agent.flow_table import ExpiryClass, FlowTable, Removal
from midonet.datapath.base import Flow, FlowKey, FlowStats, Output
from midonet.datapath.memory import MemoryDatapath, MemoryHost, MemoryUnderlay
from midonet.testing import frames
from midonet.testing.clock import FakeClock

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dp(clock: FakeClock) -> Iterator[MemoryDatapath]:
    host = MemoryHost("h", "10.0.0.1", MemoryUnderlay())
    host.interfaces.add("a")
    host.interfaces.add("b")
    datapath = MemoryDatapath("dp", host, clock=clock.now)
    datapath.add_port("a")
    datapath.add_port("b")
    yield datapath
    datapath.close()


@pytest.fixture
def table(dp: MemoryDatapath, clock: FakeClock) -> FlowTable:
    return FlowTable(dp, clock, idle_timeout=15.0)


def key(dst: str = B) -> FlowKey:
    return FlowKey.of({"in_port": 1, "eth_dst": dst})


def test_install_pushes_the_flow_and_indexes_its_tags(table: FlowTable, dp: MemoryDatapath) -> None:
    entry = table.install(key(), (Output(2),), ["bridge", ("mac", "bridge", B, 0, "p")], ExpiryClass.FLOW)
    assert entry.installed
    assert dp.flows()[0][0] == Flow(key(), (Output(2),))
    assert table.tagged("bridge") == [entry]
    assert table.statistics().installed == 1 and len(table) == 1


def test_invalidate_removes_every_flow_with_the_tag_from_table_and_datapath(table: FlowTable,
                                                                           dp: MemoryDatapath) -> None:
    table.install(key(B), (Output(2),), ["bridge", "port-b"], ExpiryClass.FLOW)
    table.install(key(A), (Output(2),), ["bridge", "port-a"], ExpiryClass.FLOW)
    table.install(key("02:00:00:00:00:0c"), (), ["other"], ExpiryClass.FLOW)
    assert table.invalidate("bridge") == 2
    assert [f.key for f, _ in dp.flows()] == [key("02:00:00:00:00:0c")]
    assert table.tagged("port-a") == [] and table.invalidate("port-a") == 0
    stats = table.statistics()
    assert (stats.flows, stats.removed, stats.invalidated) == (1, 2, 2)


def test_removal_callbacks_run_once_whatever_removes_the_flow(table: FlowTable, clock: FakeClock) -> None:
    seen: list[Removal] = []
    table.install(key(), (), ["t"], ExpiryClass.FLOW, [seen.append])
    table.install(key(), (), ["t"], ExpiryClass.FLOW, [seen.append])    # same key: replaces
    assert seen == [Removal.REPLACED]
    table.invalidate("t")
    table.invalidate("t")
    assert seen == [Removal.REPLACED, Removal.INVALIDATED]
    table.install(key(), (), [], ExpiryClass.ERROR, [seen.append])
    clock.advance(5)
    table.expire()
    assert seen[-1] is Removal.EXPIRED


@pytest.mark.parametrize(("expiry", "seconds"), [(ExpiryClass.FLOW, 60.0), (ExpiryClass.STATEFUL, 30.0),
                                                  (ExpiryClass.ERROR, 5.0), (ExpiryClass.TUNNEL, 300.0)])
def test_hard_expiry_by_class(dp: MemoryDatapath, clock: FakeClock, expiry: ExpiryClass, seconds: float) -> None:
    table = FlowTable(dp, clock, idle_timeout=None)
    table.install(key(), (), [], expiry)
    clock.advance(seconds - 0.5)
    assert table.expire() == 0
    clock.advance(0.5)
    assert table.expire() == 1
    assert dp.flows() == [] and table.statistics().expired == 1


def test_idle_flows_go_and_used_ones_stay(table: FlowTable, dp: MemoryDatapath, clock: FakeClock) -> None:
    used, idle = key(B), key(A)
    table.install(used, (Output(2),), [], ExpiryClass.FLOW)
    table.install(idle, (Output(2),), [], ExpiryClass.FLOW)
    for _ in range(3):
        clock.advance(10)
        dp.host.interfaces.inject("a", frames.udp(A, B, "10.0.0.1", "10.0.0.2"))   # hits `used`
        table.expire()
    assert table.get(used) is not None
    assert table.get(idle) is None
    assert [f.key for f, _ in dp.flows()] == [used]


def test_for_timeout_maps_a_results_expiration_to_its_class() -> None:
    assert ExpiryClass.for_timeout(60.0) is ExpiryClass.FLOW
    assert ExpiryClass.for_timeout(30.0) is ExpiryClass.STATEFUL
    assert ExpiryClass.for_timeout(5.0) is ExpiryClass.ERROR


def test_reconcile_reinstalls_lost_flows_and_removes_strays(table: FlowTable, dp: MemoryDatapath) -> None:
    table.install(key(B), (Output(2),), [], ExpiryClass.FLOW)
    table.install(key(A), (Output(2),), [], ExpiryClass.FLOW)
    dp.remove(key(A))                                           # lost behind the agent's back
    stray = FlowKey.of({"in_port": 2})
    dp.install(Flow(stray, (Output(1),)))                       # left over from an earlier run
    assert table.reconcile() == (1, 1)
    assert sorted(str(f.key) for f, _ in dp.flows()) == sorted(str(k) for k in (key(A), key(B)))
    assert table.reconcile() == (0, 0)                          # converged: applying twice changes nothing


def test_a_failed_install_is_desired_but_not_installed_until_reconcile(clock: FakeClock) -> None:
    host = MemoryHost("h", "10.0.0.9", MemoryUnderlay())
    datapath = MemoryDatapath("dp", host, clock=clock.now)
    table = FlowTable(datapath, clock)
    datapath.close()                                            # every install fails now
    entry = table.install(key(), (), ["t"], ExpiryClass.FLOW)
    assert not entry.installed and table.statistics().install_failures == 1
    assert table.needs_reconcile
    assert table.invalidate("t") == 1                           # removing a flow never installed is fine


def test_clear_removes_everything(table: FlowTable, dp: MemoryDatapath) -> None:
    table.install(key(B), (), ["t"], ExpiryClass.FLOW)
    table.install(key(A), (), ["u"], ExpiryClass.TUNNEL)
    table.clear()
    assert len(table) == 0 and dp.flows() == [] and table.tagged("t") == []


def test_inherited_flows_forward_until_their_grace_then_go_unless_reinstalled(table: FlowTable, dp: MemoryDatapath,
                                                                           clock: FakeClock) -> None:
    # A restarted agent's datapath still holds its predecessor's flows: kept, even by a reconcile, until `until`.
    dp.install(Flow(key(A), (Output(2),)))
    dp.install(Flow(key(B), (Output(2),)))
    assert table.inherit(until=clock.now() + 60) == 2
    table.inherit_until(clock.now() + 5)            # the bindings are published: 5 s more
    table.install(key(B), (Output(1),), ["port-b"], ExpiryClass.FLOW)   # simulated again meanwhile: its own now
    assert table.reconcile() == (0, 0)
    clock.advance(4.9)
    table.expire()
    assert len(dp.flows()) == 2
    clock.advance(0.2)
    table.expire()
    assert [(f.key, f.actions) for f, _ in dp.flows()] == [(key(B), (Output(1),))]
    assert table.inherited == 0 and table.statistics().strays_removed == 1


class Reads:
    """The datapath as it is, noting whose stats the table asks for."""

    def __init__(self, dp: MemoryDatapath) -> None:
        self.dp = dp
        self.asked: list[list[FlowKey]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.dp, name)

    def flow_stats(self, keys: Sequence[FlowKey]) -> dict[FlowKey, FlowStats]:
        self.asked.append(list(keys))
        return self.dp.flow_stats(keys)


def test_expire_reads_only_the_stats_of_flows_due_a_look(dp: MemoryDatapath, clock: FakeClock) -> None:
    reads = Reads(dp)
    table = FlowTable(reads, clock, idle_timeout=15.0)   # type: ignore[arg-type]
    early = [FlowKey.of({"in_port": 1, "eth_dst": f"02:00:00:00:01:{i:02x}"}) for i in range(50)]
    late = [FlowKey.of({"in_port": 1, "eth_dst": f"02:00:00:00:02:{i:02x}"}) for i in range(50)]
    for k in early:
        table.install(k, (Output(2),), [], ExpiryClass.TUNNEL)
    clock.advance(10)
    for k in late:
        table.install(k, (Output(2),), [], ExpiryClass.TUNNEL)
    for _ in range(4):                     # t = 11 .. 14: nothing due
        clock.advance(1)
        assert table.expire() == 0
    assert reads.asked == []
    clock.advance(1)                       # t = 15: the early ones are due, and idle
    assert table.expire() == 50
    assert [set(keys) for keys in reads.asked] == [set(early)]
    clock.advance(10)                      # t = 25: the late ones
    assert table.expire() == 50
    assert [set(keys) for keys in reads.asked[1:]] == [set(late)]
    assert len(table) == 0


def test_a_used_flow_is_looked_at_again_an_idle_timeout_later(table: FlowTable, dp: MemoryDatapath,
                                                               clock: FakeClock) -> None:
    table.install(key(B), (Output(2),), [], ExpiryClass.TUNNEL)
    dp.host.interfaces.inject("a", frames.udp(A, B, "10.0.0.1", "10.0.0.2"))
    clock.advance(15)
    assert table.expire() == 0             # moved since installed: kept until 30 at least
    clock.advance(14)
    assert table.expire() == 0
    clock.advance(1)
    assert table.expire() == 1             # not moved since 15: idle


def test_a_removed_flow_leaves_no_expiry_behind(table: FlowTable, clock: FakeClock) -> None:
    table.install(key(B), (Output(2),), ["t"], ExpiryClass.ERROR)       # 5 s
    assert table.invalidate("t") == 1
    clock.advance(3)
    table.install(key(B), (Output(2),), ["t"], ExpiryClass.ERROR)       # the same key again, until 8 s
    clock.advance(2)
    assert table.expire() == 0             # the first one's deadline (5 s) is not the second one's
    assert table.get(key(B)) is not None
    clock.advance(3)
    assert table.expire() == 1
    for i in range(3000):                  # many flows come and go: what is kept for their expiry stays bounded
        k = FlowKey.of({"in_port": 1, "eth_dst": f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}"})
        table.install(k, (Output(2),), ["gone"], ExpiryClass.FLOW)
        table.invalidate("gone")
    assert len(table._deadlines) <= 1024 + 2 * len(table)
