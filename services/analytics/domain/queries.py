"""What an analyst may ask, and the rules a question must follow. Every
violation is an ``InvalidArgument`` naming the field (the gRPC edge turns it
into INVALID_ARGUMENT)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cxloop_libs.errors import InvalidArgument

# Properties that are columns of the store; any other name is a key of the
# event's properties.
COLUMNS = frozenset({"channel", "source", "kind"})
PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_. $-]{0,63}$")
KPI_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
MIN_STEPS, MAX_STEPS = 2, 10
MIN_WINDOW_S, MAX_WINDOW_S = 1, 90 * 86_400
MAX_RANGE = timedelta(days=400)
MAX_BREAKDOWN_LIMIT = 50
MAX_DEPTH, MAX_TOP_N = 10, 100
MAX_PERIODS = 52
# The funnel breakdown by segment membership (personalization's segments, as
# analytics last heard of them): a reserved name, `$`-prefixed so it cannot
# be mistaken for an event property (docs/adr/0275).
SEGMENT_BREAKDOWN = "$segment"
SEGMENT_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def check_segment(segment_id: str, field_name: str) -> str:
    if not SEGMENT_ID.match(segment_id):
        raise InvalidArgument(field_name, "a segment id is 1-128 printable characters")
    return segment_id


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class KpiKind(StrEnum):
    RATE = "rate"
    AVERAGE = "average"
    REPEAT_RATE = "repeat_rate"
    TIME_TO_FIRST = "time_to_first"


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    property: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    event: str
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def check_range(
    r: TimeRange | None, name: str = "range", *, now: datetime | None = None
) -> TimeRange:
    if r is None:
        now = now or datetime.now(UTC)
        return TimeRange(now - timedelta(days=30), now + timedelta(seconds=1))
    if r.end <= r.start:
        raise InvalidArgument(name, "end must be after start")
    if r.end - r.start > MAX_RANGE:
        raise InvalidArgument(name, f"at most {MAX_RANGE.days} days")
    return r


def check_property(name: str, field_name: str) -> str:
    if not PROPERTY_NAME.match(name):
        raise InvalidArgument(
            field_name, "property names are 1-64 letters, digits, _ . $ - or space"
        )
    return name


def check_events(names: Collection[tuple[str, str]], known: Collection[str]) -> None:
    """``(field, event name)`` pairs: each must be an event the store holds."""
    for field_name, name in names:
        if not name:
            raise InvalidArgument(field_name, "required")
        if name not in known:
            raise InvalidArgument(field_name, f"unknown event {name[:64]!r}")


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    steps: tuple[Step, ...]
    window_s: int
    range: TimeRange
    strict: bool = False
    breakdown: str = ""
    breakdown_limit: int = 10

    def validate(self, known_events: Collection[str]) -> None:
        if not MIN_STEPS <= len(self.steps) <= MAX_STEPS:
            raise InvalidArgument("steps", f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps")
        check_events(
            [(f"steps[{i}].event", s.event) for i, s in enumerate(self.steps)], known_events
        )
        for i, s in enumerate(self.steps):
            for j, f in enumerate(s.filters):
                check_property(f.property, f"steps[{i}].filters[{j}].property")
                if not f.values:
                    raise InvalidArgument(f"steps[{i}].filters[{j}].values", "at least one value")
        if not MIN_WINDOW_S <= self.window_s <= MAX_WINDOW_S:
            raise InvalidArgument(
                "conversion_window_seconds", f"between {MIN_WINDOW_S} and {MAX_WINDOW_S}"
            )
        if self.breakdown and self.breakdown != SEGMENT_BREAKDOWN:
            check_property(self.breakdown, "breakdown")
        if not 1 <= self.breakdown_limit <= MAX_BREAKDOWN_LIMIT:
            raise InvalidArgument("breakdown_limit", f"between 1 and {MAX_BREAKDOWN_LIMIT}")


@dataclass(frozen=True, slots=True)
class PathsQuery:
    anchor: str
    range: TimeRange
    depth: int = 3
    top_n: int = 10
    before: bool = False
    exclude: tuple[str, ...] = ()

    def validate(self, known_events: Collection[str]) -> None:
        check_events([("anchor_event", self.anchor)], known_events)
        if self.anchor in self.exclude:
            raise InvalidArgument("exclude_events", "must not exclude the anchor event")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise InvalidArgument("depth", f"between 1 and {MAX_DEPTH}")
        if not 1 <= self.top_n <= MAX_TOP_N:
            raise InvalidArgument("top_n", f"between 1 and {MAX_TOP_N}")


@dataclass(frozen=True, slots=True)
class RetentionQuery:
    range: TimeRange
    period: Period = Period.WEEK
    periods: int = 12
    cohort_event: str = ""
    return_event: str = ""
    # Only customers who are members of this segment form cohorts: a cohort
    # by trait is a segment on that trait (docs/adr/0275).
    cohort_segment: str = ""

    def validate(self, known_events: Collection[str]) -> None:
        if self.cohort_segment:
            check_segment(self.cohort_segment, "cohort_segment")
        for field_name, name in (
            ("cohort_event", self.cohort_event),
            ("return_event", self.return_event),
        ):
            if name:
                check_events([(field_name, name)], known_events)
        if not 1 <= self.periods <= MAX_PERIODS:
            raise InvalidArgument("periods", f"between 1 and {MAX_PERIODS}")


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    name: str
    kind: KpiKind
    event: str
    target_event: str = ""
    property: str = ""
    invert: bool = False
    window: Period = Period.DAY
    breakdown: str = ""
    alerting: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not KPI_NAME.match(self.name):
            raise InvalidArgument("kpi.name", "1-64 of a-z, 0-9 and _")
        if not self.event:
            raise InvalidArgument("kpi.event", "required")
        if self.kind is KpiKind.RATE and not self.target_event:
            raise InvalidArgument("kpi.target_event", "a rate needs a target event")
        if self.kind is KpiKind.AVERAGE:
            if not self.property:
                raise InvalidArgument("kpi.property", "an average needs a numeric property")
            check_property(self.property, "kpi.property")
        if self.window is Period.MONTH:
            raise InvalidArgument("kpi.window", "day or week")
        if self.breakdown:
            check_property(self.breakdown, "kpi.breakdown")


def kpi_kind(value: str) -> KpiKind:
    try:
        return KpiKind(value)
    except ValueError:
        raise InvalidArgument("kpi.kind", f"one of {', '.join(k.value for k in KpiKind)}") from None


MAX_STAGES = 10


@dataclass(frozen=True, slots=True)
class StagesQuery:
    stages: tuple[tuple[str, tuple[str, ...]], ...]
    range: TimeRange
    period: Period = Period.WEEK

    def validate(self, known_events: Collection[str]) -> None:
        if not 2 <= len(self.stages) <= MAX_STAGES:
            raise InvalidArgument("stages", f"2 to {MAX_STAGES} stages")
        seen: set[str] = set()
        for i, (name, events) in enumerate(self.stages):
            if not name:
                raise InvalidArgument(f"stages[{i}].stage", "required")
            if not events:
                raise InvalidArgument(f"stages[{i}].events", "at least one event")
            for j, e in enumerate(events):
                if e in seen:
                    raise InvalidArgument(f"stages[{i}].events[{j}]", "an event maps to one stage")
                seen.add(e)
        if not any(e in known_events for _, events in self.stages for e in events):
            raise InvalidArgument("stages", "none of the events is known")
