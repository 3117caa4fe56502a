"""Ports: where a packet enters and leaves a device (spec 3.2; the original's `Port.scala`).

Role: `ingress(ctx, port)` takes a packet into the device the port belongs to; `egress(ctx, port)` takes it out:
an exterior port emits it (an output of the flow), an interior port hands it to its peer's ingress, an unplugged
port drops it (temporary drop). Both run the port's filters. The stages, in order (`simulation.pipeline`):

    ingress: tag port, set in port and groups, loop guard  ─► pre-in mirrors ─► inbound filter
             ─► post-in mirrors ─► bridge.process / router.process
    egress:  tag port, set out port and groups ─► pre-out mirrors ─► outbound filter ─► post-out mirrors
             ─► emit: exterior -> output | interior -> peer ingress | unplugged -> temporary drop

An exterior emission of a forward flow whose connection was looked up requests the connection's return key, built
from the packet as it leaves and the port's device (`PacketContext.track_connection`, spec 3.6).

Filters: ACCEPT continues; DROP drops; REJECT drops and, on a router port, sends ICMP admin-prohibited to the
sender; REDIRECT (L2 insertion) is a seam and drops temporarily for now. A port administratively down rejects
everything both ways. A bridge port never sends a packet back out of the port it came in by; a bridge port with a
VLAN id takes that VLAN's tag off a tagged frame on its way out (spec 3.2, `AbstractBridgePort`). A router port drops
IPv6 (the original hands it to its FIP64 path, not simulated here); a router port asked to send a frame whose
source and destination MAC are equal takes it back in (a hairpin). The loop guard is checked on egress too.

Mirrors (spec 3.9, `devices.mirror`) at each of the four positions copy the packet as it is there to the mirror's
to-port; the rest of the port's work is the continuation of that fork.

May import: `midonet.packets`, `simulation.*`, `simulation.devices.{bridge,router,chain,mirror}`.
"""

from __future__ import annotations

from midonet.packets.ethernet import ETH_TYPE_IPV6
from midonet.simulation import icmp
from midonet.simulation.context import PacketContext
from midonet.simulation.devices import bridge, router
from midonet.simulation.devices.chain import ACCEPT, DROP, REJECT, apply_filters
from midonet.simulation.devices.mirror import mirror_in
from midonet.simulation.pipeline import MAX_DEVICES_TRAVERSED, Stage
from midonet.simulation.results import EMITTED, Drop, Step, TemporaryDrop
from midonet.simulation.topology import BridgePortDevice, PortDevice, RouterPortDevice
from midonet.topology.ids import ChainId


def ingress(ctx: PacketContext, port: PortDevice) -> Step:
    """The packet enters the network (or the next device) by `port`."""
    if ctx.devices_traversed >= MAX_DEVICES_TRAVERSED:
        return TemporaryDrop(f"more than {MAX_DEVICES_TRAVERSED} devices traversed: a loop")
    ctx.devices_traversed += 1
    ctx.tags.add(port.id)
    ctx.in_port = port.id
    ctx.in_port_groups = port.port_groups
    if port.exterior:
        ctx.port_groups = port.port_groups
    if ctx.ingress_device is None:
        ctx.ingress_device = port.device_id
    ctx.current_device = port.device_id
    ctx.nw_dst_rewritten = False
    if ctx.trace is not None:
        ctx.note(Stage.PORT_INGRESS, port.id, f"ingress on {_kind(port)} port of device {port.device_id[:8]}")
    if port.inbound_mirror_ids:
        return mirror_in(ctx, port.inbound_mirror_ids, Stage.PORT_PRE_IN_MIRRORS, port.id,
                         lambda: _filter_in(ctx, port))
    return _filter_in(ctx, port)


def _filter_in(ctx: PacketContext, port: PortDevice) -> Step:
    if port.inbound_filters or not port.admin_state_up:
        refused = _filter(ctx, port, port.inbound_filters, Stage.PORT_IN_FILTER)
        if refused is not None:
            return refused
    if port.post_in_filter_mirror_ids:
        return mirror_in(ctx, port.post_in_filter_mirror_ids, Stage.PORT_POST_IN_MIRRORS, port.id,
                         lambda: _enter_device(ctx, port))
    return _enter_device(ctx, port)


