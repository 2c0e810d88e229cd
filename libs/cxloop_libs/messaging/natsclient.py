"""The nats-py client of every bus, with a cheaper header parser.

nats-py 2.16 parses each message's header block with
``Client._parse_header_lines``, which checks every header name for
whitespace with a generator expression run once per character: for a
CloudEvents message (7 or 8 headers, ~70 name characters) that was the largest
single cost of receiving it (docs/adr/0205-analytics-ingest-cpu-per-event.md).

:class:`Client` overrides only that static method. The result is the same
dict for every input (a unit test compares both on valid, odd and malformed
header blocks): the block is decoded once instead of once per line, and
header names are validated once per distinct name (a process sees a
handful: ``ce-id``, ``ce-type``, ``traceparent`` …) and remembered.
"""

from __future__ import annotations

from nats.aio.client import Client as _NatsClient

# The bytes bytes.strip() removes: values and names are stripped of these
# only (str.strip() would also remove other Unicode spaces).
_ASCII_WS = " \t\n\r\x0b\x0c"
# Header name as received -> its name, or None when nats-py drops it
# (non-ASCII, or whitespace inside). Emptied when full, so names from a
# hostile peer can neither grow it without bound nor crowd out the few a
# process really sees.
_NAMES: dict[str, str | None] = {}
_MAX_NAMES = 1024


def _name(raw: str) -> str | None:
    key = raw.strip(_ASCII_WS)
    # nats-py decodes names as ASCII (skipping the header otherwise) and
    # drops names with whitespace inside: any(c.isspace() for c in key);
    # str.split() splits on exactly the characters str.isspace() accepts.
    if not key.isascii() or (key and key.split() != [key]):
        return None
    return key


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """``nats.aio.client.Client._parse_header_lines``, same answers: the
    block is decoded once (UTF-8, invalid bytes replaced, as nats-py does
    per value; CR, LF and ':' are ASCII, so splitting before or after
    decoding cuts at the same places)."""
    out: dict[str, str] = {}
    names = _NAMES
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            key = names[name]
        except KeyError:
            key = _name(name)
            if len(names) >= _MAX_NAMES:
                names.clear()
            names[name] = key
        if key is None:
            continue
        out[key] = value.strip(_ASCII_WS)
    return out


class Client(_NatsClient):
    """nats-py's client with :func:`parse_header_lines`."""

    _parse_header_lines = staticmethod(parse_header_lines)
