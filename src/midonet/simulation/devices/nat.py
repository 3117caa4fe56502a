"""NAT rules and the NAT state they read and write (spec 3.7; the original's `rules/*NatRule.java`, `NatState.scala`).

Role: `apply_rule(ctx, rule, stage)` is what a chain does with a NAT rule whose condition matched: translate the
packet and answer the rule's action (ACCEPT, CONTINUE or RETURN), or answer CONTINUE when the rule does not apply.
The load balancer (`devices.load_balancer`) uses the same state operations (`forward`, `reverse_dnat`,
`apply_if_exists`, `delete_binding`). Which kind a rule is follows from its data, as the original's mapper::

    reverse                                  -> reverse DNAT (rewrites the source back) / reverse SNAT (the destination)
    forward, a target with an L4 port range  -> dynamic: stateful, 5-tuple keys, random DNAT target / leased SNAT port
    forward, else                            -> static (floating IP): stateless, addresses only, exactly one target

Dynamic NAT applies to TCP, UDP, ICMP echo (the identifier is kept and stands for both ports; reading it makes the
flow userspace-only) and ICMP errors (unreachable, time exceeded, parameter problem: keyed and translated through
the datagram they quote, whose header is rewritten too, so an error about a translated packet quotes it as its
sender sent it); any other packet is not translated. A forward translation looks its key up first and reuses the
binding it finds; else it draws one (DNAT: a uniformly random target, address and port, from the injected
`tables.random`; SNAT: a port from `tables.nat_leaser`, "not yet" -- `NotYet("nat_block", ...)` -- when a port
block must be leased first; ICMP: a random address and the identifier). Either way it requests `NatBound` for the
forward key and its return key (one reference each for the flow), tags the flow with both keys and makes it
stateful. A reverse rule builds the key of its reverse type from the packet, tags the flow with it and translates
when it is found. A DNAT (static or dynamic) or a reverse SNAT sets `ctx.nw_dst_rewritten`.

Keys are scoped by `ctx.current_device` (the router, or the load balancer while it works). Writes this simulation
asked for are seen by its later lookups (the original's NAT transaction): `NatBound` / `NatDeleted` in
`ctx.state_writes` come before the table.

Flow tags: ("nat", NatKey) for every key looked up or written (a flow-state tag: kept by temporary drops).

May import: `midonet.packets`, `midonet.state`, `midonet.topology`, `simulation.context`, `simulation.topology`,
`simulation.pipeline`, `simulation.ipmath`.
"""

from __future__ import annotations

from collections.abc import Sequence

from midonet.packets import icmp as icmp_packets
from midonet.packets.errors import MalformedPacket
from midonet.packets.ethernet import ETH_TYPE_IPV4
from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.context import PacketContext
from midonet.simulation.ipmath import ip_int, ip_str
from midonet.simulation.pipeline import Stage
from midonet.simulation.topology import NotYet, RuleDevice
from midonet.state.nat import (
    NatBinding,
    NatBlockNeeded,
    NatBound,
    NatDeleted,
    NatKey,
    NatKeyType,
    NatPortsExhausted,
)
from midonet.state.randomness import RandomSource
from midonet.topology.chains import NatTarget, RuleAction

FWD_SNAT = NatKeyType.FWD_SNAT
REV_SNAT = NatKeyType.REV_SNAT
FWD_DNAT = NatKeyType.FWD_DNAT
REV_DNAT = NatKeyType.REV_DNAT
FWD_STICKY_DNAT = NatKeyType.FWD_STICKY_DNAT
REV_STICKY_DNAT = NatKeyType.REV_STICKY_DNAT

_CONTINUE = RuleAction.CONTINUE
_DROP = RuleAction.DROP
_ICMP, _TCP, _UDP = 1, 6, 17
_ECHO = icmp_packets.ECHO_TYPES
_ERRORS = icmp_packets.ERROR_TYPES


