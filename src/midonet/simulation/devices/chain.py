"""Rule chains: evaluating a device's filters (spec 3.5; the original's `Chain.scala`, `rules/*.java`).

Role: `apply_filters(ctx, chain_ids, stage)` runs the chains a port, bridge or router filters with, in order,
until one answers other than ACCEPT; the caller acts on the answer (the port, bridge and router each know what a
DROP or REJECT means for them).

Evaluation of one chain:
* rules in order; a rule whose condition does not match is skipped;
* LITERAL: ACCEPT, DROP, REJECT decide; RETURN leaves the chain; CONTINUE goes on;
* JUMP: the target chain is evaluated inline; if it RETURNs or falls off its end, evaluation resumes after the
  jump; a jump to a chain already on the path is ignored (a loop);
* TRACE: continues (tracing requests arrive with the trace engineer);
* falling off the end of the top chain, or RETURN from it, is ACCEPT.
Every chain evaluated tags the flow with its id (a chain change invalidates the flow); a rule with a meter tags
it with ("meter", name).

* NAT (`RuleType.NAT`: snat, dnat, rev_snat, rev_dnat, spec 3.7): `devices.nat.apply_rule` translates and answers
  the rule's action (ACCEPT, CONTINUE or RETURN), or CONTINUE when the rule does not apply.

Seam left for later (answers CONTINUE, so the chain goes on, and says so in the trace): L2 transform / redirect
rules (`RuleType.L2TRANSFORM`, spec 3.10): `_l2_transform`.

May import: `midonet.topology`, `simulation.context`, `simulation.topology`, `simulation.pipeline`,
`simulation.devices.nat`.
"""

from __future__ import annotations

from midonet.simulation.context import PacketContext
from midonet.simulation.devices import nat
from midonet.simulation.pipeline import Stage
from midonet.simulation.topology import ChainDevice, RuleDevice
from midonet.topology.chains import RuleAction, RuleType
from midonet.topology.ids import ChainId

ACCEPT = RuleAction.ACCEPT
CONTINUE = RuleAction.CONTINUE
RETURN = RuleAction.RETURN
DROP = RuleAction.DROP
REJECT = RuleAction.REJECT
REDIRECT = RuleAction.REDIRECT

_LITERAL = RuleType.LITERAL
_JUMP = RuleType.JUMP
_TRACE = RuleType.TRACE
_NAT = RuleType.NAT


def apply_filters(ctx: PacketContext, chain_ids: tuple[ChainId, ...], stage: Stage) -> RuleAction:
    """Run `chain_ids` in order; the first answer other than ACCEPT, else ACCEPT."""
    for chain_id in chain_ids:
        action = process_chain(ctx, ctx.topology.get_chain(chain_id), stage)
        if action is not ACCEPT:
            return action
    return ACCEPT


def process_chain(ctx: PacketContext, chain: ChainDevice, stage: Stage) -> RuleAction:
    """One top-level chain: its decisive answer, or ACCEPT."""
    action = _evaluate(ctx, chain, (chain.id,), stage)
    if action is CONTINUE or action is RETURN:
        action = ACCEPT
    if ctx.trace is not None:
        ctx.note(stage, chain.id, f"chain {chain.name or chain.id[:8]}: {action.value}")
    return action


def _evaluate(ctx: PacketContext, chain: ChainDevice, path: tuple[ChainId, ...], stage: Stage) -> RuleAction:
    ctx.tags.add(chain.id)
    for rule in chain.rules:
        if not rule.condition.matches(ctx):
            continue
        if rule.meter_name is not None:
            ctx.tags.add(("meter", rule.meter_name))
        if ctx.trace is not None:
            position = chain.rules.index(rule)
            ctx.note(stage, chain.id, f"rule {position} ({rule.condition}) matched: {_describe(rule)}")
        kind = rule.type
        if kind is _LITERAL:
            if rule.action is CONTINUE:
                continue
            return rule.action
        if kind is _JUMP:
            target = rule.jump_chain_id
            if target is None or target in path:
                ctx.note(stage, chain.id, "jump ignored: the target is already on the path")
                continue
            action = _evaluate(ctx, ctx.topology.get_chain(target), (*path, target), stage)
            if action is RETURN or action is CONTINUE:
                continue
            return action
        if kind is _TRACE:
            continue
        action = nat.apply_rule(ctx, rule, stage) if kind is _NAT else _l2_transform(ctx, rule, stage)
        if action is not CONTINUE:
            return action
    return CONTINUE


def _l2_transform(ctx: PacketContext, rule: RuleDevice, stage: Stage) -> RuleAction:
    """Seam: VLAN push/pop and redirect rules are not simulated yet (spec 3.10); the rule is skipped."""
    ctx.note(stage, rule.id, "L2 transform / redirect rule not simulated yet: skipped")
    return CONTINUE


def _describe(rule: RuleDevice) -> str:
    if rule.type is _JUMP:
        return f"jump to {rule.jump_chain_id}"
    if rule.type is _LITERAL:
        return rule.action.value
    return f"{rule.type.value} ({rule.action.value})"
