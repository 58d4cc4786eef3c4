"""Publishing to S3 side by side, against one local SeaweedFS (the tests' `weed mini` setup).

    python -m benches.bench_publish [--quick] [--repeat N] [--size-mib N] [--json FILE] [--workdir DIR]

Variants, each a separate process timed by /usr/bin/time (wall clock and peak
RSS), alternating within each repetition, each run into a fresh bucket (no
dedupe), from a warm page cache; medians are compared:

* publish:     `fastpack publish --bundle B --s3 …` (hash + check + upload in one read)
* naive:       `sha256sum B` then boto3 `upload_file` (s3transfer defaults) of the same bundle
* fused:       `fastpack pack DIR OUT --publish s3://…` (pack, write OUT and upload in one pass)
* sequential:  `fastpack pack DIR OUT` then `fastpack publish --bundle OUT --s3 …`

Targets (issue 5): publish ≥ 1.3x naive, fused ≥ 1.3x sequential. Timings are
reported, never asserted; the exit status is non-zero only if a variant fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
MiB = 1 << 20

_NAIVE_UPLOAD = """
import sys, boto3
from botocore.config import Config
endpoint, access, secret, bucket, path = sys.argv[1:]
client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
client.upload_file(path, bucket, "bundle.tar.zst")
"""


def make_tree(root: Path, size: int) -> Path:
    """An extension whose bundle is about `size` bytes: incompressible assets, as big built bundles are."""
    if (root / ".complete").exists() and (root / ".complete").read_text() == str(size):
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "dist" / "assets").mkdir(parents=True)
    (root / "ui").mkdir()
    manifest = {"name": "com.example.bench", "version": "1.0.0", "runtime": "wasm-js@1",
                "ui": {"type": "iframe", "entry": "ui/index.html"}}  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "ui" / "index.html").write_text("<!doctype html><title>bench</title>\n")
    rng = random.Random(5)
    (root / "dist" / "main.wasm").write_bytes(b"\0asm\1\0\0\0" + rng.randbytes(MiB))
    remaining, index = size - MiB, 0
    while remaining > 0:
        chunk = min(remaining, 64 * MiB)
        (root / "dist" / "assets" / f"blob-{index:03d}.bin").write_bytes(rng.randbytes(chunk))
        remaining -= chunk
        index += 1
    (root / ".complete").write_text(str(size))
    return root


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS bytes of the command and its children) via GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command], env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
        return seconds, int(report.read().strip().splitlines()[-1]) * 1024


def empty_bucket(client: object, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])  # type: ignore[attr-defined]
    client.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB bundle, one repetition (smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    parser.add_argument("--workdir", default="/tmp/fastpack-bench-publish")
    args = parser.parse_args()
    size = (64 if args.quick else args.size_mib) * MiB
    repeat = 1 if args.quick else args.repeat

    sys.path.insert(0, str(TESTS))
    from s3server import SeaweedS3

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tree = make_tree(work / f"tree-{size >> 20}", size)
    bundle = work / "bundle.tar.zst"
    fastpack = [sys.executable, "-m", "fastpack"]
    subprocess.run([*fastpack, "pack", str(tree), str(bundle), "--quiet"], check=True)
    server = SeaweedS3.start(Path(tempfile.mkdtemp(prefix="bench-weed-", dir=work)))
    try:
        env = {**os.environ, **server.env("unused")}
        client = server.client()
        out = work / "out.tar.zst"

        def commands(bucket: str) -> dict[str, list[str]]:
            target = f"s3://{bucket}"
            shell_naive = (
                f"sha256sum {bundle} >/dev/null && {sys.executable} -c '{_NAIVE_UPLOAD}' "
                f"{server.endpoint} {server.access_key} {server.secret_key} {bucket} {bundle}"
            )
            shell_sequential = (
                f"{' '.join(fastpack)} pack {tree} {out} --quiet && "
                f"{' '.join(fastpack)} publish --bundle {out} --s3 {target} --quiet >/dev/null"
            )
            return {
                "publish": [*fastpack, "publish", "--bundle", str(bundle), "--s3", target, "--quiet"],
                "naive": ["sh", "-c", shell_naive],
                "fused": [*fastpack, "pack", str(tree), str(out), "--publish", target, "--quiet"],
                "sequential": ["sh", "-c", shell_sequential],
            }

        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in commands("x")}
        for _ in range(repeat):
            for name in runs:
                bucket = server.new_bucket()
                runs[name].append(timed(commands(bucket)[name], env))
                empty_bucket(client, bucket)
    finally:
        server.stop()

    results = {
        name: {
            "median_seconds": round(statistics.median(s for s, _ in samples), 3),
            "seconds": [round(s, 3) for s, _ in samples],
            "peak_rss_mib": round(max(r for _, r in samples) / MiB, 1),
        }
        for name, samples in runs.items()
    }
    ratios = {
        "publish_vs_naive": round(results["naive"]["median_seconds"] / results["publish"]["median_seconds"], 2),
        "fused_vs_sequential": round(results["sequential"]["median_seconds"] / results["fused"]["median_seconds"], 2),
    }
    report = {"bundle_bytes": bundle.stat().st_size, "repeat": repeat, "results": results, "ratios": ratios}
    print(f"bundle {bundle.stat().st_size / MiB:.0f} MiB, {repeat} run(s) each, local SeaweedFS")
    print(f"{'variant':<12} {'median s':>9} {'peak RSS MiB':>13}  runs")
    for name, row in results.items():
        print(f"{name:<12} {row['median_seconds']:>9.2f} {row['peak_rss_mib']:>13.1f}  {row['seconds']}")
    print(f"publish vs sha256sum+upload_file: {ratios['publish_vs_naive']}x (target 1.3x)")
    print(f"pack --publish vs pack then publish: {ratios['fused_vs_sequential']}x (target 1.3x)")
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
