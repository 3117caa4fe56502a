"""Admission control: hierarchical token buckets per datapath port (spec 1.7), driven by a fake clock.

The properties (hypothesis): no token out of nothing; a VM port within its fair share loses nothing whatever the
others send; a flooding tunnel port keeps half of the rate while VM ports flood too.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from midonet.agent.admission import AdmissionConfig, AdmissionControl, BucketKind, water_fill
from midonet.testing.clock import FakeClock

TUNNEL = 0
CONFIG = AdmissionConfig(rate=1000.0)


def control(config: AdmissionConfig = CONFIG) -> tuple[AdmissionControl, FakeClock]:
    clock = FakeClock()
    return AdmissionControl(clock, config), clock


def send(ac: AdmissionControl, port: int, n: int, *, tunnel: bool = False) -> int:
    """How many of `n` upcalls from `port` were admitted."""
    return sum(ac.admit(port, tunnel) for _ in range(n))


# ---- water filling ----

def test_water_fill_shares_by_weight() -> None:
    assert water_fill(10.0, [100.0, 100.0], [1.0, 1.0]) == [5.0, 5.0]
    assert water_fill(12.0, [100.0, 100.0], [1.0, 2.0]) == pytest.approx([4.0, 8.0])


def test_water_fill_gives_what_a_full_claimant_cannot_take_to_the_others() -> None:
    assert water_fill(10.0, [1.0, 100.0, 100.0], [1.0, 1.0, 1.0]) == pytest.approx([1.0, 4.5, 4.5])
    assert water_fill(10.0, [0.0, 100.0], [1.0, 1.0]) == pytest.approx([0.0, 10.0])


def test_water_fill_never_gives_more_than_there_is_room_for() -> None:
    assert water_fill(100.0, [1.0, 2.0], [1.0, 1.0]) == pytest.approx([1.0, 2.0])


@given(st.floats(0, 1000), st.lists(st.tuples(st.floats(0, 100), st.floats(0.01, 10)), min_size=1, max_size=8))
def test_water_fill_is_conservative_and_capped(amount: float, claims: list[tuple[float, float]]) -> None:
    rooms, weights = [r for r, _ in claims], [w for _, w in claims]
    given_ = water_fill(amount, rooms, weights)
    assert sum(given_) <= amount + 1e-6
    assert all(-1e-9 <= g <= r + 1e-9 for g, r in zip(given_, rooms, strict=True))
    if amount <= sum(rooms):                       # work-conserving: all of it goes when there is room
        assert sum(given_) == pytest.approx(amount, abs=1e-6)


# ---- buckets ----

def test_a_new_port_has_its_burst_then_the_root_pool() -> None:
    ac, _ = control()
    assert send(ac, 1, 1000) == 32 + 256           # its own bucket, then the whole root pool (nobody else wants it)
    stats = ac.statistics()
    assert (stats.admitted, stats.dropped) == (288, 712)
    port = stats.port(1)
    assert port is not None and (port.kind, port.admitted, port.dropped) == (BucketKind.VM, 288, 712)


def test_tokens_come_back_with_time_at_the_configured_rate() -> None:
    ac, clock = control()
    send(ac, 1, 1000)
    assert send(ac, 1, 10) == 0
    clock.advance(0.05)                            # 50 tokens at 1000/s
    assert send(ac, 1, 100) == 50
    clock.advance(10)                              # the pool is capped at the global burst; buckets fill
    assert send(ac, 1, 1000) == 256                # only when asked (this one is empty)


def test_the_tunnel_bucket_is_bigger() -> None:
    ac, _ = control(AdmissionConfig(rate=1000.0, global_burst=1))
    assert send(ac, TUNNEL, 500, tunnel=True) == 128 + 1
    assert ac.statistics().port(TUNNEL) is not None


def test_a_flooding_vm_does_not_take_an_idle_vms_burst() -> None:
    ac, _ = control()
    send(ac, 1, 10_000)
    assert send(ac, 2, 32) == 32


def test_retain_forgets_gone_ports_and_their_counts_stay_in_the_totals() -> None:
    ac, _ = control()
    send(ac, 1, 300)
    send(ac, 2, 1)
    ac.retain({2})
    stats = ac.statistics()
    assert [p.port for p in stats.ports] == [2]
    assert stats.admitted + stats.dropped == 301


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        AdmissionConfig(rate=0)
    with pytest.raises(ValueError):
        AdmissionConfig(vm_burst=0)
    with pytest.raises(ValueError):
        AdmissionConfig(tunnel_share=1.0)


# ---- fairness (hypothesis) ----

@settings(max_examples=60, deadline=None)
@given(vms=st.integers(2, 8), rate=st.sampled_from([100.0, 1000.0, 5000.0]), dt=st.floats(0.001, 0.05),
       steps=st.integers(5, 20), tunnel=st.sampled_from(["absent", "idle", "flooding"]),
       victim_first=st.booleans(), flood_factor=st.integers(2, 3))
def test_a_vm_within_its_fair_share_loses_nothing_whatever_the_others_send(
        vms: int, rate: float, dt: float, steps: int, tunnel: str, victim_first: bool, flood_factor: int) -> None:
    config = AdmissionConfig(rate=rate)
    ac, clock = control(config)
    # what the root hands out per step (its pool holds at most the global burst), the tunnel's half taken
    fair = min(rate * dt, config.global_burst) * (1 - config.tunnel_share) / vms
    per_step = int(min(fair, config.vm_burst))
    flood = int(rate * dt * flood_factor) + 1
    victim, flooders = 1, range(2, vms + 1)
    if tunnel == "idle":
        send(ac, TUNNEL, 1, tunnel=True)
    lost = 0
    for _ in range(steps):
        clock.advance(dt)
        if victim_first:
            lost += per_step - send(ac, victim, per_step)
        for port in flooders:
            send(ac, port, flood)
        if tunnel == "flooding":
            send(ac, TUNNEL, flood, tunnel=True)
        if not victim_first:
            lost += per_step - send(ac, victim, per_step)
    assert lost == 0


@settings(max_examples=60, deadline=None)
@given(ports=st.integers(1, 8), rate=st.sampled_from([100.0, 1000.0, 5000.0]), dt=st.floats(0.001, 0.05),
       steps=st.integers(1, 20), with_tunnel=st.booleans())
def test_no_token_is_made_out_of_nothing(ports: int, rate: float, dt: float, steps: int, with_tunnel: bool) -> None:
    config = AdmissionConfig(rate=rate)
    ac, clock = control(config)
    buckets = ports * config.vm_burst + (config.tunnel_burst if with_tunnel else 0)
    for _ in range(steps):
        clock.advance(dt)
        for port in range(1, ports + 1):
            send(ac, port, int(rate * dt * 3) + 40)
        if with_tunnel:
            send(ac, TUNNEL, int(rate * dt * 3) + 200, tunnel=True)
    assert ac.statistics().admitted <= buckets + config.global_burst + rate * dt * steps + 1


@settings(max_examples=40, deadline=None)
@given(vms=st.integers(1, 8), dt=st.floats(0.005, 0.05), steps=st.integers(20, 60))
def test_a_flooding_tunnel_keeps_half_of_the_rate(vms: int, dt: float, steps: int) -> None:
    config = AdmissionConfig(rate=1000.0)
    ac, clock = control(config)
    flood = int(config.rate * dt * 4) + 1
    send(ac, TUNNEL, config.tunnel_burst + config.global_burst, tunnel=True)   # spend the bursts first
    for port in range(1, vms + 1):
        send(ac, port, 10_000)
    before = ac.statistics().port(TUNNEL)
    assert before is not None
    for _ in range(steps):
        clock.advance(dt)
        for port in range(1, vms + 1):
            send(ac, port, flood)
        send(ac, TUNNEL, flood, tunnel=True)
    after = ac.statistics().port(TUNNEL)
    assert after is not None
    expected = config.rate * dt * steps * config.tunnel_share
    assert after.admitted - before.admitted >= expected - 2
