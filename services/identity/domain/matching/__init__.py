"""Probabilistic record matching (Fellegi-Sunter, trained by EM) for customer
records that share no exact identifier. Pure domain code: no I/O."""

from identity.domain.matching.blocking import BlockingIndex, BlockingRule
from identity.domain.matching.chaining import clusters_contradict
from identity.domain.matching.linker import (
    ScoredPair,
    cluster,
    link_batch,
    run_linkage,
    train_model,
)
from identity.domain.matching.model import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    LinkDecision,
    MatchModel,
    MatchScore,
    decide,
)
from identity.domain.matching.realtime import RealtimeMatcher
from identity.domain.matching.record import CustomerRecord, NormalisedRecord, normalise_record

__all__ = [
    "LOWER_THRESHOLD",
    "UPPER_THRESHOLD",
    "BlockingIndex",
    "BlockingRule",
    "CustomerRecord",
    "LinkDecision",
    "MatchModel",
    "MatchScore",
    "NormalisedRecord",
    "RealtimeMatcher",
    "ScoredPair",
    "cluster",
    "clusters_contradict",
    "decide",
    "link_batch",
    "normalise_record",
    "run_linkage",
    "train_model",
]
