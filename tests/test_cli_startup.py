"""`fastpack --help`, `--version` and `pack` stay light: no S3, server or crypto stack imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("boto3", "botocore", "fastapi", "starlette", "uvicorn", "httpx", "cryptography", "nacl", "asn1crypto")

PROBE = """
import json, sys
from fastpack.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY_NAMES))
server = sorted(name for name in sys.modules if name.startswith("fastpack.server"))
print(json.dumps(heavy + server), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["pack", "--help"], ["publish", "--help"], ["pack", "{dist}", "{out}", "-q"]],
)
def test_front_end_imports_no_heavy_dependency(args: list[str], example_dist: Path, tmp_path: Path) -> None:
    argv = [a.format(dist=example_dist, out=tmp_path / "b.tar.zst") for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.replace("HEAVY_NAMES", repr(HEAVY)), *argv], capture_output=True, text=True
    )
    imported = json.loads(proc.stderr.strip().splitlines()[-1])
    assert imported == [], f"{' '.join(args)} imported {imported}"
