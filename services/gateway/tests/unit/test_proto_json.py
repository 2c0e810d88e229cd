"""The 360's answers written by ``message_to_dict`` equal protobuf's
``MessageToDict(..., always_print_fields_with_no_presence=True)`` — values
and key order, so the HTTP body is the same text (docs/adr/0310) — on every
message type the gateway converts, filled at random (fields left unset,
set to defaults, repeated and map fields of several sizes, enums known and
unknown, extreme integers and floats, nested and well-known messages)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as apb
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.feedback.v1 import feedback_service_pb2 as fpb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from gateway.adapters.proto_json import message_to_dict

ANSWERS = [
    ipb.GetProfileResponse,
    cpb.GetPreferencesResponse,
    lpb.GetMemberViewResponse,
    lpb.GetAccountResponse,
    lpb.GetHistoryResponse,
    ppb.GetCustomerViewResponse,
    fpb.ListCasesResponse,
    apb.RecentJourneyResponse,
]


def scalar(rng: random.Random, field: Any) -> Any:
    cpp = field.cpp_type
    if cpp == F.CPPTYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        if not field.enum_type.is_closed and rng.random() < 0.1:
            return max(numbers) + 7  # a number this build does not know
        return rng.choice(numbers)
    if cpp == F.CPPTYPE_STRING:
        if field.type == F.TYPE_BYTES:
            return rng.randbytes(rng.randint(0, 5))
        return rng.choice(["", "x", "한국어 ✓", 'a"b\\c', "0"])
    if cpp == F.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if cpp in (F.CPPTYPE_INT64,):
        return rng.choice([0, 1, -1, 2**63 - 1, -(2**63), 12345678901])
    if cpp == F.CPPTYPE_UINT64:
        return rng.choice([0, 1, 2**64 - 1])
    if cpp == F.CPPTYPE_INT32:
        return rng.choice([0, 1, -1, 2**31 - 1, -(2**31)])
    if cpp == F.CPPTYPE_UINT32:
        return rng.choice([0, 1, 2**32 - 1])
    if cpp in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE):
        return rng.choice([0.0, 0.1, -2.5, 1e20, 1 / 3, float("inf"), float("nan")])
    raise AssertionError(cpp)


def fill(rng: random.Random, message: Message, depth: int = 0) -> None:
    full = message.DESCRIPTOR.full_name
    if full == "google.protobuf.Timestamp":
        message.seconds = rng.randint(0, 4_000_000_000)  # type: ignore[attr-defined]
        message.nanos = rng.choice([0, 1_000, 500_000_000, 123_456_789])  # type: ignore[attr-defined]
        return
    if full == "google.protobuf.Duration":
        message.seconds = rng.randint(-1000, 1000)  # type: ignore[attr-defined]
        return
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.25 or depth > 4:
            continue  # left unset
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, field.name)
            key_f = field.message_type.fields_by_name["key"]
            val_f = field.message_type.fields_by_name["value"]
            for _ in range(rng.randint(0, 3)):
                k = scalar(rng, key_f)
                if val_f.cpp_type == F.CPPTYPE_MESSAGE:
                    fill(rng, target[k], depth + 1)
                else:
                    target[k] = scalar(rng, val_f)
        elif field.is_repeated:
            target = getattr(message, field.name)
            for _ in range(rng.randint(0, 3)):
                if field.cpp_type == F.CPPTYPE_MESSAGE:
                    fill(rng, target.add(), depth + 1)
                else:
                    target.append(scalar(rng, field))
        elif field.cpp_type == F.CPPTYPE_MESSAGE:
            sub = getattr(message, field.name)
            sub.SetInParent()
            fill(rng, sub, depth + 1)
        else:
            setattr(message, field.name, scalar(rng, field))


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.DESCRIPTOR.name)
def test_written_as_protobuf_writes_it(answer: type[Message]) -> None:
    rng = random.Random(answer.DESCRIPTOR.full_name)
    for _ in range(300):
        m = answer()
        fill(rng, m)
        expected = MessageToDict(m, always_print_fields_with_no_presence=True)
        got = message_to_dict(m)
        # Same text: the same values with the keys in the same order.
        assert json.dumps(got) == json.dumps(expected)
    assert message_to_dict(answer()) == MessageToDict(
        answer(), always_print_fields_with_no_presence=True
    )
