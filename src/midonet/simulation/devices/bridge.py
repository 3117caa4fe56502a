"""The bridge: a virtual L2 switch with MAC learning and ARP suppression (spec 3.3; the original's `Bridge.scala`).

Role: `process(ctx, bridge)` decides where a frame that entered the bridge goes. In order:

1. tag the bridge; a multicast or broadcast source MAC drops (after the inbound mirrors, as the original); a bridge
   administratively down drops;
2. inbound mirrors; inbound filter, skipped for VLAN-tagged frames (a DROP still learns the source MAC);
3. MAC learning: unless the source is a peer router port's MAC, request one more reference to
   (source MAC, VLAN, ingress port) (`MacLearned`);
4. forwarding:
   * ARP broadcast request, untagged, not gratuitous, for an address of a peer router port or in the bridge's
     IPv4 -> MAC table: the bridge answers itself out of the ingress port (ARP suppression) -> Consumed;
   * other ARP broadcast: for a peer router port's address -> to that interior port; gratuitous -> learn
     IP -> MAC (`Ip4MacLearned`), flood, userspace-only; else flood;
   * other multicast or broadcast destination -> flood;
   * unicast: a peer router port's MAC -> that interior port; the source MAC itself -> the ingress port;
     else the MAC table: unknown -> flood; the ingress port -> temporary drop (L2 loop); else that port;
5. outbound filter (`out_port` set for unicast), skipped when the frame is VLAN-tagged at this point; outbound
   mirrors (also for tagged frames).
Flooding forks to every exterior port (VXLAN ports included) but the ingress port.

VLANs (spec 3.3.5 last item, `docs/l2-gateway.md`; the original's `unicastAction` / `multicastAction`). A bridge
with interior ports carrying a VLAN id is VLAN-aware (a "VAB"): its exterior ports are trunks, each VLAN port leads
to a VLAN-unaware bridge. Every decision to send to a port goes through `_to_port`, every flood through `_flood`:
* unicast from a VLAN port V: push V, then to the port (a trunk); unicast to a VLAN port V: only a frame whose outer
  tag is V goes, with V popped; an untagged frame or another VLAN drops;
* flood from a trunk, tagged V: flood the trunks (still tagged) and send to VLAN port V (which pops V on egress);
  untagged or a VLAN without a port: flood the trunks; flood from VLAN port V: push V, flood the trunks;
* a VLAN-unaware bridge linked to a VAB (`vlan_peer_port`) floods to that link too, unless the frame came by it;
* MAC learning is per VLAN: 0 on a VLAN-unaware bridge; else the ingress VLAN port's VLAN, else the frame's outer
  tag, else 0.

Flow tags: the bridge; (mac, bridge, MAC, VLAN, port) for the source and a learned destination; (broadcast,
bridge); (flooded, bridge, VLAN, MAC) for an unknown destination; (arp_requests, bridge); (bridge_port, bridge,
interior port).

May import: `midonet.packets`, `midonet.state`, `simulation.*`, `simulation.devices.{chain,mirror}`.
"""

from __future__ import annotations

from midonet.packets.arp import OP_REQUEST
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP
from midonet.simulation import icmp
from midonet.simulation.context import PacketContext
from midonet.simulation.devices.chain import ACCEPT, DROP, REJECT, apply_filters
from midonet.simulation.devices.mirror import mirror_in, mirror_out
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Consumed, Drop, Fork, Step, TemporaryDrop, ToPort
from midonet.simulation.topology import BridgeDevice
from midonet.state.mac_table import Ip4MacLearned, MacLearned
from midonet.topology.ids import PortId

_MULTICAST_DIGITS = frozenset("13579bdfBDF")   # second hex digit of a MAC with the group bit set


def is_multicast(mac: str | None) -> bool:
    return mac is not None and mac[1] in _MULTICAST_DIGITS


def process(ctx: PacketContext, bridge: BridgeDevice) -> Step:
    src = ctx.match.eth_src
    ctx.tags.add(bridge.id)
    if is_multicast(src) or src is None:
        if bridge.inbound_mirror_ids:
            return mirror_in(ctx, bridge.inbound_mirror_ids, Stage.BRIDGE_PRE_IN_MIRRORS, bridge.id,
                             lambda: Drop("multicast or broadcast source MAC"))
        return Drop("multicast or broadcast source MAC")
    if not bridge.admin_state_up:
        return Drop("bridge is administratively down")
    if bridge.inbound_mirror_ids:
        return mirror_in(ctx, bridge.inbound_mirror_ids, Stage.BRIDGE_PRE_IN_MIRRORS, bridge.id,
                         lambda: _bridge(ctx, bridge, src))
    return _bridge(ctx, bridge, src)


