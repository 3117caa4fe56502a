"""The L4 load balancer on a router: VIPs, pools, weighted backends (spec 3.8; `LoadBalancer.scala`, `Pool.scala`).

Role: a router with a `load_balancer_id` asks `inbound(ctx, lb)` before its inbound filters and `outbound(ctx, lb)`
after routing, before its outbound filters. Each answers ACCEPT (the router skips that filter), DROP, or CONTINUE
(the filters run as usual).

Inbound -- a client's packet to a VIP. With the load balancer up, the first VIP that is up and matches (TCP, the
packet's destination address and port) sends the packet to its pool, with the load balancer as the current device
(NAT keys are scoped by it):

* pool up (administratively, with an active member -- up, ACTIVE, weight > 0): a member is drawn by weight
  (``weight / sum of weights``, from the injected `tables.random`); an existing forward DNAT key of this client
  (FWD_STICKY_DNAT, without the client's port, for a VIP with source-IP persistence; FWD_DNAT otherwise) whose
  backend is still valid wins over the draw -- valid is active, or, without persistence, disabled but healthy
  (administratively down, ACTIVE: its connections finish); a key with an invalid backend is deleted and the drawn
  member gets the connection. DNAT to the member's address and port: ACCEPT;
* pool down: a connection without persistence continues on its existing valid key (ACCEPT); anything else DROPs.

Outbound -- a backend's reply: reverse DNAT (REV_DNAT when the load balancer has VIPs without persistence, then
REV_STICKY_DNAT when it has sticky ones). Nothing found: CONTINUE. Found: DROP if the load balancer is down, if no
VIP that is up matches the rewritten source (the VIP went), or if the backend is no longer valid for that VIP;
else ACCEPT.

Flow tags: the load balancer and the pool ids (their changes invalidate the flows), the NAT keys (`devices.nat`).

`LoadBalancerDevice` (with its `VipDevice`s, each with its `PoolDevice` and `PoolMemberDevice`s) is the snapshot;
`LoadBalancerMapper` builds it from topology records (`topology.l4lb`) and the members' health status.

May import: `midonet.topology`, `midonet.state`, `simulation.context`, `simulation.pipeline`,
`simulation.devices.nat`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from midonet.simulation.context import PacketContext
from midonet.simulation.devices import nat
from midonet.simulation.pipeline import Stage
from midonet.state.nat import NatKeyType
from midonet.state.randomness import RandomSource
from midonet.topology.chains import NatTarget, RuleAction
from midonet.topology.l4lb import LBStatus, LoadBalancer, Pool, PoolMember, SessionPersistence, Vip

ACCEPT = RuleAction.ACCEPT
CONTINUE = RuleAction.CONTINUE
DROP = RuleAction.DROP
_TCP = 6
_ICMP = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolMemberDevice:
    """A backend; `targets` is the DNAT target it stands for (its address and port), built once."""

    id: str
    address: str
    port: int
    weight: int
    targets: tuple[NatTarget, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        target = NatTarget(nw_start=self.address, nw_end=self.address, tp_start=self.port, tp_end=self.port)
        object.__setattr__(self, "targets", (target,))


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolDevice:
    """A pool: `active` members (up, ACTIVE, weight > 0) get new connections; `disabled` ones (administratively
    down, ACTIVE) keep the connections they have, unless the VIP is sticky."""

    id: str
    admin_state_up: bool = True
    active: tuple[PoolMemberDevice, ...] = ()
    disabled: tuple[PoolMemberDevice, ...] = ()

    @property
    def is_up(self) -> bool:
        return self.admin_state_up and bool(self.active)

    def select(self, rng: RandomSource) -> PoolMemberDevice:
        """An active member drawn by weight (`WeightedSelector`)."""
        draw = rng.randrange(0, sum(m.weight for m in self.active))
        for member in self.active:
            draw -= member.weight
            if draw < 0:
                return member
        return self.active[-1]

    def valid_backend(self, ip: str | None, port: int | None, sticky: bool) -> bool:
        """Whether traffic may still go to `ip`:`port`: an active member, or without stickiness a disabled one."""
        if any(m.address == ip and m.port == port for m in self.active):
            return True
        return not sticky and any(m.address == ip and m.port == port for m in self.disabled)


@dataclass(frozen=True, slots=True, kw_only=True)
class VipDevice:
    id: str
    address: str
    port: int
    pool: PoolDevice
    admin_state_up: bool = True
    sticky: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancerDevice:
    id: str
    admin_state_up: bool = True
    vips: tuple[VipDevice, ...] = ()

    @property
    def has_sticky_vips(self) -> bool:
        return any(v.sticky for v in self.vips)

    @property
    def has_non_sticky_vips(self) -> bool:
        return any(not v.sticky for v in self.vips)


class LoadBalancerMapper:
    """LoadBalancer record + its pools, their members and VIPs (+ members' health status) -> `LoadBalancerDevice`.

    A member's status is `member_status[id]` (what the health monitor wrote) else its record's; MONITORED without a
    reported status counts as ACTIVE in a pool without a health monitor, else as INACTIVE.
    """

    @staticmethod
    def map(lb: LoadBalancer, pools: Sequence[Pool], members: Sequence[PoolMember], vips: Sequence[Vip],
            member_status: Mapping[str, LBStatus] | None = None) -> LoadBalancerDevice:
        status = member_status or {}
        devices: dict[str, PoolDevice] = {}
        for pool in pools:
            active, disabled = [], []
            for m in members:
                if m.pool_id != pool.id or m.address is None:
                    continue
                state = status.get(m.id, m.status)
                if state is LBStatus.MONITORED:
                    state = LBStatus.ACTIVE if pool.health_monitor_id is None else LBStatus.INACTIVE
                member = PoolMemberDevice(id=m.id, address=m.address, port=m.protocol_port, weight=m.weight)
                if m.admin_state_up and state is LBStatus.ACTIVE and m.weight > 0:
                    active.append(member)
                elif not m.admin_state_up and state is LBStatus.ACTIVE:
                    disabled.append(member)
            devices[pool.id] = PoolDevice(id=pool.id, admin_state_up=pool.admin_state_up, active=tuple(active),
                                          disabled=tuple(disabled))
        return LoadBalancerDevice(id=lb.id, admin_state_up=lb.admin_state_up, vips=tuple(
            VipDevice(id=v.id, address=v.address, port=v.protocol_port, pool=devices[v.pool_id],
                      admin_state_up=v.admin_state_up,
                      sticky=v.session_persistence is SessionPersistence.SOURCE_IP)
            for v in vips if v.pool_id in devices and v.address is not None))


def inbound(ctx: PacketContext, lb: LoadBalancerDevice) -> RuleAction:
    """A packet entering the router: to a VIP -> load balanced (ACCEPT) or refused (DROP); else CONTINUE."""
    ctx.tags.add(lb.id)
    if not lb.admin_state_up:
        return CONTINUE
    m = ctx.match
    vip = None
    for candidate in lb.vips:
        if (candidate.admin_state_up and m.ip_dst == candidate.address and m.tp_dst == candidate.port
                and m.ip_proto == _TCP):
            vip = candidate
            break
    if vip is None:
        return CONTINUE
    router = ctx.current_device
    ctx.current_device = lb.id
    try:
        balanced = _load_balance(ctx, lb, vip)
    finally:
        ctx.current_device = router
    if ctx.trace is not None:
        done = f"to {m.peek('ip_dst')!s}:{m.peek('tp_dst')!s}" if balanced else "no valid backend: drop"
        ctx.note(Stage.ROUTER_LB_INBOUND, lb.id, f"VIP {vip.address}:{vip.port} (pool {vip.pool.id[:8]}): {done}")
    return ACCEPT if balanced else DROP


def _load_balance(ctx: PacketContext, lb: LoadBalancerDevice, vip: VipDevice) -> bool:
    """`Pool.loadBalance`: keep an existing valid connection, else DNAT to a member drawn by weight."""
    pool = vip.pool
    ctx.tags.add(pool.id)
    kind = NatKeyType.FWD_STICKY_DNAT if vip.sticky else NatKeyType.FWD_DNAT
    if pool.is_up:
        member = pool.select(ctx.tables.random)
        if not _existing_if_valid(ctx, lb, pool, kind, vip.sticky):
            nat.forward(ctx, kind, member.targets)
        return True
    if vip.sticky or ctx.match.ip_proto == _ICMP:
        return False
    return _existing_if_valid(ctx, lb, pool, NatKeyType.FWD_DNAT, False)


def _existing_if_valid(ctx: PacketContext, lb: LoadBalancerDevice, pool: PoolDevice, kind: NatKeyType,
                       sticky: bool) -> bool:
    """Translate by this client's existing key if its backend is still valid; an invalid one is deleted."""
    m = ctx.match
    vip_ip, vip_port = m.ip_dst, m.tp_dst
    key = nat.key_of(m, lb.id, kind)
    if key is None or not nat.apply_if_exists(ctx, key):
        return False
    if pool.valid_backend(m.ip_dst, m.tp_dst, sticky):
        return True
    m.ip_dst, m.tp_dst = vip_ip, vip_port
    nat.delete_binding(ctx, key)
    if ctx.trace is not None:
        ctx.note(Stage.ROUTER_LB_INBOUND, lb.id, f"{key}: backend no longer valid, forgotten")
    return False


def outbound(ctx: PacketContext, lb: LoadBalancerDevice) -> RuleAction:
    """A packet leaving the router: a backend's reply -> source back to the VIP (ACCEPT) or DROP; else CONTINUE."""
    m = ctx.match
    backend_ip, backend_port = m.ip_src, m.tp_src
    router = ctx.current_device
    ctx.current_device = lb.id
    try:
        reversed_ = ((lb.has_non_sticky_vips and nat.reverse_dnat(ctx, NatKeyType.REV_DNAT))
                     or (lb.has_sticky_vips and nat.reverse_dnat(ctx, NatKeyType.REV_STICKY_DNAT)))
    finally:
        ctx.current_device = router
    if not reversed_:
        return CONTINUE
    ctx.tags.add(lb.id)
    action = _returning(ctx, lb, backend_ip, backend_port)
    if ctx.trace is not None:
        ctx.note(Stage.ROUTER_LB_OUTBOUND, lb.id,
                 f"reply from backend {backend_ip}:{backend_port} as {m.peek('ip_src')!s}:{m.peek('tp_src')!s}: "
                 f"{action.value}")
    return action


def _returning(ctx: PacketContext, lb: LoadBalancerDevice, backend_ip: str | None, backend_port: int | None
               ) -> RuleAction:
    if not lb.admin_state_up:
        return DROP
    m = ctx.match
    for vip in lb.vips:
        if vip.admin_state_up and m.ip_src == vip.address and m.tp_src == vip.port and m.ip_proto == _TCP:
            ctx.tags.add(vip.pool.id)
            return ACCEPT if vip.pool.valid_backend(backend_ip, backend_port, vip.sticky) else DROP
    return DROP
