"""Chains and rules (spec 7.3: Chain-v1, Rule-v2; semantics in 3.5).

A rule is created under its chain (`POST /chains/{id}/rules`) at `position` (1-based; absent or 0 means
1, the head; below 1 or beyond size+1 is a 400) and read or deleted at `/rules/{id}`. The REST `type`
folds the model's (type, action, NAT direction):

    accept drop reject return continue    literal rule with that action
    jump                                  jumpChainId
    dnat snat                             natTargets [{addressFrom, addressTo, portFrom, portTo}], flowAction
    rev_dnat rev_snat                     flowAction
    trace                                 requestId, limit
    l2_transform redirect                 popVlan pushVlan targetPortId ingress failOpen

An absent `fragmentPolicy` defaults as the original's REST layer does: `unfragmented` for dynamic NAT (port
translation), `header` when the rule matches L4 ports, `any` otherwise.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.conditions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from midonet.api.conditions import RENAME as CONDITION_RENAME
from midonet.api.conditions import condition_in, condition_out
from midonet.api.errors import bad_request
from midonet.api.resource import Ctx, Dto, Resource, add_children, add_crud
from midonet.store.base import Create, Op, UpdateWith
from midonet.topology.chains import Chain, Rule, RuleAction, RuleType
from midonet.topology.record import Record

LITERAL_TYPES = {"accept": RuleAction.ACCEPT, "drop": RuleAction.DROP, "reject": RuleAction.REJECT,
                 "return": RuleAction.RETURN, "continue": RuleAction.CONTINUE}
NAT_TYPES = {"dnat": (True, False), "snat": (False, False), "rev_dnat": (True, True), "rev_snat": (False, True)}
RULE_TYPES = (*LITERAL_TYPES, "jump", *NAT_TYPES, "trace", "l2_transform", "redirect")


class ChainResource(Resource[Chain]):
    cls = Chain
    path = "chains"
    media = ("Chain",)
    version = 1
    fields = (("name", "name"), ("tenantId", "tenant_id"))
    read_only = (("ruleIds", "rule_ids"),)

    def dto_extra(self, obj: Chain, ctx: Ctx) -> Dto:
        return {"rules": f"{self.uri(ctx, obj.id)}/rules"}


def rest_type(rule: Rule) -> str:
    match rule.type:
        case RuleType.LITERAL:
            return rule.action.value
        case RuleType.JUMP:
            return "jump"
        case RuleType.NAT:
            return ("rev_" if rule.reverse else "") + ("dnat" if rule.dnat else "snat")
        case RuleType.TRACE:
            return "trace"
        case RuleType.L2TRANSFORM:
            return "redirect" if rule.action is RuleAction.REDIRECT else "l2_transform"


class RuleResource(Resource[Rule]):
    cls = Rule
    path = "rules"
    media = ("Rule",)
    version = 2
    fields = (("jumpChainName", "jump_chain_name"), ("popVlan", "pop_vlan"), ("pushVlan", "push_vlan"),
              ("targetPortId", "target_port_id"), ("ingress", "ingress"), ("failOpen", "fail_open"),
              ("limit", "limit"), ("meterName", "meter_name"), ("properties", "properties"))
    read_only = (("chainId", "chain_id"),)

    def tenant_of(self, obj: Rule, ctx: Ctx) -> str | None:
        chain = ctx.store.find(Chain, obj.chain_id) if obj.chain_id else None
        return chain.tenant_id if chain else None

    def rename(self) -> dict[str, str]:
        return super().rename() | {f"condition.{k}": v for k, v in CONDITION_RENAME.items()} | {
            "jump_chain_id": "jumpChainId", "nat_targets": "natTargets", "action": "flowAction",
            "trace_request_id": "requestId", "condition": "condition"}

    def to_dto(self, obj: Rule, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        dto.update(condition_out(obj.condition))
        dto["type"] = rest_type(obj)
        dto["jumpChainId"] = obj.jump_chain_id
        dto["requestId"] = obj.trace_request_id
        dto["flowAction"] = obj.action.value if obj.type is RuleType.NAT else None
        dto["natTargets"] = [{"addressFrom": t.nw_start, "addressTo": t.nw_end, "portFrom": t.tp_start,
                              "portTo": t.tp_end} for t in obj.nat_targets]
        chain = ctx.store.find(Chain, obj.chain_id) if obj.chain_id else None
        dto["position"] = chain.rule_ids.index(obj.id) + 1 if chain and obj.id in chain.rule_ids else None
        if obj.chain_id:
            dto["chain"] = f"{ctx.base}/chains/{obj.chain_id}"
        return dto

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Rule | None, ctx: Ctx, parent_id: str | None) -> None:
        data["chain_id"] = parent_id or (old.chain_id if old else None)
        position = dto.get("position")
        if position is not None and (not isinstance(position, int) or isinstance(position, bool)):
            raise bad_request(f"must be an integer, not {position!r}", "position")
        ctx.extras["position"] = position
        kind = dto.get("type")
        if kind not in RULE_TYPES:
            raise bad_request(f"must be one of {', '.join(RULE_TYPES)}, not {kind!r}", "type")
        dynamic_nat = False
        if kind in LITERAL_TYPES:
            data["type"], data["action"] = RuleType.LITERAL.value, LITERAL_TYPES[kind].value
        elif kind == "jump":
            data["type"], data["action"] = RuleType.JUMP.value, RuleAction.JUMP.value
            data["jump_chain_id"] = dto.get("jumpChainId")
            if data["jump_chain_id"] is None:
                raise bad_request("a jump rule needs the chain to jump to", "jumpChainId")
        elif kind in NAT_TYPES:
            data["type"] = RuleType.NAT.value
            data["dnat"], data["reverse"] = NAT_TYPES[kind]
            action = dto.get("flowAction") or "accept"
            if action not in ("accept", "continue", "return"):
                raise bad_request(f"must be accept, continue or return, not {action!r}", "flowAction")
            data["action"] = action
            targets = dto.get("natTargets") or []
            if not isinstance(targets, list):
                raise bad_request("must be a list", "natTargets")
            data["nat_targets"] = [nat_target_in(t, i) for i, t in enumerate(targets)]
            dynamic_nat = any(t["tp_start"] or t["tp_end"] for t in data["nat_targets"])
        elif kind == "trace":
            data["type"], data["action"] = RuleType.TRACE.value, RuleAction.CONTINUE.value
            data["trace_request_id"] = dto.get("requestId")
        else:
            data["type"] = RuleType.L2TRANSFORM.value
            data["action"] = RuleAction.REDIRECT.value if kind == "redirect" else RuleAction.ACCEPT.value
        l4 = dto.get("tpSrc") is not None or dto.get("tpDst") is not None
        default_policy = "unfragmented" if dynamic_nat else ("header" if l4 else "any")
        data["condition"] = condition_in(dto, old.condition if old else None, default_policy)
        if dynamic_nat and data["condition"]["fragment_policy"] in ("any", "nonheader"):
            raise bad_request("dynamic NAT rules can match only unfragmented or header fragments",
                              "fragmentPolicy")

    def create_ops(self, obj: Rule, ctx: Ctx) -> list[Op]:
        chain = ctx.store.get(Chain, obj.chain_id or "")
        position = ctx.extras.get("position") or 1
        if position < 1 or position > len(chain.rule_ids) + 1:
            raise bad_request(f"must be between 1 and {len(chain.rule_ids) + 1}, not {position}", "position")
        return [Create(obj), UpdateWith(Chain, chain.id, _place(obj.id, position))]


def _place(rule_id: str, position: int) -> Callable[[Record], Record]:
    """An UpdateWith function moving `rule_id` (just appended by the binding) to its 1-based position."""
    def move(chain: Record) -> Record:
        assert isinstance(chain, Chain)
        others = [r for r in chain.rule_ids if r != rule_id]
        others.insert(min(position, len(others) + 1) - 1, rule_id)
        return chain.replace(rule_ids=tuple(others))
    return move


def nat_target_in(target: Any, index: int) -> dict[str, Any]:
    prop = f"natTargets[{index}]"
    if not isinstance(target, dict):
        raise bad_request("must be an object {addressFrom, addressTo, portFrom, portTo}", prop)
    start, end = target.get("addressFrom"), target.get("addressTo")
    if start is None:
        raise bad_request("is required", f"{prop}.addressFrom")
    return {"nw_start": start, "nw_end": end if end is not None else start,
            "tp_start": target.get("portFrom") or 0, "tp_end": target.get("portTo") or 0}


CHAINS = ChainResource()
RULES = RuleResource()


def register(router: APIRouter) -> None:
    add_crud(router, CHAINS, update=False)
    add_crud(router, RULES, list_=False, create=False, update=False)
    add_children(router, CHAINS, "rules", RULES, lambda c, ctx: ctx.store.list(Rule, c.rule_ids))
