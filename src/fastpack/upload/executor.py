"""A thread pool that never holds more than N tasks: `submit` blocks while N are in flight.

That bound is what keeps the tee's memory at part_size × (N + 1) whatever the
bundle size: the producer waits instead of queueing parts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any


class BoundedExecutor:
    def __init__(self, max_in_flight: int, name: str = "fastpack-upload") -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._futures: list[Future[Any]] = []
        self._failed: Future[Any] | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Wait for a free slot, then run `fn(*args)`; raises an earlier task's error instead of queueing more."""
        self._raise_failure()
        self._slots.acquire()
        self._raise_failure(release=True)
        future = self._pool.submit(fn, *args)
        future.add_done_callback(self._done)
        self._futures.append(future)
        return future

    def results(self) -> list[Any]:
        """Every task's result in submission order; the first error is raised."""
        wait(self._futures)
        self._raise_failure()
        return [future.result() for future in self._futures]

    def cancel(self) -> None:
        """Drop queued tasks and wait for running ones, so nothing runs after an abort."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def _done(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None and self._failed is None:
            self._failed = future
        self._slots.release()

    def _raise_failure(self, release: bool = False) -> None:
        if self._failed is not None:
            if release:
                self._slots.release()
            self._failed.result()
