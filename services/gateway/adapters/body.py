"""Reading a request body within a size limit, before any JSON parsing.

The limit is checked twice: against ``Content-Length`` before reading (cheap
refusal of an honest oversized request), and against the bytes actually read
(a sender may lie or use chunked encoding). A gzip body (``Content-Encoding:
gzip``, which several Segment SDKs use) is limited by its decompressed size, so
a small compressed bomb cannot blow up memory.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from gateway.domain.errors import InvalidRequest, TooLarge, UnsupportedMediaType

# What Segment-compatible SDKs send: JSON, or text/plain (analytics.js and
# analytics-next, to avoid a CORS preflight), or nothing at all.
JSON_MEDIA_TYPES = frozenset({"", "application/json", "text/plain"})


def check_content_type(request: Request) -> None:
    """Refuse a body declared as a form, multipart, XML ... (415): reading it
    as JSON would give a misleading 'not valid JSON'."""
    declared = request.headers.get("content-type", "")
    media = declared.partition(";")[0].strip().lower()
    if media in JSON_MEDIA_TYPES or media.endswith("+json"):
        return
    raise UnsupportedMediaType("Content-Type must be application/json or text/plain")


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"request body larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest.one("Content-Length", "must be an integer") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    read = 0
    async for chunk in request.stream():
        read += len(chunk)
        if read > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _gunzip(body, limit)
    raise InvalidRequest.one("Content-Encoding", "only gzip is supported")


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidRequest.one("body", "not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise InvalidRequest.one("body", "truncated gzip data")
    return out


def _no_constants(name: str) -> Any:
    # json accepts NaN and Infinity, which no JSON consumer downstream would.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """The decoded body; raises InvalidRequest unless it is a JSON object."""
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise InvalidRequest.one("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest.one("body", "must be a JSON object")
    return data
