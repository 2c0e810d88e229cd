"""gRPC edge of the identity service: translate, call a handler, translate back."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from cxloop.common.v1 import identifier_pb2
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, NotFound, Unavailable
from cxloop_libs.pii import IdentifierHasher, IdType, is_junk, normalize_identifier
from identity.adapters.repository import ProfileRecord
from identity.domain.model import HashedId
from identity.service_layer.handlers import IdentityHandlers, to_proto

MAX_IDENTIFIERS = 50


def _ts(dt: object) -> Timestamp:
    t = Timestamp()
    if dt is not None:
        t.FromDatetime(dt)  # type: ignore[arg-type]
    return t


def profile_to_proto(p: ProfileRecord) -> pb.Profile:
    c = p.customer
    return pb.Profile(
        customer_id=c.customer_id,
        identifiers=[to_proto(HashedId(i.id_type, i.hash, i.namespace)) for i in p.identifiers],
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
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.hasher = hasher
        self.is_ready = is_ready
        self.after_commit = after_commit
        self.default_region = default_region

    def _hash_request(self, idents: list[identifier_pb2.Identifier]) -> list[HashedId]:
        if not idents:
            raise InvalidArgument("identifiers", "at least one identifier is required")
        if len(idents) > MAX_IDENTIFIERS:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS} identifiers per call")
        out: list[HashedId] = []
        for n, ident in enumerate(idents):
            field = f"identifiers[{n}]"
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
            if is_junk(id_type, value):
                continue  # placeholder values never link anyone
            out.append(HashedId(id_type.value, self.hasher.hash_normalized(id_type, value, ns), ns))
        if not out:
            raise InvalidArgument(
                "identifiers", "only placeholder values (e.g. 'null', 'test@test.com')"
            )
        return out

    def _require_db(self) -> None:
        if not self.is_ready():
            raise Unavailable("identity database is not ready yet")

    async def Resolve(
        self, request: pb.ResolveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveResponse:
        ids = self._hash_request(list(request.identifiers))
        self._require_db()
        source = request.source[:100]
        outcome = await self.db.in_transaction(
            lambda s: self.handlers.resolve(s, ids, source=source)
        )
        self.after_commit()
        return pb.ResolveResponse(customer_id=outcome.customer_id, created=outcome.created)

    async def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProfileResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        self._require_db()
        cid = request.customer_id
        record = await self.db.in_transaction(lambda s: self.handlers.get_profile(s, cid))
        if record is None:
            raise NotFound(f"no customer {cid}")
        return pb.GetProfileResponse(profile=profile_to_proto(record))
