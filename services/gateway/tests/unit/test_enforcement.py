"""Consent enforcement at the gateway without network: the objectors'
identifiers, settling customers from consent changes and identity's answers,
and ingest withholding track/page/screen calls (docs/adr/0021)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import events_pb2 as cpb
from cxloop.gateway.v1 import events_pb2 as gpb
from cxloop.identity.v1 import events_pb2 as ipb
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from cxloop_libs.consent import ConsentProjection
from cxloop_libs.errors import Unavailable
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_testing.infra import eventually
from gateway.adapters.http import create_app
from gateway.adapters.identity_profiles import customers_in
from gateway.domain.enforcement import CapacityExceeded, ObjectorIdentifiers, signal_only
from gateway.domain.translation import InteractionTranslator
from gateway.domain.write_keys import WriteKeys
from gateway.service_layer.enforcement import AnalyticsEnforcement
from gateway.service_layer.ingest import SegmentIngest
from gateway.service_layer.metrics import GatewayMetrics
from gateway.tests.unit.fakes import HASH_KEY, SOURCE, WRITE_KEY, FakeReadiness, FakeSink, basic

HASHER = IdentifierHasher(HASH_KEY)
AUTH = basic(WRITE_KEY)


def hid(id_type: IdType, value: str) -> idpb.HashedIdentifier:
    return HASHER.hashed(id_type, value)


def projection() -> ConsentProjection:
    p = ConsentProjection()
    for purpose, basis in [
        ("analytics", cpb.LEGAL_BASIS_LEGITIMATE_INTEREST),
        ("marketing_email", cpb.LEGAL_BASIS_CONSENT),
    ]:
        p.apply_notice(cpb.NoticePublished(purpose=purpose, legal_basis=basis, notice_version="1"))
    p._ready.set()  # as after the first full read of the bucket
    return p


def decide(p: ConsentProjection, cid: str, version: int, decision: int) -> None:
    assert p.apply_consent_changed(
        cpb.ConsentChanged(
            customer_id=cid,
            version=version,
            purposes=[cpb.PurposeState(purpose="analytics", decision=decision, notice_version="1")],
        )
    )


class Identity:
    """Stands in for identity's GetProfile."""

    def __init__(self) -> None:
        self.profiles: dict[str, tuple[str, list[str]]] = {}
        self.down = False
        self.asked: list[str] = []

    async def identifiers_of(self, customer_id: str) -> tuple[str, list[str]] | None:
        self.asked.append(customer_id)
        if self.down:
            raise Unavailable("identity is down")
        return self.profiles.get(customer_id)


def test_objector_identifiers_attribute_by_the_strongest_identifier() -> None:
    ids = ObjectorIdentifiers(max_identifiers=4)
    user, anon, other = hid(IdType.USER_ID, "u"), hid(IdType.ANONYMOUS_ID, "a"), "f" * 64
    ids.load("c1", [anon.hash])
    ids.load("c2", [user.hash])
    assert ids.customer_of([anon]) == "c1"
    # A call carrying both: the user id decides, as identity would resolve it.
    assert ids.customer_of([anon, user]) == "c2"
    assert ids.customer_of([hid(IdType.EMAIL, "x@y.kr")]) is None
    # The graph moved the device to c2 (a merge): held once, by its owner.
    ids.load("c2", [user.hash, anon.hash])
    assert ids.hashes_of("c1") == frozenset() and ids.customer_of([anon]) == "c2"
    with pytest.raises(CapacityExceeded):
        ids.load("c3", [other, "e" * 64, "d" * 64])
    assert "c3" not in ids and len(ids) == 2
    assert ids.drop("c2") == 2 and len(ids) == 0 and ids.customer_of([user]) is None


def test_signal_only_keeps_identifiers_and_gpc_and_nothing_else() -> None:
    event = gpb.InteractionRecorded(
        message_id="m",
        kind=gpb.INTERACTION_KIND_PAGE,
        name="Checkout",
        identifiers=[hid(IdType.USER_ID, "u")],
        source="web",
        channel="web",
        global_privacy_control=True,
    )
    event.properties.update({"total": 3})
    event.occurred_at.FromSeconds(100)
    event.received_at.FromSeconds(200)
    s = signal_only(event)
    assert s.kind == gpb.INTERACTION_KIND_PRIVACY_SIGNAL and s.global_privacy_control
    assert list(s.identifiers) == list(event.identifiers) and s.message_id == "m"
    assert (s.name, s.channel, len(s.properties)) == ("", "", 0)
    assert s.occurred_at.seconds == s.received_at.seconds == 200


def test_profile_events_name_their_customers() -> None:
    merged = ipb.ProfileMerged(surviving_customer_id="s", merged_customer_ids=["m1", "m2"])
    assert customers_in(ev.PROFILE_MERGED.subject, merged.SerializeToString()) == ["s", "m1", "m2"]
    split = ipb.ProfileSplit(original_customer_id="o", resulting_customer_ids=["o", "n"])
    assert customers_in(ev.PROFILE_SPLIT.subject, split.SerializeToString()) == ["o", "o", "n"]
    updated = ipb.ProfileUpdated(customer_id="u")
    assert customers_in(ev.PROFILE_UPDATED.subject, updated.SerializeToString()) == ["u"]
    assert customers_in(ev.PROFILE_CREATED.subject, b"\xff\xff") == []
    assert customers_in("cx.identity.interaction.resolved", b"") == []


