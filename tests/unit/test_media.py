"""Content negotiation: vendor media types, aliases, versions, plain JSON, 406 and 415."""

from __future__ import annotations

import pytest

from midonet.api.errors import ApiError
from midonet.api.media import check_content_type, negotiate, vendor


def test_default_is_the_canonical_vendor_type() -> None:
    assert negotiate(None, ("Bridge",), 4, False) == "application/vnd.org.midonet.Bridge-v4+json"
    assert negotiate("application/json", ("Bridge",), 4, True) == vendor("Bridge", 4, True)
    assert negotiate("*/*", ("Bridge",), 4, False) == vendor("Bridge", 4)


def test_answers_in_the_alias_and_version_asked_for() -> None:
    accept = "application/vnd.org.midonet.collection.gretunnelzonehost-v1+json"
    assert negotiate(accept, ("TunnelZoneHost", "GreTunnelZoneHost"), 1, True) == vendor("GreTunnelZoneHost", 1, True)
    assert negotiate(vendor("Port", 2), ("Port",), 3, False) == vendor("Port", 2)


def test_another_resources_type_is_406() -> None:
    with pytest.raises(ApiError) as e:
        negotiate(vendor("Router", 3), ("Bridge",), 4, False)
    assert e.value.status == 406


def test_non_json_body_is_415() -> None:
    check_content_type("application/json; charset=utf-8", ("Bridge",))
    check_content_type(vendor("Bridge", 4), ("Bridge",))
    for bad in ("text/plain", vendor("Router", 3), "application/xml"):
        with pytest.raises(ApiError) as e:
            check_content_type(bad, ("Bridge",))
        assert e.value.status == 415
