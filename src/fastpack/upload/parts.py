"""Cut a stream of chunks into fixed-size parts, copying each byte once into its part."""

from __future__ import annotations

from collections.abc import Callable, Iterator

_BUFFERLIKE = bytes | bytearray | memoryview

MIN_PART_SIZE = 5 << 20


class PartBuffer:
    """The part being filled; full parts are handed out and the next buffer taken from `allocate`.

    `allocate` lets the caller recycle buffers whose upload finished, so memory
    stays at a fixed set of part buffers however the allocator behaves.
    """

    def __init__(self, part_size: int, allocate: Callable[[], bytearray] | None = None) -> None:
        self.part_size = part_size
        self._allocate = allocate or (lambda: bytearray(part_size))
        self._buffer = self._allocate()
        self._filled = 0
        self.parts_out = 0

    def feed(self, data: _BUFFERLIKE) -> Iterator[bytearray]:
        view = memoryview(data).cast("B")
        while view:
            count = min(len(view), self.part_size - self._filled)
            self._buffer[self._filled : self._filled + count] = view[:count]
            self._filled += count
            view = view[count:]
            if self._filled == self.part_size:
                full = self._buffer
                self._filled = 0
                self.parts_out += 1
                yield full
                # allocated only once the consumer took the full part: at most one part waits here
                self._buffer = self._allocate()

    def rest(self) -> bytearray:
        """The final, partial part (possibly empty); the buffer is unusable afterwards."""
        rest = self._buffer
        del rest[self._filled :]
        self._buffer = bytearray()
        self._filled = 0
        return rest
