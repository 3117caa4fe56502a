"""The error tree of the topology layer; the API maps each to an HTTP status and MidoNet's error body.

    TopologyError
    ├── ValidationError      400  a field is malformed (carries violations: [(field, message)])
    ├── NotFoundError        404  an object, or an object a field refers to, does not exist
    ├── ConflictError        409  the change clashes with stored state (already exists, stealing a
    │                             single-valued reference, deleting what an ERROR binding protects)
    └── StorageError         503  the backend is unreachable or the transaction could not commit

May import: nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One invalid field: `field` is the model's field name (snake_case); the API renames it."""

    field: str
    message: str


class TopologyError(Exception):
    """Base of every error a change to the topology can raise."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(TopologyError):
    status = 400

    def __init__(self, violations: list[Violation] | Violation | str, field: str = "") -> None:
        if isinstance(violations, str):
            violations = [Violation(field, violations)]
        elif isinstance(violations, Violation):
            violations = [violations]
        self.violations: list[Violation] = list(violations)
        text = "; ".join(f"{v.field}: {v.message}" if v.field else v.message for v in self.violations)
        super().__init__(text or "invalid input")


class NotFoundError(TopologyError):
    status = 404

    def __init__(self, kind: str, obj_id: str, message: str | None = None) -> None:
        self.kind = kind
        self.obj_id = obj_id
        super().__init__(message or f"{kind} {obj_id} does not exist")


class ConflictError(TopologyError):
    status = 409


class StorageError(TopologyError):
    status = 503