def apply_rule(ctx: PacketContext, rule: RuleDevice, stage: Stage) -> RuleAction:
    """A matched NAT rule: translate and answer its action, or CONTINUE when it does not apply."""
    before = _tuple(ctx.match) if ctx.trace is not None else ""
    if rule.reverse:
        kind = "reverse DNAT" if rule.dnat else "reverse SNAT"
        applied = reverse_dnat(ctx, REV_DNAT) if rule.dnat else reverse_snat(ctx)
    elif any(not t.is_static for t in rule.nat_targets):
        kind = "dynamic DNAT" if rule.dnat else "dynamic SNAT"
        try:
            applied = forward(ctx, FWD_DNAT if rule.dnat else FWD_SNAT, rule.nat_targets)
        except NatPortsExhausted:
            ctx.note(stage, rule.id, "dynamic SNAT: no port left to lease: drop")
            return _DROP
    else:
        kind = "static DNAT" if rule.dnat else "static SNAT"
        applied = _static(ctx, rule, stage)
    if ctx.trace is not None:
        after = f"{before} -> {_tuple(ctx.match)}" if applied else "not applied"
        ctx.note(stage, rule.id, f"{kind}: {after}")
    return rule.action if applied else _CONTINUE


# ---- keys and the NAT transaction ----

def supported(m: FlowMatch) -> bool:
    """Whether dynamic NAT translates this packet: IPv4 TCP, UDP, ICMP echo and errors (`isNatSupported`)."""
    if m.eth_type != ETH_TYPE_IPV4:
        return False
    proto = m.ip_proto
    if proto == _ICMP:
        kind = m.tp_src
        if kind in _ECHO:
            return m.peek("icmp_id") is not None
        if kind in _ERRORS:
            return m.peek("icmp_data") is not None
        return False
    return proto in (_TCP, _UDP)


def key_of(m: FlowMatch, device: str, kind: NatKeyType) -> NatKey | None:
    """The key of type `kind` for the packet in `m` on `device` (`NatKey.apply`); None if an ICMP error's quote is
    unreadable. Sticky keys leave the client's port out (0); ICMP echo uses the identifier as both ports; an ICMP
    error is keyed by the datagram it quotes, turned around (the connection it is a reply to)."""
    proto = m.ip_proto or 0
    if proto == _ICMP:
        icmp_type = m.tp_src
        if icmp_type in _ECHO:
            ident = m.icmp_id or 0
            return NatKey(kind, str(m.ip_src), ident, str(m.ip_dst), ident, proto, device)
        data = m.icmp_data if icmp_type in _ERRORS else None
        if data:
            try:
                quoted = icmp_packets.parse_embedded(data)
            except MalformedPacket:
                return None
            if quoted.ip_proto == _ICMP:
                ident = quoted.icmp_id or 0
                return NatKey(kind, quoted.ip_dst, ident, quoted.ip_src, ident, _ICMP, device)
            return NatKey(kind, quoted.ip_dst, quoted.tp_dst or 0, quoted.ip_src, quoted.tp_src or 0,
                          quoted.ip_proto, device)
        return NatKey(kind, str(m.ip_src), 0, str(m.ip_dst), 0, proto, device)
    tp_src = 0 if kind is FWD_STICKY_DNAT else (m.tp_src or 0)
    tp_dst = 0 if kind is REV_STICKY_DNAT else (m.tp_dst or 0)
    return NatKey(kind, str(m.ip_src), tp_src, str(m.ip_dst), tp_dst, proto, device)


def lookup(ctx: PacketContext, key: NatKey) -> NatBinding | None:
    """The binding of `key`: what this simulation wrote or deleted, else the table's."""
    for write in reversed(ctx.state_writes):
        if isinstance(write, NatBound) and write.key == key:
            return write.binding
        if isinstance(write, NatDeleted) and write.key == key:
            return None
    return ctx.tables.nat.get(key)


def _ref(ctx: PacketContext, key: NatKey, binding: NatBinding) -> None:
    """The flow uses `key` -> `binding`: one reference on it and on its return key; tagged with both."""
    back = key.return_key(binding)
    ctx.request(NatBound(key, binding))
    ctx.request(NatBound(back, key.return_binding()))
    ctx.tags.add(("nat", key))
    ctx.tags.add(("nat", back))
    ctx.stateful = True


