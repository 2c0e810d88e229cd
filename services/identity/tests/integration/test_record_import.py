"""ImportRecords and the review queue against real NATS JetStream and a real
database (SQLite and PostgreSQL): exact identifiers link, records without one
are scored by the matcher, unsure pairs wait for a person, and a rejection
holds against later imports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.runtime import ServiceRuntime
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.tests.unit.test_matching_korean_names import typical_model

pytestmark = pytest.mark.integration


@pytest.fixture
async def identity(
    clean_nats: str, database_url: str, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    model = tmp_path / "match-model.json"
    model.write_text(json.dumps(typical_model().to_dict()))
    settings = IdentitySettings(
        env="test",
        nats_url=clean_nats,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        match_model=str(model),
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    yield runtime
    await runtime.stop()


async def import_records(
    stub: pb_grpc.IdentityServiceStub, *records: pb.ImportedRecord
) -> pb.ImportRecordsResponse:
    # Two chunks, as a client streaming a file would send them.
    half = len(records) // 2
    chunks = [pb.ImportRecordsRequest(records=records[:half])]
    chunks.append(pb.ImportRecordsRequest(records=records[half:]))
    response: pb.ImportRecordsResponse = await stub.ImportRecords(iter(chunks), timeout=30)
    return response


def external(source: str, record_id: str) -> idpb.Identifier:
    return idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EXTERNAL, value=record_id, namespace=source)


async def customer_of(stub: pb_grpc.IdentityServiceStub, source: str, record_id: str) -> str:
    r = await stub.LookupByIdentifier(
        pb.LookupByIdentifierRequest(identifier=external(source, record_id)), timeout=5
    )
    return str(r.customer_id)


async def test_records_without_a_shared_identifier_link_above_the_threshold(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    resp = await import_records(
        stub,
        pb.ImportedRecord(
            record_id="c-1",
            source="crm",
            given_name="Olivia",
            family_name="Bennett",
            date_of_birth="1984-03-09",
            street="12 Harbour Road",
            postcode="2040",
            email="olivia.b@example.com",
        ),
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
            record_id="p-78",
            source="pos",
            full_name="Marcus Hale",
            date_of_birth="1962-11-30",
            postcode="3000",
        ),
    )
    assert resp.model == "configured"
    assert (resp.records, resp.linked_probabilistic, resp.review_items) == (3, 1, 0)
    assert resp.customers_created == 2
    crm, pos = await customer_of(stub, "crm", "c-1"), await customer_of(stub, "pos", "p-77")
    assert crm == pos
    assert await customer_of(stub, "pos", "p-78") != crm
    # Explain shows the per-field evidence of the probabilistic link.
    why = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=external("crm", "c-1"), identifier_b=external("pos", "p-77")
        ),
        timeout=5,
    )
    assert why.same_customer
    matched = [s for s in why.path if s.rule == "probabilistic"]
    assert matched and matched[0].match_probability >= 0.95
    weights = {w.field: (w.level, w.weight) for w in matched[0].match_weights}
    assert weights["date_of_birth"][0] == "exact" and weights["date_of_birth"][1] > 0
    assert weights["phone"][0] == "null"


async def test_an_unsure_pair_waits_for_review_and_a_rejection_blocks_later_auto_links(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    minjun = pb.ImportedRecord(
        record_id="m-1", source="shop", full_name="김민준", date_of_birth="1990-05-17"
    )
    seoyeon = pb.ImportedRecord(
        record_id="s-1",
        source="crm",
        full_name="김민준",  # same name, no birth date
    )
    resp = await import_records(stub, minjun, seoyeon)
    assert (resp.linked_probabilistic, resp.review_items) == (0, 1)
    (item,) = (await stub.ListReviewItems(pb.ListReviewItemsRequest(), timeout=5)).items
    assert 0.2 <= item.match_probability < 0.95
    assert {(item.source_a, item.record_id_a), (item.source_b, item.record_id_b)} == {
        ("shop", "m-1"),
        ("crm", "s-1"),
    }
    assert item.customer_id_a != item.customer_id_b
    assert {w.field for w in item.match_weights} >= {"given_name", "family_name"}
    # Nothing in the queue names a person: only record references and weights.
    assert "김" not in str(item) and "1990" not in str(item)

    decided = await stub.DecideReview(
        pb.DecideReviewRequest(
            item_id=item.item_id, decision=pb.REVIEW_DECISION_REJECT, actor="agent-7"
        ),
        timeout=5,
    )
    assert decided.item.status == pb.REVIEW_STATUS_REJECTED
    assert decided.item.decided_by == "agent-7"
    assert not (await stub.ListReviewItems(pb.ListReviewItemsRequest(), timeout=5)).items

    # The CRM record is corrected to read like the shop's: now a sure match,
    # but the rejection holds, and the pair is not queued again.
    corrected = pb.ImportedRecord(
        record_id="s-1", source="crm", full_name="Kim Minjun", date_of_birth="1990-05-17"
    )
    again = await import_records(stub, minjun, corrected)
    assert (again.linked_probabilistic, again.links_refused, again.review_items) == (0, 1, 0)
    assert await customer_of(stub, "shop", "m-1") != await customer_of(stub, "crm", "s-1")

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DecideReview(
            pb.DecideReviewRequest(
                item_id=item.item_id, decision=pb.REVIEW_DECISION_APPROVE, actor="agent-8"
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_approving_a_review_item_merges_the_two_customers(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    resp = await import_records(
        stub,
        pb.ImportedRecord(
            record_id="1", source="crm", full_name="박지훈", date_of_birth="1975-02-01"
        ),
        pb.ImportedRecord(
            record_id="2",
            source="pos",
            full_name="Park Jihoon",  # no birth date
        ),
    )
    assert resp.review_items == 1
    (item,) = (await stub.ListReviewItems(pb.ListReviewItemsRequest(), timeout=5)).items
    decided = await stub.DecideReview(
        pb.DecideReviewRequest(
            item_id=item.item_id, decision=pb.REVIEW_DECISION_APPROVE, actor="agent-7"
        ),
        timeout=5,
    )
    assert decided.item.status == pb.REVIEW_STATUS_APPROVED
    assert decided.item.customer_id_a == decided.item.customer_id_b
    assert await customer_of(stub, "crm", "1") == await customer_of(stub, "pos", "2")


async def test_korean_and_romanised_records_with_the_same_birth_date_and_phone_are_one(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    resp = await import_records(
        stub,
        pb.ImportedRecord(
            record_id="app-1",
            source="app",
            full_name="김민준",
            date_of_birth="1990-05-17",
            phone="010-1234-5678",
        ),
        pb.ImportedRecord(
            record_id="card-9",
            source="pos",
            given_name="Minjun",
            family_name="Kim",
            date_of_birth="19900517",
            phone="+82 10 1234 5678",
        ),
        pb.ImportedRecord(
            record_id="web-3",
            source="shop",
            full_name="Kim Seoyeon",
            date_of_birth="1990-05-17",
        ),
    )
    assert (resp.customers_created, resp.linked_exact) == (2, 1)
    app, pos = await customer_of(stub, "app", "app-1"), await customer_of(stub, "pos", "card-9")
    assert app == pos  # the phone, written two ways, is one exact identifier
    # Seoyeon shares surname and birth date, but not the given name: a
    # different person (the household rule), not even a review item.
    assert await customer_of(stub, "shop", "web-3") != app
    assert resp.review_items == 0


async def test_a_shared_landline_links_no_one_and_a_mobile_still_does(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    home = dict(street="마포구 월드컵북로 12길 34", city="서울", postcode="03971")
    resp = await import_records(
        stub,
        pb.ImportedRecord(
            record_id="m",
            source="crm",
            full_name="박영희",
            phone="02-333-4444",
            date_of_birth="1965-03-07",
            **home,
        ),
        pb.ImportedRecord(
            record_id="s",
            source="crm",
            full_name="박지훈",
            phone="02 333 4444",
            date_of_birth="1995-11-20",
            **home,
        ),
        pb.ImportedRecord(
            record_id="w",
            source="pos",
            full_name="Park Jihoon",
            phone="070-1234-5678",
            email="jihoon@example.com",
        ),
        pb.ImportedRecord(
            record_id="x",
            source="web",
            full_name="박지훈",
            phone="070-1234-5678",
            email="other@example.com",
        ),
        pb.ImportedRecord(
            record_id="y", source="app", full_name="Park Jihun", phone="010-5999-1234"
        ),
        pb.ImportedRecord(record_id="z", source="web", phone="+82 10 5999 1234"),
    )
    assert not resp.issues  # 010-59xx is a phone number, even ahead of the metadata
    mother, son = await customer_of(stub, "crm", "m"), await customer_of(stub, "crm", "s")
    assert mother != son  # one landline, two people
    # The same 070 number on two records with nothing else in common links nothing.
    assert await customer_of(stub, "pos", "w") != await customer_of(stub, "web", "x")
    assert await customer_of(stub, "app", "y") == await customer_of(stub, "web", "z")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Resolve(
            pb.ResolveRequest(
                identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_PHONE, value="02-333-4444")]
            ),
            timeout=5,
        )
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "landline" in (err.value.details() or "")


async def test_bad_fields_are_reported_and_the_rest_of_the_record_is_used(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    resp = await import_records(
        stub,
        pb.ImportedRecord(record_id="x-1", source="crm", email="not-an-email", full_name="A B"),
        pb.ImportedRecord(record_id="", source="crm", full_name="No Id"),
        pb.ImportedRecord(record_id="x-1", source="crm", full_name="Twice"),
    )
    assert resp.records == 1 and resp.records_skipped == 2
    assert (resp.issues[0].record_id, resp.issues[0].field) == ("x-1", "email")
    assert await customer_of(stub, "crm", "x-1")


async def test_a_match_between_known_customers_merges_them_with_its_evidence(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    # The email is already a customer (from the web shop); the CRM record with
    # that email joins it exactly, and the POS record that matches the CRM
    # record by name, birth date and address merges into it by probability.
    email = idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value="j.ortiz@example.com")
    web = await stub.Resolve(pb.ResolveRequest(identifiers=[email], source="web"), timeout=5)
    pos_first = pb.ImportedRecord(
        record_id="p-1",
        source="pos",
        given_name="Julia",
        family_name="Ortiz",
        date_of_birth="1979-08-21",
        street="4 Mill Lane",
        postcode="6000",
    )
    await import_records(stub, pos_first)  # on its own: a customer of its own
    pos_customer = await customer_of(stub, "pos", "p-1")
    assert pos_customer != web.customer_id
    resp = await import_records(
        stub,
        pos_first,
        pb.ImportedRecord(
            record_id="c-1",
            source="crm",
            given_name="Julia",
            family_name="Ortiz",
            date_of_birth="1979-08-21",
            street="4 Mill Ln",
            postcode="6000",
            email="J.Ortiz@example.com",
        ),
    )
    assert (resp.linked_exact, resp.linked_probabilistic, resp.customers_created) == (2, 1, 0)
    assert await customer_of(stub, "crm", "c-1") == await customer_of(stub, "pos", "p-1")
    why = await stub.Explain(
        pb.ExplainRequest(identifier_a=external("pos", "p-1"), identifier_b=email), timeout=5
    )
    assert why.same_customer
    (merge,) = [s for s in why.path if s.kind == pb.ExplainStep.KIND_MERGE]
    assert merge.rule == "probabilistic" and merge.match_probability >= 0.95
    assert {w.field for w in merge.match_weights} >= {"street", "postcode", "date_of_birth"}


async def test_the_chaining_guard_refuses_a_merge_the_customers_records_contradict(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    home = dict(street="마포구 월드컵북로 12길 34", city="서울", postcode="03971")
    resp = await import_records(
        stub,
        # Customer A: two records joined by an email.
        pb.ImportedRecord(
            record_id="a1",
            source="crm",
            full_name="조윤서",
            email="a@example.com",
            date_of_birth="1992-04-03",
            phone="010-5999-1234",
            **home,
        ),
        pb.ImportedRecord(
            record_id="a2", source="web", full_name="Yoonseo Cho", email="a@example.com", **home
        ),
        # Customer B: another 조윤서 at the same address (another mobile),
        # and a bare record of hers that reads exactly like A's web record.
        pb.ImportedRecord(
            record_id="b2",
            source="crm",
            full_name="조윤서",
            email="b@example.com",
            phone="010-2222-3333",
            **home,
        ),
        pb.ImportedRecord(
            record_id="b1", source="pos", full_name="Yun Seo Jo", email="b@example.com", **home
        ),
    )
    # b1 is a sure match for a2 on its own; but merging B into A would put
    # two mobiles of two people in one customer.
    assert resp.links_refused_chaining >= 1
    assert resp.links_refused >= resp.links_refused_chaining
    assert resp.linked_probabilistic == 0
    assert await customer_of(stub, "crm", "a1") == await customer_of(stub, "web", "a2")
    assert await customer_of(stub, "crm", "b2") == await customer_of(stub, "pos", "b1")
    assert await customer_of(stub, "crm", "a1") != await customer_of(stub, "crm", "b2")
    assert resp.review_items >= 1  # a person may still decide
