"""Retry with exponential backoff and full jitter, for errors the caller says are transient."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: spreads concurrent retriers (parts, publishers) instead of synchronising them."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


DEFAULT_POLICY = RetryPolicy()


def call_with_retry(
    operation: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`; on a transient error wait and try again, at most `policy.attempts` times in all."""
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as exc:
            if attempt + 1 >= policy.attempts or not is_transient(exc):
                raise
        sleep(policy.delay(attempt))
    raise AssertionError("unreachable")
