"""The bus's header parser gives nats-py's answers for every header block,
and nats-py still calls the method it overrides (else the override would be
silently unused and the slow parser back)."""

from __future__ import annotations

import inspect
import random

from nats.aio.client import Client as NatsClient

from cxloop_libs.messaging import natsclient
from cxloop_libs.messaging.natsclient import Client, parse_header_lines

CLOUDEVENT = (
    b"ce-specversion: 1.0\r\nce-id: 3f1b2c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d\r\n"
    b"ce-type: cxloop.identity.interaction.resolved.v1\r\nce-source: /identity\r\n"
    b"ce-time: 2026-12-07T11:26:58.123456Z\r\ncontent-type: application/protobuf\r\n"
    b"Nats-Msg-Id: 3f1b2c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d\r\n"
    b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"
)
ODD = [
    b"",
    b"\r\n",
    b"Name:Value\r\n",
    b"Name:\tValue \r\n",
    b"a: b: c\r\n",  # a colon inside the value
    b"bad name: dropped\r\nok: kept\r\n",
    b"\x1cname: dropped by isspace\r\n",
    b": empty name\r\n",
    b"no colon at all\r\n",
    b"caf\xc3\xa9: non-ASCII name dropped\r\n",
    b"\xffname: invalid UTF-8 name dropped\r\n",
    b"k: caf\xc3\xa9 \xff broken \xe2\x82\r\n",
    b"k: first\r\nk: second\r\n",
    b"k: \x85 NEL and \xc2\xa0 NBSP stay\xc2\xa0\r\n",
    b"lone\rCR: x\nLF\r\n",
]


def test_same_answers_as_nats_py() -> None:
    nats_parse = NatsClient._parse_header_lines
    for raw in [CLOUDEVENT, *ODD]:
        assert parse_header_lines(raw) == nats_parse(raw), raw
    pieces = [b"a", b"B", b"-", b":", b" ", b"\t", b"\r\n", b"\r", b"\n", b"\x0b", b"\x1c"]
    pieces += [b"\xff", b"\xc3\xa9", b"\xe2\x82", b"\x85", b"\xc2\xa0", b"\xc2\x85"]
    rnd = random.Random(16)
    for _ in range(5_000):
        raw = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 14)))
        assert parse_header_lines(raw) == nats_parse(raw), raw


def test_the_name_cache_is_bounded_and_keeps_working_when_full(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(natsclient, "_NAMES", {})
    for i in range(natsclient._MAX_NAMES + 10):
        assert parse_header_lines(b"x-%d: v\r\n" % i) == {f"x-{i}": "v"}
        assert len(natsclient._NAMES) <= natsclient._MAX_NAMES
    assert parse_header_lines(CLOUDEVENT) == NatsClient._parse_header_lines(CLOUDEVENT)


async def test_the_bus_client_parses_received_headers_with_it() -> None:
    assert Client._parse_header_lines is parse_header_lines
    # nats-py's receive path must still go through the overridden method.
    assert "self._parse_header_lines(" in inspect.getsource(NatsClient._process_headers)
    hdr = await Client()._process_headers(b"NATS/1.0\r\n" + CLOUDEVENT)
    assert hdr is not None and hdr["ce-type"] == "cxloop.identity.interaction.resolved.v1"