def _enter_device(ctx: PacketContext, port: PortDevice) -> Step:
    if isinstance(port, RouterPortDevice):
        if ctx.match.eth_type == ETH_TYPE_IPV6:
            return Drop("IPv6 on a router port")
        return router.process(ctx, ctx.topology.get_router(port.router_id), port)
    assert isinstance(port, BridgePortDevice)
    return bridge.process(ctx, ctx.topology.get_bridge(port.bridge_id))


def egress(ctx: PacketContext, port: PortDevice) -> Step:
    """The packet leaves its device by `port`."""
    if ctx.devices_traversed >= MAX_DEVICES_TRAVERSED:
        return TemporaryDrop(f"more than {MAX_DEVICES_TRAVERSED} devices traversed: a loop")
    if isinstance(port, BridgePortDevice):
        if port.id == ctx.in_port:
            return Drop("a bridge does not send a frame back out of its ingress port")
        if port.vlan_id:
            vlans = ctx.match.vlan_ids or ()
            if port.vlan_id in vlans:
                ctx.match.vlan_ids = tuple(v for v in vlans if v != port.vlan_id)
    elif ctx.match.peek("eth_src") == ctx.match.peek("eth_dst"):
        return ingress(ctx, port)        # a router sending to its own MAC: back in (hairpin)
    ctx.tags.add(port.id)
    ctx.out_port = port.id
    ctx.out_port_groups = port.port_groups
    if ctx.trace is not None:
        ctx.note(Stage.PORT_EGRESS, port.id, f"egress from {_kind(port)} port of device {port.device_id[:8]}")
    if port.pre_out_filter_mirror_ids:
        return mirror_in(ctx, port.pre_out_filter_mirror_ids, Stage.PORT_PRE_OUT_MIRRORS, port.id,
                         lambda: _filter_out(ctx, port))
    return _filter_out(ctx, port)


def _filter_out(ctx: PacketContext, port: PortDevice) -> Step:
    if port.outbound_filters or not port.admin_state_up:
        refused = _filter(ctx, port, port.outbound_filters, Stage.PORT_OUT_FILTER)
        if refused is not None:
            return refused
    if port.outbound_mirror_ids:
        return mirror_in(ctx, port.outbound_mirror_ids, Stage.PORT_POST_OUT_MIRRORS, port.id,
                         lambda: _emit(ctx, port))
    return _emit(ctx, port)


def _emit(ctx: PacketContext, port: PortDevice) -> Step:
    """Exterior: an output of the flow; interior: into the peer port; unplugged: a temporary drop."""
    if port.exterior:
        ctx.emit(port.id)
        ctx.track_connection(port.device_id)
        if ctx.trace is not None:
            ctx.note(Stage.PORT_EMIT, port.id, f"output on host {str(port.host_id)[:8]} {port.interface_name}")
        return EMITTED
    if port.peer_id is not None:
        return ingress(ctx, ctx.topology.get_port(port.peer_id))
    return TemporaryDrop("egress port is unplugged (neither bound nor linked)")


def _filter(ctx: PacketContext, port: PortDevice, chains: tuple[ChainId, ...], stage: Stage) -> Step | None:
    """Run a port filter; None to go on, else the verdict (the original's `InAndOutFilters`)."""
    if not port.admin_state_up:
        _reject(ctx, port)
        return Drop("port is administratively down")
    action = apply_filters(ctx, chains, stage)
    if action is ACCEPT:
        return None
    if action is DROP:
        return Drop(f"{stage.label} dropped the packet")
    if action is REJECT:
        _reject(ctx, port)
        return Drop(f"{stage.label} rejected the packet")
    return TemporaryDrop(f"{stage.label} answered {action.value}, which a port filter cannot do yet")


def _reject(ctx: PacketContext, port: PortDevice) -> None:
    """A router port tells the sender with ICMP admin-prohibited, from the port the packet came in by."""
    if not isinstance(port, RouterPortDevice) or ctx.in_port is None:
        return
    if port.id == ctx.in_port:
        ingress_port: PortDevice = port
        ctx.pre_routing_match = ctx.match       # the router has not seen the packet yet
    else:
        ingress_port = ctx.topology.get_port(ctx.in_port)
    if isinstance(ingress_port, RouterPortDevice):
        icmp.send_error(ctx, ingress_port, icmp.UNREACHABLE, icmp.PROHIBITED, "admin prohibited (port filter)")


def _kind(port: PortDevice) -> str:
    where = "exterior" if port.exterior else "interior" if port.interior else "unplugged"
    return f"{where} {'router' if isinstance(port, RouterPortDevice) else 'bridge'}"
