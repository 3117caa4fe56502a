"""`Client`: a small typed client of MidoNet's v5 REST API, over httpx (spec 7.1-7.3).

    with Client("http://127.0.0.1:8181/midonet-api", "admin", password) as api:
        bridge = api.create("bridges", {"name": "front", "tenantId": "acme"})
        port = api.create_child("bridges", bridge["id"], "ports", {})
        api.list("bridges", tenant_id="acme")
        api.delete("bridges", bridge["id"])

How it talks to the API, as MidoNet's own clients do:
- it logs in lazily, on the first request: `POST /login` with HTTP Basic (and `X-Auth-Project` when a project
  is given); the token is the body's `key` (or the `sessionId` cookie);
- every request carries `X-Auth-Token`; a 401 on a request logs in again once and retries (tokens expire);
- it reads the Application root once to find collections (`Catalog`): callers name kinds as they like
  (`bridges`, `bridge`, `port-group`, `portGroups`), or pass a URI;
- `create` POSTs then GETs the `Location` the API answers with, and returns the stored object;
- bodies are plain `application/json`, which the API accepts for every resource.

Errors (every exception this module raises is a `ClientError`):

    ClientError             something went wrong talking to the API
    ├── ApiError            the API answered with an error: `status`, `message`, `violations` (MidoNet's body)
    └── UnreachableError    no answer: bad URL, connection refused, timeout, not a MidoNet API

May import: `client.catalog` (and httpx).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from midonet.client.catalog import Catalog, UnknownKindError

Dto = dict[str, Any]
"""A JSON object as the API sends and takes it (camelCase members, `id`, `uri` and hypermedia links)."""

Dtos = list[Dto]

DEFAULT_API_URL = "http://127.0.0.1:8181/midonet-api"


class ClientError(Exception):
    """Base of the client's errors; `str()` is a one-line message fit for a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The API answered with an error status and (usually) MidoNet's `{"message", "code", "violations"}`."""

    def __init__(self, status: int, message: str, violations: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.violations = violations or []

    def describe(self) -> str:
        """One line naming the offending fields when the API named them."""
        if self.violations:
            parts = [f"{v.get('property')}: {v.get('message')}" if v.get("property") else str(v.get("message"))
                     for v in self.violations]
            return "; ".join(parts)
        return self.message

    def __str__(self) -> str:
        return f"{self.describe()} (HTTP {self.status})"


class UnreachableError(ClientError):
    """The API could not be reached (or what answered is not a MidoNet API)."""


class Client:
    """A logged-in session with one MidoNet API; see the module docstring."""

    def __init__(self, api_url: str, username: str, password: str, project: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = api_url.rstrip("/")
        self.username = username
        self.project = project
        self._password = password
        self._token: str | None = None
        self._catalog: Catalog | None = None
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={"Accept": "application/json"})

    # --- session -----------------------------------------------------------------------------------

    def login(self) -> str:
        """Log in now (`POST /login`) and return the token; ApiError(401) for wrong credentials."""
        headers = {"X-Auth-Project": self.project} if self.project else {}
        response = self._send("POST", f"{self.url}/login", headers=headers,
                              auth=httpx.BasicAuth(self.username, self._password))
        if response.status_code == 401:
            error = _api_error(response)
            raise ApiError(401, f"login as {self.username!r} refused: {error.message}", error.violations)
        if response.status_code >= 400:
            raise _api_error(response)
        token = _json_body(response).get("key") if _is_json(response) else None
        token = token or response.cookies.get("sessionId")
        if not isinstance(token, str) or not token:
            raise UnreachableError(f"{self.url}/login gave no token: is {self.url} a MidoNet API?")
        self._token = token
        return token

    @property
    def token(self) -> str | None:
        return self._token

    def catalog(self) -> Catalog:
        """The indexed Application root (read once per client)."""
        if self._catalog is None:
            root = self.request("GET", f"{self.url}/")
            if not isinstance(root, dict) or "version" not in root:
                raise UnreachableError(f"{self.url}/ is not a MidoNet API root")
            self._catalog = Catalog.from_root(root, self.url)
        return self._catalog

    def kind(self, name: str) -> str:
        """The API's name (path segment) for a kind a user named: `port-group` -> `port_groups`."""
        try:
            return self.catalog().kind(name)
        except UnknownKindError as e:
            raise ClientError(str(e)) from None

    # --- resources ---------------------------------------------------------------------------------

    def list(self, collection: str, **query: str) -> Dtos:
        """Every object of a collection the caller may read; `query` becomes `?k=v` (e.g. `tenant_id`)."""
        return _objects(self.request("GET", self._collection_uri(collection), params=query))

    def get(self, collection_or_uri: str, obj_id: str | None = None) -> Dto:
        """One object, by kind and id, or by URI alone (`obj_id` None)."""
        uri = collection_or_uri if obj_id is None else self._item_uri(collection_or_uri, obj_id)
        return _object(self.request("GET", uri))

    def create(self, collection: str, body: Mapping[str, Any]) -> Dto:
        """POST to a collection, then GET the `Location` answered: the object as stored."""
        return self._post_and_get(self._collection_uri(collection), body)

    def update(self, collection: str, obj_id: str, body: Mapping[str, Any]) -> Dto:
        """PUT the members of `body` (the API keeps members absent from it), then GET the object."""
        uri = self._item_uri(collection, obj_id)
        self.request("PUT", uri, body=body)
        return _object(self.request("GET", uri))

    def delete(self, collection: str, obj_id: str) -> None:
        self.request("DELETE", self._item_uri(collection, obj_id))

    def list_children(self, parent_collection: str, parent_id: str, segment: str, **query: str) -> Dtos:
        """`GET <parent>/<id>/<segment>`: a bridge's ports, a chain's rules, a router's routes ..."""
        uri = f"{self._item_uri(parent_collection, parent_id)}/{segment}"
        return _objects(self.request("GET", uri, params=query))

    def create_child(self, parent_collection: str, parent_id: str, segment: str, body: Mapping[str, Any]) -> Dto:
        """`POST <parent>/<id>/<segment>` then GET the new object: ports, rules, routes ..."""
        return self._post_and_get(f"{self._item_uri(parent_collection, parent_id)}/{segment}", body)

    # --- relations that are not plain objects -------------------------------------------------------

    def link(self, port_id: str, peer_id: str) -> None:
        """`POST /ports/{id}/link {peerId}`: link two interior ports."""
        self.request("POST", f"{self._item_uri('ports', port_id)}/link", body={"peerId": peer_id})

    def unlink(self, port_id: str) -> None:
        """`DELETE /ports/{id}/link`."""
        self.request("DELETE", f"{self._item_uri('ports', port_id)}/link")

    def bind(self, host_id: str, port_id: str, interface: str) -> Dto:
        """`POST /hosts/{id}/ports {portId, interfaceName}`: bind a port to a host's interface."""
        return self.create_child("hosts", host_id, "ports", {"portId": port_id, "interfaceName": interface})

    def unbind(self, host_id: str, port_id: str) -> None:
        """`DELETE /hosts/{id}/ports/{portId}`."""
        self.request("DELETE", f"{self._item_uri('hosts', host_id)}/ports/{port_id}")

    def add_tunnel_zone_host(self, zone_id: str, host_id: str, ip: str) -> Dto:
        """`POST /tunnel_zones/{id}/hosts {hostId, ipAddress}`."""
        return self.create_child("tunnel_zones", zone_id, "hosts", {"hostId": host_id, "ipAddress": ip})

    def topology_snapshot(self) -> Dto:
        """`GET /topology_snapshot` (this implementation's admin-only extension, `midonet.api.snapshot`):
        every record as stored (`{"records": {kind: [...]}}`), the state tables and the active ports."""
        return _object(self.request("GET", f"{self.url}/topology_snapshot"))

    # --- transport ---------------------------------------------------------------------------------

    def request(self, method: str, uri: str, *, body: Mapping[str, Any] | None = None,
                params: Mapping[str, str] | None = None) -> Any:
        """Send one authenticated request and return its JSON body (None when empty); raise ApiError."""
        return _decode(self._authenticated(method, uri, body, params))

    def _authenticated(self, method: str, uri: str, body: Mapping[str, Any] | None,
                       params: Mapping[str, str] | None) -> httpx.Response:
        fresh = self._token is None
        if fresh:
            self.login()
        response = self._send_with_token(method, uri, body, params)
        if response.status_code == 401 and not fresh:
            self._token = None           # expired or revoked: log in again, once
            self.login()
            response = self._send_with_token(method, uri, body, params)
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def _send_with_token(self, method: str, uri: str, body: Mapping[str, Any] | None,
                         params: Mapping[str, str] | None) -> httpx.Response:
        headers = {"X-Auth-Token": self._token or ""}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode()
        return self._send(method, uri, headers=headers, content=content, params=params)

    def _send(self, method: str, uri: str, *, headers: Mapping[str, str], content: bytes | None = None,
              params: Mapping[str, str] | None = None, auth: httpx.Auth | None = None) -> httpx.Response:
        try:
            return self._http.request(method, uri, headers=headers, content=content,
                                      params=dict(params) if params else None, auth=auth)
        except httpx.ConnectError as e:
            raise UnreachableError(f"cannot connect to the MidoNet API at {self.url}: {_reason(e)}") from None
        except httpx.TimeoutException:
            raise UnreachableError(f"the MidoNet API at {self.url} did not answer in time") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            raise UnreachableError(f"bad API URL {self.url!r}: {e}") from None
        except httpx.HTTPError as e:
            raise UnreachableError(f"talking to the MidoNet API at {self.url}: {_reason(e)}") from None

    def _post_and_get(self, uri: str, body: Mapping[str, Any]) -> Dto:
        response = self._authenticated("POST", uri, body, None)
        location = response.headers.get("location")
        if not location:
            created = _decode(response)
            if isinstance(created, dict):
                return created
            raise ClientError(f"POST {uri} answered {response.status_code} without a Location")
        return _object(self.request("GET", location))

    def _collection_uri(self, name: str) -> str:
        try:
            return self.catalog().collection_uri(name)
        except UnknownKindError as e:
            raise ClientError(str(e)) from None

    def _item_uri(self, name: str, obj_id: str) -> str:
        if not obj_id or "/" in obj_id or "?" in obj_id:
            raise ClientError(f"bad id {obj_id!r}")
        try:
            return self.catalog().item_uri(name, obj_id)
        except UnknownKindError as e:
            raise ClientError(str(e)) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# --- bodies ------------------------------------------------------------------------------------------

