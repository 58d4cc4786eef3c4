"""Terminal progress: overall counts plus one line per worker, redrawn in place; silent off a terminal."""

from __future__ import annotations

import io
import threading

from fastpack.batch.progress import BatchProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_worker_and_counts() -> None:
    screen = Terminal()
    progress = BatchProgress(3, enabled=True, stream=screen)
    progress.status("packing a@1.0.0")
    worker = threading.Thread(target=progress.status, args=("hashing b@2.0.0",))
    worker.start()
    worker.join()
    progress.finished("packed")
    progress.print("fastpack: error: /repo/c: is a FIFO")
    frame = screen.getvalue().rsplit("fastpack: error: /repo/c: is a FIFO\n", 1)[1]
    lines = [line.removesuffix("\x1b[K") for line in frame.splitlines()]
    assert lines[0].startswith("[1/3] 1 packed · 0 cached · 0 fetched · 0 failed")
    assert lines[1:] == ["  worker 1: packing a@1.0.0", "  worker 2: hashing b@2.0.0"]
    progress.close()
    assert screen.getvalue().endswith("\x1b[3F\x1b[J")  # the block is erased at the end


def test_disabled_progress_writes_only_messages() -> None:
    stream = io.StringIO()
    progress = BatchProgress(2, enabled=False, stream=stream)
    progress.status("packing a@1.0.0")
    progress.finished("cached")
    progress.print("line")
    progress.close()
    assert stream.getvalue() == "line\n"