def _bridge(ctx: PacketContext, bridge: BridgeDevice, src: str) -> Step:
    """Filter, learn and forward (the original's `normalProcess`)."""
    m = ctx.match
    ctx.out_port = None
    tagged = bool(m.vlan_ids)
    vlan = _learning_vlan(ctx, bridge)
    if bridge.inbound_filters and not tagged:
        action = apply_filters(ctx, bridge.inbound_filters, Stage.BRIDGE_IN_FILTER)
        if action is not ACCEPT:
            _learn(ctx, bridge, src, vlan)
            if action is DROP or action is REJECT:
                return Drop(f"bridge inbound filter: {action.value}")
            return TemporaryDrop(f"bridge inbound filter answered {action.value}")
    _learn(ctx, bridge, src, vlan)
    dst = m.eth_dst
    if dst == BROADCAST and m.eth_type == ETH_TYPE_ARP:
        step = _arp(ctx, bridge, src, tagged)
    elif is_multicast(dst):
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"multicast destination {dst}: flood")
        step = _flood(ctx, bridge)
    else:
        step = _unicast(ctx, bridge, src, str(dst), vlan)
    if not isinstance(step, (ToPort, Fork)):
        return step
    return _post_bridging(ctx, bridge, step)


def _learning_vlan(ctx: PacketContext, bridge: BridgeDevice) -> int:
    """0 on a VLAN-unaware bridge; else the ingress VLAN port's VLAN, else the frame's outer tag, else 0."""
    if not bridge.vlan_aware:
        return 0
    in_vlan = bridge.vlan_of(ctx.in_port)
    if in_vlan is not None:
        return in_vlan
    vlans = ctx.match.vlan_ids
    return vlans[0] if vlans else 0


def _learn(ctx: PacketContext, bridge: BridgeDevice, src: str, vlan: int) -> None:
    if src in bridge.router_ports_by_mac or ctx.in_port is None:
        return
    ctx.request(MacLearned(bridge.id, vlan, src, ctx.in_port))
    if ctx.trace is not None:
        ctx.note(Stage.BRIDGE_MAC_LEARNING, bridge.id, f"learn {src} on VLAN {vlan} at port {ctx.in_port[:8]}")


def _arp(ctx: PacketContext, bridge: BridgeDevice, src: str, tagged: bool) -> Step:
    m = ctx.match
    tpa = m.arp_tpa
    spa = m.arp_spa
    if m.arp_op == OP_REQUEST and not tagged and spa != tpa and tpa is not None and ctx.in_port is not None:
        mac = bridge.router_macs_by_ip.get(tpa) or ctx.tables.ip4_mac.lookup(bridge.id, tpa)
        if mac is not None:
            icmp.arp_reply(ctx, ctx.in_port, mac, f"ARP reply for {tpa} from bridge {bridge.id[:8]}")
            if ctx.trace is not None:
                ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"ARP request for {tpa}: answered with {mac}")
            return Consumed(f"ARP request for {tpa} answered by the bridge")
    router_mac = bridge.router_macs_by_ip.get(tpa) if tpa is not None else None
    if router_mac is not None:
        port = bridge.router_ports_by_mac[router_mac]
        ctx.tags.add(("bridge_port", bridge.id, port))
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"ARP for router port {tpa}: to port {port[:8]}")
        return _to_port(ctx, bridge, port)
    ctx.tags.add(("arp_requests", bridge.id))
    if spa == tpa and spa is not None:
        ctx.request(Ip4MacLearned(bridge.id, spa, src))
        m.mark_userspace_only()
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"gratuitous ARP: {spa} is at {src}; flood")
    elif ctx.trace is not None:
        ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"ARP for {tpa}: flood")
    return _flood(ctx, bridge)


def _unicast(ctx: PacketContext, bridge: BridgeDevice, src: str, dst: str, vlan: int) -> Step:
    router_port = bridge.router_ports_by_mac.get(dst)
    if router_port is not None:
        ctx.tags.add(("bridge_port", bridge.id, router_port))
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"{dst} is a router port: to port {router_port[:8]}")
        return _to_port(ctx, bridge, router_port)
    in_port = ctx.in_port
    port: PortId | None = in_port if dst == src else ctx.tables.mac_table.lookup(bridge.id, vlan, dst)
    ctx.tags.add(("mac", bridge.id, src, vlan, in_port))
    if port is None:
        ctx.tags.add(("flooded", bridge.id, vlan, dst))
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"{dst} not learned on VLAN {vlan}: flood")
        return _flood(ctx, bridge)
    if port == in_port:
        return TemporaryDrop(f"{dst} resolves to the ingress port")
    ctx.tags.add(("mac", bridge.id, dst, vlan, port))
    if ctx.trace is not None:
        ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"{dst} is at port {port[:8]}")
    return _to_port(ctx, bridge, port)


