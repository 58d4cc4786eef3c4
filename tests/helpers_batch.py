"""A generated monorepo for the batch tests: many small, valid extensions under nested team folders."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def write_extension(root: Path, name: str, rng: random.Random, version: str = "1.0.0") -> Path:
    """A valid extension: manifest, dist/main.wasm, ui/ with an entry page; a few KiB in all."""
    (root / "dist").mkdir(parents=True)
    (root / "ui" / "assets").mkdir(parents=True)
    manifest = {
        "name": name,
        "version": version,
        "runtime": "wasm-js@1",
        "ui": {"type": "iframe", "entry": "ui/index.html"},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "dist" / "main.wasm").write_bytes(b"\0asm\1\0\0\0" + rng.randbytes(rng.randint(200, 1500)))
    (root / "ui" / "index.html").write_text(
        f"<!doctype html><title>{name}</title><script src=assets/app.js></script>\n"
    )
    (root / "ui" / "assets" / "app.js").write_text(f"console.log({name!r}, {rng.random()!r});\n" * rng.randint(1, 20))
    os.chmod(root / "dist" / "main.wasm", 0o755 if rng.random() < 0.5 else 0o644)
    return root


def make_monorepo(root: Path, count: int, seed: int = 7) -> list[Path]:
    """`count` extensions spread over team folders (`teams/t<k>/ext-<n>`), returned in creation order."""
    rng = random.Random(seed)
    return [
        write_extension(root / "teams" / f"t{index % 7}" / f"ext-{index:03d}", f"ext-{index:03d}", rng)
        for index in range(count)
    ]


@dataclass
class BatchRun:
    code: int
    results: dict[str, dict[str, Any]]  # by key (path relative to the root)
    summary: dict[str, Any]
    stderr: str

    def with_status(self, status: str) -> set[str]:
        return {key for key, result in self.results.items() if result["status"] == status}


def run_batch_cli(*args: str | os.PathLike[str]) -> BatchRun:
    """`fastpack batch --json ARGS…` in-process; JSON lines parsed (each extension must appear exactly once)."""
    from fastpack.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["batch", "--json", *map(os.fspath, args)])
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    summary = lines.pop()["summary"]
    results = {line["key"]: line for line in lines}
    assert len(results) == len(lines), "an extension was reported twice"
    return BatchRun(code, results, summary, stderr.getvalue())


def pack_hash(directory: Path, out: Path) -> str:
    """Hash of `fastpack pack DIR OUT`, computed independently (hashlib over the written file)."""
    from fastpack.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["pack", "--quiet", os.fspath(directory), os.fspath(out)]) == 0
    return hashlib.sha256(out.read_bytes()).hexdigest()
