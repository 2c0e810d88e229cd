"""How the consumer's writes land in PostgreSQL (issue #15, ADR 0285):
a customer's state update stays on its page (a HOT update, no new index
entry) even when the table was filled by a bulk load."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database
from cxloop_libs.db.migrations import run_migrations
from personalization.adapters import intelligence_store as st
from personalization.bootstrap import MIGRATIONS
from personalization.domain.traits import DAY, CustomerState, compute, seen_from_tracked
from personalization.service_layer.intelligence import Intelligence
from personalization.tests.conftest import ResolvedEvent

pytestmark = pytest.mark.integration


def _event(cid: str, name: str) -> ResolvedEvent:
    return ResolvedEvent(cid, name, {"product_id": "p9", "category": "hats", "price": 25.0})


def _state_row(cid: str, now: float) -> dict[str, object]:
    """A customer with a little history (~1 kB of state), as a bulk load or
    a long-running consumer leaves it."""
    s = CustomerState()
    for k in range(8):
        seen = seen_from_tracked(
            "Product Viewed",
            {"product_id": f"p{k}", "category": "shoes", "price": 20},
            now - k * DAY,
        )
        s.add(f"{cid}-{k}", seen, 90 * DAY)
    tr = compute(s, now)
    return {
        "customer_id": cid,
        "state": json.dumps(s.to_json()),
        "traits": json.dumps(tr),
        "lifecycle": tr["lifecycle"],
        "updated_at": st.dt(now),
    }


def test_a_state_update_on_a_full_page_stays_on_its_page(postgres_url: str) -> None:
    db = Database(postgres_url)
    run_migrations(db.engine, MIGRATIONS)
    now = time.time()
    with db.session() as s:
        s.execute(sa.insert(st.states), [_state_row(f"c{n:04d}", now) for n in range(300)])
    intel = Intelligence(may_use=lambda c, p: True)
    with db.session() as s:
        # A customer in the middle of the table: its page was filled by the load.
        intel.on_resolved(s, [_event("c0150", "Product Viewed")])  # type: ignore[list-item]
        updated, hot = s.execute(
            sa.text(
                "select pg_stat_get_xact_tuples_updated(c.oid), "
                "pg_stat_get_xact_tuples_hot_updated(c.oid) "
                "from pg_class c where c.relname = 'pers_intel_state'"
            )
        ).one()
    assert updated == 1
    # Without room on the page (fillfactor 100) the new version goes to
    # another page and the primary key gets a second entry.
    assert hot == 1, "the state update was not a HOT update"
    with db.session() as s:
        traits = json.loads(st.load_states(s, ["c0150"])["c0150"][1])
    assert traits["views_7d"] == 8  # 7 loaded within 7 days, and this one
    db.engine.dispose()
