"""Feedback's tables (SQLAlchemy Core). Free text is only ever stored
sealed with the customer's subject key (``*_sealed`` columns)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

survey = sa.Table(
    "fb_survey",
    metadata,
    sa.Column("survey_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

trigger = sa.Table(
    "fb_trigger",
    metadata,
    sa.Column("trigger_id", sa.String(64), primary_key=True),
    sa.Column("survey_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(200), nullable=False, index=True),
    sa.Column("delay_s", sa.BigInteger, nullable=False),
    sa.Column("sample_rate", sa.Float, nullable=False),
    sa.Column("segments", sa.Text, nullable=False),  # JSON list
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("touchpoint", sa.String(64), nullable=False),
    sa.Column("journey_stage", sa.String(32), nullable=False),
    sa.Column("expires_s", sa.BigInteger, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

invitation = sa.Table(
    "fb_invitation",
    metadata,
    sa.Column("invitation_id", sa.String(64), primary_key=True),
    sa.Column("survey_id", sa.String(64), nullable=False),
    sa.Column("survey_version", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("touchpoint", sa.String(64), nullable=False),
    sa.Column("journey_stage", sa.String(32), nullable=False),
    sa.Column("segment", sa.String(64), nullable=False),
    sa.Column("cause_event_id", sa.String(128), nullable=False),
    sa.Column("case_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("due_at", TS, nullable=False, index=True),
    sa.Column("expires_at", TS, nullable=False),
    # scheduled -> sent -> answered | skipped:<reason>
    sa.Column("status", sa.String(48), nullable=False, index=True),
    sa.Column("sent_at", TS, nullable=True),
    sa.Column("response_id", sa.String(64), nullable=True),
    sa.UniqueConstraint(
        "survey_id", "customer_id", "cause_event_id", name="uq_fb_invitation_cause"
    ),
)

# Last invitation of any survey per customer: the global contact gate.
contact = sa.Table(
    "fb_contact",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("last_invited_at", TS, nullable=False),
)

response = sa.Table(
    "fb_response",
    metadata,
    sa.Column("response_id", sa.String(64), primary_key=True),
    sa.Column("survey_id", sa.String(64), nullable=False),
    sa.Column("survey_version", sa.Integer, nullable=False),
    sa.Column("invitation_id", sa.String(64), nullable=True, unique=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("submitted_at", TS, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("touchpoint", sa.String(64), nullable=False),
    sa.Column("segment", sa.String(64), nullable=False),
    sa.Column("journey_stage", sa.String(32), nullable=False),
    sa.Column("metric", sa.String(8), nullable=False),
    sa.Column("score", sa.Integer, nullable=True),
    sa.Column("answers", sa.Text, nullable=False),  # JSON: scores and choices only
    sa.Column("text_sealed", sa.LargeBinary, nullable=True),  # JSON {question: text}, sealed
    sa.Column("sentiment", sa.String(8), nullable=True),
    sa.Column("sentiment_score", sa.Float, nullable=True),
    sa.Column("aspects", sa.Text, nullable=False, server_default="[]"),
)

review = sa.Table(
    "fb_review",
    metadata,
    sa.Column("review_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("product_id", sa.String(128), nullable=False, index=True),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("text_sealed", sa.LargeBinary, nullable=True),
    sa.Column("text_length", sa.Integer, nullable=False),
    sa.Column("sentiment", sa.String(8), nullable=True),
    sa.Column("sentiment_score", sa.Float, nullable=True),
    sa.Column("aspects", sa.Text, nullable=False, server_default="[]"),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("submitted_at", TS, nullable=False),
)

voice = sa.Table(
    "fb_voice",
    metadata,
    sa.Column("voice_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("text_sealed", sa.LargeBinary, nullable=False),
    sa.Column("sentiment", sa.String(8), nullable=True),
    sa.Column("sentiment_score", sa.Float, nullable=True),
    sa.Column("aspects", sa.Text, nullable=False, server_default="[]"),
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("recorded_at", TS, nullable=False),
)

case = sa.Table(
    "fb_case",
    metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("assignee", sa.String(128), nullable=False, server_default=""),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("opened_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("due_at", TS, nullable=False, index=True),
    sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("resolution_sealed", sa.LargeBinary, nullable=True),
    sa.Column("resolved_at", TS, nullable=True),
    sa.Column("follow_up_invitation_id", sa.String(64), nullable=False, server_default=""),
)

case_note = sa.Table(
    "fb_case_note",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=False, index=True),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("text_sealed", sa.LargeBinary, nullable=False),
    sa.Column("added_at", TS, nullable=False),
)

# Pre-aggregated KPI tallies per local day and slice. "*" in a dimension
# column means "all"; each response adds to the all-slice, to one slice per
# single dimension and to its full slice (docs/adr/0052-kpi-aggregates.md).
KPI_DIMENSIONS = ("survey_id", "segment", "channel", "touchpoint", "journey_stage")
kpi_day = sa.Table(
    "fb_kpi_day",
    metadata,
    sa.Column("metric", sa.String(8), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01, local
    *(sa.Column(d, sa.String(64), primary_key=True) for d in KPI_DIMENSIONS),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("promoters", sa.BigInteger, nullable=False),
    sa.Column("passives", sa.BigInteger, nullable=False),
    sa.Column("detractors", sa.BigInteger, nullable=False),
    sa.Column("satisfied", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("total_sq", sa.Float, nullable=False),
)
sa.Index(
    "ix_fb_kpi_day_slice", kpi_day.c.metric, *(kpi_day.c[d] for d in KPI_DIMENSIONS), kpi_day.c.day
)

# Per day, metric and aspect: tallies of the responses whose comment
# mentions the aspect (driver analysis).
aspect_day = sa.Table(
    "fb_aspect_day",
    metadata,
    sa.Column("metric", sa.String(8), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    sa.Column("aspect", sa.String(16), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("promoters", sa.BigInteger, nullable=False),
    sa.Column("passives", sa.BigInteger, nullable=False),
    sa.Column("detractors", sa.BigInteger, nullable=False),
    sa.Column("satisfied", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("total_sq", sa.Float, nullable=False),
    sa.Column("negative", sa.BigInteger, nullable=False),
)

alert = sa.Table(
    "fb_alert",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("metric", sa.String(8), nullable=False),
    sa.Column("dimension", sa.String(160), nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("observed", sa.Float, nullable=False),
    sa.Column("expected", sa.Float, nullable=False),
    sa.Column("raised_at", TS, nullable=False),
    sa.UniqueConstraint("kind", "metric", "dimension", "day", name="uq_fb_alert"),
)
