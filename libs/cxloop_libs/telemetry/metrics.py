"""Instruments of the messaging library (bus, outbox relay, consumers).

They come from the global meter and are created on first use, so the messaging
code can be imported, and even run, before :func:`setup_telemetry`: the API's
proxy instruments start recording once the real MeterProvider is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

# Handler latencies are milliseconds to seconds; the SDK's default buckets
# assume milliseconds and would put every observation in the first bucket.
_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MessagingMetrics:
    """One per process; get it with :func:`messaging_metrics`."""

    def __init__(self, meter: Meter) -> None:
        self.events_published = meter.create_counter(
            "cxloop_events_published",
            unit="{event}",
            description="Events published to JetStream, by subject.",
        )
        self.events_consumed = meter.create_counter(
            "cxloop_events_consumed",
            unit="{event}",
            description="Events handled, by consumer and outcome (ok, duplicate, retry, "
            "dead_letter).",
        )
        self.handler_latency = meter.create_histogram(
            "cxloop_handler_duration_seconds",
            unit="s",
            description="Time a consumer spent handling one fetched batch, by consumer.",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS_S,
        )
        # Lag is known only when a fetch returns; the gauge reports the last value
        # seen per consumer at scrape time.
        self._lag: dict[str, int] = {}
        self._lag_lock = threading.Lock()
        self.consumer_lag = meter.create_observable_gauge(
            "cxloop_consumer_lag",
            callbacks=[self._observe_lag],
            unit="{message}",
            description="Messages pending for a durable consumer at its last fetch.",
        )

    def set_consumer_lag(self, consumer: str, pending: int) -> None:
        with self._lag_lock:
            self._lag[consumer] = pending

    def _observe_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lag_lock:
            lag = dict(self._lag)
        return [Observation(pending, {"consumer": name}) for name, pending in lag.items()]


_metrics: MessagingMetrics | None = None
_metrics_lock = threading.Lock()


def messaging_metrics() -> MessagingMetrics:
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = MessagingMetrics(metrics.get_meter("cxloop.messaging"))
        return _metrics
