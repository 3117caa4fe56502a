"""QoS policies and their rules (spec 7.3: QOSPolicy-v1, QOSRuleBWLimit-v1, QOSRuleDSCP-v1; semantics in 3.13).

    /qos_policies[/{id}]                 GET POST | GET PUT DELETE
    /qos_policies/{id}/qos_bw_limit_rules  GET POST      /qos_bw_limit_rules/{id}  GET PUT DELETE
    /qos_policies/{id}/qos_dscp_rules      GET POST      /qos_dscp_rules/{id}      GET PUT DELETE

A policy is applied by naming it in a port's or bridge's `qosPolicyId`. Its rules are bandwidth limits
(`maxKbps`, `maxBurstKb`: ingress policing) and DSCP marks (`dscpMark`, 0-63). Deleting a policy deletes its
rules and clears it from ports and bridges (the store's bindings).

As the original (which serves Neutron through this endpoint), a policy DTO also carries its rules inline,
Neutron-style: `rules: [{id, type: "bandwidth_limit" | "dscp_marking", max_kbps, max_burst_kbps, dscp_mark}]`.
A POST creates the rules it lists; a PUT that has `rules` makes the policy's rules exactly those (creating,
updating and deleting by id), a PUT without it leaves them alone. The tenant may be written `tenantId` or
`tenant_id` (the original's spelling); both are answered.

Tenancy: a policy belongs to its tenant (a tenant admin's policies default to its tenant); a `shared`
policy may be read by everyone. Rules follow their policy.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import APIRouter

from midonet.api.errors import ApiError, bad_request
from midonet.api.resource import Ctx, Dto, Resource, add_children, add_crud
from midonet.store.base import Create, Delete, Op, Update
from midonet.topology.errors import ValidationError
from midonet.topology.ids import new_id
from midonet.topology.record import Record, from_dict
from midonet.topology.services import QosPolicy, QosRuleBandwidthLimit, QosRuleDscp

R = TypeVar("R", bound=Record)
QosRule = QosRuleBandwidthLimit | QosRuleDscp

BW_LIMIT, DSCP = "bandwidth_limit", "dscp_marking"
# Neutron rule member -> model field, per rule type.
INLINE_FIELDS: dict[str, dict[str, str]] = {
    BW_LIMIT: {"max_kbps": "max_kbps", "max_burst_kbps": "max_burst_kb", "max_burst_kb": "max_burst_kb"},
    DSCP: {"dscp_mark": "dscp_mark"},
}


class PolicyOwned(Resource[R]):
    """Tenancy through a QoS policy: its tenant writes, everyone reads a shared one."""

    def policy(self, obj: R, ctx: Ctx) -> QosPolicy | None:
        raise NotImplementedError

    def tenant_of(self, obj: R, ctx: Ctx) -> str | None:
        policy = self.policy(obj, ctx)
        return policy.tenant_id if policy is not None else None

    def _shared(self, obj: R, ctx: Ctx) -> bool:
        policy = self.policy(obj, ctx)
        return policy is not None and policy.shared

    def check_read(self, obj: R, ctx: Ctx) -> None:
        if not self._shared(obj, ctx):
            super().check_read(obj, ctx)

    def visible(self, objs: Iterable[R], ctx: Ctx) -> list[R]:
        wanted = ctx.query.get("tenant_id")
        return [o for o in objs
                if (wanted is None or self.tenant_of(o, ctx) == wanted)
                and (self._shared(o, ctx) or ctx.principal.can_read(self.tenant_of(o, ctx)))]


def inline_rule_in(raw: Any, policy_id: str, index: int) -> QosRule:
    """The rule record of the Neutron-style inline rule `raw` (`rules[index]` of a policy DTO)."""
    prop = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise bad_request("must be a rule object {id, type, ...}", prop)
    kind = raw.get("type")
    if kind not in INLINE_FIELDS:
        raise bad_request(f"must be {BW_LIMIT} or {DSCP}, not {kind!r}", f"{prop}.type")
    data: dict[str, Any] = {"id": raw.get("id") or new_id(), "policy_id": policy_id}
    for member, attr in INLINE_FIELDS[kind].items():
        if raw.get(member) is not None:
            data[attr] = raw[member]
    cls: type[QosRule] = QosRuleBandwidthLimit if kind == BW_LIMIT else QosRuleDscp
    try:
        return from_dict(cls, data)
    except ValidationError as e:
        violations = [{"property": f"{prop}.{'max_burst_kbps' if v.field == 'max_burst_kb' else v.field}",
                       "message": v.message} for v in e.violations]
        raise ApiError(400, "; ".join(f"{v['property']}: {v['message']}" for v in violations), violations) from None


def inline_rule_out(rule: QosRule) -> Dto:
    if isinstance(rule, QosRuleBandwidthLimit):
        return {"id": rule.id, "type": BW_LIMIT, "max_kbps": rule.max_kbps, "max_burst_kbps": rule.max_burst_kb,
                "dscp_mark": None}
    return {"id": rule.id, "type": DSCP, "max_kbps": None, "max_burst_kbps": None, "dscp_mark": rule.dscp_mark}


class QosPolicyResource(PolicyOwned[QosPolicy]):
    cls = QosPolicy
    path = "qos_policies"
    media = ("QOSPolicy", "QosPolicy")
    version = 1
    fields = (("name", "name"), ("description", "description"), ("shared", "shared"), ("tenantId", "tenant_id"))

    def policy(self, obj: QosPolicy, ctx: Ctx) -> QosPolicy | None:
        return obj

    def rules(self, obj: QosPolicy, ctx: Ctx) -> list[QosRule]:
        bw: list[QosRule] = list(ctx.store.list(QosRuleBandwidthLimit, obj.bandwidth_limit_rule_ids))
        return bw + list(ctx.store.list(QosRuleDscp, obj.dscp_marking_rule_ids))

    def dto_extra(self, obj: QosPolicy, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        return {"tenant_id": obj.tenant_id, "bwLimitRules": f"{u}/qos_bw_limit_rules",
                "dscpRules": f"{u}/qos_dscp_rules", "rules": [inline_rule_out(r) for r in self.rules(obj, ctx)]}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: QosPolicy | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if "tenantId" not in dto and "tenant_id" in dto:
            data["tenant_id"] = dto["tenant_id"]
        if old is None and data.get("tenant_id") is None and not ctx.principal.is_admin:
            data["tenant_id"] = ctx.principal.tenant
        if data.get("shared") is None:
            data["shared"] = False
        raw = dto.get("rules")
        if raw is None:
            ctx.extras.pop("rules", None)
            return
        if not isinstance(raw, list):
            raise bad_request("must be a list of rules", "rules")
        rules = [inline_rule_in(r, str(data["id"]), i) for i, r in enumerate(raw)]
        if len({r.id for r in rules}) != len(rules):
            raise bad_request("lists the same rule id twice", "rules")
        ctx.extras["rules"] = rules

    def create_ops(self, obj: QosPolicy, ctx: Ctx) -> list[Op]:
        return [Create(obj), *(Create(r) for r in ctx.extras.get("rules", []))]

    def update_ops(self, obj: QosPolicy, old: QosPolicy, ctx: Ctx) -> list[Op]:
        ops: list[Op] = [Update(obj)]
        if "rules" not in ctx.extras:
            return ops
        current = {r.id: r for r in self.rules(old, ctx)}
        wanted: list[QosRule] = ctx.extras["rules"]
        for rule in wanted:
            stored = current.pop(rule.id, None)
            if stored is None:
                ops.append(Create(rule))
            elif type(stored) is not type(rule):
                raise bad_request(f"rule {rule.id} is not a {inline_rule_out(rule)['type']} rule", "rules")
            elif stored != rule:
                ops.append(Update(rule))
        ops.extend(Delete(type(r), r.id) for r in current.values())
        return ops


class QosRuleResource(PolicyOwned[R]):
    """The rules of one kind, at `/<path>/{id}` and under `/qos_policies/{id}/<path>`."""

    read_only = (("policyId", "policy_id"),)

    def policy(self, obj: R, ctx: Ctx) -> QosPolicy | None:
        policy_id = getattr(obj, "policy_id", None)
        return ctx.store.find(QosPolicy, policy_id) if isinstance(policy_id, str) else None

    def dto_extra(self, obj: R, ctx: Ctx) -> Dto:
        return {"policy": f"{ctx.base}/qos_policies/{getattr(obj, 'policy_id', None)}"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: R | None, ctx: Ctx, parent_id: str | None) -> None:
        data["policy_id"] = parent_id or getattr(old, "policy_id", None)


class BwLimitRuleResource(QosRuleResource[QosRuleBandwidthLimit]):
    cls = QosRuleBandwidthLimit
    path = "qos_bw_limit_rules"
    media = ("QOSRuleBWLimit", "QosRuleBandwidthLimit")
    version = 1
    fields = (("maxKbps", "max_kbps"), ("maxBurstKb", "max_burst_kb"))


class DscpRuleResource(QosRuleResource[QosRuleDscp]):
    cls = QosRuleDscp
    path = "qos_dscp_rules"
    media = ("QOSRuleDSCP", "QosRuleDscp")
    version = 1
    fields = (("dscpMark", "dscp_mark"),)


QOS_POLICIES = QosPolicyResource()
BW_LIMIT_RULES = BwLimitRuleResource()
DSCP_RULES = DscpRuleResource()


def register(router: APIRouter) -> None:
    add_crud(router, QOS_POLICIES)
    add_crud(router, BW_LIMIT_RULES, list_=False, create=False)
    add_crud(router, DSCP_RULES, list_=False, create=False)
    add_children(router, QOS_POLICIES, "qos_bw_limit_rules", BW_LIMIT_RULES,
                 lambda p, ctx: ctx.store.list(QosRuleBandwidthLimit, p.bandwidth_limit_rule_ids))
    add_children(router, QOS_POLICIES, "qos_dscp_rules", DSCP_RULES,
                 lambda p, ctx: ctx.store.list(QosRuleDscp, p.dscp_marking_rule_ids))


__all__ = ["BW_LIMIT_RULES", "DSCP_RULES", "QOS_POLICIES", "register"]
