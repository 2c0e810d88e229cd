"""`cxloop demo`: seed the running suite with a synthetic shop
(cxloop_cli.demo_shop) through its public APIs only — the gateway's Segment
endpoint for behaviour, gRPC for what partners send (catalogue, sign-ups at
the till, consent forms, survey answers and reviews) — then say what to open.
Every step is idempotent (message ids, idempotency keys): running it twice
adds nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import grpc.aio
import httpx
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cgrpc
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.feedback.v1 import feedback_service_pb2 as fpb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as fgrpc
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as igrpc
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pgrpc
from cxloop.personalization.v1 import resources_pb2 as res
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cxloop_cli.demo_shop import Person, Shop

T = TypeVar("T")
BATCH = 250
PARALLEL = 32
NPS_SURVEY = {
    "id": "demo-nps",
    "name": "After purchase / 구매 후",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {"ko": "친구에게 추천하시겠어요?", "en": "Would you recommend us?"},
        },
        {"id": "why", "type": "free_text", "text": {"ko": "이유", "en": "Why?"}},
    ],
}


@dataclass
class DemoReport:
    customers: dict[int, str] = field(default_factory=dict)  # person -> customer id
    counts: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": len(self.customers),
            "counts": dict(self.counts),
            "problems": dict(self.problems),
        }


async def _bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[None]], advance: Callable[[], None]
) -> None:
    sem = asyncio.Semaphore(PARALLEL)

    async def one(item: T) -> None:
        async with sem:
            await work(item)
            advance()

    await asyncio.gather(*(one(i) for i in items))


async def _retrying(call: Callable[[], Awaitable[T]], tries: int = 20) -> T:
    """A service that just started answers UNAVAILABLE until its database is
    migrated (feedback: until its text model is loaded): wait as a client should."""
    for attempt in range(tries):
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            retry = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if err.code() not in retry or attempt == tries - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


class Seeder:
    def __init__(
        self,
        shop: Shop,
        *,
        gateway_url: str,
        write_key: str,
        targets: dict[str, str],
        token: str = "",
    ) -> None:
        self.shop = shop
        self.gateway_url = gateway_url.rstrip("/")
        self.write_key = write_key
        self.targets = targets
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.report = DemoReport()

    def _problem(self, step: str, err: Exception) -> None:
        code = err.code().name if isinstance(err, grpc.aio.AioRpcError) else type(err).__name__
        self.report.problems[f"{step}: {code}"] += 1

    async def catalogue(self, channel: grpc.aio.Channel, advance: Callable[[], None]) -> None:
        stub = pgrpc.PersonalizationServiceStub(channel)

        async def items() -> AsyncIterator[ppb.UpsertItemsRequest]:
            for it in self.shop.items:
                yield ppb.UpsertItemsRequest(item=res.Item(**it, available=True))
                advance()

        try:
            await _retrying(lambda: stub.UpsertItems(items(), metadata=self.metadata, timeout=60))
            self.report.counts["catalogue items"] += len(self.shop.items)
        except grpc.aio.AioRpcError as err:
            self._problem("catalogue", err)

    async def sign_ups(self, channel: grpc.aio.Channel, advance: Callable[[], None]) -> None:
        """Each person as a till or CRM would register them (identity Resolve
        with traits); the gateway's events then land on the same customer."""
        stub = igrpc.IdentityServiceStub(channel)

        async def one(p: Person) -> None:
            ids = [
                idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=p.user_id),
                idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value=p.email),
                idpb.Identifier(type=idpb.IDENTIFIER_TYPE_PHONE, value=p.phone),
            ]
            try:
                r = await _retrying(
                    lambda: stub.Resolve(
                        ipb.ResolveRequest(identifiers=ids, source="demo-crm"),
                        metadata=self.metadata,
                        timeout=10,
                    )
                )
                self.report.customers[p.index] = r.customer_id
                self.report.counts["customers"] += 1
            except grpc.aio.AioRpcError as err:
                self._problem("sign-up", err)

        await _bounded(self.shop.people, one, advance)

    async def consents(self, channel: grpc.aio.Channel, advance: Callable[[], None]) -> None:
        stub = cgrpc.ConsentServiceStub(channel)
        try:
            listed = await _retrying(
                lambda: stub.ListPurposes(
                    cpb.ListPurposesRequest(), metadata=self.metadata, timeout=10
                )
            )
        except grpc.aio.AioRpcError as err:
            self._problem("consent", err)
            return
        versions = {p.key: p.notice.version for p in listed.purposes}

        async def one(p: Person) -> None:
            cid = self.report.customers.get(p.index)
            if cid is None:
                return
            for purpose, granted in p.consents.items():
                if purpose not in versions:
                    continue
                try:
                    await stub.RecordConsent(
                        cpb.RecordConsentRequest(
                            customer_id=cid,
                            purpose=purpose,
                            decision=cev.CONSENT_DECISION_GRANTED
                            if granted
                            else cev.CONSENT_DECISION_DENIED,
                            notice_version=versions[purpose],
                            channel=cev.CONSENT_CHANNEL_WEB_FORM,
                            idempotency_key=f"demo-consent-{p.index}-{purpose}",
                        ),
                        metadata=self.metadata,
                        timeout=10,
                    )
                    self.report.counts["consent choices"] += 1
                except grpc.aio.AioRpcError as err:
                    self._problem("consent", err)

        await _bounded(self.shop.people, one, advance)

    async def behaviour(self, advance: Callable[[int], None]) -> None:
        events = self.shop.events
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(0, len(events), BATCH):
                batch = events[i : i + BATCH]
                for _ in range(30):
                    r = await client.post(
                        f"{self.gateway_url}/v1/batch",
                        json={"batch": batch},
                        auth=(self.write_key, ""),
                    )
                    if r.status_code != 503:
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                if r.status_code == 200:
                    body = r.json()
                    self.report.counts["events accepted"] += int(body.get("accepted", len(batch)))
                    for rej in body.get("rejections", []):
                        self.report.problems[f"event rejected: {rej.get('field', '?')}"] += 1
                else:
                    self.report.problems[f"batch: HTTP {r.status_code}"] += 1
                advance(len(batch))

    async def voice(self, channel: grpc.aio.Channel, advance: Callable[[], None]) -> None:
        stub = fgrpc.FeedbackServiceStub(channel)
        try:
            await _retrying(
                lambda: stub.PutSurvey(
                    fpb.PutSurveyRequest(survey_json=json.dumps(NPS_SURVEY, ensure_ascii=False)),
                    metadata=self.metadata,
                    timeout=30,
                ),
                tries=20,
            )
        except grpc.aio.AioRpcError as err:
            self._problem("survey", err)
            return

        async def review(r: dict[str, Any]) -> None:
            cid = self.report.customers.get(r["person"])
            if cid is None:
                return
            req = fpb.SubmitReviewRequest(
                customer_id=cid,
                product_id=r["product_id"],
                rating=r["rating"],
                text=r["text"],
                idempotency_key=r["key"],
                channel="web",
            )
            req.submitted_at.FromDatetime(r["at"])
            try:
                await _retrying(
                    lambda: stub.SubmitReview(req, metadata=self.metadata, timeout=10), tries=600
                )
                self.report.counts["reviews"] += 1
            except grpc.aio.AioRpcError as err:
                self._problem("review", err)

        async def answer(n: dict[str, Any]) -> None:
            cid = self.report.customers.get(n["person"])
            if cid is None:
                return
            req = fpb.SubmitResponseRequest(
                survey_id="demo-nps",
                customer_id=cid,
                answers=[
                    fpb.Answer(question_id="nps", score=n["score"]),
                    fpb.Answer(question_id="why", text=n["text"]),
                ],
                idempotency_key=n["key"],
                channel="email",
                touchpoint="post_purchase",
            )
            req.submitted_at.FromDatetime(n["at"])
            try:
                await _retrying(
                    lambda: stub.SubmitResponse(req, metadata=self.metadata, timeout=10), tries=600
                )
                self.report.counts["survey responses"] += 1
            except grpc.aio.AioRpcError as err:
                self._problem("survey response", err)

        await _bounded(self.shop.reviews, review, advance)
        await _bounded(self.shop.nps, answer, advance)


