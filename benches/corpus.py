"""Deterministic benchmark corpora (seeded), generated once under a work directory.

* ``extension``: ~2,000 text-like files of 1 KiB-200 KiB (JS/CSS/JSON-like
  lines) plus a few 5-20 MiB wasm-like binaries, ~300 MB in all.
* ``tiny``: 50,000 files of 100-2,000 bytes in nested directories.
* ``large``: one 1 GiB wasm-like file.

``quick=True`` makes each about 10x smaller. A corpus directory is reused when
its ``.complete`` stamp matches the parameters, so repeated runs skip generation.

    python -m benches.corpus [--quick] [--workdir DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

GENERATOR_VERSION = 4
KiB = 1024
MiB = 1024 * KiB
DEFAULT_WORKDIR = "/tmp/fastpack-bench"

_WORDS_SEED = 7
_KEYWORDS = (
    "function",
    "return",
    "const",
    "let",
    "var",
    "if",
    "else",
    "for",
    "while",
    "import",
    "export",
    "default",
    "class",
    "extends",
    "new",
    "this",
    "true",
    "false",
    "null",
    "undefined",
    "async",
    "await",
    "try",
    "catch",
    "throw",
    "typeof",
    "instanceof",
    "switch",
    "case",
    "break",
)
_PUNCT = ("(", ")", "{", "}", ";", ",", ".", " = ", " => ", ": ", "[", "]", " + ", " && ", " || ", '"', "'")


@dataclass(frozen=True)
class Corpus:
    name: str
    quick: bool

    @property
    def stamp(self) -> str:
        return f"{self.name} quick={self.quick} v{GENERATOR_VERSION}\n"


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$"
    words = list(_KEYWORDS)
    while len(words) < size:
        words.append("".join(rng.choices(letters, k=rng.randint(3, 14))))
    return words


def _line_pool(rng: random.Random, count: int) -> list[bytes]:
    """Source-like lines; files are drawn from them with fresh literals, so data compresses like JS/CSS."""
    words = _vocabulary(random.Random(_WORDS_SEED), 3000)
    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(2, 10)):
            parts.append(rng.choice(words))
            parts.append(rng.choice(_PUNCT))
        lines.append(("  " * rng.randint(0, 4) + "".join(parts) + "\n").encode())
    return lines


def text_bytes(rng: random.Random, pool: list[bytes], size: int) -> bytes:
    """`size` bytes of text-like data: pooled lines interleaved with unique hex literals."""
    chunks: list[bytes] = []
    length = 0
    while length < size:
        picked = rng.choices(pool, k=64)
        picked.append(b'  id = "%s";\n' % rng.randbytes(12).hex().encode())
        block = b"".join(picked)
        chunks.append(block)
        length += len(block)
    return b"".join(chunks)[:size]


_OPCODES = bytes.maketrans(bytes(range(256)), bytes((i * 37) % 23 + 0x20 for i in range(256)))
_CODE_POOL_SIZE = 256 * KiB


def binary_blocks(rng: random.Random, size: int, block: int = 64 * KiB) -> Iterator[bytes]:
    """Wasm-like data: instruction-like runs drawn from a code pool with fresh immediates,
    low-entropy tables and a share of incompressible bytes (compresses to roughly 40% at level 3)."""
    pool = rng.randbytes(_CODE_POOL_SIZE).translate(_OPCODES) + rng.randbytes(_CODE_POOL_SIZE // 4)
    remaining = size
    while remaining > 0:
        n = min(block, remaining)
        parts: list[bytes] = []
        length = 0
        while length < n:
            kind = rng.random()
            if kind < 0.5:
                start = rng.randrange(len(pool) - 1024)
                part = pool[start : start + rng.randint(32, 1024)] + rng.randbytes(rng.randint(2, 8))
            elif kind < 0.8:
                part = rng.randbytes(rng.randint(64, 512)).translate(_OPCODES)
            else:
                part = rng.randbytes(rng.randint(16, 256))
            parts.append(part)
            length += len(part)
        remaining -= n
        yield b"".join(parts)[:n]


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _generate_extension(root: str, quick: bool) -> None:
    rng = random.Random(1)
    pool = _line_pool(rng, 20000)
    files = 200 if quick else 2000
    dirs = ["ui", "ui/assets", "ui/assets/js", "ui/assets/css", "ui/locales", "lib", "lib/vendor", "dist/chunks"]
    for directory in dirs:
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    _write(
        os.path.join(root, "manifest.json"),
        b'{"name": "bench-ext", "version": "1.0.0", "runtime": "wasm-js@1", "ui": {"type": "iframe", '
        b'"entry": "ui/index.html"}}\n',
    )
    _write(os.path.join(root, "ui/index.html"), b"<!doctype html><script src='assets/js/f0.js'></script>\n")
    for index in range(files):
        size = rng.randint(KiB, 200 * KiB)
        directory = rng.choice(dirs)
        extension = rng.choice((".js", ".css", ".json", ".map", ".txt"))
        _write(os.path.join(root, directory, f"f{index}{extension}"), text_bytes(rng, pool, size))
    wasm_sizes = [rng.randint(5 * MiB, 20 * MiB) for _ in range(8)]
    if quick:
        wasm_sizes = [size // 10 for size in wasm_sizes]
    os.makedirs(os.path.join(root, "dist"), exist_ok=True)
    names = ["dist/main.wasm", *(f"dist/chunks/w{i}.wasm" for i in range(1, len(wasm_sizes)))]
    for name, size in zip(names, wasm_sizes, strict=True):
        with open(os.path.join(root, name), "wb") as handle:
            for data in binary_blocks(rng, size):
                handle.write(data)


def _generate_tiny(root: str, quick: bool) -> None:
    rng = random.Random(2)
    pool = _line_pool(rng, 5000)
    files = 5000 if quick else 50000
    per_dir = 100
    for index in range(files):
        directory = os.path.join(root, f"d{index // (per_dir * 20):03d}", f"s{index // per_dir:04d}")
        if index % per_dir == 0:
            os.makedirs(directory, exist_ok=True)
        _write(os.path.join(directory, f"t{index}.js"), text_bytes(rng, pool, rng.randint(100, 2000)))


def _generate_large(root: str, quick: bool) -> None:
    rng = random.Random(3)
    size = (100 if quick else 1024) * MiB
    with open(os.path.join(root, "big.wasm"), "wb") as handle:
        for data in binary_blocks(rng, size, block=1 * MiB):
            handle.write(data)


GENERATORS = {"extension": _generate_extension, "tiny": _generate_tiny, "large": _generate_large}


def ensure(name: str, workdir: str = DEFAULT_WORKDIR, quick: bool = False) -> str:
    """The corpus directory, generated unless a complete copy with the same parameters exists."""
    corpus = Corpus(name, quick)
    root = os.path.join(workdir, f"{name}-quick" if quick else name)
    stamp = os.path.join(workdir, f".{os.path.basename(root)}.complete")
    if os.path.isdir(root) and os.path.exists(stamp):
        with open(stamp) as handle:
            if handle.read() == corpus.stamp:
                return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    GENERATORS[name](root, quick)
    with open(stamp, "w") as handle:
        handle.write(corpus.stamp)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"corpora to make: {', '.join(GENERATORS)} (default all)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR)
    args = parser.parse_args()
    unknown = set(args.names) - set(GENERATORS)
    if unknown:
        parser.error(f"unknown corpus {', '.join(sorted(unknown))}")
    for name in args.names or GENERATORS:
        print(ensure(name, args.workdir, args.quick))


if __name__ == "__main__":
    main()
