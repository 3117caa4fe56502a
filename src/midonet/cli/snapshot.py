"""The topology snapshot the API serves (`GET /topology_snapshot`), rebuilt as the simulator's inputs.

Role: the glue behind `midonet trace`. The API's snapshot (`midonet.api.snapshot`) carries every record as the
store keeps it, the state tables and the active ports; `load(document, clock)` turns it into what a simulation
reads, as an agent's virtual-topology cache would:

    records     `topology.record.from_dict` per kind (`topology.registry`); kinds this version does not know
                (a newer API) are skipped and listed in `World.skipped`
    topology    `simulation.mappers.InMemoryTopology(records, inactive_ports=...)`: a route through an exterior
                router port counts only while the port is active (spec 10), unless `assume_active`
    tables      fresh in-memory `StateTables` on `clock`, seeded from the state tables:
                    Bridge/<id>/mac_table:<vlan>   MAC -> port     static MAC entries (never expire)
                    Bridge/<id>/ip4_mac_table      IPv4 -> MAC     the bridge's ARP table (ARP suppression)
                    Router/<id>/arp_table          IPv4 -> MAC     the router's ARP cache (learned now)
                other tables (peering tables ...) are not read by the simulator and are left out; entries that are
                not well formed are skipped
    names       `simulation.tracing.Names` for readable traces

A malformed document raises `SnapshotError` with a one-line message.

May import: `midonet.topology`, `midonet.simulation`, `midonet.state`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from midonet.simulation.mappers import InMemoryTopology
from midonet.simulation.tracing import Names
from midonet.state.clock import Clock
from midonet.state.tables import InMemoryTables, in_memory
from midonet.topology.devices import Bridge, Port, Router
from midonet.topology.errors import TopologyError
from midonet.topology.ids import BridgeId, PortId, RouterId
from midonet.topology.record import Record, from_dict
from midonet.topology.registry import BY_KIND

MAC_TABLE = "mac_table:"
IP4_MAC_TABLE = "ip4_mac_table"
ROUTER_ARP_TABLE = "arp_table"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class SnapshotError(Exception):
    """The snapshot document is not what `GET /topology_snapshot` answers."""


@dataclass
class World:
    """What a trace runs against: the records, their topology, seeded tables and names."""

    records: list[Record]
    topology: InMemoryTopology
    tables: InMemoryTables
    names: Names
    skipped: list[str] = field(default_factory=list)

    def port(self, port_id: str) -> Port | None:
        found = self.topology.records.get((Port, port_id))
        return found if isinstance(found, Port) else None


def records_of(document: Mapping[str, Any]) -> tuple[list[Record], list[str]]:
    """The records of a snapshot document, and the kinds it holds that this version does not know."""
    raw = document.get("records")
    if not isinstance(raw, dict):
        raise SnapshotError("the topology snapshot has no `records` object")
    records: list[Record] = []
    skipped: list[str] = []
    for kind, items in raw.items():
        cls = BY_KIND.get(kind)
        if cls is None:
            skipped.append(kind)
            continue
        if not isinstance(items, list):
            raise SnapshotError(f"the topology snapshot's {kind} records are not a list")
        for i, item in enumerate(items):
            try:
                records.append(from_dict(cls, item))
            except TopologyError as e:
                raise SnapshotError(f"the topology snapshot's {kind} record {i} is not valid: {e}") from None
    return records, sorted(skipped)


def active_ports(document: Mapping[str, Any]) -> set[str]:
    state = document.get("port_state")
    if not isinstance(state, dict):
        return set()
    return {port for port, value in state.items() if isinstance(value, dict) and value.get("active")}


def inactive_exterior_ports(records: list[Record], active: set[str]) -> set[str]:
    """Exterior ports without an `active` state (routes through them are left out)."""
    return {r.id for r in records if isinstance(r, Port) and r.is_exterior and r.id not in active}


def _is_mac(value: str) -> bool:
    return bool(_MAC.match(value))


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def seed(tables: InMemoryTables, document: Mapping[str, Any], records: list[Record]) -> int:
    """Write the snapshot's MAC, bridge-ARP and router-ARP entries into `tables`; returns how many."""
    raw = document.get("tables")
    if not isinstance(raw, dict):
        return 0
    kinds = {r.id: r.kind() for r in records}
    count = 0
    for key, entries in raw.items():
        kind, _, rest = str(key).partition("/")
        obj_id, _, name = rest.partition("/")
        if kinds.get(obj_id) != kind or not isinstance(entries, dict):
            continue
        for k, v in entries.items():
            if not isinstance(k, str) or not isinstance(v, str):
                continue
            count += _seed_one(tables, kind, obj_id, name, k.lower(), v.lower(), kinds)
    return count


def _seed_one(tables: InMemoryTables, kind: str, obj_id: str, name: str, key: str, value: str,
              kinds: Mapping[str, str]) -> int:
    if kind == Bridge.kind() and name.startswith(MAC_TABLE):
        vlan = name[len(MAC_TABLE):]
        if not (vlan.isdigit() and _is_mac(key) and kinds.get(value) == Port.kind()):
            return 0
        tables.mac_table.put(BridgeId(obj_id), int(vlan), key, PortId(value))
    elif kind == Bridge.kind() and name == IP4_MAC_TABLE:
        if not (_is_ipv4(key) and _is_mac(value)):
            return 0
        tables.ip4_mac.put(BridgeId(obj_id), key, value)
    elif kind == Router.kind() and name == ROUTER_ARP_TABLE:
        if not (_is_ipv4(key) and _is_mac(value)):
            return 0
        tables.arp_cache.learn(RouterId(obj_id), key, value)
    else:
        return 0
    return 1


def load(document: Mapping[str, Any], clock: Clock, *, assume_active: bool = False) -> World:
    """The simulator's inputs from a snapshot document (see the module docstring)."""
    records, skipped = records_of(document)
    inactive = set() if assume_active else inactive_exterior_ports(records, active_ports(document))
    topology = InMemoryTopology(records, inactive_ports=inactive)
    tables = in_memory(clock)
    seed(tables, document, records)
    return World(records, topology, tables, Names(records, topology), skipped)


__all__ = ["SnapshotError", "World", "load", "records_of", "seed"]
