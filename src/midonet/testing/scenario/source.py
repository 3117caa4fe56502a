"""A scenario file's text -> plain Python values, remembering the line every value came from.

Role: the bottom of the scenario format (`docs/sandbox.md`). Errors in a scenario file name the place they are
about (`FILE:LINE: topology.bridges[0].ports[1].outboundFilterId: unknown name 'c9'`), so the YAML is composed into
nodes first (PyYAML's safe loader: no tags beyond the standard ones) and turned into dicts, lists and scalars here,
with a `Places` index from each value's path to its line. A key given twice in one mapping is an error (YAML
itself would silently keep the last one).

    Path    ("topology", "bridges", 0, "ports", 1)       rendered  topology.bridges[0].ports[1]
    Places  {path: line}                                 `places.line(path)` falls back to the nearest parent

Errors: `ScenarioError(message, path)`; `located(places, source)` fills in the file and the line.

May import: nothing of ours (PyYAML).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

PathItem = str | int
Path = tuple[PathItem, ...]


def render(path: Sequence[PathItem]) -> str:
    """`("topology", "bridges", 0, "name")` -> `topology.bridges[0].name`."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else item
    return out


class ScenarioError(Exception):
    """A scenario file that cannot be run: what is wrong, and where (the path, then the file and the line)."""

    def __init__(self, message: str, path: Sequence[PathItem] = (), *, source: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path: Path = tuple(path)
        self.source = source
        self.line = line
        super().__init__(str(self))

    def located(self, places: Places, source: str) -> ScenarioError:
        """The same error with the file name and the line of its path."""
        line = self.line if self.line is not None else places.line(self.path)
        return ScenarioError(self.message, self.path, source=source, line=line)

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}" if where else f"line {self.line}"
        at = render(self.path)
        prefix = ": ".join(p for p in (where, at) if p)
        return f"{prefix}: {self.message}" if prefix else self.message


@dataclass
class Places:
    """Lines (1-based) of the values of a document, by path."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Sequence[PathItem]) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def load(text: str, source: str = "<scenario>") -> tuple[Any, Places]:
    """The document in `text` as plain values, and the lines of its parts. ScenarioError (with the line) for YAML
    that does not parse, or a mapping with a key given twice."""
    places = Places()
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            value = None if node is None else _value(loader, node, (), places)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(e.problem or e.context or "invalid YAML").split())
        raise ScenarioError(f"YAML error: {problem}", source=source, line=line) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"YAML error: {' '.join(str(e).split())}", source=source) from None
    except ScenarioError as e:
        raise e.located(places, source) from None
    return value, places


def _value(loader: yaml.SafeLoader, node: yaml.Node, path: Path, places: Places) -> Any:
    places.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)            # merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ScenarioError("a mapping key must be a plain value", path, line=key_node.start_mark.line + 1)
            if key in out:
                raise ScenarioError(f"{key!r} is given twice", path, line=key_node.start_mark.line + 1)
            out[key] = _value(loader, value_node, (*path, str(key)), places)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(loader, item, (*path, i), places) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


__all__ = ["Path", "PathItem", "Places", "ScenarioError", "load", "render"]
