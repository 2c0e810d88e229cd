"""`GraphRepository.read_customers` (ADR 0305): the one read of a Resolve
batch with traits answers what `load_view`, `load_counts` and `extend_view`
answer with three statements - the same owners, creation times and shared
flags for the hashes asked, the same identifier counts and split-apart
constraints for the customers at stake, the same identifiers for the
chaining guard - on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cxloop_libs.db import Database, run_migrations
from identity.adapters.repository import GraphRepository
from identity.bootstrap import MIGRATIONS
from identity.domain.model import GraphView

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _h(name: str) -> str:
    return name.encode().hex().ljust(64, "0")[:64]


def _graph(repo: GraphRepository) -> None:
    repo.insert_customers(
        [
            {
                "customer_id": cid,
                "created_at": T0 + timedelta(minutes=n),
                "updated_at": T0,
                "interaction_count": 0,
                "merged_into": None,
            }
            for n, cid in enumerate(["ann", "bob", "cat"])
        ]
    )
    idents = [
        ("ann", "email", "ann@a"),
        ("ann", "email", "ann@b"),
        ("ann", "phone", "ann-phone"),
        ("ann", "anonymous_id", "ann-device"),
        ("bob", "email", "bob@a"),
        ("bob", "external", "bob-crm"),
        ("cat", "email", "cat@a"),
    ]
    repo.insert_identifiers(
        [
            {
                "hash": _h(value),
                "id_type": id_type,
                "namespace": "",
                "customer_id": cid,
                "first_seen_at": T0,
            }
            for cid, id_type, value in idents
        ]
    )
    repo.mark_shared([_h("ann-device")], T0)
    repo.forbid_link("ann", "bob", cause="split-1", now=T0)


def _snapshot(view: GraphView) -> tuple[object, ...]:
    return (
        dict(view.owner_of),
        dict(view.created_at),
        {k: dict(v) for k, v in view.type_counts.items() if v},
        {k: set(v) for k, v in view.cannot_link.items()},
        sorted(view.shared),
    )


def test_one_read_answers_the_view_counts_and_guard_reads(database_url: str) -> None:
    db = Database(database_url)
    run_migrations(db.engine, MIGRATIONS)
    try:
        with db.session() as s:
            _graph(GraphRepository(s))
        asked = [_h("ann@a"), _h("bob-crm"), _h("ann-device"), _h("nobody")]
        for stake, guarded in ((["ann", "bob"], ["ann"]), (["bob"], ["ann", "bob"]), ([], [])):
            with db.session() as s:
                repo = GraphRepository(s)
                old = repo.load_view(asked)
                repo.load_counts(old, stake)
                old_hashes = repo.extend_view(old, guarded)
                read = repo.read_customers(asked)
                new = read.view(asked)
                read.load_counts(new, stake)
                new_hashes = read.extend_view(new, guarded)
            assert _snapshot(new) == _snapshot(old)
            assert sorted(new_hashes) == sorted(old_hashes)
        # Customers none of whose identifiers was asked for are not read.
        with db.session() as s:
            read = GraphRepository(s).read_customers([_h("cat@a")])
        assert set(read.by_customer) == {"cat"}
        assert read.apart == []
    finally:
        db.dispose()
