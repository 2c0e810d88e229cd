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
    # The hybrid's blend weights, JSON {"ease": 1.0, "als": 0.1, ...}; empty:
    # the defaults learned offline (recommender.DEFAULT_BLEND). Keys given
    # replace the defaults' (bench/personalization.py tune_blend learns them
    # on a validation split).
    blend: str = ""
