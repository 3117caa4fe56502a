"""Interested hosts: who must hold a flow's state before its packet is forwarded (spec 4.3).

Role: the original's `PeerResolver.collectPeersForPort`. For a flow that created or refreshed flow-state keys
(connection tracking, NAT), the hosts to send them to are the owners -- other than this host -- of

* the ingress port and every egress port of the flow (all the ports of a flood), and
* every member of every *stateful* port group (`PortGroup.stateful`) one of those ports belongs to: the uplinks
  of an asymmetric gateway, where a connection that leaves by one uplink may come back by another.

A port's owner is the host its `Port.active` state key names (`TopologyCache.port_location`); a port active nowhere
has none. The answer carries the flow tags that make it go stale: the ports looked at (their records hold their
groups, their `active` key their owner) and the groups (their members), so that a membership or a location change
invalidates the flow and the next packet is simulated again, and its state pushed to the new set of hosts.

Missing data is "not yet", as everywhere in the agent: a port, a group or a location the cache has not loaded
raises `NotYet` and the packet waits for it (the state must reach the peers before the packet does).

May import: `midonet.simulation` (NotYet, FlowTag), `agent.topology_cache`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from midonet.agent.topology_cache import TopologyCache
from midonet.simulation.results import FlowTag
from midonet.simulation.topology import NotYet
from midonet.topology.ids import PortId


@dataclass(frozen=True, slots=True)
class Peers:
    """The hosts to send a flow's state to, and the tags under which that answer goes stale."""

    hosts: frozenset[str]
    tags: frozenset[FlowTag]


class PeerResolver:
    """See the module docstring. `is_local(port)`: the port is bound here (its owner is this host)."""

    def __init__(self, host_id: str, cache: TopologyCache, is_local: Callable[[str], bool]) -> None:
        self._host_id = host_id
        self._cache = cache
        self._is_local = is_local

    def interested(self, ports: Iterable[str]) -> Peers:
        """The interested hosts of a flow through `ports` (ingress and egress); may raise `NotYet`."""
        hosts: set[str] = set()
        tags: set[FlowTag] = set()
        seen: set[str] = set()
        missing: list[NotYet] = []     # asked for all at once (the cache subscribes on the first ask): one wait

        def owner(port_id: str) -> None:
            if port_id in seen:
                return
            seen.add(port_id)
            tags.add(port_id)
            if self._is_local(port_id):
                return
            try:
                location = self._cache.port_location(port_id)
            except NotYet as e:
                missing.append(e)
                return
            if location is not None and location.host_id != self._host_id:
                hosts.add(location.host_id)

        for port_id in list(dict.fromkeys(ports)):
            owner(port_id)
            try:
                groups = sorted(self._cache.get_port(PortId(port_id)).port_groups)
            except NotYet as e:
                missing.append(e)
                continue
            for group_id in groups:
                tags.add(group_id)
                try:
                    group = self._cache.get_port_group(group_id)
                except NotYet as e:
                    missing.append(e)
                    continue
                if group.stateful:
                    for member in group.port_ids:
                        owner(member)
        if missing:
            raise missing[0]
        return Peers(frozenset(hosts), frozenset(tags))