def _is_json(response: httpx.Response) -> bool:
    media: str = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/vnd.") and media.endswith("+json"))


def _json_body(response: httpx.Response) -> Dto:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if not _is_json(response):
        raise UnreachableError(f"{response.request.url} answered {response.headers.get('content-type')!r}, "
                               "not JSON: is this a MidoNet API?")
    try:
        return response.json()
    except ValueError:
        raise UnreachableError(f"{response.request.url} answered malformed JSON") from None


def _api_error(response: httpx.Response) -> ApiError:
    """MidoNet's error body as an ApiError; a plain reason when the body is not one."""
    body = _json_body(response) if _is_json(response) else {}
    message = body.get("message")
    if not isinstance(message, str) or not message:
        message = f"{response.reason_phrase or 'error'}: {response.request.method} {response.request.url}"
    raw = body.get("violations")
    violations = [{"property": str(v.get("property") or ""), "message": str(v.get("message") or "")}
                  for v in raw if isinstance(v, dict)] if isinstance(raw, list) else None
    return ApiError(response.status_code, message, violations)


def _object(body: Any) -> Dto:
    if not isinstance(body, dict):
        raise ClientError(f"expected a JSON object from the API, got {type(body).__name__}")
    return body


def _objects(body: Any) -> Dtos:
    if isinstance(body, dict):
        return [body]                    # singletons such as system_state
    if not isinstance(body, list):
        raise ClientError(f"expected a JSON list from the API, got {type(body).__name__}")
    return [o for o in body if isinstance(o, dict)]


def _reason(error: httpx.HTTPError) -> str:
    cause: BaseException | None = error
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause or error)
    if "refused" in text.lower():
        return "connection refused"
    return text or type(error).__name__
