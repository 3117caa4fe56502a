"""Users, passwords, tokens and their expiry (api.auth), with an injected clock."""

from __future__ import annotations

import base64

import pytest

from midonet.api.auth import Authenticator, Role, User, hash_password
from midonet.api.errors import ApiError


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_login_with_plain_and_hashed_passwords() -> None:
    auth = Authenticator([User("a", "pw", Role.ADMIN), User("b", hash_password("secret", 1000), Role.TENANT_USER, "t")])
    assert auth.principal(auth.login(basic("a", "pw")).key).is_admin
    p = auth.principal(auth.login(basic("b", "secret")).key)
    assert (p.user, p.role, p.tenant) == ("b", Role.TENANT_USER, "t")


@pytest.mark.parametrize("header", [None, "", "Bearer x", "Basic !!!", basic("a", "wrong"), basic("nobody", "pw")])
def test_bad_credentials_are_401(header: str | None) -> None:
    auth = Authenticator([User("a", "pw", Role.ADMIN)])
    with pytest.raises(ApiError) as e:
        auth.login(header)
    assert e.value.status == 401


def test_tokens_expire() -> None:
    clock = FakeClock()
    auth = Authenticator([User("a", "pw", Role.ADMIN)], token_ttl=60, clock=clock)
    token = auth.login(basic("a", "pw"))
    clock.now += 59
    assert auth.principal(token.key).user == "a"
    clock.now += 2
    with pytest.raises(ApiError) as e:
        auth.principal(token.key)
    assert e.value.status == 401


def test_tenant_user_cannot_act_for_another_project() -> None:
    auth = Authenticator([User("b", "pw", Role.TENANT_ADMIN, "t1"), User("a", "pw", Role.ADMIN)])
    with pytest.raises(ApiError):
        auth.login(basic("b", "pw"), project="t2")
    assert auth.principal(auth.login(basic("a", "pw"), project="t2").key).tenant == "t2"


def test_rights_by_role() -> None:
    auth = Authenticator([User("ta", "pw", Role.TENANT_ADMIN, "t"), User("tu", "pw", Role.TENANT_USER, "t")])
    ta = auth.principal(auth.login(basic("ta", "pw")).key)
    tu = auth.principal(auth.login(basic("tu", "pw")).key)
    assert ta.can_write("t") and not ta.can_write("u") and not ta.can_write(None)
    assert tu.can_read("t") and not tu.can_write("t") and not tu.can_read("u")
