"""Segment JSON -> InteractionRecorded: identifiers hashed, PII dropped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cxloop.common.v1 import identifier_pb2
from cxloop.gateway.v1 import events_pb2
from google.protobuf.json_format import MessageToDict

from cxloop_libs.pii import IdentifierHasher, IdType
from gateway.domain.errors import InvalidRequest
from gateway.domain.privacy import scrub_properties
from gateway.domain.segment import CallType, parse_message
from gateway.domain.translation import (
    InteractionTranslator,
    Reception,
    RecordedInteraction,
    event_id_for,
    previous_id_type,
)

RECEIVED = datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
RECEPTION = Reception(source="web", received_at=RECEIVED)


def translate(
    translator: InteractionTranslator,
    call: CallType,
    body: dict[str, Any],
    reception: Reception = RECEPTION,
) -> RecordedInteraction:
    return translator.translate(parse_message(call, body), reception)


def ids(event: events_pb2.InteractionRecorded) -> set[tuple[int, str, str]]:
    return {(i.type, i.hash, i.namespace) for i in event.identifiers}


def expect(hasher: IdentifierHasher, t: IdType, value: str, ns: str = "") -> tuple[int, str, str]:
    h = hasher.hashed(t, value, ns)
    return (h.type, h.hash, h.namespace)


def test_track_hashes_identifiers_and_drops_raw_pii(
    translator: InteractionTranslator, hasher: IdentifierHasher
) -> None:
    r = translate(
        translator,
        CallType.TRACK,
        {
            "userId": "user-1",
            "anonymousId": "anon-1",
            "messageId": "m-1",
            "event": "Order Completed",
            "properties": {
                "total": 30.5,
                "Email": "kim@example.com",
                "firstName": "Minji",
                "IP": "10.0.0.1",
                "shipping": {"address": "Seoul", "method": "express"},
                "products": [{"sku": "A1", "name": "Blue shoe"}],
            },
            "context": {
                "traits": {"email": "Kim@Example.com", "name": "Kim Minji", "plan": "gold"},
                "ip": "10.0.0.1",
                "library": {"name": "analytics.js", "version": "2.0"},
            },
            "timestamp": "2024-05-01T09:59:00Z",
        },
    )
    e = r.event
    assert e.kind == events_pb2.INTERACTION_KIND_TRACK
    assert e.name == "Order Completed"
    assert e.message_id == "m-1"
    assert e.source == "web"
    assert e.channel == "analytics.js"
    assert ids(e) == {
        expect(hasher, IdType.USER_ID, "user-1"),
        expect(hasher, IdType.ANONYMOUS_ID, "anon-1"),
        expect(hasher, IdType.EMAIL, "kim@example.com"),
    }
    assert MessageToDict(e.properties) == {
        "total": 30.5,
        "shipping": {"method": "express"},
        "products": [{"sku": "A1"}],
    }
    assert r.pii_properties_dropped == 5
    wire = e.SerializeToString()
    for raw in (b"Kim@Example.com", b"kim@example.com", b"Kim Minji", b"Minji", b"10.0.0.1"):
        assert raw not in wire
    assert b"gold" not in wire  # other traits are dropped too


def test_timestamps_and_event_id(translator: InteractionTranslator) -> None:
    r = translate(
        translator,
        CallType.TRACK,
        {"userId": "u", "event": "x", "messageId": "m-9", "timestamp": "2024-05-01T09:00:00+09:00"},
    )
    assert r.occurred_at == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    assert r.event.occurred_at.ToDatetime(UTC) == r.occurred_at
    assert r.event.received_at.ToDatetime(UTC) == RECEIVED
    assert (
        r.event_id
        == event_id_for("web", "m-9")
        == str(uuid.uuid5(uuid.UUID("3b0f4a52-9d51-4c0b-8a0e-6f2d9c1e7a44"), "web/m-9"))
    )
    # Same messageId from another source is another event.
    assert event_id_for("app", "m-9") != r.event_id


def test_clock_skew_is_corrected_with_sent_at(translator: InteractionTranslator) -> None:
    # The device clock is 1 h fast: it says the event was 10 s before sending.
    r = translate(
        translator,
        CallType.TRACK,
        {
            "userId": "u",
            "event": "x",
            "timestamp": "2024-05-01T11:00:00Z",
            "sentAt": "2024-05-01T11:00:10Z",
        },
    )
    assert r.occurred_at == RECEIVED - timedelta(seconds=10)


def test_missing_timestamp_and_message_id(translator: InteractionTranslator) -> None:
    r = translate(translator, CallType.PAGE, {"anonymousId": "a", "name": "Home"})
    assert r.occurred_at == RECEIVED
    assert uuid.UUID(r.event.message_id).version == 4
    assert r.event.kind == events_pb2.INTERACTION_KIND_PAGE
    assert r.event.name == "Home"


def test_gpc_flag(translator: InteractionTranslator) -> None:
    gpc = Reception(source="web", received_at=RECEIVED, global_privacy_control=True)
    r = translate(translator, CallType.SCREEN, {"userId": "u", "name": "Cart"}, gpc)
    assert r.event.global_privacy_control is True
    assert r.event.kind == events_pb2.INTERACTION_KIND_SCREEN
    plain = translate(translator, CallType.SCREEN, {"userId": "u", "name": "Cart"})
    assert plain.event.global_privacy_control is False


def test_identify_keeps_only_identifier_traits(
    translator: InteractionTranslator, hasher: IdentifierHasher
) -> None:
    r = translate(
        translator,
        CallType.IDENTIFY,
        {
            "userId": "u-7",
            "traits": {
                "email": "Min.Ji+shop@gmail.com",
                "phone": "010-1234-5678",
                "loyaltyCard": 12345678,
                "name": "Kim Minji",
                "birthday": "1990-01-01",
            },
            "context": {"channel": "app"},
        },
    )
    e = r.event
    assert e.kind == events_pb2.INTERACTION_KIND_IDENTIFY
    assert e.channel == "app"
    assert ids(e) == {
        expect(hasher, IdType.USER_ID, "u-7"),
        expect(hasher, IdType.EMAIL, "minji@gmail.com"),
        expect(hasher, IdType.PHONE, "+821012345678"),
        expect(hasher, IdType.LOYALTY_CARD, "12345678"),
    }
    assert len(e.properties.fields) == 0
    assert b"1990-01-01" not in e.SerializeToString()


def test_same_identifier_twice_is_listed_once(translator: InteractionTranslator) -> None:
    r = translate(
        translator,
        CallType.IDENTIFY,
        {
            "userId": "u",
            "traits": {"email": "a.b@example.com"},
            "context": {"traits": {"email": "A.B@example.com"}},
        },
    )
    assert len(r.event.identifiers) == 2


def test_junk_identifiers_are_dropped_and_counted(translator: InteractionTranslator) -> None:
    r = translate(
        translator,
        CallType.IDENTIFY,
        {
            "userId": "u",
            "anonymousId": "undefined",
            "traits": {"email": "test@test.com", "phone": "010-0000-0000"},
        },
    )
    assert [i.type for i in r.event.identifiers] == [identifier_pb2.IDENTIFIER_TYPE_USER_ID]
    assert r.junk_count == 3
    assert r.junk_dropped[IdType.EMAIL] == 1


def test_empty_traits_are_not_identifiers(translator: InteractionTranslator) -> None:
    r = translate(
        translator, CallType.IDENTIFY, {"userId": "u", "traits": {"email": "", "phone": None}}
    )
    assert len(r.event.identifiers) == 1


@pytest.mark.parametrize(
    ("previous", "anonymous", "expected"),
    [
        ("2f1c6c4e-8b0a-4f5e-9a51-2f0c3c7d9e10", None, IdType.ANONYMOUS_ID),
        ("device-42", "device-42", IdType.ANONYMOUS_ID),
        ("crm-000123", None, IdType.USER_ID),
    ],
)
def test_alias_previous_id_type(previous: str, anonymous: str | None, expected: IdType) -> None:
    assert previous_id_type(previous, anonymous) is expected


def test_alias_links_previous_id(
    translator: InteractionTranslator, hasher: IdentifierHasher
) -> None:
    anon = "2f1c6c4e-8b0a-4f5e-9a51-2f0c3c7d9e10"
    r = translate(translator, CallType.ALIAS, {"previousId": anon, "userId": "u-1"})
    assert r.event.kind == events_pb2.INTERACTION_KIND_ALIAS
    assert ids(r.event) == {
        expect(hasher, IdType.USER_ID, "u-1"),
        expect(hasher, IdType.ANONYMOUS_ID, anon),
    }


def test_group_name_is_a_hash_and_group_traits_are_not_identifiers(
    translator: InteractionTranslator, hasher: IdentifierHasher
) -> None:
    r = translate(
        translator,
        CallType.GROUP,
        {"userId": "u", "groupId": "acme-corp", "traits": {"email": "ceo@acme.example"}},
    )
    assert r.event.kind == events_pb2.INTERACTION_KIND_GROUP
    assert r.event.name == hasher.hash(IdType.EXTERNAL, "acme-corp", "group")
    assert ids(r.event) == {expect(hasher, IdType.USER_ID, "u")}
    assert b"acme" not in r.event.SerializeToString()


def test_external_ids(translator: InteractionTranslator, hasher: IdentifierHasher) -> None:
    r = translate(
        translator,
        CallType.TRACK,
        {
            "userId": "u",
            "event": "x",
            "context": {
                "externalIds": [
                    {"id": "P-991", "type": "pos", "collection": "users"},
                    {"id": "kim@example.com", "type": "email", "collection": "users"},
                    {"id": "ACC-1", "type": "crm", "collection": "accounts"},
                    {"id": 77, "type": "CRM"},
                ]
            },
        },
    )
    assert ids(r.event) == {
        expect(hasher, IdType.USER_ID, "u"),
        expect(hasher, IdType.EXTERNAL, "P-991", "pos"),
        expect(hasher, IdType.EMAIL, "kim@example.com"),
        expect(hasher, IdType.EXTERNAL, "77", "crm"),
    }


def test_invalid_identifiers_name_their_fields(translator: InteractionTranslator) -> None:
    with pytest.raises(InvalidRequest) as info:
        translate(
            translator,
            CallType.IDENTIFY,
            {
                "userId": "u",
                "traits": {"email": "not-an-email", "phone": 1234},
                "context": {
                    "traits": {"phone": "12"},
                    "externalIds": [{"id": "x", "type": "crm"}, {"id": " ", "type": "crm"}],
                },
            },
        )
    fields = {p.field for p in info.value.problems}
    assert fields == {
        "traits.email",
        "traits.phone",
        "context.traits.phone",
        "context.externalIds[1].id",
    }
    # Reasons name the rule, never the value.
    assert all("not-an-email" not in p.reason for p in info.value.problems)


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        ("0001-01-01T00:00:00+01:00", None),  # year 1: a device with no clock
        ("9999-12-31T23:59:59-05:00", None),  # year 9999
        ("2024-05-01T10:00:00Z", "0001-01-01T00:00:00Z"),  # absurd sentAt
        ("1999-12-31T23:59:59Z", None),
        ("2024-05-02T10:00:00Z", None),  # a day after receipt
    ],
)
def test_absurd_timestamps_become_the_time_of_receipt(
    translator: InteractionTranslator, timestamp: str, sent_at: str | None
) -> None:
    """Issue 10 item 4: no event leaves with a time a consumer would choke
    on or a report would show in year 1; the event itself is kept."""
    body = {"userId": "u", "event": "x", "timestamp": timestamp}
    if sent_at:
        body["sentAt"] = sent_at
    r = translate(translator, CallType.TRACK, body)
    assert r.occurred_at == RECEIVED
    assert r.timestamp_corrected
    assert r.event.occurred_at.ToDatetime(UTC) == RECEIVED


def test_plausible_past_timestamp_is_kept(translator: InteractionTranslator) -> None:
    r = translate(
        translator,
        CallType.TRACK,
        {"userId": "u", "event": "x", "timestamp": "2021-03-01T00:00:00Z"},
    )
    assert r.occurred_at == datetime(2021, 3, 1, tzinfo=UTC)
    assert not r.timestamp_corrected


def test_scrub_properties_depth_limit() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(InvalidRequest):
        scrub_properties(deep)
    assert scrub_properties({"PHONE": 1, "phoneModel": "x"}) == ({"phoneModel": "x"}, 1)


def test_pii_in_free_text_is_redacted_except_allow_listed_keys(hasher: IdentifierHasher) -> None:
    translator = InteractionTranslator(hasher, pii_scan_allow=["OrderNumber"])
    r = translate(
        translator,
        CallType.TRACK,
        {
            "userId": "u",
            "event": "Callback for 010-2345-6789",
            "properties": {
                "note": "mail kim@example.com or call +82 10 2345 6789",
                "url": "https://shop.kr/c?email=kim%40example.com",
                "items": [{"comment": "rrn 900101-1234567"}],
                "orderNumber": "010-2345-6789",
                "kim@example.com": 1,
            },
        },
    )
    props = MessageToDict(r.event)["properties"]
    assert props == {
        "note": "mail [redacted email] or call [redacted phone]",
        "url": "https://shop.kr/c?email=[redacted email]",
        "items": [{"comment": "rrn [redacted rrn]"}],
        "orderNumber": "010-2345-6789",
        "[redacted email]": 1,
    }
    assert r.event.name == "Callback for [redacted phone]"
    assert r.pii_redacted == {"email": 3, "phone": 2, "rrn": 1}
