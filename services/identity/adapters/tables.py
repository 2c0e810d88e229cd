"""Identity's own tables. Only this service reads or writes them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

TS = sa.DateTime(timezone=True)


class CustomerRow(SQLModel, table=True):
    __tablename__ = "customer"

    customer_id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    last_seen_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    interaction_count: int = 0
    # Set when merged into another customer: the row stays so the id resolves.
    merged_into: str | None = Field(default=None, max_length=64, index=True)


class IdentifierRow(SQLModel, table=True):
    """A node of the graph: one hashed identifier and the customer it is in."""

    __tablename__ = "identifier"

    hash: str = Field(primary_key=True, max_length=64)
    id_type: str = Field(max_length=32)
    namespace: str = Field(default="", max_length=32)
    customer_id: str = Field(max_length=64, index=True)
    first_seen_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    # Set on an anonymous id found to be a shared device: it stops linking.
    shared_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))


class LinkRow(SQLModel, table=True):
    """Provenance of a graph change: which event linked an identifier to a
    customer, by which rule. Written only when the graph changes. A link merge
    protection refused is kept too, with rule `blocked:<reason>`."""

    __tablename__ = "identity_link"

    id: int | None = Field(default=None, primary_key=True)
    hash: str = Field(max_length=64, index=True)
    customer_id: str = Field(max_length=64)
    event_id: str = Field(max_length=64)
    source: str = Field(default="", max_length=100)
    rule: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


class HistoryRow(SQLModel, table=True):
    """Append-only audit of every graph change (create, link, merge, split,
    block, shared), written in the transaction that makes the change."""

    __tablename__ = "identity_history"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    action: str = Field(max_length=16, index=True)
    customer_id: str = Field(max_length=64, index=True)
    # Other customers involved (merged away, split off), comma separated.
    related_customer_ids: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    # Identifier hashes involved, comma separated.
    identifier_hashes: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    event_id: str = Field(max_length=64)
    source: str = Field(default="", max_length=100)
    reason: str = Field(default="", max_length=200)
    actor: str = Field(default="", max_length=100)


class CounterRow(SQLModel, table=True):
    """Running totals no row of the graph records (events that carried no
    usable identifier)."""

    __tablename__ = "identity_counter"

    name: str = Field(primary_key=True, max_length=64)
    value: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class CannotLinkRow(SQLModel, table=True):
    """Two customers an operator split apart: automatic linking must not join
    them again. Stored in both directions; follows merges to the survivor."""

    __tablename__ = "identity_cannot_link"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, index=True)
    other_customer_id: str = Field(max_length=64, index=True)
    event_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


class ReviewItemRow(SQLModel, table=True):
    """A record pair the matcher was unsure about (between the thresholds),
    waiting for a person. The records are named by source and record id (no
    names, addresses or birth dates) so a reviewer opens them where they live;
    `hash_a`/`hash_b` are their external identifiers in the graph."""

    __tablename__ = "identity_review_item"

    item_id: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=16, index=True)  # open, approved, rejected
    probability: float
    # JSON: field -> [level, weight in bits]
    weights: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source_a: str = Field(max_length=32)
    record_id_a: str = Field(max_length=200)
    hash_a: str = Field(max_length=64)
    source_b: str = Field(max_length=32)
    record_id_b: str = Field(max_length=200)
    hash_b: str = Field(max_length=64)
    event_id: str = Field(max_length=64)  # the import that found the pair
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    decided_by: str = Field(default="", max_length=100)
    reason: str = Field(default="", max_length=200)


class MatchRow(SQLModel, table=True):
    """The evidence of a probabilistic link: which two records (external
    identifier hashes), with what probability and per-field weights. Keyed by
    the link's event id, so `Explain` can show why."""

    __tablename__ = "identity_match"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, index=True)
    hash_a: str = Field(max_length=64)
    hash_b: str = Field(max_length=64)
    probability: float
    weights: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


class TraitObservationRow(SQLModel, table=True):
    """What one record (an import row, or a Resolve call's traits) said about
    one trait of a customer: the value SEALED with the customer's subject key
    (context = trait name), never in clear. One row per record, source and
    trait: a newer statement of the same record replaces the older one.
    `record_ref` is the record's identifier hash in the graph (its external
    id `source:record_id`, or the Resolve call's highest-priority
    identifier), so observations follow their record on a split and the
    real-time matcher can find the record's customer."""

    __tablename__ = "identity_trait_observation"
    __table_args__ = (
        sa.UniqueConstraint("record_ref", "source", "trait", name="uq_trait_observation_record"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, index=True)
    trait: str = Field(max_length=32)
    sealed: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    source: str = Field(max_length=32)
    observed_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    record_ref: str = Field(max_length=64)
    # The record's id in its source (pseudonymous, for a reviewer), or the
    # identifier hash for a Resolve call.
    record_id: str = Field(default="", max_length=200)
