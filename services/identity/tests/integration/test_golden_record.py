"""The golden record and real-time scoring against earlier records, on real
NATS and a real database (SQLite and PostgreSQL): traits are kept sealed per
customer, survivorship picks each value, merges carry the observations to
the survivor, erasure leaves nothing readable, and a later import (after a
restart) is matched against earlier records."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import nats.errors
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.identity.v1 import events_pb2 as identity_events
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import DEV_MASTER_KEY, KeyShredded, SubjectKeyring
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.tests.integration.test_record_import import customer_of, external, import_records
from identity.tests.unit.test_matching_korean_names import typical_model

pytestmark = pytest.mark.integration

RING = SubjectKeyring(DEV_MASTER_KEY)  # test settings use the development master key


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    path = tmp_path / "match-model.json"
    path.write_text(json.dumps(typical_model().to_dict()))
    return str(path)


@asynccontextmanager
async def running(
    nats_url: str, database_url: str, model: str
) -> AsyncIterator[tuple[ServiceRuntime, pb_grpc.IdentityServiceStub]]:
    settings = IdentitySettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        match_model=model,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    try:
        assert runtime.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            yield runtime, pb_grpc.IdentityServiceStub(ch)
    finally:
        await runtime.stop()


def at(iso: str) -> Timestamp:
    t = Timestamp()
    t.FromJsonString(iso)
    return t


def sealed_rows(database_url: str) -> list[tuple[str, str, bytes]]:
    db = Database(database_url)
    try:
        with db.session() as s:
            return [
                (r[0], r[1], bytes(r[2]))
                for r in s.execute(
                    sa.text("SELECT customer_id, trait, sealed FROM identity_trait_observation")
                )
            ]
    finally:
        db.dispose()


def open_sealed(database_url: str, customer_id: str, trait: str, sealed: bytes) -> str:
    db = Database(database_url)
    try:
        with db.session() as s:
            return RING.open(s, customer_id, sealed, context=trait.encode()).decode()
    finally:
        db.dispose()


async def fetch_subject(bus: NatsBus, subject: str) -> list[Any]:
    js: Any = bus.js

    async def published() -> bool:
        try:
            info = await js.stream_info("IDENTITY", subjects_filter=subject)
        except Exception:
            return False
        return bool(info.state.messages)

    await eventually(published)
    sub = await js.pull_subscribe(subject, stream="IDENTITY")
    try:
        # The messages are there; a busy machine may still take a while to
        # hand them over (the callers poll again on an empty answer).
        return list(await sub.fetch(500, timeout=10))
    except nats.errors.TimeoutError:
        return []
    finally:
        await sub.unsubscribe()


async def erase(nats_url: str, customer_id: str) -> consent_events.PrivacyRequestAnswered:
    """Ask for an erasure as the consent saga does; identity's answer."""
    bus = NatsBus(nats_url, name="test-consent", streams=[stream_for("consent")])
    await bus.connect(timeout=10)
    request_id = str(uuid.uuid4())
    subject = ev.PRIVACY_REQUEST_ANSWERED["identity"].subject
    try:
        await EventPublisher(bus, source="/cxloop/consent").publish(
            PendingEvent.of(
                ev.ERASURE_REQUESTED,
                consent_events.ErasureRequested(request_id=request_id, customer_id=customer_id),
                subject=customer_id,
            )
        )
        found: list[consent_events.PrivacyRequestAnswered] = []

        async def answered() -> bool:
            found[:] = [
                a
                for a in (
                    consent_events.PrivacyRequestAnswered.FromString(m.data)
                    for m in await fetch_subject(bus, subject)
                )
                if a.request_id == request_id
            ]
            return bool(found)

        await eventually(answered)
    finally:
        await bus.close()
    return found[0]


def golden(profile: pb.Profile) -> dict[str, pb.ProfileTrait]:
    return {t.name: t for t in profile.golden_record}


