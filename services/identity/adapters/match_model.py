"""Loading the probabilistic matcher's parameters (CXLOOP_IDENTITY_MATCH_MODEL)."""

from __future__ import annotations

import json
from pathlib import Path

from identity.domain.matching import MatchModel


def load_match_model(path: str) -> MatchModel | None:
    """The model at ``path``; None when no path is configured. A missing or
    unreadable file fails the start: silently training instead would change
    who gets merged."""
    if not path:
        return None
    try:
        return MatchModel.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"CXLOOP_IDENTITY_MATCH_MODEL={path}: cannot load ({exc})") from exc