def _to_port(ctx: PacketContext, bridge: BridgeDevice, port: PortId) -> Step:
    """To `port`, pushing or popping a VLAN on a VLAN-aware bridge (the original's `unicastAction`)."""
    if not bridge.vlan_aware:
        return ToPort(port)
    m = ctx.match
    in_vlan = bridge.vlan_of(ctx.in_port)
    if in_vlan is not None:
        m.vlan_ids = (in_vlan, *(m.vlan_ids or ()))
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"from VLAN port: push VLAN {in_vlan}")
        return ToPort(port)
    out_vlan = bridge.vlan_of(port)
    if out_vlan is None:
        return ToPort(port)
    vlans = m.vlan_ids or ()
    if not vlans:
        return Drop(f"port {port[:8]} carries VLAN {out_vlan}; the frame is untagged")
    if vlans[0] != out_vlan:
        return Drop(f"port {port[:8]} carries VLAN {out_vlan}; the frame is on VLAN {vlans[0]}")
    m.vlan_ids = tuple(v for v in vlans if v != out_vlan)
    if ctx.trace is not None:
        ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"to VLAN port: pop VLAN {out_vlan}")
    return ToPort(port)


def _flood(ctx: PacketContext, bridge: BridgeDevice) -> Step:
    """Every exterior port but the ingress port, and VLAN links (the original's `multicastAction`)."""
    ctx.tags.add(("broadcast", bridge.id))
    in_port = ctx.in_port
    peer = bridge.vlan_peer_port
    if peer is not None and peer != in_port:
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"flood, and to the VLAN-aware bridge by {peer[:8]}")
        return _fork(ctx, bridge, ToPort(peer))
    if not bridge.vlan_aware or in_port is None:
        return _fork(ctx, bridge, None)
    port = ctx.topology.get_port(in_port)
    if port.exterior:
        vlans = ctx.match.vlan_ids or ()
        vlan_port = bridge.vlan_ports.get(vlans[0]) if vlans else None
        if vlan_port is None:
            return _fork(ctx, bridge, None)
        if ctx.trace is not None:
            ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"from a trunk on VLAN {vlans[0]}: flood the trunks, "
                                                         f"and to VLAN port {vlan_port[:8]}")
        return _fork(ctx, bridge, ToPort(vlan_port))
    if port.interior:
        in_vlan = bridge.vlan_of(in_port)
        if in_vlan is not None:
            ctx.match.vlan_ids = (in_vlan, *(ctx.match.vlan_ids or ()))
            if ctx.trace is not None:
                ctx.note(Stage.BRIDGE_FORWARDING, bridge.id, f"from VLAN port: push VLAN {in_vlan}, flood the trunks")
        return _fork(ctx, bridge, None)
    return TemporaryDrop("flood from a port neither exterior nor interior")


def _fork(ctx: PacketContext, bridge: BridgeDevice, extra: ToPort | None) -> Step:
    in_port = ctx.in_port
    steps: list[Step] = [ToPort(p) for p in bridge.exterior_ports if p != in_port]
    if extra is not None:
        steps.append(extra)
    if not steps:
        return Drop("no exterior port to flood to")
    if len(steps) == 1:
        return steps[0]
    return Fork(tuple(steps))


def _post_bridging(ctx: PacketContext, bridge: BridgeDevice, step: ToPort | Fork) -> Step:
    """Outbound filter (untagged frames only), then outbound mirrors (the original's `doPostBridging`)."""
    if isinstance(step, ToPort):
        ctx.out_port = step.port
    if bridge.outbound_filters and not ctx.match.vlan_ids:
        action = apply_filters(ctx, bridge.outbound_filters, Stage.BRIDGE_OUT_FILTER)
        if action is DROP or action is REJECT:
            return Drop(f"bridge outbound filter: {action.value}")
        if action is not ACCEPT:
            return TemporaryDrop(f"bridge outbound filter answered {action.value}")
    if bridge.outbound_mirror_ids:
        return mirror_out(ctx, bridge.outbound_mirror_ids, Stage.BRIDGE_POST_OUT_MIRRORS, bridge.id, step)
    return step
