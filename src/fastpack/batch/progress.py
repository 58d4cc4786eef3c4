"""Terminal progress of a batch: overall counts plus one line per worker, redrawn in place."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TextIO


class BatchProgress:
    """Thread-safe; draws only when enabled (stderr is a terminal and not --quiet/--json)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.counts: Counter[str] = Counter()
        self._lines: dict[int, str] = {}  # worker thread → what it is doing
        self._lock = threading.Lock()
        self._drawn = 0
        self._last = 0.0
        self._start = time.monotonic()

    @classmethod
    def for_terminal(cls, total: int, *, quiet: bool) -> BatchProgress:
        return cls(total, enabled=not quiet and sys.stderr.isatty())

    def status(self, text: str) -> None:
        """What the calling worker thread is doing now."""
        with self._lock:
            self._lines[threading.get_ident()] = text
            self._draw(force=False)

    def finished(self, status: str) -> None:
        """Count one extension's result."""
        with self._lock:
            self.counts[status] += 1
            self._draw(force=False)

    def print(self, message: str, stream: TextIO | None = None) -> None:
        """A line above the progress block (to `stream`, default stderr)."""
        target = stream or self.stream
        with self._lock:
            if target is not self.stream and not target.isatty():  # not on the screen: no redraw needed
                target.write(message + "\n")
                target.flush()
                return
            self._clear()
            target.write(message + "\n")
            target.flush()
            self._draw(force=True)

    def close(self) -> None:
        with self._lock:
            self._clear()

    def _summary(self) -> str:
        done = sum(self.counts.values())
        parts = " · ".join(f"{self.counts[key]} {key}" for key in ("packed", "cached", "fetched", "failed"))
        return f"[{done}/{self.total}] {parts} · {time.monotonic() - self._start:.1f}s"

    def _clear(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.flush()
            self._drawn = 0

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        lines = [self._summary(), *(f"  worker {index + 1}: {text}" for index, text in enumerate(self._lines.values()))]
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.stream.write(up + "".join(f"{line}\x1b[K\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)
