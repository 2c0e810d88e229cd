from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cxloop_libs.config import ServiceSettings


class PersonalizationSettings(ServiceSettings):
    service_name: ClassVar[str] = "personalization"

    # Scheduled models (EASE, ALS) are refitted this often when events arrived
    # since the last fit; item-kNN, popularity and fold-in are real time.
    retrain_interval_s: float = Field(default=60.0, gt=0)
    # Time zone for "time of day / week" context (IANA name).
    time_zone: str = "Asia/Seoul"
    # Customer history half-life in days (0: no decay).
    history_half_life_days: float = Field(default=3.0, ge=0)
    popularity_half_life_days: float = Field(default=30.0, ge=0)
    trending_half_life_days: float = Field(default=2.0, ge=0)
    ease_lambda: float = Field(default=300.0, gt=0)
    ease_max_items: int = Field(default=4000, ge=10)
    use_als: bool = True
    als_factors: int = Field(default=64, ge=2)
    # Korean tokenisation for content similarity: kiwi (morphemes, loads a
    # model at start) or bigram (syllable bigrams, no model).
    korean_tokenizer: Literal["kiwi", "bigram"] = "kiwi"
    max_limit: int = Field(default=100, ge=1, le=1000)
    # Business rules per placement: JSON {"placement": {"boosts": {...},
    # "pins": {"item": 0}, "max_per_category": 2}}.
    placement_rules: str = ""

    # -- customer intelligence (issue #15; README "Customer intelligence") --------
    # Trait windows in days, comma separated (segment windows may not exceed the longest).
    intel_windows_days: str = "7,30,90"
    # How often due trigger actions are fired, and how often every customer is
    # re-evaluated for time-based segment changes.
    intel_action_interval_s: float = Field(default=1.0, gt=0)
    intel_sweep_interval_s: float = Field(default=300.0, gt=0)
    # Scheduled CLV / churn refit and scoring (also on demand: RefreshPredictions).
    intel_predictions_interval_s: float = Field(default=86_400.0, gt=0)
    # Local hours HH-HH when no action is sent (empty: none), in time_zone.
    intel_quiet_hours: str = ""
    # At most this many actions per customer per day, across all triggers.
    intel_max_actions_per_day: int = Field(default=3, ge=1)
    intel_clv_horizon_days: int = Field(default=365, ge=1)
    intel_churn_horizon_days: int = Field(default=180, ge=1)
    # Batches of `interaction resolved` in flight in one process: the next
    # batch is computed while the database writes and commits the last one;
    # its customers are locked only after the last batch locked its own, so a
    # customer's events apply in order (1: one batch at a time; ADR 0260).
    intel_pipeline_depth: int = Field(default=2, ge=1, le=4)
    # The hybrid's blend weights, JSON {"ease": 1.0, "als": 0.1, ...}; empty:
    # the defaults learned offline (recommender.DEFAULT_BLEND). Keys given
    # replace the defaults' (bench/personalization.py tune_blend learns them
    # on a validation split).
    blend: str = ""

    # EASE's λ and the blend re-learned inside training on validation splits
    # held out from the service's own data (ADR 0140); false: EASE_LAMBDA and
    # BLEND are served as configured. Re-tuned at a retrain when the data grew
    # by TUNE_GROWTH since the last tuning and TUNE_INTERVAL_S passed.
    auto_tune: bool = True
    tune_interval_s: float = Field(default=3600.0, ge=0)
    tune_growth: float = Field(default=0.1, ge=0)
    tune_max_customers: int = Field(default=3000, ge=20)
