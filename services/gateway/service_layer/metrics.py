"""Instruments of the gateway, from the global meter (see cxloop_libs.telemetry)."""

from __future__ import annotations

import functools

from opentelemetry import metrics


class GatewayMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.events_accepted = meter.create_counter(
            "cxloop_gateway_events_accepted",
            unit="{event}",
            description="Events stored in JetStream (or recognised as duplicates), by call type.",
        )
        self.events_duplicate = meter.create_counter(
            "cxloop_gateway_events_duplicate",
            unit="{event}",
            description="Events whose messageId was already stored (retries), by call type.",
        )
        self.junk_identifiers_dropped = meter.create_counter(
            "cxloop_gateway_junk_identifiers_dropped",
            unit="{identifier}",
            description="Placeholder identifiers (test@test.com, 010-0000-0000 ...) not "
            "forwarded, by identifier type.",
        )
        self.pii_properties_dropped = meter.create_counter(
            "cxloop_gateway_pii_properties_dropped",
            unit="{property}",
            description="Properties dropped by the PII rule (email, phone, name ...).",
        )
        self.requests_rejected = meter.create_counter(
            "cxloop_gateway_requests_rejected",
            unit="{request}",
            description="Requests refused, by reason (unauthorized, invalid, too_large, "
            "unavailable).",
        )
        self.events_rejected = meter.create_counter(
            "cxloop_gateway_events_rejected",
            unit="{event}",
            description="Events not stored because they were invalid, by reason (invalid, "
            "too_large, not_attributable); a batch keeps its other events.",
        )
        self.pii_redacted = meter.create_counter(
            "cxloop_gateway_pii_redacted",
            unit="{value}",
            description="Emails, phone numbers and resident registration numbers replaced "
            "in free text (properties, names), by kind.",
        )
        self.timestamps_corrected = meter.create_counter(
            "cxloop_gateway_timestamps_corrected",
            unit="{event}",
            description="Events whose time was implausible (before 2000 or after receipt, "
            "after clock-skew correction) and was replaced by the time of receipt.",
        )
        # Prometheus: cxloop_gateway_events_withheld_total{purpose="analytics"}.
        self.events_withheld = meter.create_counter(
            "cxloop_gateway_events_withheld",
            unit="{event}",
            description="Calls answered 200 but not published because their customer "
            "objected to the purpose, by purpose (docs/adr/0021).",
        )
        self.enforcement_overflow = meter.create_counter(
            "cxloop_gateway_enforcement_overflow",
            unit="{customer}",
            description="Objecting customers whose identifiers could not be held "
            "(CXLOOP_GATEWAY_ENFORCE_MAX_IDENTIFIERS reached); their calls flow.",
        )
        self.privacy_requests = meter.create_counter(
            "cxloop_gateway_privacy_requests",
            unit="{request}",
            description="Privacy-request API calls, by operation and HTTP status.",
        )


@functools.cache
def gateway_metrics() -> GatewayMetrics:
    return GatewayMetrics(metrics.get_meter("cxloop.gateway"))
