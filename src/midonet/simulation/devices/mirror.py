"""Port mirroring: copy matching packets to another port, as they are at that point (spec 3.9; `Mirror.scala`).

Role: a mirror is a to-port and a list of conditions, OR-ed: the first that matches sends a copy of the packet to
the egress of the to-port (an analyser's port, usually exterior). Devices carry mirror ids at fixed points of the
pipeline (`simulation.pipeline`), and call the hooks here:

    port ingress   pre-in-filter (`inbound_mirror_ids`) ─► filter ─► post-in-filter (`post_in_filter_mirror_ids`)
    port egress    pre-out-filter (`pre_out_filter_mirror_ids`) ─► filter ─► post-out-filter (`outbound_mirror_ids`)
    bridge/router  inbound mirrors before the inbound filter; outbound mirrors after the outbound filter

`mirror_in(ctx, ids, stage, device, rest)` runs where the rest of the device's work is still to come: without a
match it is just `rest()`; with matches it answers ``Fork((ToPort(to-port)..., Continue(rest)))``, so the driver
first simulates each copy from the packet as it is now, restores the packet, and then goes on. `mirror_out(...,
step)` runs where the device already decided (`ToPort`, `Fork`): ``Fork((ToPort(to-port)..., step))``. As the
original (`MirroringDevice.mirror`), each matching mirror wraps what came before, so with mirrors m1, m2 the copies
run m2, m1, then the packet itself; their outputs come first in the flow's actions.

Every mirror evaluated tags the flow with its id (a mirror change invalidates it) and counts as a traversed device
towards the loop guard (`MAX_DEVICES_TRAVERSED`). A mirror without conditions matches nothing. What the conditions
read is part of the flow's wildcard, as for rules. A copy's verdict merges with the packet's like any fork branch:
a copy forwarded and the packet dropped by a later filter installs a flow that only emits the copy.

`MirrorDevice` is the snapshot; `MirrorMapper` builds it from a topology `Mirror` record.

May import: `midonet.topology`, `simulation.context`, `simulation.conditions`, `simulation.results`,
`simulation.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from midonet.simulation.conditions import ConditionDevice, compile_condition
from midonet.simulation.context import PacketContext
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Continue, Fork, Step, ToPort
from midonet.topology.groups import IPAddrGroup
from midonet.topology.ids import PortId
from midonet.topology.services import Mirror


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorDevice:
    """A mirror: copies of packets matching any of `conditions` go to the egress of `to_port`."""

    id: str
    to_port: PortId
    conditions: tuple[ConditionDevice, ...] = ()

    def matching(self, ctx: PacketContext) -> ConditionDevice | None:
        """The first condition the packet matches, or None (conditions are OR-ed, read in order)."""
        for condition in self.conditions:
            if condition.matches(ctx):
                return condition
        return None


class MirrorMapper:
    """Mirror record + the IP address groups its conditions name -> `MirrorDevice`."""

    @staticmethod
    def map(mirror: Mirror, ip_addr_groups: Mapping[str, IPAddrGroup]) -> MirrorDevice:
        groups = {gid: frozenset(g.addresses) for gid, g in ip_addr_groups.items()}
        return MirrorDevice(id=mirror.id, to_port=PortId(mirror.to_port_id or ""),
                            conditions=tuple(compile_condition(c, groups) for c in mirror.conditions))


def mirror_in(ctx: PacketContext, mirror_ids: tuple[str, ...], stage: Stage, device: str | None,
              rest: Callable[[], Step]) -> Step:
    """Mirrors placed before more work of the device: copies first, then `rest()` from the same packet."""
    copies = _copies(ctx, mirror_ids, stage, device)
    if not copies:
        return rest()
    return Fork((*copies, Continue(rest)))


def mirror_out(ctx: PacketContext, mirror_ids: tuple[str, ...], stage: Stage, device: str | None,
               step: Step) -> Step:
    """Mirrors placed after the device decided `step`: copies first, then `step`."""
    copies = _copies(ctx, mirror_ids, stage, device)
    if not copies:
        return step
    return Fork((*copies, step))


def _copies(ctx: PacketContext, mirror_ids: tuple[str, ...], stage: Stage, device: str | None) -> list[Step]:
    """Evaluate `mirror_ids` in order; the copies to make, the last matching mirror first."""
    copies: list[Step] = []
    get_mirror = ctx.topology.get_mirror
    for mirror_id in mirror_ids:
        mirror = get_mirror(mirror_id)
        ctx.tags.add(mirror.id)
        ctx.devices_traversed += 1
        condition = mirror.matching(ctx)
        if condition is not None:
            copies.insert(0, ToPort(mirror.to_port))
        if ctx.trace is not None:
            if condition is None:
                ctx.note(stage, device, f"mirror {mirror.id[:8]}: no condition matches")
            else:
                ctx.note(stage, device, f"mirror {mirror.id[:8]} ({condition}): copy to port {mirror.to_port[:8]}")
    return copies