OLIVIA_CRM = pb.ImportedRecord(
    record_id="c-1",
    source="crm",
    given_name="Olivia",
    family_name="Bennett",
    date_of_birth="1984-03-09",
    street="12 Harbour Road",
    postcode="2040",
    phone="010-3333-4444",
    email="olivia.b@example.com",
    observed_at=at("2026-01-01T00:00:00Z"),
)
OLIVIA_POS = pb.ImportedRecord(
    record_id="p-1",
    source="pos",
    given_name="Olivai",  # typed at a till
    family_name="Bennett",
    date_of_birth="19840309",
    street="7 Dune Street",
    postcode="2041",
    phone="+82 10 3333 4444",  # the same phone: one customer exactly
    email="olivia.new@example.com",
    observed_at=at("2026-03-01T00:00:00Z"),
)


async def test_golden_record_by_rule_follows_a_merge_and_is_unreadable_after_erasure(
    clean_nats: str, database_url: str, model_file: str
) -> None:
    async with running(clean_nats, database_url, model_file) as (_, stub):
        await import_records(stub, OLIVIA_CRM)
        await import_records(stub, OLIVIA_POS)
        olivia = await customer_of(stub, "crm", "c-1")
        assert await customer_of(stub, "pos", "p-1") == olivia
        profile = (await stub.GetProfile(pb.GetProfileRequest(customer_id=olivia))).profile
        g = golden(profile)
        # Names: the most trusted source (crm > pos > web by default).
        assert (g["given_name"].value, g["given_name"].rule, g["given_name"].source) == (
            "Olivia",
            "most_trusted_source",
            "crm",
        )
        assert g["given_name"].observations == 2
        # Email and address: the most recent statement, by record time.
        assert (g["email"].value, g["email"].rule) == ("olivia.new@example.com", "most_recent")
        assert g["email"].observed_at.ToJsonString() == "2026-03-01T00:00:00Z"
        assert (g["street"].value, g["postcode"].value) == ("7 Dune Street", "2041")
        # Both said the same birth date and phone (written differently).
        assert (g["date_of_birth"].rule, g["date_of_birth"].observations) == ("unanimous", 2)
        assert (g["phone"].value, g["phone"].rule) == ("+821033334444", "unanimous")

        # At rest every value is sealed: no raw value in the table.
        stored = sealed_rows(database_url)
        assert len(stored) == 14 and {c for c, _, _ in stored} == {olivia}
        assert not any(b"Olivia" in v or b"2040" in v for _, _, v in stored)

        # A web sign-up with another birth date, a separate customer, merged
        # by hand: the golden record combines both, re-sealed for the survivor.
        web = await stub.Resolve(
            pb.ResolveRequest(
                identifiers=[external("web", "w-9")],
                source="web",
                traits={"date_of_birth": "1984-09-03", "state": "NSW"},
                observed_at=at("2026-02-01T00:00:00Z"),
            )
        )
        assert web.created and web.customer_id != olivia
        (_, _, web_sealed) = next(r for r in sealed_rows(database_url) if r[1] == "state")
        merged = await stub.Merge(
            pb.MergeRequest(customer_ids=[olivia, web.customer_id], actor="agent-1")
        )
        assert merged.surviving_customer_id == olivia
        g = golden((await stub.GetProfile(pb.GetProfileRequest(customer_id=olivia))).profile)
        assert (g["state"].value, g["state"].source) == ("NSW", "web")
        assert (g["date_of_birth"].rule, g["date_of_birth"].observations) == ("most_frequent", 3)
        assert g["date_of_birth"].value in ("1984-03-09", "19840309")
        stored = sealed_rows(database_url)
        assert {c for c, _, _ in stored} == {olivia} and len(stored) == 16
        state = next(v for _, t, v in stored if t == "state")
        assert open_sealed(database_url, olivia, "state", state) == "NSW"
        # The merged-away customer's key is gone: its old ciphertext is dead.
        with pytest.raises(KeyShredded):
            open_sealed(database_url, web.customer_id, "state", web_sealed)

        # Erasure (the consent saga's request): observations deleted, key
        # shredded, counts in the answer.
        answer = await erase(clean_nats, olivia)
        assert not sealed_rows(database_url)
        assert answer.row_counts["trait_observations"] == 16
        assert answer.row_counts["subject_key"] == 1
        assert answer.row_counts["realtime_index_entries"] == 3  # c-1, p-1, w-9
        with pytest.raises(KeyShredded):
            open_sealed(database_url, olivia, "state", state)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetProfile(pb.GetProfileRequest(customer_id=olivia))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_split_takes_the_observations_of_the_moved_records(
    clean_nats: str, database_url: str, model_file: str
) -> None:
    async with running(clean_nats, database_url, model_file) as (_, stub):
        await import_records(stub, OLIVIA_CRM, OLIVIA_POS)
        olivia = await customer_of(stub, "crm", "c-1")
        split = await stub.Split(
            pb.SplitRequest(customer_id=olivia, identifiers=[external("pos", "p-1")], actor="a")
        )
        kept = golden((await stub.GetProfile(pb.GetProfileRequest(customer_id=olivia))).profile)
        moved = golden(
            (await stub.GetProfile(pb.GetProfileRequest(customer_id=split.new_customer_id))).profile
        )
        assert (kept["given_name"].value, kept["given_name"].observations) == ("Olivia", 1)
        assert (moved["given_name"].value, moved["street"].value) == ("Olivai", "7 Dune Street")


