"""The Python client against a real API server: login, the root, CRUD round trips, children, errors."""

from __future__ import annotations

import socket

import httpx
import pytest

from midonet.api.auth import Authenticator
from midonet.client import ApiError, Catalog, Client, ClientError, UnreachableError
from midonet.store.factory import open_store
from midonet.testing.apiserver import ApiServer

from .conftest import USERS, Server


def test_bridge_round_trip(admin: Client) -> None:
    bridge = admin.create("bridges", {"name": "front", "tenantId": "acme"})
    assert bridge["name"] == "front" and bridge["tenantId"] == "acme"
    assert admin.get("bridge", bridge["id"]) == bridge
    assert admin.get(bridge["uri"]) == bridge
    assert [b["id"] for b in admin.list("bridges")] == [bridge["id"]]

    updated = admin.update("bridges", bridge["id"], {"name": "back"})
    assert updated["name"] == "back" and updated["tenantId"] == "acme"

    admin.delete("bridges", bridge["id"])
    assert admin.list("bridges") == []


def test_list_passes_the_query(admin: Client) -> None:
    a = admin.create("bridges", {"name": "a", "tenantId": "tenant-a"})
    admin.create("bridges", {"name": "b", "tenantId": "tenant-b"})
    assert [b["id"] for b in admin.list("bridges", tenant_id="tenant-a")] == [a["id"]]


def test_children_ports_rules_routes(admin: Client) -> None:
    bridge = admin.create("bridges", {"name": "net"})
    router = admin.create("routers", {"name": "edge"})
    bport = admin.create_child("bridges", bridge["id"], "ports", {})
    rport = admin.create_child("router", router["id"], "ports",
                               {"portAddress": "10.0.0.1", "networkAddress": "10.0.0.0", "networkLength": 24})
    assert bport["type"] == "Bridge" and bport["deviceId"] == bridge["id"]
    assert rport["type"] == "Router" and rport["portAddress"] == "10.0.0.1"
    assert [p["id"] for p in admin.list_children("bridges", bridge["id"], "ports")] == [bport["id"]]

    route = admin.create_child("routers", router["id"], "routes",
                               {"type": "Normal", "dstNetworkAddr": "192.168.0.0", "dstNetworkLength": 16,
                                "srcNetworkAddr": "0.0.0.0", "srcNetworkLength": 0, "nextHopPort": rport["id"],
                                "weight": 100})
    assert admin.get("route", route["id"])["dstNetworkAddr"] == "192.168.0.0"

    chain = admin.create("chains", {"name": "in"})
    first = admin.create_child("chains", chain["id"], "rules", {"type": "accept"})
    head = admin.create_child("chains", chain["id"], "rules", {"type": "drop", "position": 1})
    rules = admin.list_children("chains", chain["id"], "rules")
    assert [r["id"] for r in rules] == [head["id"], first["id"]]
    admin.delete("rules", head["id"])
    assert [r["id"] for r in admin.list_children("chains", chain["id"], "rules")] == [first["id"]]


def test_validation_error_names_the_field(admin: Client) -> None:
    with pytest.raises(ApiError) as caught:
        admin.create("bridges", {"name": 42})
    error = caught.value
    assert error.status == 400
    assert [v["property"] for v in error.violations] == ["name"]
    assert "name" in str(error) and "HTTP 400" in str(error)


def test_unknown_id_is_404(admin: Client) -> None:
    with pytest.raises(ApiError) as caught:
        admin.get("routers", "5b3f3f3e-0000-4000-8000-000000000000")
    assert caught.value.status == 404
    assert "does not exist" in caught.value.message


def test_unknown_kind_is_a_client_error(admin: Client) -> None:
    with pytest.raises(ClientError, match="unknown resource 'frobs'"):
        admin.list("frobs")


def test_wrong_password_is_401(server: Server) -> None:
    with server.client("admin", "nope") as client, pytest.raises(ApiError) as caught:
        client.list("bridges")
    assert caught.value.status == 401
    assert "login as 'admin' refused" in str(caught.value)


def test_tenant_user_sees_only_its_tenant(server: Server, admin: Client) -> None:
    admin.create("bridges", {"name": "theirs", "tenantId": "tenant-b"})
    with server.client("alice") as alice:
        mine = alice.create("bridges", {"name": "mine", "tenantId": "tenant-a"})
        assert [b["id"] for b in alice.list("bridges")] == [mine["id"]]
        with pytest.raises(ApiError) as caught:
            alice.create("bridges", {"name": "not mine", "tenantId": "tenant-b"})
        assert caught.value.status == 403


