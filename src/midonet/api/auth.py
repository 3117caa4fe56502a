"""Users, roles, login and tokens (spec 7.1, `docs/rest-api-auth.md` of the original).

Users come from a config file (JSON):

    {"token_ttl_seconds": 3600,
     "users": [{"name": "admin", "password": "...", "role": "admin"},
               {"name": "alice", "password": "pbkdf2:sha256:<iterations>:<salt hex>:<hash hex>",
                "role": "tenant_admin", "tenant": "tenant-a"}]}

Passwords may be plain text or pbkdf2 hashes (`hash_password` makes them). Roles:

    admin         reads and writes everything; `?tenant_id=` filters lists
    tenant_admin  reads and writes the objects of its own tenant only
    tenant_user   reads the objects of its own tenant only

`POST /login` with `Authorization: Basic` returns a token (body `{"key", "expires"}` and a `sessionId`
cookie); every other request carries `X-Auth-Token` (or the cookie). Tokens expire after the TTL; a wrong
password, a missing/unknown/expired token all get 401.

May import: `api.errors`. Time is injected (`clock`) so expiry can be tested without sleeping.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from midonet.api.errors import ApiError

DEFAULT_TOKEN_TTL = 3600.0


class Role(enum.StrEnum):
    ADMIN = "admin"
    TENANT_ADMIN = "tenant_admin"
    TENANT_USER = "tenant_user"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str          # plain, or "pbkdf2:sha256:<iterations>:<salt hex>:<hash hex>"
    role: Role
    tenant: str | None = None

    def check_password(self, given: str) -> bool:
        if self.password.startswith("pbkdf2:"):
            try:
                _, algo, iterations, salt, digest = self.password.split(":")
                got = hashlib.pbkdf2_hmac(algo, given.encode(), bytes.fromhex(salt), int(iterations))
            except ValueError:
                return False
            return hmac.compare_digest(got.hex(), digest)
        return hmac.compare_digest(self.password.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request: the user, its role, and the tenant it acts for."""

    user: str
    role: Role
    tenant: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_read(self, tenant: str | None) -> bool:
        return self.is_admin or (tenant is not None and tenant == self.tenant)

    def can_write(self, tenant: str | None) -> bool:
        return self.is_admin or (self.role is Role.TENANT_ADMIN and tenant is not None and tenant == self.tenant)


@dataclass(frozen=True, slots=True)
class Token:
    key: str
    principal: Principal
    expires_at: float

    @property
    def expires_http(self) -> str:
        return formatdate(self.expires_at, usegmt=True)


def load_users(path: Path) -> tuple[list[User], float]:
    """The users of a users file and its token lifetime; ValueError naming the file if it is malformed."""
    try:
        data: Any = json.loads(path.read_text())
        users = [User(name=u["name"], password=u["password"], role=Role(u.get("role", "tenant_user")),
                      tenant=u.get("tenant")) for u in data.get("users", [])]
        ttl = float(data.get("token_ttl_seconds", DEFAULT_TOKEN_TTL))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a valid users file: {e}") from None
    return users, ttl


def hash_password(password: str, iterations: int = 100_000) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2:sha256:{iterations}:{salt.hex()}:{digest.hex()}"


class Authenticator:
    """Checks passwords, issues tokens and resolves them back to principals."""

    def __init__(self, users: list[User], token_ttl: float = DEFAULT_TOKEN_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self._users = {u.name: u for u in users}
        self._ttl = token_ttl
        self._clock = clock
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, clock: Callable[[], float] = time.time) -> Authenticator:
        users, ttl = load_users(path)
        return cls(users, ttl, clock)

    def login(self, authorization: str | None, project: str | None = None) -> Token:
        """A new token for the Basic credentials in `authorization`; ApiError(401) if they are wrong."""
        user = self._check_basic(authorization)
        tenant = user.tenant
        if project:
            if user.role is not Role.ADMIN and project != user.tenant:
                raise _unauthorized("user is not a member of that project")
            tenant = project
        token = Token(secrets.token_urlsafe(24), Principal(user.name, user.role, tenant),
                      self._clock() + self._ttl)
        with self._lock:
            self._expire()
            self._tokens[token.key] = token
        return token

    def principal(self, token_key: str | None) -> Principal:
        """The principal of a live token; ApiError(401) for a missing, unknown or expired one."""
        if not token_key:
            raise _unauthorized("no token given (login first, then send X-Auth-Token)")
        with self._lock:
            token = self._tokens.get(token_key)
            if token is not None and token.expires_at <= self._clock():
                del self._tokens[token_key]
                token = None
        if token is None:
            raise _unauthorized("invalid or expired token")
        return token.principal

    def _check_basic(self, authorization: str | None) -> User:
        if not authorization or not authorization.lower().startswith("basic "):
            raise _unauthorized("login needs HTTP Basic credentials")
        try:
            name, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
        user = self._users.get(name)
        if user is None or not user.check_password(password):
            raise _unauthorized("wrong user name or password")
        return user

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, t in self._tokens.items() if t.expires_at <= now]:
            del self._tokens[key]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Basic realm="midonet"'})
