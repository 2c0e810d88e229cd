"""When `cxloop up` restarts a child that crashed, and when it gives up.

Back-off doubles from ``base_s`` up to ``max_s``; a child that crashes
``max_crashes`` times within ``window_s`` is given up on (something is wrong
that a restart will not fix), and then `up` stops the suite. A child that
has run for ``window_s`` since its last crash starts again with a clean
record.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    base_s: float = 1.0
    max_s: float = 30.0
    max_crashes: int = 5
    window_s: float = 60.0
    _crashes: dict[str, deque[float]] = field(default_factory=dict)

    def crashed(self, name: str, now: float) -> float | None:
        """Record a crash at ``now``; the delay before restarting, or None to give up."""
        times = self._crashes.setdefault(name, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        times.append(now)
        if len(times) >= self.max_crashes:
            return None
        return min(self.base_s * 2 ** (len(times) - 1), self.max_s)

    def crashes(self, name: str) -> int:
        return len(self._crashes.get(name, ()))
