"""What the console's Overview, Journeys and Experiments views show, put
together from the services' own numbers. Like the customer 360, each part
is fetched at once within a deadline; a service that is down, slow or does
not offer a number yet is named in ``missing`` and its part is ``null`` —
the console shows "not available" rather than a guess."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cxloop_libs.audit import Actor
from gateway.service_layer.customer360 import PartUnavailable

Fetch = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class ViewPart:
    name: str
    service: str
    fetch: Fetch


async def gather_parts(parts: tuple[ViewPart, ...], deadline_s: float) -> dict[str, Any]:
    started = time.perf_counter()

    async def one(p: ViewPart) -> tuple[ViewPart, Any, str]:
        try:
            return p, await asyncio.wait_for(p.fetch(), deadline_s), ""
        except TimeoutError:
            return p, None, f"{p.service} did not answer within {deadline_s:g} s"
        except PartUnavailable as exc:
            return p, None, exc.reason

    answer: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    for p, value, problem in await asyncio.gather(*(one(p) for p in parts)):
        answer[p.name] = value
        if problem:
            missing.append({"part": p.name, "service": p.service, "reason": problem})
    answer["missing"] = missing
    answer["complete"] = not missing
    answer["tookMs"] = round((time.perf_counter() - started) * 1000, 1)
    return answer


class NotOffered(PartUnavailable):
    """A number no service exposes yet: said plainly, never made up."""


class ConsoleSources(Protocol):
    """Where the views' numbers come from (adapters/console_sources.py)."""

    async def overview(self) -> dict[str, Any]: ...

    async def funnel(self, steps: list[str], days: int, breakdown: str) -> dict[str, Any]: ...

    async def experiment(self, experiment_id: str) -> dict[str, Any] | None: ...

    async def preview_segment(self, rule: str, sample: int) -> dict[str, Any]: ...

    async def segment_members(self, segment_id: str) -> dict[str, Any] | None: ...

    async def adjust_points(
        self, customer_id: str, points: int, reason: str, idempotency_key: str, actor: Actor
    ) -> dict[str, Any]: ...

    async def update_case(
        self, customer_id: str, case_id: str, change: dict[str, Any], actor: Actor
    ) -> dict[str, Any]: ...

    async def review_items(self, status: str, limit: int, actor: Actor) -> dict[str, Any]: ...

    async def decide_review(
        self, item_id: str, decision: str, reason: str, actor: Actor
    ) -> dict[str, Any]: ...

    async def explain(
        self, a: dict[str, str], b: dict[str, str], actor: Actor
    ) -> dict[str, Any]: ...

    async def paths(
        self, anchor: str, before: bool, depth: int, top: int, days: int, exclude: list[str]
    ) -> dict[str, Any]: ...

    async def retention(
        self, cohort_event: str, return_event: str, weeks: int
    ) -> dict[str, Any]: ...

    async def alerts(self, kpi: str, limit: int) -> dict[str, Any]: ...

    async def define_segment(self, segment_id: str, name: str, rule: str) -> dict[str, Any]: ...

    async def list_segments(self) -> dict[str, Any]: ...
