"""Human progress on stderr (bytes, rate, ETA), only for terminals."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _human(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"


class Progress:
    """Throttled single-line progress; a no-op unless enabled."""

    def __init__(self, label: str, total: int | None, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    @classmethod
    def for_terminal(cls, label: str, total: int | None, *, quiet: bool = False) -> Progress:
        return cls(label, total, enabled=not quiet and sys.stderr.isatty())

    def update(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        text = f"\r{self.label}: {_human(self.done)}"
        if self.total:
            text += f" / {_human(self.total)} ({100 * self.done / self.total:.0f}%)"
        text += f"  {_human(rate)}/s"
        if self.total and rate > 0:
            text += f"  ETA {max(self.total - self.done, 0) / rate:.0f}s"
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