async def test_later_imports_and_resolve_traits_are_scored_against_earlier_records(
    clean_nats: str, database_url: str, model_file: str
) -> None:
    minjun = pb.ImportedRecord(
        record_id="m-1", source="shop", full_name="김민준", date_of_birth="1990-05-17"
    )
    crm_olivia = pb.ImportedRecord(
        record_id="c-1",
        source="crm",
        given_name="Olivia",
        family_name="Bennett",
        date_of_birth="1984-03-09",
        street="12 Harbour Road",
        postcode="2040",
        email="olivia.b@example.com",
    )
    async with running(clean_nats, database_url, model_file) as (_, stub):
        first = await import_records(stub, crm_olivia, minjun)
        assert first.linked_probabilistic == 0
        olivia = await customer_of(stub, "crm", "c-1")

    # A restart: earlier records come back from their sealed observations.
    async with running(clean_nats, database_url, model_file) as (_, stub):
        second = await import_records(
            stub,
            pb.ImportedRecord(
                record_id="p-77",
                source="pos",
                full_name="Olivia Bennet",
                date_of_birth="19840309",
                street="12 Harbor Rd",
                postcode="2040",
                phone="010-3333-4444",
            ),
            pb.ImportedRecord(
                record_id="s-1",
                source="crm",
                full_name="김민준",  # same name, no birth date
            ),
        )
        assert second.comparisons_with_earlier >= 2
        assert (second.linked_probabilistic, second.review_items) == (1, 1)
        # No identifier in common: linked to the earlier import's customer.
        assert await customer_of(stub, "pos", "p-77") == olivia
        (item,) = (await stub.ListReviewItems(pb.ListReviewItemsRequest())).items
        assert {(item.source_a, item.record_id_a), (item.source_b, item.record_id_b)} == {
            ("shop", "m-1"),
            ("crm", "s-1"),
        }
        await stub.DecideReview(
            pb.DecideReviewRequest(
                item_id=item.item_id, decision=pb.REVIEW_DECISION_REJECT, actor="agent-7"
            )
        )
        # Corrected to read like the shop's record: a sure match with the
        # earlier record, but the rejection holds and nothing is queued.
        third = await import_records(
            stub,
            pb.ImportedRecord(
                record_id="s-1", source="crm", full_name="Kim Minjun", date_of_birth="1990-05-17"
            ),
        )
        assert (third.linked_probabilistic, third.links_refused, third.review_items) == (0, 1, 0)
        assert await customer_of(stub, "crm", "s-1") != await customer_of(stub, "shop", "m-1")

        # A partner resolving a sign-up with traits: scored in real time.
        signup = await stub.Resolve(
            pb.ResolveRequest(
                identifiers=[external("web", "acct-5")],
                source="web",
                traits={
                    "given_name": "Olivia",
                    "family_name": "Bennett",
                    "date_of_birth": "1984-03-09",
                    "street": "12 Harbour Rd",
                    "postcode": "2040",
                },
            )
        )
        assert signup.customer_id == olivia
        why = await stub.Explain(
            pb.ExplainRequest(
                identifier_a=external("web", "acct-5"), identifier_b=external("crm", "c-1")
            )
        )
        assert why.same_customer
        assert any(s.rule == "probabilistic" and s.match_probability >= 0.95 for s in why.path)
        # Events name the traits observed, never their values.
        bus = NatsBus(clean_nats, name="test-reader", streams=[])
        await bus.connect(timeout=10)
        try:
            msgs = await fetch_subject(bus, "cx.identity.profile.>")
        finally:
            await bus.close()
        observed = [
            list(identity_events.ProfileCreated.FromString(m.data).observed_traits)
            for m in msgs
            if m.subject == ev.PROFILE_CREATED.subject
        ] + [
            list(identity_events.ProfileUpdated.FromString(m.data).observed_traits)
            for m in msgs
            if m.subject == ev.PROFILE_UPDATED.subject
        ]
        assert ["date_of_birth", "family_name", "given_name", "postcode", "street"] in observed
        assert ["date_of_birth", "full_name"] in observed  # s-1 re-imported

        # Erasure reaches the match evidence and review items naming the
        # customer's records, and takes its records out of the index.
        shop = await customer_of(stub, "shop", "m-1")
        answer = await erase(clean_nats, shop)
        assert answer.row_counts["review_items"] == 1
        assert answer.row_counts["realtime_index_entries"] == 1
        answer = await erase(clean_nats, olivia)
        assert answer.row_counts["match_evidence"] == 2  # p-77 and acct-5
        assert answer.row_counts["realtime_index_entries"] == 3
        assert answer.row_counts["trait_observations"] == 16
        # A record like Olivia's now finds nobody earlier to match.
        fourth = await import_records(
            stub,
            pb.ImportedRecord(
                record_id="p-78",
                source="pos",
                full_name="Olivia Bennett",
                date_of_birth="1984-03-09",
                postcode="2040",
            ),
        )
        assert (fourth.linked_probabilistic, fourth.review_items) == (0, 0)
        assert not any(b"Olivia" in m.data or b"Bennett" in m.data for m in msgs)