def test_logs_in_again_once_when_the_token_expires() -> None:
    now = [1000.0]
    auth = Authenticator(USERS, token_ttl=60, clock=lambda: now[0])
    store = open_store("memory", owner="api")
    try:
        with ApiServer(store, auth) as api, Client(api.url, "admin", "admin-pw") as client:
            client.list("bridges")
            first = client.token
            now[0] += 3600                       # the token has expired
            assert client.list("bridges") == []
            assert client.token is not None and client.token != first
    finally:
        store.close()


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}/midonet-api", "admin", "pw") as client, \
            pytest.raises(UnreachableError, match="connection refused"):
        client.list("bridges")


def test_bad_url_is_unreachable() -> None:
    with Client("localhost:8181", "admin", "pw") as client, pytest.raises(UnreachableError, match="bad API URL"):
        client.list("bridges")


def test_something_else_answering_is_not_a_midonet_api() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"key": "t"})
        return httpx.Response(200, html="<html>hello</html>")

    with Client("http://example.test/midonet-api", "admin", "pw", transport=httpx.MockTransport(handler)) as client, \
            pytest.raises(UnreachableError, match="not JSON"):
        client.list("bridges")


def test_error_without_midonet_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"key": "t"})
        return httpx.Response(502, text="bad gateway")

    with Client("http://example.test/midonet-api", "admin", "pw", transport=httpx.MockTransport(handler)) as client, \
            pytest.raises(ApiError) as caught:
        client.list("bridges")
    assert caught.value.status == 502 and "Bad Gateway" in caught.value.message


def test_login_sends_project_and_reads_cookie_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/login"):
            return httpx.Response(200, headers={"Set-Cookie": "sessionId=cookie-token; Path=/"})
        return httpx.Response(200, json={"uri": "http://example.test/midonet-api/", "version": "5",
                                         "bridges": "http://example.test/midonet-api/bridges"})

    with Client("http://example.test/midonet-api", "alice", "pw", project="tenant-a",
                transport=httpx.MockTransport(handler)) as client:
        client.catalog()
    login, root = seen
    assert login.headers["X-Auth-Project"] == "tenant-a"
    assert login.headers["Authorization"].startswith("Basic ")
    assert root.headers["X-Auth-Token"] == "cookie-token"


# --- the catalog: kind names -------------------------------------------------------------------------

ROOT = {"uri": "http://h/midonet-api/", "version": "5",
        "bridges": "http://h/midonet-api/bridges", "bridgeTemplate": "http://h/midonet-api/bridges/{id}",
        "portGroups": "http://h/midonet-api/port_groups", "portGroupTemplate": "http://h/midonet-api/port_groups/{id}",
        "ruleTemplate": "http://h/midonet-api/rules/{id}",
        "traceRequests": "http://h/midonet-api/traces", "traceRequestTemplate": "http://h/midonet-api/traces/{id}",
        "qosPolicies": "http://h/midonet-api/qos_policies"}


@pytest.mark.parametrize(("name", "kind"), [
    ("bridges", "bridges"), ("bridge", "bridges"), ("Bridge", "bridges"),
    ("port-group", "port_groups"), ("port_groups", "port_groups"), ("portGroups", "port_groups"),
    ("port-groups", "port_groups"), ("rule", "rules"), ("rules", "rules"),
    ("trace", "traces"), ("traceRequests", "traces"), ("trace_request", "traces"),
    ("qos-policy", "qos_policies"),
])
def test_catalog_resolves_spellings(name: str, kind: str) -> None:
    assert Catalog.from_root(ROOT, "http://h/midonet-api").kind(name) == kind


def test_catalog_uris() -> None:
    catalog = Catalog.from_root(ROOT, "http://h/midonet-api")
    assert catalog.collection_uri("port-group") == "http://h/midonet-api/port_groups"
    assert catalog.item_uri("rule", "r1") == "http://h/midonet-api/rules/r1"
    assert catalog.item_uri("qos_policy", "q1") == "http://h/midonet-api/qos_policies/q1"
    assert "rules" not in catalog.listable and "bridges" in catalog.listable
