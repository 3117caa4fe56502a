"""Shared checks of the API tests: a whole-store snapshot, and "rejected with MidoNet's error body, store
unchanged"."""

from __future__ import annotations

from typing import Any

import httpx

from midonet.store.base import Store
from midonet.topology.record import to_dict
from midonet.topology.registry import RECORD_TYPES
from tests.api.conftest import Api

ERROR_TYPE = "application/vnd.org.midonet.Error-v1+json"


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {cls.kind(): sorted((to_dict(o) for o in store.list(cls)), key=lambda d: d["id"])
            for cls in RECORD_TYPES}


def rejected(api: Api, response: httpx.Response, before: dict[str, Any], status: int,
             prop: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == ERROR_TYPE
    body: dict[str, Any] = response.json()
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    if prop is not None:
        props = [v["property"] for v in body["violations"]]
        assert any(p == prop or p.startswith((prop + ".", prop + "[")) for p in props), body
    assert snapshot(api.store) == before, "a rejected request changed the store"
    return body
