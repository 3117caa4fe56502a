"""The root's collections we do not support yet (L2 insertions, service containers and groups) answer as
empty collections, 404 for ids and 405 for writes, with MidoNet's error body, and change nothing.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.checks import rejected, snapshot
from tests.api.conftest import Api

MISSING = "00000000-0000-0000-0000-00000000abcd"


@pytest.mark.parametrize(("path", "media"), [
    ("l2insertions", "L2Insertion"),
    ("service_containers", "ServiceContainer"),
    ("service_container_groups", "ServiceContainerGroup"),
])
def test_empty_collections(api: Api, admin: httpx.Client, path: str, media: str) -> None:
    root = admin.get("/").json()
    url = next(v for v in root.values() if isinstance(v, str) and v.endswith(f"/{path}"))
    r = admin.get(url)
    assert r.status_code == 200 and r.json() == []
    assert r.headers["content-type"] == f"application/vnd.org.midonet.collection.{media}-v1+json"
    before = snapshot(api.store)
    rejected(api, admin.get(f"/{path}/{MISSING}"), before, 404)
    rejected(api, admin.post(f"/{path}", json={}), before, 405)
    rejected(api, admin.put(f"/{path}/{MISSING}", json={}), before, 405)
    rejected(api, admin.delete(f"/{path}/{MISSING}"), before, 405)
    assert httpx.get(f"{api.url}/{path}").status_code == 401


def test_midonetclient(api: Api) -> None:
    mido = api.mido()
    assert list(mido.get_l2insertions()) == []
    assert list(mido.get_service_containers()) == []
    assert list(mido.get_service_container_groups()) == []
