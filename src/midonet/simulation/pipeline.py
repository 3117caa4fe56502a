"""The simulation pipeline, declared in one place (STYLE habit 11; spec 3.2-3.5).

Role: the order in which a packet meets ports, mirrors, filters and devices. Each `Stage` names one step and
where it is implemented; trace lines carry their stage, so a trace reads in this order, and
`docs/design/simulation.md` shows the same table (a test keeps the two in step).

A packet from the datapath is first offered to the DHCP server (a request it answers never enters the network),
then starts at the ingress of its port; a generated packet starts at the egress of the port it was emitted on.
Interior ports hand the packet to their peer's ingress; exterior ports emit it; at most `MAX_DEVICES_TRAVERSED`
port ingresses and mirror evaluations per simulation (the loop guard)::

    DHCP (answered: consumed) ─► port ingress ─► pre-in mirrors ─► port inbound filter ─► post-in mirrors ─► device
        bridge: ingress checks ─► in mirrors ─► inbound filter ─► MAC learning ─► forwarding (VLAN push/pop)
                ─► outbound filter ─► out mirrors ─► port egress (one per output; flooding forks)
        router: ingress checks ─► in mirrors ─► L2 / ARP ─► LB inbound ─► inbound filters (NAT)
                ─► routing (LOCAL, TTL) ─► post-routing ─► LB outbound ─► outbound filters (NAT)
                ─► next hop MAC ─► out mirrors ─► port egress
    port egress ─► pre-out mirrors ─► port outbound filter ─► post-out mirrors
                ─► exterior: emit | interior: peer port ingress | unplugged: error drop

A mirror that matches forks a copy of the packet, as it is at that point, to its to-port (`devices/mirror.py`).
NAT rules run inside the rule chains (`devices/nat.py`); the load balancer's ACCEPT skips the router's filter that
follows it (`devices/load_balancer.py`). A stage whose work is not done yet is a seam (`Stage.implemented`).

May import: nothing of ours.
"""

from __future__ import annotations

import enum

MAX_DEVICES_TRAVERSED = 12
"""More port ingresses than this in one simulation is a loop: temporary drop (`Simulator.MaxDevicesTraversed`)."""


class Stage(enum.Enum):
    """One step of the pipeline: (order, label, where it lives, implemented?)."""

    DHCP = (5, "DHCP", "devices/dhcp.py intercept", True)

    PORT_INGRESS = (10, "port ingress", "devices/port.py ingress", True)
    PORT_PRE_IN_MIRRORS = (11, "port pre-in mirrors", "devices/port.py + devices/mirror.py", True)
    PORT_IN_FILTER = (12, "port inbound filter", "devices/port.py + devices/chain.py", True)
    PORT_POST_IN_MIRRORS = (13, "port post-in mirrors", "devices/port.py + devices/mirror.py", True)

    BRIDGE_INGRESS = (20, "bridge ingress", "devices/bridge.py process", True)
    BRIDGE_PRE_IN_MIRRORS = (21, "bridge in mirrors", "devices/bridge.py + devices/mirror.py", True)
    BRIDGE_IN_FILTER = (22, "bridge inbound filter", "devices/bridge.py + devices/chain.py", True)
    BRIDGE_MAC_LEARNING = (23, "bridge MAC learning", "devices/bridge.py learn", True)
    BRIDGE_FORWARDING = (24, "bridge forwarding", "devices/bridge.py (ARP, flood, unicast, VLANs)", True)
    BRIDGE_OUT_FILTER = (25, "bridge outbound filter", "devices/bridge.py + devices/chain.py", True)
    BRIDGE_POST_OUT_MIRRORS = (26, "bridge out mirrors", "devices/bridge.py + devices/mirror.py", True)

    ROUTER_INGRESS = (30, "router ingress", "devices/router.py process", True)
    ROUTER_PRE_IN_MIRRORS = (31, "router in mirrors", "devices/router.py + devices/mirror.py", True)
    ROUTER_L2 = (32, "router L2", "devices/router.py (broadcast, dst MAC)", True)
    ROUTER_ARP = (33, "router ARP", "devices/router.py arp", True)
    ROUTER_LB_INBOUND = (34, "router LB inbound", "devices/load_balancer.py inbound", True)
    ROUTER_IN_FILTER = (35, "router inbound filter", "devices/router.py + devices/chain.py", True)
    ROUTER_ROUTING = (36, "router routing", "devices/router.py + routing.py", True)
    ROUTER_POST_ROUTING = (37, "router post-routing", "devices/router.py", True)
    ROUTER_LB_OUTBOUND = (38, "router LB outbound", "devices/load_balancer.py outbound", True)
    ROUTER_OUT_FILTER = (39, "router outbound filter", "devices/router.py + devices/chain.py", True)
    ROUTER_NEXT_HOP = (40, "router next hop", "devices/router.py next_hop_mac", True)
    ROUTER_POST_OUT_MIRRORS = (41, "router out mirrors", "devices/router.py + devices/mirror.py", True)

    PORT_EGRESS = (50, "port egress", "devices/port.py egress", True)
    PORT_PRE_OUT_MIRRORS = (51, "port pre-out mirrors", "devices/port.py + devices/mirror.py", True)
    PORT_OUT_FILTER = (52, "port outbound filter", "devices/port.py + devices/chain.py", True)
    PORT_POST_OUT_MIRRORS = (53, "port post-out mirrors", "devices/port.py + devices/mirror.py", True)
    PORT_EMIT = (54, "port emit", "devices/port.py emit", True)

    RESULT = (90, "result", "driver.py", True)

    def __init__(self, order: int, label: str, where: str, implemented: bool) -> None:
        self.order = order
        self.label = label
        self.where = where
        self.implemented = implemented


PIPELINE: tuple[Stage, ...] = tuple(sorted(Stage, key=lambda s: s.order))
"""Every stage, in pipeline order."""


def table() -> str:
    """The pipeline as a Markdown table (what docs/design/simulation.md shows)."""
    rows = ["| # | stage | where | done |", "|---|---|---|---|"]
    rows += [f"| {s.order} | {s.label} | `{s.where}` | {'yes' if s.implemented else 'seam'} |" for s in PIPELINE]
    return "\n".join(rows)
