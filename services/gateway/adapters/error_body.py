"""The gateway's one error shape, shared by every route (ingest, privacy,
and the routes other modules add)."""

from __future__ import annotations

from typing import Any

ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    500: "internal",
    503: "unavailable",
}


def error_body(
    status: int, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The one error shape (docs/adr/0035): Segment's ``code`` and ``message``
    (what Segment-compatible SDKs such as rudder-sdk-python read), our
    ``error`` (same text) and, for validation problems, ``fields``."""
    body: dict[str, Any] = {
        "success": False,
        "code": ERROR_CODES.get(status, f"http_{status}"),
        "message": message,
        "error": message,
    }
    if fields:
        body["fields"] = fields
    return body
