"""`AuditLog.read`: reads arriving together share one audit transaction
(group commit), every read's entry is stored before its answer returns, and a
read whose entry cannot be stored fails instead of answering unaudited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from cxloop_libs.audit import Action, Actor, AuditEntry, AuditLog, AuditQuery
from cxloop_libs.audit.tables import AUDIT_TABLE
from cxloop_libs.db import Database
from cxloop_libs.messaging.tables import OutboxEvent

pytestmark = pytest.mark.integration
ACTOR = Actor(name="console", on_behalf_of="key:agent-1", reason="ticket 4711")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    SQLModel.metadata.create_all(
        database.engine,
        tables=[AUDIT_TABLE, OutboxEvent.__table__],  # type: ignore[attr-defined]
    )
    yield database
    database.dispose()


def stored(db: Database) -> dict[str, str]:
    with db.session() as s:
        rows = s.execute(sa.select(AUDIT_TABLE.c.subject, AUDIT_TABLE.c.outcome)).all()
    return {subject: outcome for subject, outcome in rows}


async def test_reads_arriving_together_share_commits_and_each_is_stored_first(
    db: Database,
) -> None:
    commits: list[int] = []
    audit = AuditLog("identity", db=db, on_commit=lambda: commits.append(1))

    def load(cid: str) -> dict[str, str] | None:
        def fn(s: Session) -> dict[str, str] | None:
            s.execute(sa.text("SELECT 1"))
            return None if cid == "c-missing" else {"customer_id": cid}

        return fn

    async def one(cid: str) -> tuple[str, bool]:
        got = await audit.read(ACTOR, Action.READ, "identity.profile", load(cid), subject=cid)
        # The answer is out only now: its entry must already be committed.
        entry_there = cid in await db.run(stored, db)
        return cid if got is None else got["customer_id"], entry_there

    ids = [f"c-{n}" for n in range(40)] + ["c-missing"]
    results = await asyncio.gather(*(one(c) for c in ids))
    assert [cid for cid, _ in results] == ids
    assert all(there for _, there in results)
    entries = stored(db)
    assert set(entries) == set(ids)
    assert entries["c-missing"] == "not_found" and entries["c-0"] == "ok"
    # Group commit: fewer audit transactions than reads.
    assert 1 <= audit._commits.batches < len(ids)
    assert len(commits) == audit._commits.batches
    with db.session() as s:  # one outbox event per entry, for the suite's log
        assert s.execute(sa.select(sa.func.count()).select_from(OutboxEvent)).scalar_one() == len(
            ids
        )


async def test_a_read_whose_entry_cannot_be_stored_fails(db: Database) -> None:
    audit = AuditLog("identity", db=db)
    with db.session() as s:
        s.execute(sa.text("DROP TABLE audit_event"))
    with pytest.raises(sa.exc.DBAPIError):
        await audit.read(ACTOR, Action.READ, "identity.profile", lambda s: {"x": 1}, subject="c-1")


async def test_a_group_committed_entry_reads_back_as_written_with_its_event(
    db: Database,
) -> None:
    """Row and outbox event as the export and the relay read them (on
    PostgreSQL they go in as one statement on the event loop)."""
    from cxloop.audit.v1 import events_pb2 as aepb

    audit = AuditLog("identity", db=db)
    entry = audit.entry(
        ACTOR,
        Action.READ,
        "identity.profile",
        subject="c-7",
        fields=["email", "phone"],
        operation="GetProfile",
    )
    await audit.commit(entry)
    with db.session() as s:
        [(_, back)] = audit.page(s, AuditQuery(subject="c-7"))
        events = s.execute(sa.select(OutboxEvent.__table__)).all()  # type: ignore[attr-defined]
    assert back == entry
    [event] = events
    assert event.event_id == entry.audit_id
    assert event.ce_subject == "c-7"
    assert event.nats_subject == "cx.identity.audit.recorded"
    assert AuditEntry.from_proto(aepb.AuditRecorded.FromString(event.data).entry) == entry
    await audit.stop()
