"""The review queue: record pairs the matcher was unsure about, decided by a
person. Approving merges the two customers (a person decided, so merge
protection does not apply, as with `Merge`); rejecting leaves a cannot-link
constraint, so no later import or event links the two automatically."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from cxloop_libs.errors import FailedPrecondition, InvalidArgument, NotFound
from cxloop_libs.messaging import OutboxWriter
from identity.adapters.repository import GraphRepository
from identity.adapters.tables import ReviewItemRow
from identity.service_layer.handlers import GraphWrite, utcnow
from identity.service_layer.operations import GraphOperations

OPEN, APPROVED, REJECTED = "open", "approved", "rejected"
APPROVE, REJECT = "approve", "reject"
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class ReviewView:
    item: ReviewItemRow
    customer_id_a: str  # live customers now
    customer_id_b: str


class ReviewQueue:
    def __init__(self, operations: GraphOperations | None = None) -> None:
        self.operations = operations or GraphOperations()

    def list(self, session: Session, status: str = OPEN, limit: int = 50) -> list[ReviewView]:
        repo = GraphRepository(session)
        limit = max(1, min(limit or 50, MAX_PAGE))
        return [self._view(repo, item) for item in repo.review_items(status, limit)]

    @staticmethod
    def _view(repo: GraphRepository, item: ReviewItemRow) -> ReviewView:
        return ReviewView(item, repo.owner_of(item.hash_a) or "", repo.owner_of(item.hash_b) or "")

    def decide(
        self, session: Session, item_id: str, decision: str, *, actor: str, reason: str = ""
    ) -> ReviewView:
        if decision not in (APPROVE, REJECT):
            raise InvalidArgument("decision", "must be APPROVE or REJECT")
        repo = GraphRepository(session)
        item = repo.review_item(item_id)
        if item is None:
            raise NotFound("item_id is not a review item")
        wanted = APPROVED if decision == APPROVE else REJECTED
        if item.status != OPEN:
            if item.status == wanted:
                return self._view(repo, item)  # a repeated decision is a no-op
            raise FailedPrecondition(f"review item already {item.status}")
        a, b = repo.owner_of(item.hash_a), repo.owner_of(item.hash_b)
        if a is None or b is None:
            raise FailedPrecondition("a record of this pair is no longer in the graph")
        note = reason or f"review {item_id}"
        if decision == APPROVE:
            if a != b:
                self.operations.merge(session, [a, b], reason=note, actor=actor)
        else:
            if a == b:
                raise FailedPrecondition(
                    "the two records are one customer now; use Split to separate them"
                )
            now = utcnow()
            if not repo.is_forbidden(a, b):
                repo.forbid_link(a, b, cause=f"review:{item_id}"[:64], now=now)
            write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now)
            write.record(
                "reject",
                a,
                cause=f"review:{item_id}",
                source="review",
                reason=note,
                actor=actor,
                related=[b],
                hashes=[item.hash_a, item.hash_b],
            )
            write.flush_graph()
        item.status = wanted
        item.decided_at = utcnow()
        item.decided_by = actor[:100]
        item.reason = reason[:200]
        session.add(item)
        session.flush()
        return self._view(repo, item)
