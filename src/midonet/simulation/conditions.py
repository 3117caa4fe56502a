"""Rule conditions compiled for the simulator: what a rule, a mirror or a trace request matches (spec 3.5).

Role: `compile_condition` turns a topology `Condition` record into a `ConditionDevice` once, when the chain snapshot
is built: one small check per field the condition sets, in the original's order (`rules/Condition.java`), with
addresses and subnets parsed to integers. `ConditionDevice.matches(ctx)` then runs only those checks.

Semantics, as the original:
* the fragment policy is checked first and is not invertible (ANY, HEADER = not a later fragment,
  NONHEADER = later fragments only, UNFRAGMENTED = no fragment; a non-IP packet counts as unfragmented);
* every other field may be inverted; the first failing field makes the whole condition answer
  `conjunction_inv`, all passing answer `not conjunction_inv`; an unset field matches;
* port sets match if empty; an IP/port range matches a packet without that field (a port range on ARP);
* `port_group_id` tests the groups of the exterior ingress port, `in_port_group_id` / `out_port_group_id` those
  of the current in/out port; `traversed_device` tests the flow tags gathered so far; `match_forward_flow` /
  `match_return_flow` ask connection tracking (spec 3.6);
* MAC masks: the low 48 bits of `dl_src_mask` / `dl_dst_mask` are compared; no mask = all 48 bits.

Checks read packet fields through `FlowMatch` properties, so a failing check stops the reads and the flow's
wildcard keeps exactly what decided.

May import: `midonet.packets`, `midonet.topology`, `simulation.ipmath`, `simulation.context` (types only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from midonet.simulation.ipmath import ip_int, subnet
from midonet.topology.chains import Condition, FragmentPolicy, PortRange

if TYPE_CHECKING:
    from midonet.simulation.context import PacketContext

Check = Callable[["PacketContext"], bool]

_MAC_BITS = 0xFFFFFFFFFFFF
_FRAGMENTS: dict[FragmentPolicy, frozenset[str | None] | None] = {
    FragmentPolicy.ANY: None,
    FragmentPolicy.HEADER: frozenset({None, "none", "first"}),
    FragmentPolicy.NONHEADER: frozenset({"later"}),
    FragmentPolicy.UNFRAGMENTED: frozenset({None, "none"}),
}


@dataclass(frozen=True, slots=True)
class ConditionDevice:
    """A compiled condition: the fragment policy, then `checks` in order, under `conjunction_inv`."""

    checks: tuple[Check, ...]
    fragments: frozenset[str | None] | None = None
    conjunction_inv: bool = False
    text: str = "any packet"

    def matches(self, ctx: PacketContext) -> bool:
        fragments = self.fragments
        if fragments is not None and ctx.match.ip_frag not in fragments:
            return False
        for check in self.checks:
            if not check(ctx):
                return self.conjunction_inv
        return not self.conjunction_inv

    def __str__(self) -> str:
        return self.text


MATCH_ALL = ConditionDevice(())


def compile_condition(cond: Condition, ip_addr_groups: Mapping[str, frozenset[str]]) -> ConditionDevice:
    """`cond` as a `ConditionDevice`; `ip_addr_groups` maps group ids to their addresses (missing = empty)."""
    checks: list[Check] = []
    add = checks.append
    if cond.match_forward_flow:
        add(lambda ctx: ctx.is_forward_flow())
    if cond.match_return_flow:
        add(lambda ctx: not ctx.is_forward_flow())
    if cond.match_nw_dst_rewritten:
        add(lambda ctx: ctx.nw_dst_rewritten)
    if cond.port_group_id is not None:
        add(_port_group(cond.port_group_id, cond.inv_port_group, "port_groups"))
    if cond.in_port_group_id is not None:
        add(_port_group(cond.in_port_group_id, cond.inv_in_port_group, "in_port_groups"))
    if cond.out_port_group_id is not None:
        add(_port_group(cond.out_port_group_id, cond.inv_out_port_group, "out_port_groups"))
    if cond.in_port_ids:
        add(_in_ports(frozenset(cond.in_port_ids), cond.in_port_inv))
    if cond.out_port_ids:
        add(_out_ports(frozenset(cond.out_port_ids), cond.out_port_inv))
    if cond.dl_type is not None:
        add(_eth_type(cond.dl_type, cond.inv_dl_type))
    if cond.dl_src is not None:
        add(_mac("eth_src", cond.dl_src, cond.dl_src_mask, cond.inv_dl_src))
    if cond.dl_dst is not None:
        add(_mac("eth_dst", cond.dl_dst, cond.dl_dst_mask, cond.inv_dl_dst))
    if cond.nw_tos is not None:
        add(_equals("ip_tos", cond.nw_tos, cond.nw_tos_inv))
    if cond.nw_proto is not None:
        add(_equals("ip_proto", cond.nw_proto, cond.nw_proto_inv))
    if cond.nw_src_ip is not None:
        add(_in_subnet("ip_src", cond.nw_src_ip, cond.nw_src_inv))
    if cond.nw_dst_ip is not None:
        add(_in_subnet("ip_dst", cond.nw_dst_ip, cond.nw_dst_inv))
    if cond.tp_src is not None:
        add(_in_range("tp_src", cond.tp_src, cond.tp_src_inv))
    if cond.tp_dst is not None:
        add(_in_range("tp_dst", cond.tp_dst, cond.tp_dst_inv))
    if cond.ip_addr_group_id_src is not None:
        add(_in_group("ip_src", ip_addr_groups.get(cond.ip_addr_group_id_src, frozenset()),
                      cond.inv_ip_addr_group_id_src))
    if cond.ip_addr_group_id_dst is not None:
        add(_in_group("ip_dst", ip_addr_groups.get(cond.ip_addr_group_id_dst, frozenset()),
                      cond.inv_ip_addr_group_id_dst))
    if cond.traversed_device is not None:
        add(_traversed(cond.traversed_device, cond.traversed_device_inv))
    if cond.vlan is not None:
        vlan = cond.vlan
        add(lambda ctx: vlan in (ctx.match.vlan_ids or ()))
    if cond.no_vlan:
        add(lambda ctx: not ctx.match.vlan_ids)
    if cond.icmp_data_src_ip is not None:
        add(_icmp_data_ip(12, cond.icmp_data_src_ip, cond.icmp_data_src_ip_inv))
    if cond.icmp_data_dst_ip is not None:
        add(_icmp_data_ip(16, cond.icmp_data_dst_ip, cond.icmp_data_dst_ip_inv))
    return ConditionDevice(tuple(checks), _FRAGMENTS[cond.fragment_policy], cond.conjunction_inv, describe(cond))


# ---- one factory per kind of check (closures keep the parsed operand) ----

def _port_group(group: str, inv: bool, slot: str) -> Check:
    if slot == "port_groups":
        return lambda ctx: (group in ctx.port_groups) != inv
    if slot == "in_port_groups":
        return lambda ctx: (group in ctx.in_port_groups) != inv
    return lambda ctx: (group in ctx.out_port_groups) != inv


def _in_ports(ports: frozenset[str], inv: bool) -> Check:
    return lambda ctx: (ctx.in_port in ports) != inv


def _out_ports(ports: frozenset[str], inv: bool) -> Check:
    return lambda ctx: (ctx.out_port in ports) != inv


def _eth_type(value: int, inv: bool) -> Check:
    return lambda ctx: (ctx.match.eth_type == value) != inv


def _equals(field: str, value: int, inv: bool) -> Check:
    if field == "ip_tos":
        return lambda ctx: (ctx.match.ip_tos == value) != inv
    return lambda ctx: (ctx.match.ip_proto == value) != inv


def _mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def _mac(field: str, mac: str, mask: int | None, inv: bool) -> Check:
    bits = _MAC_BITS if mask is None else mask & _MAC_BITS
    if bits == _MAC_BITS:
        if field == "eth_src":
            return lambda ctx: (ctx.match.eth_src == mac) != inv
        return lambda ctx: (ctx.match.eth_dst == mac) != inv
    want = _mac_int(mac) & bits

    def masked(ctx: PacketContext) -> bool:
        value = ctx.match.eth_src if field == "eth_src" else ctx.match.eth_dst
        return (value is not None and _mac_int(value) & bits == want) != inv
    return masked


def _in_subnet(field: str, cidr: str, inv: bool) -> Check:
    net = subnet(cidr)
    if net is None:                      # an IPv6 subnet never contains an IPv4 packet's address
        return lambda ctx: inv
    network, mask = net.network, net.mask
    if field == "ip_src":
        def src_in(ctx: PacketContext) -> bool:
            ip = ctx.match.ip_src
            return (ip is not None and ip_int(ip) & mask == network) != inv
        return src_in

    def dst_in(ctx: PacketContext) -> bool:
        ip = ctx.match.ip_dst
        return (ip is not None and ip_int(ip) & mask == network) != inv
    return dst_in


def _in_range(field: str, bounds: PortRange, inv: bool) -> Check:
    low = 0 if bounds.start is None else bounds.start
    high = 65535 if bounds.end is None else bounds.end

    def in_range(ctx: PacketContext) -> bool:
        value = ctx.match.tp_src if field == "tp_src" else ctx.match.tp_dst
        return (value is None or low <= value <= high) != inv
    return in_range


def _in_group(field: str, addresses: frozenset[str], inv: bool) -> Check:
    if field == "ip_src":
        return lambda ctx: (ctx.match.ip_src in addresses) != inv
    return lambda ctx: (ctx.match.ip_dst in addresses) != inv


def _traversed(device: str, inv: bool) -> Check:
    return lambda ctx: (device in ctx.tags) != inv


def _icmp_data_ip(offset: int, cidr: str, inv: bool) -> Check:
    net = subnet(cidr)

    def quoted(ctx: PacketContext) -> bool:
        data = ctx.match.icmp_data
        if net is None or data is None or len(data) < 20:
            return inv
        ip = f"{data[offset]}.{data[offset + 1]}.{data[offset + 2]}.{data[offset + 3]}"
        return net.contains(ip) != inv
    return quoted


_DEFAULT = Condition()


def describe(cond: Condition) -> str:
    """The fields `cond` sets, for traces: ``"nw_proto=6, !tp_dst=22..22"``; "any packet" if none."""
    parts: list[str] = []
    for f in dataclasses.fields(cond):
        name, value = f.name, getattr(cond, f.name)
        if (value == getattr(_DEFAULT, name) or name == "conjunction_inv" or name.endswith(("_inv", "_mask"))
                or name.startswith("inv_")):
            continue
        stems = {name, name.removesuffix("_ip"), name.removesuffix("_ids"), name.removesuffix("_id")}
        inverted = any(getattr(cond, n, False) for stem in stems for n in (f"{stem}_inv", f"inv_{stem}"))
        if isinstance(value, PortRange):
            value = f"{value.start}..{value.end}"
        elif isinstance(value, tuple):
            value = ",".join(str(v)[:8] for v in value)
        elif isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
            value = value[:8]
        parts.append(f"{'!' if inverted else ''}{name}={value}")
    if cond.conjunction_inv:
        return "not (" + (", ".join(parts) or "any packet") + ")"
    return ", ".join(parts) or "any packet"
