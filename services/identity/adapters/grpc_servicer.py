"""gRPC edge of the identity service: translate, call a handler, translate back."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC

import grpc
from cxloop.common.v1 import identifier_pb2
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import Session

from cxloop_libs.audit import AuditLog
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, NotFound, Unavailable
from cxloop_libs.messaging import MalformedEvent
from cxloop_libs.pii import (
    IdentifierHasher,
    IdType,
    PhoneKind,
    is_junk,
    normalize_identifier,
    phone_kind,
)
from identity.adapters.audit import CHANGE, GRAPH, PROFILE, READ, REVIEW, audited, audited_read
from identity.adapters.repository import ProfileRecord
from identity.domain.matching import CustomerRecord
from identity.domain.model import HashedId
from identity.domain.survivorship import TRAITS, GoldenTrait
from identity.service_layer.handlers import (
    IdentityHandlers,
    ResolveCommand,
    to_hashed,
    to_proto,
)
from identity.service_layer.imports import ImportRecord, RecordImporter
from identity.service_layer.operations import GraphOperations, Step
from identity.service_layer.resolver import BatchedResolver
from identity.service_layer.review import APPROVE, REJECT, ReviewQueue, ReviewView

MAX_IDENTIFIERS = 50
# A trait value longer than this is not a name, date, address or phone.
MAX_TRAIT_CHARS = 500
# One import holds its records' raw values in memory for scoring.
MAX_IMPORT_RECORDS = 200_000
_REVIEW_STATUS = {
    pb.REVIEW_STATUS_UNSPECIFIED: "open",
    pb.REVIEW_STATUS_OPEN: "open",
    pb.REVIEW_STATUS_APPROVED: "approved",
    pb.REVIEW_STATUS_REJECTED: "rejected",
}
_SOURCE_RE = re.compile(r"[a-z0-9_-]{1,32}")
_REVIEW_STATUS_PB = {v: k for k, v in _REVIEW_STATUS.items() if k}


def _ts(dt: object) -> Timestamp:
    t = Timestamp()
    if dt is not None:
        t.FromDatetime(dt)  # type: ignore[arg-type]
    return t


def step_to_proto(step: Step) -> pb.ExplainStep:
    kinds = {
        "link": pb.ExplainStep.KIND_LINK,
        "merge": pb.ExplainStep.KIND_MERGE,
        "blocked": pb.ExplainStep.KIND_BLOCKED,
    }
    return pb.ExplainStep(
        kind=kinds[step.kind],
        identifier=to_proto(step.identifier) if step.identifier else None,
        customer_id=step.customer_id,
        from_customer_id=step.from_customer_id,
        event_id=step.event_id,
        source=step.source,
        rule=step.rule,
        at=_ts(step.at),
        match_probability=step.match_probability,
        match_weights=[
            pb.FieldWeight(field=f, level=lvl, weight=w) for f, lvl, w in step.match_weights
        ],
    )


def weights_to_proto(weights_json: str) -> list[pb.FieldWeight]:
    return [
        pb.FieldWeight(field=name, level=level, weight=weight)
        for name, (level, weight) in json.loads(weights_json).items()
    ]


def review_to_proto(v: ReviewView) -> pb.ReviewItem:
    i = v.item
    return pb.ReviewItem(
        item_id=i.item_id,
        status=_REVIEW_STATUS_PB.get(i.status, pb.REVIEW_STATUS_UNSPECIFIED),
        match_probability=i.probability,
        match_weights=weights_to_proto(i.weights),
        source_a=i.source_a,
        record_id_a=i.record_id_a,
        source_b=i.source_b,
        record_id_b=i.record_id_b,
        customer_id_a=v.customer_id_a,
        customer_id_b=v.customer_id_b,
        created_at=_ts(i.created_at),
        decided_at=_ts(i.decided_at) if i.decided_at else None,
        decided_by=i.decided_by,
    )


def golden_to_proto(g: GoldenTrait) -> pb.ProfileTrait:
    return pb.ProfileTrait(
        name=g.trait,
        value=g.value,
        rule=g.rule,
        source=g.source,
        observed_at=_ts(g.observed_at),
        observations=g.observations,
    )


def profile_to_proto(p: ProfileRecord) -> pb.Profile:
    c = p.customer
    return pb.Profile(
        golden_record=[golden_to_proto(g) for g in p.golden],
        customer_id=c.customer_id,
        identifiers=[to_proto(i) for i in p.identifiers],
        merged_customer_ids=p.merged_ids,
        created_at=_ts(c.created_at),
        updated_at=_ts(c.updated_at),
        interaction_count=c.interaction_count,
        last_seen_at=_ts(c.last_seen_at) if c.last_seen_at else None,
    )


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(
        self,
        db: Database,
        handlers: IdentityHandlers,
        hasher: IdentifierHasher,
        *,
        is_ready: Callable[[], bool],
        after_commit: Callable[[], None],
        default_region: str = "KR",
        operations: GraphOperations | None = None,
        ignored_hashes: frozenset[str] = frozenset(),
        resolver: BatchedResolver | None = None,
        importer: RecordImporter | None = None,
        review: ReviewQueue | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.audit = audit  # who read or changed a profile (docs/adr/0020)
        self.ignored_hashes = ignored_hashes
        self.db = db
        self.handlers = handlers
        self.operations = operations or GraphOperations()
        self.hasher = hasher
        self.is_ready = is_ready
        self.after_commit = after_commit
        self.default_region = default_region
        self.resolver = resolver or BatchedResolver(db, handlers, after_commit=after_commit)
        self.importer = importer or RecordImporter(policy=handlers.policy)
        self.review = review or ReviewQueue(self.operations)

    def _hash_request(self, idents: list[identifier_pb2.Identifier]) -> list[HashedId]:
        if not idents:
            raise InvalidArgument("identifiers", "at least one identifier is required")
        if len(idents) > MAX_IDENTIFIERS:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS} identifiers per call")
        out: list[HashedId] = []
        for n, ident in enumerate(idents):
            id_type, value, ns = self._normalized(ident, f"identifiers[{n}]")
            if is_junk(id_type, value):
                continue  # placeholder values never link anyone
            if id_type is IdType.PHONE and phone_kind(value) is PhoneKind.SHARED:
                continue  # a landline / 070 number is a household's, not a person's
            hashed = HashedId(id_type.value, self.hasher.hash_normalized(id_type, value, ns), ns)
            if hashed.hash in self.ignored_hashes:
                continue  # junk by configuration
            out.append(hashed)
        if not out:
            raise InvalidArgument(
                "identifiers",
                "only placeholder values (e.g. 'null', 'test@test.com') or shared landlines"
                " (02-…, 070-…: send them as traits[phone])",
            )
        return out

    def _normalized(self, ident: identifier_pb2.Identifier, field: str) -> tuple[IdType, str, str]:
        """Type, normalised value and namespace, or INVALID_ARGUMENT naming
        ``field.type`` / ``field.value``."""
        try:
            id_type = IdType.from_proto(ident.type)
        except InvalidArgument:
            raise InvalidArgument(
                f"{field}.type", "unknown or unspecified identifier type"
            ) from None
        value, ns = normalize_identifier(
            id_type,
            ident.value,
            ident.namespace,
            field=f"{field}.value",
            default_region=self.default_region,
        )
        return id_type, value, ns

    def _hash_one(self, ident: identifier_pb2.Identifier, field: str) -> HashedId:
        id_type, value, ns = self._normalized(ident, field)
        hashed = HashedId(id_type.value, self.hasher.hash_normalized(id_type, value, ns), ns)
        if is_junk(id_type, value) or hashed.hash in self.ignored_hashes:
            raise InvalidArgument(f"{field}.value", "a placeholder value never names a customer")
        return hashed

    def _require_db(self) -> None:
        if not self.is_ready():
            raise Unavailable("identity database is not ready yet")

    async def Resolve(
        self, request: pb.ResolveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveResponse:
        ids = self._hash_request(list(request.identifiers))
        traits, email_hash = self._resolve_traits(request)
        self._require_db()
        command = ResolveCommand(
            tuple(ids),
            request.source[:100],
            traits=traits,
            observed_at=(
                request.observed_at.ToDatetime(UTC) if request.HasField("observed_at") else None
            ),
            email_hash=email_hash,
        )
        try:
            outcome = await self.resolver.resolve(command)
        except ValueError:
            raise InvalidArgument("identifiers", "nothing left to link") from None
        return pb.ResolveResponse(customer_id=outcome.customer_id, created=outcome.created)

    def _trait_value(self, name: str, raw: str, field: str) -> tuple[str, str]:
        """(value to keep, email hash). Phones are kept in E.164; a malformed
        email or phone, or a value too long, is INVALID_ARGUMENT."""
        value = " ".join(raw.split())
        if len(value) > MAX_TRAIT_CHARS:
            raise InvalidArgument(field, f"at most {MAX_TRAIT_CHARS} characters")
        if name == "phone" and value:
            value = normalize_identifier(
                IdType.PHONE, value, field=field, default_region=self.default_region
            )[0]
        if name == "email" and value:
            norm = normalize_identifier(IdType.EMAIL, value, field=field)[0]
            return value, self.hasher.hash_normalized(IdType.EMAIL, norm)
        return value, ""

    def _resolve_traits(
        self, request: pb.ResolveRequest
    ) -> tuple[tuple[tuple[str, str], ...], str]:
        if not request.traits:
            return (), ""
        source = request.source.strip().lower()
        if not _SOURCE_RE.fullmatch(source):
            raise InvalidArgument(
                "source", "required with traits: 1-32 characters of a-z, 0-9, _ or -"
            )
        out: list[tuple[str, str]] = []
        email_hash = ""
        for name in sorted(request.traits):
            field = f"traits[{name}]"
            if name not in TRAITS:
                raise InvalidArgument(field, f"unknown trait; use one of {', '.join(TRAITS)}")
            value, hashed = self._trait_value(name, request.traits[name], field)
            if value:
                out.append((name, value))
                email_hash = hashed or email_hash
        return tuple(out), email_hash

    async def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProfileResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        self._require_db()
        cid = request.customer_id
        get = lambda s: self.handlers.get_profile(s, cid)  # noqa: E731
        record = await audited_read(
            self.audit, context, self.db, PROFILE, get, subject=cid, operation="GetProfile"
        )
        if record is None:
            raise NotFound(f"no customer {cid}")
        return pb.GetProfileResponse(profile=profile_to_proto(record))

    async def LookupByIdentifier(
        self, request: pb.LookupByIdentifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupByIdentifierResponse:
        if not request.HasField("identifier"):
            raise InvalidArgument("identifier", "is required")
        ident = self._hash_one(request.identifier, "identifier")
        self._require_db()

        def lookup(s: Session) -> ProfileRecord | None:
            found = self.operations.lookup(s, ident)
            if found is not None:
                found.golden = self.handlers.golden_record(s, found.customer.customer_id)
            return found

        record = await audited_read(
            self.audit,
            context,
            self.db,
            PROFILE,
            lookup,
            subject=lambda r: r.customer.customer_id if r else "",
            operation="LookupByIdentifier",
        )
        if record is None:
            raise NotFound("identifier is not known")
        return pb.LookupByIdentifierResponse(
            customer_id=record.customer.customer_id, profile=profile_to_proto(record)
        )

    async def Explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        for name in ("identifier_a", "identifier_b"):
            if not request.HasField(name):
                raise InvalidArgument(name, "is required")
        a = self._hash_one(request.identifier_a, "identifier_a")
        b = self._hash_one(request.identifier_b, "identifier_b")
        self._require_db()
        explain = lambda s: self.operations.explain(s, a, b)  # noqa: E731
        out = await self.db.in_transaction(
            audited(
                self.audit,
                context,
                READ,
                GRAPH,
                explain,
                subject=lambda o: o.customer_id_a or o.customer_id_b,
                operation="Explain",
            )
        )
        return pb.ExplainResponse(
            same_customer=out.same_customer,
            customer_id_a=out.customer_id_a,
            customer_id_b=out.customer_id_b,
            path=[step_to_proto(step) for step in out.path],
        )

    async def Merge(
        self, request: pb.MergeRequest, context: grpc.aio.ServicerContext
    ) -> pb.MergeResponse:
        ids = list(request.customer_ids)
        if len(ids) > MAX_IDENTIFIERS:
            raise InvalidArgument("customer_ids", f"at most {MAX_IDENTIFIERS} customers per call")
        for n, cid in enumerate(ids):
            if not cid or len(cid) > 64:
                raise InvalidArgument(f"customer_ids[{n}]", "must be a customer id")
        if not request.actor:
            raise InvalidArgument("actor", "name who decided the merge")
        self._require_db()
        survivor, merged = await self.db.in_transaction(
            audited(
                self.audit,
                context,
                CHANGE,
                GRAPH,
                lambda s: self.operations.merge(
                    s, ids, reason=request.reason[:200], actor=request.actor[:100]
                ),
                subject=lambda r: r[0],
                operation="Merge",
            )
        )
        self.after_commit()
        return pb.MergeResponse(surviving_customer_id=survivor, merged_customer_ids=merged)

    async def Split(
        self, request: pb.SplitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SplitResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        if not request.actor:
            raise InvalidArgument("actor", "name who decided the split")
        if len(request.identifiers) + len(request.hashed_identifiers) > MAX_IDENTIFIERS:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS} identifiers per call")
        moves: list[tuple[str, str]] = []
        for n, ident in enumerate(request.identifiers):
            moves.append((f"identifiers[{n}]", self._hash_one(ident, f"identifiers[{n}]").hash))
        for n, hashed in enumerate(request.hashed_identifiers):
            field = f"hashed_identifiers[{n}]"
            try:
                moves.append((field, to_hashed(hashed).hash))
            except (MalformedEvent, ValueError):
                raise InvalidArgument(field, "not a hashed identifier (type and 64 hex)") from None
        self._require_db()
        cid = request.customer_id
        result = await self.db.in_transaction(
            audited(
                self.audit,
                context,
                CHANGE,
                GRAPH,
                lambda s: self.operations.split(
                    s, cid, moves, reason=request.reason[:200], actor=request.actor[:100]
                ),
                subject=cid,
                operation="Split",
            )
        )
        self.after_commit()
        return pb.SplitResponse(
            customer_id=result.customer_id, new_customer_id=result.new_customer_id
        )

    async def GetStats(
        self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatsResponse:
        self._require_db()
        c = await self.db.in_transaction(self.operations.stats)
        return pb.GetStatsResponse(
            customers=c.customers,
            identifiers_by_type=c.identifiers_by_type,
            merges=c.merged,
            blocked_links=c.blocked_links,
            shared_devices=c.shared_devices,
            events_without_identifiers=c.events_without_identifiers,
            splits=c.splits,
        )

    # -- batch import and review ------------------------------------------------
    def _import_record(
        self, r: pb.ImportedRecord, issues: list[pb.ImportIssue]
    ) -> ImportRecord | None:
        """Normalise and hash one record's identifiers; keep the values the
        matcher compares in memory. A bad email or phone drops that field
        (listed in `issues`); a record without a usable id is skipped."""
        rid = " ".join(r.record_id.split())
        try:
            external = self._hash_one(
                identifier_pb2.Identifier(
                    type=identifier_pb2.IDENTIFIER_TYPE_EXTERNAL,
                    value=rid,
                    namespace=r.source,
                ),
                "record",
            )
        except InvalidArgument as exc:
            issues.append(pb.ImportIssue(record_id=rid[:200], field=exc.field, message=str(exc)))
            return None
        ids = [external]
        phone = ""
        email_hash = ""
        email = ""
        for field_name, id_type, raw in (
            ("email", identifier_pb2.IDENTIFIER_TYPE_EMAIL, r.email),
            ("phone", identifier_pb2.IDENTIFIER_TYPE_PHONE, r.phone),
        ):
            if not raw.strip():
                continue
            try:
                hashed = self._hash_one(
                    identifier_pb2.Identifier(type=id_type, value=raw), field_name
                )
            except InvalidArgument as exc:
                issues.append(pb.ImportIssue(record_id=rid, field=field_name, message=str(exc)))
                continue
            if field_name == "phone":
                phone = normalize_identifier(IdType.PHONE, raw, default_region=self.default_region)[
                    0
                ]
                if phone_kind(phone) is PhoneKind.SHARED:
                    # A landline links no one: it is compared as weak
                    # evidence only (model.HouseholdRules).
                    continue
            ids.append(hashed)
            if field_name == "email":
                email_hash = hashed.hash
                email = " ".join(raw.split())
        traits = [
            (name, " ".join(raw.split())[:MAX_TRAIT_CHARS])
            for name, raw in (
                ("given_name", r.given_name),
                ("family_name", r.family_name),
                ("full_name", r.full_name),
                ("date_of_birth", r.date_of_birth),
                ("street", r.street),
                ("city", r.city),
                ("postcode", r.postcode),
                ("state", r.state),
                ("phone", phone),
                ("email", email),
            )
            if raw.strip()
        ]
        features = CustomerRecord(
            record_id=f"{external.namespace}:{rid}",
            given_name=r.given_name,
            family_name=r.family_name,
            full_name=r.full_name,
            date_of_birth=r.date_of_birth,
            street=r.street,
            city=r.city,
            postcode=r.postcode,
            state=r.state,
            phone=phone,
            email_hash=email_hash,
            national_id=r.national_id,
        )
        return ImportRecord(
            rid,
            external.namespace,
            external,
            tuple(ids),
            features,
            traits=tuple(traits),
            observed_at=r.observed_at.ToDatetime(UTC) if r.HasField("observed_at") else None,
        )

    async def ImportRecords(
        self,
        request_iterator: AsyncIterator[pb.ImportRecordsRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.ImportRecordsResponse:
        issues: list[pb.ImportIssue] = []
        records: list[ImportRecord] = []
        seen: set[str] = set()
        skipped = 0
        async for chunk in request_iterator:
            for r in chunk.records:
                record = self._import_record(r, issues)
                if record is None or record.key in seen:
                    if record is not None:
                        issues.append(
                            pb.ImportIssue(
                                record_id=record.record_id,
                                field="record_id",
                                message="repeated in this import",
                            )
                        )
                    skipped += 1
                    continue
                seen.add(record.key)
                records.append(record)
                if len(records) > MAX_IMPORT_RECORDS:
                    raise InvalidArgument(
                        "records", f"at most {MAX_IMPORT_RECORDS:,} records per import"
                    )
        self._require_db()
        index = self.importer.index
        if index is not None and not index.loaded.is_set():
            # Earlier records must be candidates before this import is scored.
            await asyncio.to_thread(index.loaded.wait, 60.0)
            if not index.loaded.is_set():
                raise Unavailable("identity is still loading earlier records; retry")
        scoring = await self.db.run(self.importer.score, records)
        summary = await self.db.in_transaction(lambda s: self.importer.apply(s, records, scoring))
        self.importer.index_committed(summary)
        self.after_commit()
        return pb.ImportRecordsResponse(
            records=summary.records,
            records_skipped=skipped,
            customers_created=summary.customers_created,
            linked_exact=summary.linked_exact,
            linked_probabilistic=summary.linked_probabilistic,
            review_items=summary.review_items,
            links_refused=summary.links_refused,
            links_refused_chaining=summary.links_refused_chaining,
            comparisons=summary.comparisons,
            comparisons_with_earlier=summary.comparisons_with_earlier,
            model=summary.model,
            issues=issues[:1000],
        )

    async def ListReviewItems(
        self, request: pb.ListReviewItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReviewItemsResponse:
        status = _REVIEW_STATUS.get(request.status)
        if status is None:
            raise InvalidArgument("status", "unknown review status")
        self._require_db()
        size = request.page_size
        views = await self.db.in_transaction(lambda s: self.review.list(s, status, size))
        return pb.ListReviewItemsResponse(items=[review_to_proto(v) for v in views])

    async def DecideReview(
        self, request: pb.DecideReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecideReviewResponse:
        if not request.item_id:
            raise InvalidArgument("item_id", "must not be empty")
        decision = {
            pb.REVIEW_DECISION_APPROVE: APPROVE,
            pb.REVIEW_DECISION_REJECT: REJECT,
        }.get(request.decision)
        if decision is None:
            raise InvalidArgument("decision", "must be APPROVE or REJECT")
        if not request.actor:
            raise InvalidArgument("actor", "name who decided")
        self._require_db()
        view = await self.db.in_transaction(
            audited(
                self.audit,
                context,
                CHANGE,
                REVIEW,
                lambda s: self.review.decide(
                    s, request.item_id, decision, actor=request.actor[:100], reason=request.reason
                ),
                subject="",
                operation="DecideReview",
            )
        )
        self.after_commit()
        return pb.DecideReviewResponse(item=review_to_proto(view))