async def test_objections_load_identifiers_and_regrants_drop_them() -> None:
    p, identity = projection(), Identity()
    user, anon = hid(IdType.USER_ID, "u"), hid(IdType.ANONYMOUS_ID, "a")
    identity.profiles["c1"] = ("c1", [user.hash, anon.hash])
    enforcement = AnalyticsEnforcement(p, identity)
    task = asyncio.create_task(enforcement.run())
    try:
        event = gpb.InteractionRecorded(identifiers=[anon])
        decide(p, "c1", 1, cpb.CONSENT_DECISION_DENIED)  # on_change marks c1
        await _settled(enforcement)
        assert enforcement.withholding(event) == "c1"
        # A customer who never objected is not even asked about.
        decide(p, "c2", 1, cpb.CONSENT_DECISION_GRANTED)
        await _settled(enforcement)
        assert identity.asked == ["c1"]
        # A re-grant counts at once (checked per call), and drops the identifiers.
        decide(p, "c1", 2, cpb.CONSENT_DECISION_GRANTED)
        assert enforcement.withholding(event) is None
        await _settled(enforcement)
        assert "c1" not in enforcement.identifiers
        # Identity down: retried until it answers.
        identity.down = True
        decide(p, "c1", 3, cpb.CONSENT_DECISION_WITHDRAWN)
        await eventually(lambda: len(identity.asked) >= 3, timeout=5)  # tried and failed
        assert not enforcement.settled and enforcement.withholding(event) is None
        identity.down = False
        await _settled(enforcement)
        assert enforcement.withholding(event) == "c1"
        # Merged away: the survivor's consent decides; consent gives it the refusal.
        identity.profiles["c1"] = ("s", [user.hash, anon.hash])
        identity.profiles["s"] = ("s", [user.hash, anon.hash])
        enforcement.mark_all(["s", "c1"])
        await _settled(enforcement)
        assert "c1" not in enforcement.identifiers and enforcement.withholding(event) is None
        decide(p, "s", 1, cpb.CONSENT_DECISION_DENIED)
        await _settled(enforcement)
        assert enforcement.withholding(event) == "s"
        # Erasure forgets; identity no longer knowing a customer drops it too.
        assert enforcement.forget("s") == 2 and enforcement.withholding(event) is None
        del identity.profiles["s"]
        enforcement.mark("s")
        await _settled(enforcement)
        assert "s" not in enforcement.identifiers
    finally:
        await enforcement.stop()
        await task


async def _settled(enforcement: AnalyticsEnforcement) -> None:
    await eventually(lambda: enforcement.settled, timeout=5, interval=0.005)


async def test_ingest_withholds_analytics_calls_of_objectors_and_counts_them() -> None:
    p, identity = projection(), Identity()
    identity.profiles["c1"] = ("c1", [hid(IdType.USER_ID, "objector").hash])
    enforcement = AnalyticsEnforcement(p, identity)
    decide(p, "c1", 1, cpb.CONSENT_DECISION_DENIED)
    await enforcement.settle("c1")
    reader = InMemoryMetricReader()
    metrics = GatewayMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    sink = FakeSink()
    ingest = SegmentIngest(
        InteractionTranslator(HASHER), sink, metrics=metrics, enforcement=enforcement
    )
    app = create_app(
        ingest=ingest,
        write_keys=WriteKeys({WRITE_KEY: SOURCE}),
        readiness=FakeReadiness(),
        metrics=metrics,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        for path, body in [
            ("/v1/track", {"userId": "objector", "event": "E"}),
            ("/v1/page", {"userId": "objector", "name": "P"}),
            ("/v1/screen", {"userId": "objector", "name": "S"}),
        ]:
            r = await http.post(path, json=body, headers=AUTH)
            assert r.status_code == 200 and r.json()["withheld"] == 1, r.text
        for path, body in [
            ("/v1/identify", {"userId": "objector"}),
            ("/v1/alias", {"userId": "objector", "previousId": "old"}),
            ("/v1/group", {"userId": "objector", "groupId": "g"}),
            ("/v1/track", {"userId": "someone-else", "event": "E"}),
        ]:
            r = await http.post(path, json=body, headers=AUTH)
            assert r.status_code == 200 and r.json()["withheld"] == 0, r.text
        assert [m.kind for m in sink.messages()] == [
            gpb.INTERACTION_KIND_IDENTIFY,
            gpb.INTERACTION_KIND_ALIAS,
            gpb.INTERACTION_KIND_GROUP,
            gpb.INTERACTION_KIND_TRACK,
        ]
        # With Sec-GPC: 1 the withheld call leaves only its signal.
        r = await http.post(
            "/v1/batch",
            json={
                "batch": [
                    {"type": "track", "userId": "objector", "event": "E", "messageId": "g1"},
                    {"type": "track", "userId": "someone-else", "event": "E"},
                ]
            },
            headers={**AUTH, "Sec-GPC": "1"},
        )
        assert (r.json()["accepted"], r.json()["withheld"]) == (2, 1)
        signal, other = sink.messages()[-2:]
        assert signal.kind == gpb.INTERACTION_KIND_PRIVACY_SIGNAL and signal.message_id == "g1"
        assert not signal.name and other.kind == gpb.INTERACTION_KIND_TRACK
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "cxloop_gateway_events_withheld"
        for point in m.data.data_points  # type: ignore[union-attr]
    ]
    assert [(dict(pt.attributes or {}), pt.value) for pt in points] == [  # type: ignore[union-attr]
        ({"purpose": "analytics"}, 4)
    ]