async def test_resolve_traits_are_validated_field_by_field(
    clean_nats: str, database_url: str, model_file: str
) -> None:
    async with running(clean_nats, database_url, model_file) as (_, stub):
        cases = [
            ({"shoe_size": "270"}, "web", "traits[shoe_size]"),
            ({"phone": "not a phone"}, "web", "traits[phone]"),
            ({"email": "nobody"}, "web", "traits[email]"),
            ({"given_name": "x" * 600}, "web", "traits[given_name]"),
            ({"given_name": "Olivia"}, "", "source"),
        ]
        for traits, source, field in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Resolve(
                    pb.ResolveRequest(
                        identifiers=[external("web", "acct-1")], source=source, traits=traits
                    )
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (err.value.details() or "")
        assert not sealed_rows(database_url)


async def test_a_new_customers_sign_up_reads_no_earlier_statements_and_a_later_one_replaces(
    clean_nats: str, database_url: str, model_file: str
) -> None:
    """A sign-up's identifier and customer are new in its transaction:
    nothing can be stored about them yet, so neither earlier statements nor
    a subject key are read. The same record signing up again with a newer
    value is read, and its older statement replaced."""
    reads: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        # TraitStore.observe's two reads (other readers, such as the index
        # loading at start, read other columns).
        flat = " ".join(statement.split())
        if flat.startswith(
            ("SELECT identity_trait_observation.id,", "SELECT pii_subject_key.subject_id,")
        ):
            reads.append(flat)

    async with running(clean_nats, database_url, model_file) as (_, stub):
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
        try:
            first = await stub.Resolve(
                pb.ResolveRequest(
                    identifiers=[external("web", "w-77")],
                    source="web",
                    traits={"given_name": "Mina", "city": "Busan"},
                    observed_at=at("2026-02-01T00:00:00Z"),
                )
            )
            assert first.created and reads == []
            again = await stub.Resolve(
                pb.ResolveRequest(
                    identifiers=[external("web", "w-77")],
                    source="web",
                    traits={"given_name": "Mina", "city": "Seoul"},
                    observed_at=at("2026-03-01T00:00:00Z"),
                )
            )
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)
        assert again.customer_id == first.customer_id and not again.created
        assert len(reads) == 2  # its earlier statements, its customer's key
        g = golden(
            (await stub.GetProfile(pb.GetProfileRequest(customer_id=first.customer_id))).profile
        )
        assert (g["city"].value, g["city"].observations) == ("Seoul", 1)
        assert len(sealed_rows(database_url)) == 2
