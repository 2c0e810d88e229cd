"""Members follow identity: a merge joins two accounts (lots keep their
expiry), a split moves back what the split-off customer earned; an erasure
anonymises the member's postings so the programme's books stay whole."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from cxloop_libs.privacy import PrivacyAnswer, RequestKind
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx
from loyalty.domain.ledger import Kind


def _move(tx: Tx, source: str, target: str, cause: str, *, only_earned_by: str = "") -> int:
    """Move the source's lots (all, or those ``only_earned_by`` earned), open
    reservations, orders and debt to the target, with a transfer posting on
    each side. Returns the points moved."""
    tx.lock([source, target])
    tx.flush_lots()
    cond = [t.lot.c.customer_id == source, t.lot.c.state.in_(("pending", "active"))]
    if only_earned_by:
        cond.append(t.lot.c.earned_by == only_earned_by)
    lots = list(
        tx.s.execute(sa.select(t.lot.c.lot_id, t.lot.c.state, t.lot.c.remaining).where(*cond))
    )
    available = sum(int(r[2]) for r in lots if r[1] == "active")
    pending = sum(int(r[2]) for r in lots if r[1] == "pending")
    src = tx.accounts[source]
    debt = 0 if only_earned_by else src.debt
    reserved = 0
    if lots:
        tx.s.execute(
            t.lot.update()
            .where(tx._in(t.lot.c.lot_id, [r[0] for r in lots]))
            .values(customer_id=target)
        )
    if not only_earned_by:
        reserved = int(
            tx.s.execute(
                sa.select(sa.func.coalesce(sa.func.sum(t.redemption.c.points), 0)).where(
                    t.redemption.c.customer_id == source, t.redemption.c.status == "reserved"
                )
            ).scalar_one()
        )
        tx.s.execute(
            t.redemption.update()
            .where(t.redemption.c.customer_id == source, t.redemption.c.status == "reserved")
            .values(customer_id=target)
        )
        tx.s.execute(
            t.order.update().where(t.order.c.customer_id == source).values(customer_id=target)
        )
        tx.s.execute(
            t.coupon.update()
            .where(t.coupon.c.customer_id == source, t.coupon.c.status == "active")
            .values(customer_id=target)
        )
    else:
        tx.s.execute(
            t.order.update()
            .where(
                t.order.c.customer_id == source, t.order.c.lot_id.in_([r[0] for r in lots] or [""])
            )
            .values(customer_id=target)
        )
    # Available moves net of the debt the source carried.
    avail_move = available - debt
    if not (avail_move or pending or reserved or debt):
        return 0
    if debt:
        src.debt -= debt
        tx.accounts[target].debt += debt
        src.dirty = tx.accounts[target].dirty = True
    key = f"move:{cause}:{source}:{target}"
    tx.post(
        Kind.TRANSFER,
        source,
        key + ":out",
        available=-avail_move,
        pending=-pending,
        reserved=-reserved,
        reference_id=target,
        cause_event_id=cause,
        description="Moved to another account",
    )
    tx.post(
        Kind.TRANSFER,
        target,
        key + ":in",
        available=avail_move,
        pending=pending,
        reserved=reserved,
        reference_id=source,
        cause_event_id=cause,
        description="Moved from another account",
    )
    # The tier score follows the points it came from.
    return available + pending + reserved


def merge(tx: Tx, survivor: str, merged: list[str], cause: str) -> int:
    moved = 0
    for m in sorted(set(merged) - {survivor}):
        if tx.existing_keys([f"move:{cause}:{m}:{survivor}:out"]):
            continue
        tx.lock([m, survivor])
        moved += _move(tx, m, survivor, cause)
        tx.s.execute(
            t.account.update().where(t.account.c.customer_id == m).values(merged_into=survivor)
        )
        tx.accounts[m].merged_into = survivor
    return moved


def split(tx: Tx, original: str, resulting: list[str], cause: str) -> int:
    """Lots a resulting customer earned before being merged into the original
    go back to them; the rest stay (what cannot be attributed stays put)."""
    moved = 0
    for r in sorted(set(resulting) - {original}):
        if tx.existing_keys([f"move:{cause}:{original}:{r}:out"]):
            continue
        tx.lock([original, r])
        moved += _move(tx, original, r, cause, only_earned_by=r)
        tx.s.execute(
            t.account.update()
            .where(t.account.c.customer_id == r, t.account.c.merged_into == original)
            .values(merged_into="")
        )
        tx.accounts[r].merged_into = ""
    return moved


def answer_privacy(tx: Tx, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
    """Erasure anonymises (the member's rows get a random pseudonym, amounts
    untouched, so liability and breakage totals stay right); access exports."""
    exists = tx.s.execute(
        sa.select(t.account.c.customer_id).where(t.account.c.customer_id == customer_id)
    ).first()
    if exists is None:
        return PrivacyAnswer()
    if kind is RequestKind.ACCESS:
        acct = (
            tx.s.execute(sa.select(t.account).where(t.account.c.customer_id == customer_id))
            .mappings()
            .one()
        )
        postings = tx.s.execute(
            sa.select(
                t.posting.c.posting_id,
                t.posting.c.kind,
                t.posting.c.available,
                t.posting.c.pending,
                t.posting.c.reference_id,
                t.posting.c.occurred_at,
            )
            .where(t.posting.c.customer_id == customer_id)
            .order_by(t.posting.c.seq)
        ).all()
        export = {
            "account": {k: (str(v) if v is not None else None) for k, v in acct.items()},
            "postings": [
                {
                    "id": p[0],
                    "kind": p[1],
                    "available": int(p[2]),
                    "pending": int(p[3]),
                    "reference": p[4],
                    "at": str(p[5]),
                }
                for p in postings
            ],
        }
        return PrivacyAnswer(
            ["loyalty_ledger"],
            {"loyalty_ledger": len(postings) + 1},
            json.dumps(export, sort_keys=True),
        )
    if kind is not RequestKind.ERASURE:
        return PrivacyAnswer(
            ["loyalty_ledger"],
            {},
            detail=f"{kind.value}: loyalty holds no personal fields to change",
        )
    tx.lock([customer_id])
    alias = f"erased:{uuid.uuid4().hex}"
    counts: dict[str, int] = {}
    for name, table, col in (
        ("loyalty_posting", t.posting, t.posting.c.customer_id),
        ("loyalty_leg", t.leg, t.leg.c.owner),
        ("loyalty_lot", t.lot, t.lot.c.customer_id),
        ("loyalty_order", t.order, t.order.c.customer_id),
        ("loyalty_redemption", t.redemption, t.redemption.c.customer_id),
        ("loyalty_coupon", t.coupon, t.coupon.c.customer_id),
        ("loyalty_cap_usage", t.cap_usage, t.cap_usage.c.customer_id),
        ("loyalty_birthday_grant", t.birthday_grant, t.birthday_grant.c.customer_id),
    ):
        res = tx.s.execute(table.update().where(col == customer_id).values({col.name: alias}))
        counts[name] = int(res.rowcount)  # type: ignore[attr-defined]
    tx.s.execute(t.lot.update().where(t.lot.c.earned_by == customer_id).values(earned_by=alias))
    tx.s.execute(
        t.coupon.update()
        .where(t.coupon.c.customer_id == alias, t.coupon.c.status == "active")
        .values(status="revoked")
    )
    tx.s.execute(
        t.account.update().where(t.account.c.merged_into == customer_id).values(merged_into=alias)
    )
    res = tx.s.execute(
        t.account.update()
        .where(t.account.c.customer_id == customer_id)
        .values(customer_id=alias, birthday="")
    )
    counts["loyalty_account"] = int(res.rowcount)  # type: ignore[attr-defined]
    tx.accounts.pop(customer_id, None)
    return PrivacyAnswer(
        sorted(counts), counts, detail="anonymised; amounts kept for the programme's books"
    )
