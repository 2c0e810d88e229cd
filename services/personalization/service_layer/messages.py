"""Protobuf <-> domain translation for personalization."""

from __future__ import annotations

import math
from collections.abc import Mapping

from cxloop.personalization.v1 import events_pb2 as ev_pb
from cxloop.personalization.v1 import resources_pb2 as res
from google.protobuf.timestamp_pb2 import Timestamp

from personalization.domain import experiments as ex
from personalization.domain.catalog import Item
from personalization.domain.interactions import Interaction, Kind
from personalization.domain.recommender import DEFAULT_BLEND
from personalization.domain.tuning import Tuned

MAX_ID = 128


def ts(epoch: float) -> Timestamp:
    """Epoch seconds as a Timestamp, to the microsecond (as FromDatetime did,
    without building a datetime: this runs on every Recommend)."""
    t = Timestamp()
    if epoch > 0:
        sec = math.floor(epoch)
        micros = round((epoch - sec) * 1e6)
        if micros >= 1_000_000:
            sec, micros = sec + 1, 0
        t.seconds = int(sec)
        t.nanos = int(micros) * 1000
    return t


def epoch(t: Timestamp) -> float:
    return t.seconds + t.nanos / 1e9


def item_problems(m: res.Item, prefix: str = "item") -> list[tuple[str, str]]:
    errs = []
    if not m.item_id.strip():
        errs.append((f"{prefix}.item_id", "required"))
    elif len(m.item_id) > MAX_ID:
        errs.append((f"{prefix}.item_id", f"at most {MAX_ID} characters"))
    if not math.isfinite(m.price) or m.price < 0:
        errs.append((f"{prefix}.price", "must be a finite number >= 0"))
    if len(m.title) > 1000:
        errs.append((f"{prefix}.title", "at most 1000 characters"))
    if len(m.description) > 20_000:
        errs.append((f"{prefix}.description", "at most 20000 characters"))
    if len(m.tags) > 100:
        errs.append((f"{prefix}.tags", "at most 100 tags"))
    return errs


def item_from(m: res.Item) -> Item:
    return Item(
        item_id=m.item_id.strip(),
        title=m.title,
        category=m.category,
        tags=tuple(m.tags),
        price=m.price,
        brand=m.brand,
        available=m.available,
        attributes=dict(m.attributes),
        description=m.description,
        listed_at=epoch(m.listed_at) if m.HasField("listed_at") else 0.0,
    )


def learned(i: Interaction, hour: int | None) -> ev_pb.LearnedInteraction:
    return ev_pb.LearnedInteraction(
        event_id=i.event_id,
        customer_id=i.customer_id,
        item_id=i.item_id,
        kind=i.kind.value,
        weight=i.weight,
        occurred_at=ts(i.at),
        channel=i.channel,
        store=i.store,
        revenue=i.revenue,
        hour=-1 if hour is None else hour,
    )


def interaction_of(m: ev_pb.LearnedInteraction) -> tuple[Interaction, int | None]:
    return (
        Interaction(
            event_id=m.event_id,
            customer_id=m.customer_id,
            item_id=m.item_id,
            kind=Kind(m.kind),
            weight=m.weight,
            at=epoch(m.occurred_at),
            channel=m.channel,
            store=m.store,
            revenue=m.revenue,
        ),
        None if m.hour < 0 else m.hour,
    )


_METRIC = {
    res.EXPERIMENT_METRIC_CLICK: ex.Metric.CLICK,
    res.EXPERIMENT_METRIC_ADD_TO_CART: ex.Metric.ADD_TO_CART,
    res.EXPERIMENT_METRIC_PURCHASE: ex.Metric.PURCHASE,
    res.EXPERIMENT_METRIC_REVENUE: ex.Metric.REVENUE,
}
_METRIC_PB = {v: k for k, v in _METRIC.items()}
_STATUS = {
    res.EXPERIMENT_STATUS_DRAFT: ex.Status.DRAFT,
    res.EXPERIMENT_STATUS_RUNNING: ex.Status.RUNNING,
    res.EXPERIMENT_STATUS_STOPPED: ex.Status.STOPPED,
}
_STATUS_PB = {v: k for k, v in _STATUS.items()}