def _device(ctx: PacketContext) -> str:
    return ctx.current_device or ""


# ---- forward (dynamic) NAT ----

def forward(ctx: PacketContext, kind: NatKeyType, targets: Sequence[NatTarget]) -> bool:
    """Dynamic DNAT / sticky DNAT / SNAT of the packet to one of `targets`; False if it cannot be translated."""
    m = ctx.match
    if not supported(m):
        return False
    key = key_of(m, _device(ctx), kind)
    if key is None:
        return False
    binding = lookup(ctx, key)
    if binding is None:
        binding = _allocate(ctx, key, targets)
    _ref(ctx, key, binding)
    if kind is FWD_SNAT:
        _snat(ctx, binding)
    else:
        _dnat(ctx, binding)
    return True


def _allocate(ctx: PacketContext, key: NatKey, targets: Sequence[NatTarget]) -> NatBinding:
    """A new binding (`tryAllocateNatBinding`): ICMP keeps its identifier, SNAT leases a port, DNAT draws one."""
    rng = ctx.tables.random
    if ctx.match.ip_proto == _ICMP:
        target = targets[rng.randrange(0, len(targets))]
        return NatBinding(_random_ip(target, rng), key.tp_dst)
    if key.type is FWD_SNAT:
        try:
            return ctx.tables.nat_leaser.allocate(key.device, targets, key.ip_dst, key.tp_dst)
        except NatBlockNeeded as missing:
            raise NotYet("nat_block", f"{missing.device}/{missing.ip}") from None
    target = targets[rng.randrange(0, len(targets))]
    return NatBinding(_random_ip(target, rng), rng.randrange(target.tp_start, target.tp_end + 1))


def _random_ip(target: NatTarget, rng: RandomSource) -> str:
    low, high = ip_int(target.nw_start), ip_int(target.nw_end)
    return target.nw_start if low == high else ip_str(rng.randrange(low, high + 1))


def _dnat(ctx: PacketContext, binding: NatBinding) -> None:
    m = ctx.match
    m.ip_dst = binding.ip
    if m.ip_proto != _ICMP:
        m.tp_dst = binding.port
    ctx.nw_dst_rewritten = True


def _snat(ctx: PacketContext, binding: NatBinding) -> None:
    m = ctx.match
    m.ip_src = binding.ip
    if m.ip_proto != _ICMP:
        m.tp_src = binding.port


def apply_if_exists(ctx: PacketContext, key: NatKey) -> bool:
    """Translate by `key` if it has a binding (a forward key is referenced again); else tag the flow with it."""
    binding = lookup(ctx, key)
    if binding is None:
        ctx.tags.add(("nat", key))
        return False
    kind = key.type
    if kind is FWD_DNAT or kind is FWD_STICKY_DNAT:
        _dnat(ctx, binding)
        _ref(ctx, key, binding)
        return True
    if kind is FWD_SNAT:
        _snat(ctx, binding)
        _ref(ctx, key, binding)
        return True
    if kind is REV_SNAT:
        return _reverse_snat(ctx, key, binding)
    return _reverse_dnat(ctx, key, binding)


def delete_binding(ctx: PacketContext, key: NatKey) -> None:
    """Remove `key` and its return key (the load balancer, when a connection's backend is no longer valid)."""
    binding = lookup(ctx, key)
    if binding is None:
        return
    back = key.return_key(binding)
    ctx.request(NatDeleted(key))
    ctx.request(NatDeleted(back))
    ctx.tags.add(("nat", key))
    ctx.tags.add(("nat", back))


# ---- reverse NAT ----

def reverse_dnat(ctx: PacketContext, kind: NatKeyType = REV_DNAT) -> bool:
    """Rewrite the source of a reply back to the address the client sent to (REV_DNAT or REV_STICKY_DNAT)."""
    m = ctx.match
    if not supported(m):
        return False
    key = key_of(m, _device(ctx), kind)
    if key is None:
        return False
    ctx.tags.add(("nat", key))
    binding = lookup(ctx, key)
    return binding is not None and _reverse_dnat(ctx, key, binding)


