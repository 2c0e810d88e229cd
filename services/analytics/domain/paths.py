"""Most frequent paths after (or before) an anchor event.

Input: event codes sorted by customer then time, noise already left out.
For each occurrence of the anchor, the next (or previous) ``depth`` events of
the same customer form its path; a journey that stops early is padded with
``END``. Answers are Sankey-ready: top paths with counts, plus the links
between consecutive positions (counted over every anchor occurrence).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

END = "(end)"
START = "(start)"


@dataclass(frozen=True, slots=True)
class PathsResult:
    paths: list[tuple[list[str], int]]
    links: list[tuple[int, str, str, int]]  # step, source, target, count
    anchors: int


def paths(
    customer: npt.NDArray[np.int64],
    codes: npt.NDArray[np.int64],
    labels: list[str],
    anchor_code: int,
    *,
    depth: int,
    top_n: int,
    before: bool = False,
) -> PathsResult:
    n = len(codes)
    anchors = np.flatnonzero(codes == anchor_code)
    if len(anchors) == 0:
        return PathsResult([], [], 0)
    end_code = len(labels)
    names = [*labels, START if before else END]
    sign = -1 if before else 1
    columns = [np.full(len(anchors), anchor_code, dtype=np.int64)]
    alive = np.ones(len(anchors), dtype=np.bool_)
    for d in range(1, depth + 1):
        pos = anchors + sign * d
        inside = (pos >= 0) & (pos < n)
        pos = np.clip(pos, 0, n - 1)
        alive &= inside & (customer[pos] == customer[anchors])
        columns.append(np.where(alive, codes[pos], end_code))
    matrix = np.stack(columns[::-1] if before else columns, axis=1)
    rows, counts = np.unique(matrix, axis=0, return_counts=True)
    order = np.lexsort((np.arange(len(counts)), -counts))[:top_n]
    top = [([names[int(c)] for c in rows[i]], int(counts[i])) for i in order]
    links: Counter[tuple[int, str, str]] = Counter()
    width = matrix.shape[1]
    for step in range(width - 1):
        pairs, pair_counts = np.unique(matrix[:, step : step + 2], axis=0, return_counts=True)
        for (a, b), c in zip(pairs, pair_counts, strict=True):
            # Nothing flows out of the end of a journey.
            if names[int(a)] in (END, START) and names[int(b)] in (END, START):
                continue
            links[(step, names[int(a)], names[int(b)])] += int(c)
    ordered = sorted(links.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1], kv[0][2]))
    return PathsResult(top, [(s, a, b, c) for (s, a, b), c in ordered], anchors=len(anchors))