async def wait_for_gateway(url: str, timeout_s: float = 60) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await client.get(f"{url.rstrip('/')}/readyz")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return False


async def run(seeder: Seeder, console: Console | None, *, show_progress: bool = True) -> DemoReport:
    shop = seeder.shop
    channels = {name: grpc.aio.insecure_channel(t) for name, t in seeder.targets.items()}
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not show_progress) as bar:
        tasks = {
            "catalogue": bar.add_task("catalogue", total=len(shop.items)),
            "sign_ups": bar.add_task("customers", total=len(shop.people)),
            "consents": bar.add_task("consent choices", total=len(shop.people)),
            "behaviour": bar.add_task("a year of events", total=len(shop.events)),
            "voice": bar.add_task("reviews and surveys", total=len(shop.reviews) + len(shop.nps)),
        }

        def step(name: str) -> Callable[[], None]:
            return lambda: bar.advance(tasks[name])

        try:
            await seeder.catalogue(channels["personalization"], step("catalogue"))
            await seeder.sign_ups(channels["identity"], step("sign_ups"))
            await seeder.consents(channels["consent"], step("consents"))
            await seeder.behaviour(lambda n: bar.advance(tasks["behaviour"], n))
            await seeder.voice(channels["feedback"], step("voice"))
        finally:
            for ch in channels.values():
                await ch.close()
    return seeder.report
