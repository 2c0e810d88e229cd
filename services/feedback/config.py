from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cxloop_libs.config import ServiceSettings


class FeedbackSettings(ServiceSettings):
    service_name: ClassVar[str] = "feedback"

    # The consent purpose a survey invitation needs (checked on the local
    # consent projection when the invitation is scheduled and when it is sent).
    survey_purpose: str = "survey_contact"
    # Contact-frequency gate (docs/adr/0051): no invitation of any survey
    # within the global wait; per survey, cool-downs after an invitation and
    # after a response.
    contact_global_wait_days: float = Field(default=7.0, ge=0)
    contact_cooldown_after_invite_days: float = Field(default=30.0, ge=0)
    contact_cooldown_after_response_days: float = Field(default=90.0, ge=0)
    # Days of the KPI series are cut in this zone.
    kpi_time_zone: str = "Asia/Seoul"
    # Asked after a case is resolved with notify_customer (empty: none).
    follow_up_survey_id: str = ""
    # Background work: due invitations, overdue cases, anomaly scans.
    dispatch_interval_s: float = Field(default=5.0, gt=0)
    escalation_interval_s: float = Field(default=60.0, gt=0)
    anomaly_interval_s: float = Field(default=3600.0, gt=0)
    # Sentiment model (docs/adr/0050): trained from the carried data at first
    # start and cached here; at most this many rows per language (0: all).
    model_cache_dir: str = ".cxloop/models"
    sentiment_train_limit: int = Field(default=0, ge=0)
    # Korean sentiment features from kiwipiepy morphemes (ADR 0150); false:
    # word n-grams, ~500 µs less CPU per Korean text, ~0.008 less accuracy.
    sentiment_korean_morphemes: bool = True
    # SubmitResponse calls that arrive together are stored in one transaction.
    response_batch_max: int = Field(default=200, ge=1, le=2000)
