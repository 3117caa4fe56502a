"""The `Record` base of every topology object, and the JSON codec all stores share.

A record is a frozen, slotted, keyword-only dataclass. Fields are plain values (str, int, bool, float, None),
`StrEnum`s, nested value records (a `Value`, e.g. a rule's `Condition`) and tuples of these. Validation runs in
`__post_init__`, so an invalid record cannot exist; `dataclasses.replace` re-validates.

`to_dict` / `from_dict` turn a record into JSON-ready data and back. `from_dict` ignores unknown keys and
fills missing ones with defaults, so stored data survives the addition of fields.

May import: nothing of ours but `topology.errors`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

from midonet.topology.errors import ValidationError, Violation

T = TypeVar("T")
R = TypeVar("R", bound="Value")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def value(cls: type[T]) -> type[T]:
    """Decorator for every record and value class: frozen, slotted, keyword-only dataclass."""
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


@value
class Value:
    """A nested, id-less value (a Condition, a NAT target, a tunnel-zone member ...)."""

    def replace(self: R, **changes: Any) -> R:
        return dataclasses.replace(self, **changes)


@value
class Record(Value):
    """A stored object with an id. The class name is its kind (the store's path segment)."""

    id: str

    # Fields the API does not write: maintained through the bindings table (back-references), or
    # by the system (tunnel keys). Subclasses extend it.
    backrefs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def kind(cls) -> str:
        return cls.__name__


# --- codec ---------------------------------------------------------------------------------------

Decoder = Callable[[Any, str], Any]
Encoder = Callable[[Any], Any]


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _scalar_decoder(tp: Any) -> Decoder:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        def dec_enum(v: Any, where: str) -> Any:
            try:
                return tp(v)
            except ValueError:
                allowed = ", ".join(str(m.value) for m in tp)
                raise ValidationError(Violation(where, f"must be one of {allowed}, not {v!r}")) from None
        return dec_enum
    if isinstance(tp, type) and issubclass(tp, Value):
        return lambda v, where: from_dict(tp, v, where)
    if tp is bool:
        def dec_bool(v: Any, where: str) -> bool:
            if isinstance(v, bool):
                return v
            raise ValidationError(Violation(where, f"must be a boolean, not {v!r}"))
        return dec_bool
    if tp is int:
        def dec_int(v: Any, where: str) -> int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            raise ValidationError(Violation(where, f"must be an integer, not {v!r}"))
        return dec_int
    if tp is float:
        def dec_float(v: Any, where: str) -> float:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            raise ValidationError(Violation(where, f"must be a number, not {v!r}"))
        return dec_float
    if tp is str:
        def dec_str(v: Any, where: str) -> str:
            if isinstance(v, str):
                return v
            raise ValidationError(Violation(where, f"must be a string, not {v!r}"))
        return dec_str
    raise TypeError(f"unsupported record field type {tp!r}")


def _decoder(tp: Any) -> Decoder:
    inner, optional = _unwrap_optional(tp)
    if typing.get_origin(inner) is tuple:
        item = _scalar_decoder(typing.get_args(inner)[0])

        def dec_tuple(v: Any, where: str) -> Any:
            if v is None:
                return ()
            if not isinstance(v, (list, tuple)):
                raise ValidationError(Violation(where, f"must be a list, not {v!r}"))
            return tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))
        base: Decoder = dec_tuple
    else:
        base = _scalar_decoder(inner)
    if not optional:
        return base

    def dec_optional(v: Any, where: str) -> Any:
        return None if v is None else base(v, where)
    return dec_optional


def _encode(v: Any) -> Any:
    if isinstance(v, Value):
        return to_dict(v)
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, tuple):
        return [_encode(x) for x in v]
    return v


_FIELDS: dict[type, tuple[tuple[str, Decoder, bool], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, Decoder, bool], ...]:
    """(name, decoder, required) for each field of `cls`, computed once."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple(
            (f.name, _decoder(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)
        )
        _FIELDS[cls] = found
    return found


def field_names(cls: type[Value]) -> tuple[str, ...]:
    return tuple(name for name, _, _ in _fields(cls))


def to_dict(obj: Value) -> dict[str, Any]:
    """JSON-ready data of `obj` (enums as their values, tuples as lists, nested values as dicts)."""
    return {name: _encode(getattr(obj, name)) for name, _, _ in _fields(type(obj))}


def from_dict(cls: type[R], data: Any, where: str = "") -> R:
    """A `cls` from JSON data. Unknown keys are ignored, missing ones take their defaults.

    Raises ValidationError naming the field (dotted path from `where`) on a wrong type or value.
    """
    if not isinstance(data, dict):
        raise ValidationError(Violation(where, f"must be an object, not {data!r}"))
    kwargs: dict[str, Any] = {}
    missing: list[Violation] = []
    for name, decode, required in _fields(cls):
        path = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = decode(data[name], path)
        elif required:
            missing.append(Violation(path, "is required"))
    if missing:
        raise ValidationError(missing)
    try:
        return cls(**kwargs)
    except ValidationError as e:
        if where:
            raise ValidationError([Violation(f"{where}.{v.field}", v.message) for v in e.violations]) from None
        raise
