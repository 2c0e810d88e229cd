"""Tables of the analytics service's relational database (KPI definitions,
alerts; outbox and inbox come from cxloop_libs.messaging)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

kpi_table = sa.Table(
    "analytics_kpi",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
alert_table = sa.Table(
    "analytics_alert",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("kpi", sa.String(64), nullable=False),
    sa.Column("window_start", TS, nullable=False),
    sa.Column("raised_at", TS, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("notified_at", TS, nullable=True),
)