def experiment_from(m: res.Experiment) -> ex.Experiment:
    return ex.Experiment(
        experiment_id=m.experiment_id,
        name=m.name,
        placement=m.placement,
        variants=tuple(
            ex.Variant(
                v.variant_id, v.strategy or "hybrid", v.weight_percent, v.control, dict(v.blend)
            )
            for v in m.variants
        ),
        metric=_METRIC.get(m.metric, ex.Metric.PURCHASE),
        window_s=(m.attribution_window_hours or 168) * 3600.0,
        bandit=m.bandit,
        status=_STATUS.get(m.status, ex.Status.DRAFT),
        created_at=epoch(m.created_at),
        started_at=epoch(m.started_at),
        stopped_at=epoch(m.stopped_at),
    )


def experiment_pb(e: ex.Experiment) -> res.Experiment:
    m = res.Experiment(
        experiment_id=e.experiment_id,
        name=e.name,
        placement=e.placement,
        metric=_METRIC_PB[e.metric],
        attribution_window_hours=max(1, round(e.window_s / 3600.0)),
        bandit=e.bandit,
        status=_STATUS_PB[e.status],
    )
    for v in e.variants:
        m.variants.add(
            variant_id=v.variant_id,
            strategy=v.strategy,
            weight_percent=v.weight_percent,
            control=v.control,
            blend=dict(v.blend),
        )
    for field, when in (
        ("created_at", e.created_at),
        ("started_at", e.started_at),
        ("stopped_at", e.stopped_at),
    ):
        if when > 0:
            getattr(m, field).CopyFrom(ts(when))
    return m


def _finite(x: float) -> float:
    return x if math.isfinite(x) else (1e300 if x > 0 else -1e300)


def results_pb(r: ex.Results, now: float) -> res.ExperimentResults:
    m = res.ExperimentResults(
        experiment=experiment_pb(r.experiment),
        srm_p_value=r.srm_p_value,
        sample_ratio_mismatch=r.srm,
        winning_variant_id=r.winner,
        computed_at=ts(now),
    )
    for v in r.variants:
        m.variants.add(
            variant_id=v.variant_id,
            control=v.control,
            exposures=v.exposures,
            conversions=v.conversions,
            conversion_rate=v.rate,
            uplift=v.uplift,
            uplift_ci_low=_finite(v.uplift_ci[0]),
            uplift_ci_high=_finite(v.uplift_ci[1]),
            probability_to_beat_control=v.p_beat_control,
            conversion_rate_ci_low=v.rate_ci[0],
            conversion_rate_ci_high=v.rate_ci[1],
            revenue=v.revenue,
            revenue_per_exposure=v.revenue_per_exposure,
            expected_share_percent=v.expected_share,
        )
    return m


def blend_of(v: Mapping[str, float]) -> dict[str, float]:
    return {k: float(x) for k, x in v.items()}


def tuned_pb(t: Tuned) -> ev_pb.ModelTuned:
    m = ev_pb.ModelTuned(
        ease_lambda=t.ease_lambda,
        customers=t.customers,
        interactions=t.interactions,
        objective=t.objective,
        tuned_at_epoch_s=t.at,
    )
    m.blend.update(t.blend)
    m.single_objectives.update(t.single_objectives)
    for name, scores in t.validation.items():
        m.validation[name].values.update(scores)
    for name, scores in t.lambda_scores.items():
        m.lambda_scores[name].values.update(scores)
    return m


def tuned_from(m: ev_pb.ModelTuned) -> Tuned | None:
    """None when the event cannot be served (no λ, or a blend of unknown or
    negative weights): a replica keeps what it serves."""
    blend = dict(m.blend)
    if not (math.isfinite(m.ease_lambda) and m.ease_lambda > 0) or not blend:
        return None
    if any(k not in DEFAULT_BLEND or not (math.isfinite(v) and v >= 0) for k, v in blend.items()):
        return None
    return Tuned(
        ease_lambda=m.ease_lambda,
        blend=blend,
        validation={k: dict(v.values) for k, v in m.validation.items()},
        lambda_scores={k: dict(v.values) for k, v in m.lambda_scores.items()},
        customers=int(m.customers),
        interactions=int(m.interactions),
        objective=m.objective,
        single_objectives=dict(m.single_objectives),
        at=m.tuned_at_epoch_s,
    )
