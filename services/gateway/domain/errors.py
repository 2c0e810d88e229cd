"""Why a request is refused, in terms the HTTP edge turns into a status code.

Reasons name the field and the rule, never the value: they go back to the
caller and into logs, and the value may be an email or a phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str  # Segment-style path: "batch[3].context.traits.email"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidRequest(ValueError):
    """The request breaks the Segment spec or a gateway rule (HTTP 400).

    Like ``cxloop_libs.errors.InvalidArgument`` but for many fields at once."""

    # Machine-readable kind, in per-event rejections and error bodies.
    code: ClassVar[str] = "invalid"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems

    @classmethod
    def one(cls, field: str, reason: str) -> InvalidRequest:
        return cls([FieldProblem(field, reason)])


class TooLarge(Exception):
    """The request or one of its events is over a size or count limit (HTTP 413)."""

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


def join_path(prefix: str, field: str) -> str:
    """``join_path("batch[3]", "userId")`` -> ``"batch[3].userId"``."""
    if not prefix:
        return field
    if not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


class UnsupportedMediaType(Exception):
    """The body is declared as something other than JSON (HTTP 415)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
