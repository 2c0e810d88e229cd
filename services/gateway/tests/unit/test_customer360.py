"""The customer 360's assembly without a network: one call per service may
answer several parts, each part answered, null or missing on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from cxloop_libs.audit import Actor
from gateway.service_layer.customer360 import (
    Answer,
    Customer360,
    CustomerNotFound,
    Part,
    PartUnavailable,
)

ACTOR = Actor(name="gateway-key:k1", on_behalf_of="key:k1", reason="ticket 1")


def answers(values: Mapping[str, Answer]) -> Part:
    async def fetch(cid: str, actor: Actor) -> Mapping[str, Answer]:
        return values

    return Part(tuple(values), "personalization", fetch)


def profile(cid: str = "c-1") -> Part:
    async def fetch(asked: str, actor: Actor) -> Mapping[str, Answer]:
        return {"profile": {"customerId": cid}}

    return Part(("profile",), "identity", fetch)


async def test_one_call_answers_several_parts_each_on_its_own() -> None:
    perso = answers(
        {
            "recommendations": {"items": []},
            "segments": {"segments": []},
            "traits": None,  # nothing known: null, not missing
            "predictions": PartUnavailable("personalization answered FAILED_PRECONDITION"),
        }
    )
    body = await Customer360((profile(), perso)).get("c-1", ACTOR)
    assert list(body)[:6] == [
        "customerId",
        "profile",
        "recommendations",
        "segments",
        "traits",
        "predictions",
    ]
    assert body["traits"] is None and body["predictions"] is None
    assert body["missing"] == [
        {
            "part": "predictions",
            "service": "personalization",
            "reason": "personalization answered FAILED_PRECONDITION",
        }
    ]
    assert body["complete"] is False


async def test_a_service_down_or_late_misses_all_of_its_parts() -> None:
    async def down(cid: str, actor: Actor) -> Mapping[str, Answer]:
        raise PartUnavailable("personalization is unavailable")

    async def late(cid: str, actor: Actor) -> Mapping[str, Answer]:
        await asyncio.sleep(5)
        return {}

    body = await Customer360(
        (
            profile(),
            Part(("recommendations", "segments"), "personalization", down),
            Part(("loyalty",), "loyalty", late),
        ),
        deadline_s=0.05,
    ).get("c-1", ACTOR)
    assert [(m["part"], m["reason"]) for m in body["missing"]] == [
        ("recommendations", "personalization is unavailable"),
        ("segments", "personalization is unavailable"),
        ("loyalty", "loyalty did not answer within 0.05 s"),
    ]
    assert body["recommendations"] is body["segments"] is body["loyalty"] is None


async def test_merged_away_id_answers_as_survivor_and_unknown_is_not_found() -> None:
    body = await Customer360((profile("c-survivor"),)).get("c-old", ACTOR)
    assert body["customerId"] == "c-survivor" and body["complete"] is True
    with pytest.raises(CustomerNotFound):
        await Customer360((answers({"profile": None}),)).get("nobody", ACTOR)