def _reverse_dnat(ctx: PacketContext, key: NatKey, binding: NatBinding) -> bool:
    m = ctx.match
    if m.ip_proto != _ICMP:
        m.ip_src = binding.ip
        m.tp_src = binding.port
        return True
    if key.type is REV_STICKY_DNAT:
        return False
    changed = m.ip_src == key.ip_src
    if changed:
        m.ip_src = binding.ip
    quoted = _rewrite_quoted(ctx, "dst", key.ip_src, binding.ip, binding.port)
    return changed or quoted


def reverse_snat(ctx: PacketContext) -> bool:
    """Rewrite the destination of a reply back to the address the client sent from (REV_SNAT)."""
    m = ctx.match
    if not supported(m):
        return False
    key = key_of(m, _device(ctx), REV_SNAT)
    if key is None:
        return False
    ctx.tags.add(("nat", key))
    binding = lookup(ctx, key)
    return binding is not None and _reverse_snat(ctx, key, binding)


def _reverse_snat(ctx: PacketContext, key: NatKey, binding: NatBinding) -> bool:
    m = ctx.match
    if m.ip_proto != _ICMP:
        m.ip_dst = binding.ip
        m.tp_dst = binding.port
        ctx.nw_dst_rewritten = True
        return True
    changed = m.ip_dst == key.ip_dst
    if changed:
        m.ip_dst = binding.ip
        ctx.nw_dst_rewritten = True
    quoted = _rewrite_quoted(ctx, "src", key.ip_dst, binding.ip, binding.port)
    return changed or quoted


# ---- static (floating IP) NAT ----

def _static(ctx: PacketContext, rule: RuleDevice, stage: Stage) -> bool:
    """Rewrite the destination (DNAT) or source (SNAT) address to the rule's one target; stateless, no ports.
    An ICMP error's quoted datagram follows (`StaticForwardNatRule`)."""
    if len(rule.nat_targets) != 1:
        ctx.note(stage, rule.id, "a static NAT rule needs exactly one target: not applied")
        return False
    target = rule.nat_targets[0].nw_start
    m = ctx.match
    if rule.dnat:
        dst = m.ip_dst
        if dst is None:
            return False
        m.ip_dst = target
        ctx.nw_dst_rewritten = True
        if m.ip_proto == _ICMP:
            condition = rule.record.condition if rule.record is not None else None
            quoted_dst = condition.icmp_data_dst_ip if condition is not None else None
            if quoted_dst is not None:
                _rewrite_quoted(ctx, "dst", quoted_dst.partition("/")[0], target)
            else:
                _rewrite_quoted(ctx, "src", dst, target)
        return True
    src = m.ip_src
    if src is None:
        return False
    m.ip_src = target
    if m.ip_proto == _ICMP:
        _rewrite_quoted(ctx, "dst", src, target)
    return True


def _rewrite_quoted(ctx: PacketContext, which: str, old: str, new: str, port: int | None = None) -> bool:
    """In an ICMP error, rewrite the quoted datagram's source or destination address `old` to `new` (and its TCP/UDP
    port to `port`); False when the packet is no error or the quote does not carry `old` there."""
    m = ctx.match
    if m.tp_src not in _ERRORS:
        return False
    data = m.icmp_data
    if not data:
        return False
    try:
        quoted = icmp_packets.parse_embedded(data)
        if (quoted.ip_src if which == "src" else quoted.ip_dst) != old:
            return False
        ports = port if quoted.ip_proto in (_TCP, _UDP) and quoted.tp_src is not None else None
        if which == "src":
            m.icmp_data = icmp_packets.rewrite_embedded(data, ip_src=new, tp_src=ports)
        else:
            m.icmp_data = icmp_packets.rewrite_embedded(data, ip_dst=new, tp_dst=ports)
    except (MalformedPacket, ValueError):
        return False
    return True


def _tuple(m: FlowMatch) -> str:
    src, sport, dst, dport = m.key(("ip_src", "tp_src", "ip_dst", "tp_dst"))
    return f"{src!s}:{sport!s} > {dst!s}:{dport!s}"
