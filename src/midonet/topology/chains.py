"""Rule chains: Condition, Chain, Rule (spec 2.1 Condition, 2.2 Chain/Rule, 3.5).

A chain is an ordered list of rules (`Chain.rule_ids` is the evaluation order). A rule has a `Condition`
and an action; its `type` says what else it carries:

    RuleType.LITERAL      action accept / drop / reject / return / continue
    RuleType.NAT          nat_targets + dnat/reverse flags (snat, dnat, rev_snat, rev_dnat);
                          action accept / continue / return
    RuleType.JUMP         jump_chain_id
    RuleType.TRACE        trace_request_id, limit
    RuleType.L2TRANSFORM  pop_vlan / push_vlan / target_port_id / ingress / fail_open (redirect)

May import: `topology.record`, `topology.validate`, `topology.errors`.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.record import Record, Value, value


class FragmentPolicy(enum.StrEnum):
    ANY = "any"
    NONHEADER = "nonheader"
    HEADER = "header"
    UNFRAGMENTED = "unfragmented"


@value
class PortRange(Value):
    """An inclusive L4 port range (for ICMP: the type in tp_src, the code in tp_dst)."""

    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        v.int_range("start", self.start, 0, 65535)
        v.int_range("end", self.end, 0, 65535)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise v.fail("start", f"range start {self.start} is above its end {self.end}")


@value
class Condition(Value):
    """What a rule, a mirror or a trace request matches. Empty matches everything."""

    conjunction_inv: bool = False
    match_forward_flow: bool = False
    match_return_flow: bool = False
    in_port_ids: tuple[str, ...] = ()
    in_port_inv: bool = False
    out_port_ids: tuple[str, ...] = ()
    out_port_inv: bool = False
    port_group_id: str | None = None
    inv_port_group: bool = False
    in_port_group_id: str | None = None
    inv_in_port_group: bool = False
    out_port_group_id: str | None = None
    inv_out_port_group: bool = False
    ip_addr_group_id_src: str | None = None
    inv_ip_addr_group_id_src: bool = False
    ip_addr_group_id_dst: str | None = None
    inv_ip_addr_group_id_dst: bool = False
    dl_type: int | None = None
    inv_dl_type: bool = False
    dl_src: str | None = None
    dl_src_mask: int | None = None
    inv_dl_src: bool = False
    dl_dst: str | None = None
    dl_dst_mask: int | None = None
    inv_dl_dst: bool = False
    nw_tos: int | None = None
    nw_tos_inv: bool = False
    nw_proto: int | None = None
    nw_proto_inv: bool = False
    nw_src_ip: str | None = None
    nw_src_inv: bool = False
    nw_dst_ip: str | None = None
    nw_dst_inv: bool = False
    tp_src: PortRange | None = None
    tp_src_inv: bool = False
    tp_dst: PortRange | None = None
    tp_dst_inv: bool = False
    traversed_device: str | None = None
    traversed_device_inv: bool = False
    fragment_policy: FragmentPolicy = FragmentPolicy.ANY
    no_vlan: bool = False
    vlan: int | None = None
    icmp_data_src_ip: str | None = None
    icmp_data_src_ip_inv: bool = False
    icmp_data_dst_ip: str | None = None
    icmp_data_dst_ip_inv: bool = False
    match_nw_dst_rewritten: bool = False

    def __post_init__(self) -> None:
        for f in ("in_port_ids", "out_port_ids"):
            v.set_field(self, f, v.uuid_list(f, getattr(self, f)))
        for f in ("port_group_id", "in_port_group_id", "out_port_group_id", "ip_addr_group_id_src",
                  "ip_addr_group_id_dst", "traversed_device"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        v.int_range("dl_type", self.dl_type, 0, 0xFFFF)
        v.set_field(self, "dl_src", v.mac("dl_src", self.dl_src))
        v.set_field(self, "dl_dst", v.mac("dl_dst", self.dl_dst))
        v.int_range("dl_src_mask", self.dl_src_mask, 0, (1 << 64) - 1)
        v.int_range("dl_dst_mask", self.dl_dst_mask, 0, (1 << 64) - 1)
        v.int_range("nw_tos", self.nw_tos, 0, 255)
        v.int_range("nw_proto", self.nw_proto, 0, 255)
        for f in ("nw_src_ip", "nw_dst_ip", "icmp_data_src_ip", "icmp_data_dst_ip"):
            v.set_field(self, f, v.cidr(f, getattr(self, f)))
        v.int_range("vlan", self.vlan, 0, 4095)


@value
class Chain(Record):
    """An ordered list of rules, referenced as a device's inbound/outbound filter or a jump target."""

    tenant_id: str | None = None
    name: str | None = None
    rule_ids: tuple[str, ...] = ()
    # back-references
    network_inbound_ids: tuple[str, ...] = ()
    network_outbound_ids: tuple[str, ...] = ()
    router_inbound_ids: tuple[str, ...] = ()
    router_outbound_ids: tuple[str, ...] = ()
    router_redirect_ids: tuple[str, ...] = ()
    router_forward_ids: tuple[str, ...] = ()
    port_inbound_ids: tuple[str, ...] = ()
    port_outbound_ids: tuple[str, ...] = ()
    jump_rule_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"rule_ids", "network_inbound_ids", "network_outbound_ids", "router_inbound_ids",
         "router_outbound_ids", "router_redirect_ids", "router_forward_ids", "port_inbound_ids",
         "port_outbound_ids", "jump_rule_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "rule_ids", v.uuid_list("rule_ids", self.rule_ids))


