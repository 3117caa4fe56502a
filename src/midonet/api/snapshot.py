"""`GET /topology_snapshot`: the whole topology and its state tables in one read (our extension, admin only).

Not part of MidoNet's v5 API: this implementation adds it so that `midonet trace` can simulate packets offline
against the live topology, as an agent would see it, without walking every collection of the Application root
(and without the DTO translation, which is lossy for the simulator: DTOs rename, default and split fields).

    GET /midonet-api/topology_snapshot      admin only (403 for anyone else, 401 without a token)
    Accept: application/json or application/vnd.org.midonet.TopologySnapshot-v1+json

    {
      "records":    {"<Kind>": [record, ...], ...},      every stored record of every kind, in creation order,
                                                         each as `topology.record.to_dict` writes it (the
                                                         store's own JSON: `from_dict` gives it back exactly)
      "tables":     {"<Kind>/<id>/<name>": {key: value}},  every non-empty state table of every object:
                                                         `Bridge/<id>/mac_table:<vlan>` MAC -> port,
                                                         `Bridge/<id>/ip4_mac_table` IPv4 -> MAC,
                                                         `Router/<id>/arp_table` IPv4 -> MAC,
                                                         `Port/<id>/peering_table` IPv4 -> MAC, ...
      "port_state": {"<port id>": {"active": true, "host": "<session that set it>"}}
                                                         the ports an agent reports active (its `active` key)
    }

Kinds are the record class names (`topology.registry.BY_KIND`), the store's path segments. The answer is read
in one pass over the store, not in one transaction: an object changed meanwhile may be seen before or after the
change, as an agent's cache may see it.

The read is admin-only because it crosses tenants and carries the state tables (MACs, addresses of everyone).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.media`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from midonet.api.media import negotiate
from midonet.api.resource import Ctx, context, in_thread, json_response, require_admin
from midonet.topology.devices import Port
from midonet.topology.record import to_dict
from midonet.topology.registry import RECORD_TYPES

PATH = "/topology_snapshot"
MEDIA = ("TopologySnapshot",)
VERSION = 1


def table_key(kind: str, obj_id: str, name: str) -> str:
    """The key of a state table in the snapshot's `tables`: `<Kind>/<id>/<name>`."""
    return f"{kind}/{obj_id}/{name}"


def snapshot(ctx: Ctx) -> dict[str, Any]:
    """The snapshot document (see the module docstring) read from `ctx.store`."""
    store = ctx.store
    records: dict[str, list[dict[str, Any]]] = {}
    tables: dict[str, dict[str, str]] = {}
    port_state: dict[str, dict[str, Any]] = {}
    for cls in RECORD_TYPES:
        objs = store.list(cls)
        if not objs:
            continue
        kind = cls.kind()
        records[kind] = [to_dict(obj) for obj in objs]
        for obj in objs:
            for name in store.table_names(cls, obj.id):
                entries = store.state_table(cls, obj.id, name).snapshot()
                if entries:
                    tables[table_key(kind, obj.id, name)] = dict(sorted(entries.items()))
            if cls is Port:
                active = store.get_state(Port, obj.id, "active")
                if active is not None:
                    port_state[obj.id] = {"active": True, "host": active.owner}
    return {"records": records, "tables": tables, "port_state": port_state}


def register(router: APIRouter) -> None:
    async def get_snapshot(request: Request) -> Response:
        ctx = context(request)
        require_admin(ctx, "the topology snapshot")
        media = negotiate(request.headers.get("accept"), MEDIA, VERSION, collection=False)
        return json_response(await in_thread(lambda: snapshot(ctx)), media)
    router.add_api_route(PATH, get_snapshot, methods=["GET"], name="topology snapshot")


__all__ = ["MEDIA", "PATH", "VERSION", "register", "snapshot", "table_key"]
