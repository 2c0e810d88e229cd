"""decode_interactions: an interaction resolved body -> its stored columns,
the keys the store de-duplicates and sorts by, and what is not a row."""

from __future__ import annotations

import json
import math

from cxloop.gateway.v1 import events_pb2 as gw

from analytics.domain.batch import (
    EventBatch,
    customer_key,
    decode_interactions,
    event_key,
    properties_json,
)
from analytics.tests.conftest import interaction, utc
from cxloop_libs.messaging import catalog as ev

T0 = utc(2026, 3, 2, 9)
WANTED = ev.INTERACTION_RESOLVED.ce_type


def item(msg, ce_id: str = "ce-1", ce_type: str = WANTED) -> tuple[str, str, bytes]:  # type: ignore[no-untyped-def]
    return ce_type, ce_id, msg.SerializeToString()


def test_rows_keys_and_skips() -> None:
    page = interaction("c-2", "", T0, kind=gw.INTERACTION_KIND_PAGE, message_id="m-2")
    ident = interaction("c-3", "", T0, kind=gw.INTERACTION_KIND_IDENTIFY, message_id="m-3")
    items = [
        item(interaction("c-1", "Product Viewed", T0, message_id="m-1", sku="S1", price=12.5)),
        item(page),
        item(ident),  # not behaviour: skipped
        item(interaction("c-4", "x", T0), ce_type="cxloop.other.thing.happened.v1"),  # other type
    ]
    out = decode_interactions(items, WANTED)
    b = out.batch
    assert out.errors == []
    assert b.event_id == ["m-1", "m-2"]
    assert b.customer_id == ["c-1", "c-2"]
    assert b.event == ["Product Viewed", "page viewed"]
    assert b.kind == ["track", "page"]
    assert b.ts_us == [int(T0.timestamp() * 1_000_000)] * 2
    assert json.loads(b.properties[0]) == {"sku": "S1", "price": 12.5}
    assert b.properties[1] == "{}"
    assert b.event_keys is not None and b.customer_keys is not None
    assert b.event_keys.tolist() == [event_key("m-1"), event_key("m-2")]
    assert b.customer_keys.tolist() == [customer_key("c-1"), customer_key("c-2")]


def test_bad_events_are_reported_by_index_and_the_rest_kept() -> None:
    no_customer = interaction("", "Viewed", T0, message_id="m-2")
    no_name = interaction("c-3", "", T0, message_id="m-3")
    items = [
        item(interaction("c-1", "Viewed", T0, message_id="m-1")),
        ("x", "y", b""),  # skipped: another type
        item(no_customer),
        (WANTED, "ce-bad", b"\xff\xff not a protobuf"),
        item(no_name),
        item(interaction("c-5", "Viewed", T0, message_id="m-5")),
    ]
    out = decode_interactions(items, WANTED)
    assert out.batch.event_id == ["m-1", "m-5"]
    assert [i for i, _ in out.errors] == [2, 3, 4]
    assert "customer_id" in out.errors[0][1]
    assert "InteractionResolved" in out.errors[1][1]
    assert "event name" in out.errors[2][1]


def test_take_keeps_columns_and_keys_aligned() -> None:
    items = [
        item(interaction(f"c-{i}", "Viewed", T0, message_id=f"m-{i}"), ce_id=f"ce-{i}")
        for i in range(5)
    ]
    b = decode_interactions(items, WANTED).batch
    picked = b.take([3, 1])
    assert picked.event_id == ["m-3", "m-1"]
    assert picked.customer_id == ["c-3", "c-1"]
    assert picked.event_keys is not None and picked.customer_keys is not None
    assert picked.event_keys.tolist() == [event_key("m-3"), event_key("m-1")]
    assert picked.customer_keys.tolist() == [customer_key("c-3"), customer_key("c-1")]
    assert EventBatch().take([]).event_id == []


def test_properties_json_is_json_even_for_non_finite_numbers() -> None:
    out = properties_json({"a": math.nan, "b": math.inf, "c": "한글", "d": [1.0, None]})
    assert json.loads(out) == {"a": None, "b": None, "c": "한글", "d": [1.0, None]}
