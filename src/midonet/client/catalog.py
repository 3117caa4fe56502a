"""The Application root, indexed: which collections the API serves and where (spec 7.2).

MidoNet's API is hypermedia: `GET /midonet-api/` returns every collection URI (`"bridges": ".../bridges"`)
and every item template (`"bridgeTemplate": ".../bridges/{id}"`). A `Catalog` reads that document once and
answers "where is the collection called X?" for the names people and programs actually use:

    bridges  bridge  Bridge                 -> bridges        (plural, singular, any case)
    port_groups  port-group  portGroups     -> port_groups    (snake, kebab, camel: the root key)
    rule  rules  routes  route              -> rules, routes  (kinds with a template but no top-level list)
    trace  traceRequests  trace_request     -> traces         (the root key names it differently)

A kind is named by its path segment under the base URI (`port_groups`), the canonical name everywhere in
the client and the CLI. Nothing is hard-coded: a resource family added to the API appears here as soon as
the root lists it.

May import: nothing of ours (stdlib only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_NOT_KINDS = frozenset({"uri", "version"})


class UnknownKindError(LookupError):
    """A name that matches no collection of the Application root."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown resource {name!r}; the API serves: {', '.join(self.known)}")


def snake_case(name: str) -> str:
    """`portGroups`, `port-groups`, `Port Groups` -> `port_groups`."""
    name = _CAMEL.sub(r"_\1", name.strip())
    return re.sub(r"[-\s]+", "_", name).lower()


def camel_case(name: str) -> str:
    """`tenant_id` -> `tenantId`; names without underscores are left as they are (`tenantId`, `name`)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def plural_forms(name: str) -> tuple[str, ...]:
    """The spellings a singular or plural name may have as a path segment, the name itself first."""
    forms = [name, name + "s", name + "es"]
    if name.endswith("y"):
        forms.append(name[:-1] + "ies")
    return tuple(forms)


def singular(path: str) -> str:
    """A kind's singular, for messages: `port_groups` -> `port group`, `qos_policies` -> `qos policy`."""
    word = path
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("s"):
        word = word[:-1]
    return word.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Catalog:
    """Collection and item URIs by kind (path segment), read from the Application root."""

    base: str                             # the API's base URI, no trailing slash
    collections: Mapping[str, str]        # kind -> collection URI (every kind, listable or not)
    templates: Mapping[str, str]          # kind -> item URI template with "{id}"
    listable: frozenset[str]              # kinds the root lists as a collection (GET/POST at the top level)
    aliases: Mapping[str, str]            # snake-cased root keys -> kind ("trace_requests" -> "traces")

    @classmethod
    def from_root(cls, root: Mapping[str, object], fallback_base: str) -> Catalog:
        """Index an Application root document; `fallback_base` when it lacks its own `uri`."""
        uri = root.get("uri")
        base = (uri if isinstance(uri, str) and uri else fallback_base).rstrip("/")
        collections: dict[str, str] = {}
        templates: dict[str, str] = {}
        listable: set[str] = set()
        aliases: dict[str, str] = {}
        for key, value in root.items():
            if key in _NOT_KINDS or not isinstance(value, str) or not value.startswith(base + "/"):
                continue
            rest = value[len(base) + 1:]
            if key.endswith("Template") and rest.endswith("/{id}"):
                kind = rest[: -len("/{id}")]
                if "/" in kind:
                    continue
                templates[kind] = value
                collections.setdefault(kind, f"{base}/{kind}")
                aliases[snake_case(key[: -len("Template")])] = kind
            elif "/" not in rest and "{" not in rest and rest:
                collections[rest] = value
                listable.add(rest)
                aliases[snake_case(key)] = rest
        return cls(base, collections, templates, frozenset(listable), aliases)

    def kind(self, name: str) -> str:
        """The kind (path segment) a user's name for it means; UnknownKindError if none."""
        wanted = snake_case(name)
        for form in plural_forms(wanted):
            if form in self.collections:
                return form
            if form in self.aliases:
                return self.aliases[form]
        raise UnknownKindError(name, self.collections)

    def collection_uri(self, name: str) -> str:
        """The collection URI of a kind, or `name` itself when it already is a URI."""
        if _is_uri(name):
            return name.rstrip("/")
        return self.collections[self.kind(name)]

    def item_uri(self, name: str, obj_id: str) -> str:
        """The URI of one object: the kind's template with the id, else `<collection>/<id>`."""
        if _is_uri(name):
            return f"{name.rstrip('/')}/{obj_id}"
        kind = self.kind(name)
        template = self.templates.get(kind)
        if template is not None:
            return template.replace("{id}", obj_id)
        return f"{self.collections[kind]}/{obj_id}"

    def kinds(self) -> list[str]:
        return sorted(self.collections)


def _is_uri(name: str) -> bool:
    return name.startswith(("http://", "https://"))
