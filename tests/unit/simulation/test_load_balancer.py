"""The load balancer's snapshot and decisions, one behaviour each (spec 3.8; `PoolMember.isUp`, `Pool`,
`WeightedSelector`, `Vip.matches`): which members are active or disabled, how one is drawn, which backends stay
valid, and what the mapper takes from the records."""

from __future__ import annotations

from collections import Counter

from midonet.simulation.devices.load_balancer import (
    LoadBalancerDevice,
    LoadBalancerMapper,
    PoolDevice,
    PoolMemberDevice,
    VipDevice,
)
from midonet.state.randomness import SeededRandom
from midonet.topology.l4lb import LBStatus, LoadBalancer, Pool, PoolMember, SessionPersistence, Vip

LB = "00000000-0000-4000-8000-00000000000a"
POOL, OTHER_POOL = "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c"
MONITOR = "00000000-0000-4000-8000-00000000000d"


def member(n: int, pool: str = POOL, **kw: object) -> PoolMember:
    return PoolMember(id=f"00000000-0000-4000-8000-0000000001{n:02d}", pool_id=pool, address=f"10.0.2.{n}",
                      protocol_port=8080, **kw)  # type: ignore[arg-type]


def mapped(*members: PoolMember, monitored: bool = False,
           status: dict[str, LBStatus] | None = None) -> PoolDevice:
    pool = Pool(id=POOL, load_balancer_id=LB, health_monitor_id=MONITOR if monitored else None)
    vip = Vip(id="00000000-0000-4000-8000-000000000201", pool_id=POOL, address="192.0.2.100", protocol_port=80)
    device = LoadBalancerMapper.map(LoadBalancer(id=LB), [pool], members, [vip], status)
    return device.vips[0].pool


def ids(members: tuple[PoolMemberDevice, ...]) -> list[str]:
    return [m.address for m in members]


def test_active_members_are_up_active_and_weighted() -> None:
    pool = mapped(member(1), member(2, weight=0), member(3, status=LBStatus.INACTIVE),
                  member(4, admin_state_up=False))
    assert ids(pool.active) == ["10.0.2.1"]
    assert ids(pool.disabled) == ["10.0.2.4"]                # administratively down but healthy


def test_monitored_status_counts_as_active_only_without_a_health_monitor() -> None:
    assert ids(mapped(member(1, status=LBStatus.MONITORED)).active) == ["10.0.2.1"]
    assert ids(mapped(member(1, status=LBStatus.MONITORED), monitored=True).active) == []
    reported = mapped(member(1, status=LBStatus.MONITORED), monitored=True,
                      status={member(1).id: LBStatus.ACTIVE})
    assert ids(reported.active) == ["10.0.2.1"]


def test_the_mapper_keeps_the_load_balancers_own_vips_and_their_stickiness() -> None:
    pools = [Pool(id=POOL, load_balancer_id=LB), Pool(id=OTHER_POOL, load_balancer_id=LB)]
    vips = [Vip(id="00000000-0000-4000-8000-000000000201", pool_id=POOL, address="192.0.2.100", protocol_port=80,
                session_persistence=SessionPersistence.SOURCE_IP),
            Vip(id="00000000-0000-4000-8000-000000000202", pool_id="00000000-0000-4000-8000-0000000000ff",
                address="192.0.2.101", protocol_port=80)]
    device = LoadBalancerMapper.map(LoadBalancer(id=LB, admin_state_up=False), pools, [member(1)], vips)
    assert [v.address for v in device.vips] == ["192.0.2.100"]
    assert device.vips[0].sticky and device.has_sticky_vips and not device.has_non_sticky_vips
    assert not device.admin_state_up


def test_a_pool_is_up_when_enabled_with_an_active_member() -> None:
    one = PoolMemberDevice(id="m", address="10.0.2.1", port=8080, weight=1)
    assert PoolDevice(id=POOL, active=(one,)).is_up
    assert not PoolDevice(id=POOL, admin_state_up=False, active=(one,)).is_up
    assert not PoolDevice(id=POOL, disabled=(one,)).is_up


def test_draws_follow_the_weights() -> None:
    members = tuple(PoolMemberDevice(id=str(w), address=f"10.0.2.{w}", port=80, weight=w) for w in (1, 3))
    pool = PoolDevice(id=POOL, active=members)
    rng = SeededRandom(11)
    counts = Counter(pool.select(rng).address for _ in range(4000))
    assert abs(counts["10.0.2.3"] / 4000 - 0.75) < 0.03


def test_a_disabled_backend_stays_valid_unless_sticky() -> None:
    up = PoolMemberDevice(id="a", address="10.0.2.1", port=8080, weight=1)
    down = PoolMemberDevice(id="b", address="10.0.2.2", port=8080, weight=1)
    pool = PoolDevice(id=POOL, active=(up,), disabled=(down,))
    assert pool.valid_backend("10.0.2.1", 8080, sticky=True)
    assert pool.valid_backend("10.0.2.2", 8080, sticky=False)
    assert not pool.valid_backend("10.0.2.2", 8080, sticky=True)
    assert not pool.valid_backend("10.0.2.1", 9090, sticky=False)


def test_a_member_is_a_single_address_and_port_nat_target() -> None:
    [target] = PoolMemberDevice(id="a", address="10.0.2.1", port=8080, weight=1).targets
    assert (target.nw_start, target.nw_end, target.tp_start, target.tp_end) == ("10.0.2.1", "10.0.2.1", 8080, 8080)


def test_devices_are_frozen_snapshots() -> None:
    lb = LoadBalancerDevice(id=LB, vips=(VipDevice(id="v", address="192.0.2.1", port=80, pool=PoolDevice(id=POOL)),))
    assert lb == LoadBalancerDevice(id=LB, vips=lb.vips)
    assert not hasattr(lb, "__dict__")
