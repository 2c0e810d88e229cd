"""Domain errors every layer may raise; the gRPC edge maps them to status codes.

They import nothing from gRPC so domain and service-layer code stays free of
transport concerns (``cxloop_libs.grpcx.interceptors`` does the mapping).

Messages travel back to the caller and into logs, so they must never contain
raw PII: name the field and the rule, not the value.
"""

from __future__ import annotations


class CxError(Exception):
    """Base of the errors a caller is allowed to see; anything else is internal."""


class InvalidArgument(CxError, ValueError):
    """The request breaks a rule of its own, independent of stored state.

    Also a ``ValueError`` so validation code that predates it (and callers that
    catch ``ValueError``) keeps working when it switches to this base.
    """

    field: str
    reason: str

    def __init__(self, field: str, reason: str) -> None:
        # Both go into args so the exception survives pickling (process pools).
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class NotFound(CxError):
    """The addressed entity does not exist (or was erased)."""


class AlreadyExists(CxError):
    """A create collided with an existing entity."""


class FailedPrecondition(CxError):
    """The system is not in a state that allows the operation; retrying will not help."""


class Unavailable(CxError):
    """A dependency is down for now; the caller may retry later."""


class Unauthenticated(CxError):
    """The caller did not prove who it is."""


class PermissionDenied(CxError):
    """The caller is known but not allowed to do this."""
