"""The rule set in force: versions in the database, the newest in memory.

Every replica reloads when a version newer than its own appears (checked on
a timer and after its own PutRuleSet), so two processes converge within the
refresh interval; a posting records the rule ids it used."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from loyalty.adapters import tables as t
from loyalty.adapters.store import aware, utcnow
from loyalty.domain.rules import DEFAULT_RULE_SET, RuleSet, parse_rule_set


class RuleBook:
    def __init__(self, initial: str = "") -> None:
        # The first version when the database has none (CXLOOP_LOYALTY_RULES).
        self._initial = initial or json.dumps(DEFAULT_RULE_SET, sort_keys=True)
        self.current: RuleSet = parse_rule_set(self._initial, version=0)
        self.activated_at: datetime | None = None

    def load(self, session: Session) -> RuleSet:
        row = session.execute(
            sa.select(t.rule_set.c.version, t.rule_set.c.document, t.rule_set.c.activated_at)
            .order_by(t.rule_set.c.version.desc())
            .limit(1)
        ).first()
        if row is None:
            self.current = parse_rule_set(self._initial, version=1)
            session.execute(
                t.rule_set.insert().prefix_with("OR IGNORE")
                if session.get_bind().dialect.name == "sqlite"
                else _pg_ignore(),
                [
                    {
                        "version": 1,
                        "document": self.current.source,
                        "author": "default",
                        "activated_at": utcnow(),
                    }
                ],
            )
            return self.current
        if row[0] != self.current.version:
            self.current = parse_rule_set(row[1], version=int(row[0]))
            self.activated_at = aware(row[2])
        return self.current

    def put(self, session: Session, document: str, author: str) -> RuleSet:
        parsed = parse_rule_set(document)
        latest = session.execute(sa.select(sa.func.max(t.rule_set.c.version))).scalar() or 0
        version = int(latest) + 1
        now = utcnow()
        session.execute(
            t.rule_set.insert().values(
                version=version, document=parsed.source, author=author[:100], activated_at=now
            )
        )
        self.current = parse_rule_set(parsed.source, version=version)
        self.activated_at = now
        return self.current

    def get(self, session: Session, version: int) -> tuple[int, str, datetime | None] | None:
        q = sa.select(t.rule_set.c.version, t.rule_set.c.document, t.rule_set.c.activated_at)
        q = (
            q.where(t.rule_set.c.version == version)
            if version
            else q.order_by(t.rule_set.c.version.desc()).limit(1)
        )
        row = session.execute(q).first()
        return None if row is None else (int(row[0]), str(row[1]), aware(row[2]))


def _pg_ignore() -> sa.Insert:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(t.rule_set).on_conflict_do_nothing()
