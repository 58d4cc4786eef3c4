"""`--shard I/N`: split a monorepo's extensions over N CI machines.

Rendezvous (highest-random-weight) hashing of each extension's path relative to
its root: shard = argmax over i of XXH3-64("i/key"). An extension's shard depends
only on its own key and N, so adding or removing other extensions never moves
it (as with hash mod N); unlike mod N, going from N to N+1 machines moves only
the ~1/(N+1) of extensions the new shard wins, so the machines' local caches stay
warm when a fleet is resized. XXH3 is a fixed, platform-independent function.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import xxhash

from fastpack.batch.discover import Extension
from fastpack.errors import UsageError

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` with 0 <= I < N."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise UsageError(f"--shard must look like I/N (e.g. 0/3), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise UsageError(f"--shard I/N needs N >= 1 and 0 <= I < N, got {text!r}")
    return index, count


def shard_of(key: str, count: int) -> int:
    weights = [xxhash.xxh3_64_intdigest(f"{index}/{key}".encode()) for index in range(count)]
    return max(range(count), key=weights.__getitem__)


def select_shard(extensions: Sequence[Extension], index: int, count: int) -> list[Extension]:
    return [extension for extension in extensions if shard_of(extension.key, count) == index]
