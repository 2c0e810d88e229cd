"""The touchpoint table (docs/adr/0280) matches the events' protobufs: every
time field and copied property exists, no free-text or encrypted field is
copied, and a decoded event keeps ids and scores only."""

from __future__ import annotations

from datetime import UTC, datetime

from cxloop.feedback.v1 import events_pb2 as fb
from google.protobuf.descriptor import FieldDescriptor

from analytics.domain.touchpoints import TOUCHPOINTS, decode_touchpoints
from cxloop_libs.messaging import catalog as ev


def test_every_touchpoint_names_real_fields_and_no_text() -> None:
    for t in TOUCHPOINTS.values():
        fields = t.kind.message_type.DESCRIPTOR.fields_by_name
        assert "customer_id" in fields, t.kind.ce_type
        assert fields[t.time_field].message_type.full_name == "google.protobuf.Timestamp"
        for p in t.properties:
            f = fields[p]
            assert f.type != FieldDescriptor.TYPE_BYTES, (t.kind.ce_type, p)
            assert "text" not in p and "encrypted" not in p, (t.kind.ce_type, p)


def test_decode_keeps_ids_and_scores_and_names_errors() -> None:
    ok = fb.DetractorDetected(
        response_id="r1", customer_id="c1", survey_id="nps", score=3, encrypted_text=b"\x01secret"
    )
    ok.detected_at.FromDatetime(datetime(2026, 3, 2, 9, tzinfo=UTC))
    no_time = fb.DetractorDetected(response_id="r2", customer_id="c2")
    out = decode_touchpoints(
        [
            (ev.DETRACTOR_DETECTED.ce_type, "id-1", ok.SerializeToString()),
            (ev.DETRACTOR_DETECTED.ce_type, "id-2", no_time.SerializeToString()),
            (ev.DETRACTOR_DETECTED.ce_type, "id-3", b"\xff\xff"),
            ("cxloop.feedback.privacy_request.answered.v1", "id-4", b""),
        ]
    )
    b = out.batch
    assert (b.event_id, b.customer_id, b.event, b.channel) == (
        ["id-1"],
        ["c1"],
        ["Detractor Detected"],
        ["feedback"],
    )
    assert b.properties == ['{"survey_id":"nps","score":3}']
    assert b.ts_us == [int(datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp() * 1_000_000)]
    assert out.errors == [
        (1, "cxloop.feedback.detractor.detected.v1 without detected_at"),
        (2, "body is not a valid DetractorDetected"),
    ]
