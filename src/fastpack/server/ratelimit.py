"""Per-client rate limit: a token bucket of `limit` requests refilled over `window` seconds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MAX_CLIENTS = 10_000


class RateLimiter:
    """`acquire(client)` → 0 when allowed, else the seconds to wait. Runs on the event loop: no locking."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = limit / window if limit else 0.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, client: str) -> int:
        if not self.limit:
            return 0
        now = self.clock()
        tokens, since = self._buckets.get(client, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - since) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._forget_idle(now)
        return 0

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled: forgetting them changes nothing."""
        full = [
            key for key, (tokens, since) in self._buckets.items() if tokens + (now - since) * self.rate >= self.limit
        ]
        for key in full:
            del self._buckets[key]