class RuleType(enum.StrEnum):
    LITERAL = "literal"
    NAT = "nat"
    JUMP = "jump"
    TRACE = "trace"
    L2TRANSFORM = "l2transform"


class RuleAction(enum.StrEnum):
    ACCEPT = "accept"
    CONTINUE = "continue"
    DROP = "drop"
    JUMP = "jump"
    REJECT = "reject"
    RETURN = "return"
    REDIRECT = "redirect"


@value
class NatTarget(Value):
    """A range of addresses and L4 ports a NAT rule translates to. Ports 0..0 mean 'keep the port'."""

    nw_start: str
    nw_end: str
    tp_start: int = 0
    tp_end: int = 0

    def __post_init__(self) -> None:
        v.set_field(self, "nw_start", v.ipv4("nw_start", self.nw_start))
        v.set_field(self, "nw_end", v.ipv4("nw_end", self.nw_end))
        v.int_range("tp_start", self.tp_start, 0, 65535)
        v.int_range("tp_end", self.tp_end, 0, 65535)
        if self.tp_start > self.tp_end:
            raise v.fail("tp_start", f"port range start {self.tp_start} is above its end {self.tp_end}")
        from ipaddress import IPv4Address
        if IPv4Address(self.nw_start) > IPv4Address(self.nw_end):
            raise v.fail("nw_start", f"address range start {self.nw_start} is above its end {self.nw_end}")

    @property
    def is_static(self) -> bool:
        """Static NAT (stateless, no port translation): both port bounds 0."""
        return self.tp_start == 0 and self.tp_end == 0


_LITERAL_ACTIONS = {RuleAction.ACCEPT, RuleAction.DROP, RuleAction.REJECT, RuleAction.RETURN,
                    RuleAction.CONTINUE}
_NAT_ACTIONS = {RuleAction.ACCEPT, RuleAction.CONTINUE, RuleAction.RETURN}


@value
class Rule(Record):
    """One rule of a chain."""

    chain_id: str | None = None
    type: RuleType = RuleType.LITERAL
    action: RuleAction = RuleAction.ACCEPT
    condition: Condition = Condition()
    fip_port_id: str | None = None
    # jump
    jump_chain_id: str | None = None
    jump_chain_name: str | None = None
    # nat
    nat_targets: tuple[NatTarget, ...] = ()
    dnat: bool = False
    reverse: bool = False
    # trace
    trace_request_id: str | None = None
    limit: int | None = None
    # l2 transform / redirect
    pop_vlan: bool = False
    push_vlan: int | None = None
    target_port_id: str | None = None
    ingress: bool = False
    fail_open: bool = False
    meter_name: str | None = None
    properties: str | None = None

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        for f in ("chain_id", "fip_port_id", "jump_chain_id", "trace_request_id", "target_port_id"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        v.int_range("push_vlan", self.push_vlan, 0, 4095)
        match self.type:
            case RuleType.LITERAL:
                if self.action not in _LITERAL_ACTIONS:
                    raise v.fail("action", f"a literal rule cannot {self.action}")
            case RuleType.JUMP:
                if self.jump_chain_id is None:
                    raise v.fail("jump_chain_id", "a jump rule needs the chain to jump to")
                if self.jump_chain_id == self.chain_id:
                    raise v.fail("jump_chain_id", "a chain cannot jump to itself")
                if self.action is not RuleAction.JUMP:
                    v.set_field(self, "action", RuleAction.JUMP)
            case RuleType.NAT:
                if self.action not in _NAT_ACTIONS:
                    raise v.fail("action", f"a NAT rule's flow action cannot be {self.action}")
                if not self.reverse and not self.nat_targets:
                    raise v.fail("nat_targets", "a forward NAT rule needs at least one target")
            case RuleType.TRACE | RuleType.L2TRANSFORM:
                pass
