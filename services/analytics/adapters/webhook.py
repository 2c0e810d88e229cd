"""Alerts to collaboration tools: a Slack-compatible incoming webhook
(``{"text": …, "blocks": […]}``, also what Mattermost, Rocket.Chat and
Teams' Slack-compatible connectors accept), retried with jittered
exponential back-off on errors, timeouts, 429 and 5xx."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from cxloop.analytics.v1 import events_pb2 as pb
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


class WebhookRejected(Exception):
    """The receiver answered with a status a retry may fix (429, 5xx)."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, WebhookRejected | httpx.TransportError)


def slack_message(alert: pb.AlertRaised) -> dict[str, Any]:
    direction = "dropped" if alert.direction == pb.ALERT_DIRECTION_DROP else "jumped"
    scope = f" ({alert.breakdown}={alert.breakdown_value})" if alert.breakdown else ""
    window = alert.window_start.ToDatetime().date().isoformat()
    text = (
        f":rotating_light: KPI *{alert.kpi}*{scope} {direction} on {window}: "
        f"{alert.observed_value:.4g} (expected {alert.expected_value:.4g}, "
        f"limits {alert.lower_limit:.4g}..{alert.upper_limit:.4g})"
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"alert {alert.alert_id}"}],
            },
        ],
    }


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        *,
        attempts: int = 5,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.initial_s = initial_s
        self.max_s = max_s
        self.timeout_s = timeout_s
        self.sent = 0

    async def notify(self, alert: pb.AlertRaised) -> None:
        body = slack_message(alert)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s),
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    r = await client.post(self.url, json=body)
                    if r.status_code == 429 or r.status_code >= 500:
                        raise WebhookRejected(f"webhook answered {r.status_code}")
                    r.raise_for_status()
        self.sent += 1
