"""The naive library baseline: Python `tarfile` into a `zstandard` stream writer, then SHA-256 of the output.

python -m benches.naive_pack DIR OUT
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile

import zstandard


def naive_pack(src: str, out: str, level: int = 3) -> str:
    compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True)
    with (
        open(out, "wb") as raw,
        compressor.stream_writer(raw) as writer,
        tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(os.listdir(src)):
            tar.add(os.path.join(src, name), arcname=name)
    digest = hashlib.sha256()
    with open(out, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    print(naive_pack(sys.argv[1], sys.argv[2]))
