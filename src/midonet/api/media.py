"""Vendor media types and content negotiation (spec 7.1).

A resource's media type is `application/vnd.org.midonet.<Type>-v<N>+json`, a collection's
`application/vnd.org.midonet.collection.<Type>-v<N>+json`. Requests may also use plain `application/json`
(or send no Accept at all). An Accept naming another resource's type gets 406; a body with a Content-Type
that is not JSON gets 415.

May import: `api.errors`.
"""

from __future__ import annotations

import re

from midonet.api.errors import ApiError

_VENDOR = re.compile(r"^application/vnd\.org\.midonet\.(collection\.)?([A-Za-z0-9_.]+)-v(\d+)\+json$")


def vendor(type_name: str, version: int, collection: bool = False) -> str:
    return f"application/vnd.org.midonet.{'collection.' if collection else ''}{type_name}-v{version}+json"


def _types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


def negotiate(accept: str | None, type_names: tuple[str, ...], version: int, collection: bool) -> str:
    """The media type of the response, given the Accept header; ApiError(406) if none is acceptable."""
    default = vendor(type_names[0], version, collection)
    if not accept:
        return default
    names = {n.lower(): n for n in type_names}
    for media in _types(accept):
        if media in ("*/*", "application/*", "application/json"):
            return default
        m = _VENDOR.match(media)
        if m and m.group(2) in names:
            # Answer in the type asked for, spelt canonically (old clients ask for older versions or aliases
            # of the same shape, e.g. GreTunnelZoneHost for TunnelZoneHost).
            if bool(m.group(1)) == collection:
                return vendor(names[m.group(2)], int(m.group(3)), collection)
            return default
    raise ApiError(406, f"Not acceptable: {accept}; this resource is {default}")


def check_content_type(content_type: str | None, type_names: tuple[str, ...]) -> None:
    """ApiError(415) unless the body is JSON (plain or this resource's vendor type)."""
    if not content_type:
        return
    media = _types(content_type)[0] if _types(content_type) else ""
    if media in ("application/json", "*/*"):
        return
    m = _VENDOR.match(media)
    if m and m.group(2) in {n.lower() for n in type_names}:
        return
    raise ApiError(415, f"Unsupported media type: {content_type}")
