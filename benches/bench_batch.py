"""`fastpack batch` on a 200-extension monorepo: cold, warm, warm with one change, vs a shell loop.

    python -m benches.bench_batch [--quick] [--repeat N] [--json FILE] [--workdir DIR] [--executors]

Every variant runs as a separate process, alternating within each repetition,
from a warm page cache; medians are compared:

* shell:  for each extension, SPEC §2.2's GNU tar | zstd -3 -T0 | tee OUT | sha256sum
* cold:   `fastpack batch` with an empty output and cache directory
* warm:   the same again, nothing changed
* warm1:  one byte of one file changed (same size, mtime restored), then the same again

Targets (issue 7): cold ≥ 1.5x shell, warm ≥ 20x cold, warm1 ≥ 10x cold.
`--executors` also times the cold build in-process on a thread pool and on a
process pool of the same size (the measurement behind runner.py's choice).
Timings are reported, never asserted; exit status is non-zero only when a
variant fails or batch hashes differ from the shell loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from benches.compare import GNU_TAR, spawn_timed
from benches.corpus import DEFAULT_WORKDIR, KiB, MiB, _line_pool, binary_blocks, text_bytes

GENERATOR_VERSION = 1
EXTENSIONS = 200
TARGETS = {"cold_vs_shell": 1.5, "warm_vs_cold": 20.0, "warm1_vs_cold": 10.0}


def _extension(root: str, index: int, rng: random.Random, pool: list[bytes], scale: float) -> None:
    """~5 MiB (x scale): a wasm-like dist/main.wasm and a dozen text-like ui/ files."""
    for directory in ("dist", "ui/assets", "ui/locales"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    manifest = {
        "name": f"bench-{index:03d}",
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "ui": {"type": "iframe", "entry": "ui/index.html"},
    }
    with open(os.path.join(root, "manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    with open(os.path.join(root, "ui", "index.html"), "wb") as handle:
        handle.write(b"<!doctype html><script src=assets/app.js></script>\n")
    with open(os.path.join(root, "dist", "main.wasm"), "wb") as handle:
        for block in binary_blocks(rng, int(rng.randint(2 * MiB, 4 * MiB) * scale)):
            handle.write(block)
    for number in range(12):
        directory = rng.choice(("ui/assets", "ui/locales"))
        size = int(rng.randint(16 * KiB, 256 * KiB) * scale)
        with open(os.path.join(root, directory, f"f{number}.js"), "wb") as handle:
            handle.write(text_bytes(rng, pool, size))


def ensure_monorepo(workdir: str, quick: bool) -> tuple[str, list[str]]:
    """The monorepo (generated once per parameters) and its extension directories."""
    root = os.path.join(workdir, "monorepo-quick" if quick else "monorepo")
    stamp = os.path.join(workdir, f".{os.path.basename(root)}.complete")
    expected = f"monorepo quick={quick} v{GENERATOR_VERSION}\n"
    dirs = [os.path.join(root, "packages", f"team{index % 10}", f"ext{index:03d}") for index in range(EXTENSIONS)]
    if os.path.exists(stamp):
        with open(stamp) as handle:
            if handle.read() == expected:
                return root, dirs
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(11)
    pool = _line_pool(rng, 20000)
    for index, directory in enumerate(dirs):
        _extension(directory, index, rng, pool, 0.1 if quick else 1.0)
    with open(stamp, "w") as handle:
        handle.write(expected)
    return root, dirs


def shell_loop_command(dirs: list[str], out: str) -> list[str]:
    script = (
        'out="$1"; shift; i=0; for d in "$@"; do i=$((i+1)); '
        f'(cd "$d" && {GNU_TAR}) | zstd -3 -T0 -q | tee "$out/$i.tar.zst" | sha256sum; done'
    )
    return ["/bin/sh", "-c", script, "sh", out, *dirs]


def batch_command(root: str, out: str, cache: str) -> list[str]:
    return [sys.executable, "-m", "fastpack", "batch", root, "--out", out, "--cache-dir", cache, "--json"]


def change_one_byte(path: str) -> None:
    """Flip one byte in place: same size, same inode, mtime restored (only ctime moves)."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 1]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def same_tar(shell_bundle: str, results: list[dict[str, object]], directory: str) -> bool:
    """The shell loop did the same work: its frame (zstd CLI: no pledged size, so other bytes) holds our tar."""
    import zstandard

    ours = next(str(result["bundle"]) for result in results if result["path"] == directory)
    streams = []
    for path in (shell_bundle, ours):
        with open(path, "rb") as handle:
            streams.append(zstandard.ZstdDecompressor().stream_reader(handle).read())
    return streams[0] == streams[1]


def _summary(stdout: str) -> dict[str, object]:
    return json.loads(stdout.splitlines()[-1])["summary"]


def _results(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()[:-1]]


def cold_in_process(root: str, scratch: str, executor: type[Executor]) -> float:
    """Cold build with the given pool type (same sizing as runner.py); seconds."""
    from fastpack.batch.cache import LocalCache
    from fastpack.batch.digest import PackOptions
    from fastpack.batch.discover import discover
    from fastpack.batch.job import JobContext, build_extension, read_extension_manifest
    from fastpack.batch.runner import plan_workers

    out, cache = os.path.join(scratch, "exec-out"), os.path.join(scratch, "exec-cache")
    for path in (out, cache):
        shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    extensions = discover([root])
    manifests = [read_extension_manifest(extension) for extension in extensions]
    workers, threads = plan_workers(None, len(extensions))
    ctx = JobContext(out=out, options=PackOptions(3, None, 0, False), local=LocalCache(cache), threads=threads)
    with executor(workers) as pool:
        results = list(pool.map(build_extension, extensions, manifests, [ctx] * len(extensions)))
    seconds = time.perf_counter() - started
    if any(result.status != "packed" for result in results):
        raise SystemExit(f"{executor.__name__}: not every extension was packed")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="~10x smaller monorepo")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR)
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--executors", action="store_true", help="also compare thread and process pools")
    args = parser.parse_args()

    root, dirs = ensure_monorepo(args.workdir, args.quick)
    load_before = os.getloadavg()[0]
    total_bytes = sum(os.path.getsize(os.path.join(d, f)) for e in dirs for d, _, fs in os.walk(e) for f in fs)
    scratch = os.path.join(args.workdir, "batch-out")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    stdout_path = os.path.join(scratch, "stdout")
    out, cache, shell_out = (os.path.join(scratch, name) for name in ("out", "cache", "shell"))
    spawn_timed(["/bin/sh", "-c", 'find "$1" -type f -print0 | xargs -0 cat > /dev/null', "sh", root], os.devnull)

    times: dict[str, list[float]] = {"shell": [], "cold": [], "warm": [], "warm1": []}
    problems: list[str] = []
    for repetition in range(args.repeat):
        shutil.rmtree(shell_out, ignore_errors=True)
        os.makedirs(shell_out)
        run = spawn_timed(shell_loop_command(dirs, shell_out), stdout_path)
        times["shell"].append(run.seconds)

        for path in (out, cache):
            shutil.rmtree(path, ignore_errors=True)
        cold = spawn_timed(batch_command(root, out, cache), stdout_path)
        times["cold"].append(cold.seconds)
        if _summary(cold.stdout)["packed"] != EXTENSIONS:
            problems.append(f"cold run #{repetition + 1} did not pack every extension")
        if not same_tar(os.path.join(shell_out, "1.tar.zst"), _results(cold.stdout), dirs[0]):
            problems.append("batch and the shell loop packed different tar streams")

        time.sleep(0.2)  # let the files age past the stat cache's racy window, as between CI runs
        warm = spawn_timed(batch_command(root, out, cache), stdout_path)
        times["warm"].append(warm.seconds)
        if _summary(warm.stdout)["packed"] != 0:
            problems.append(f"warm run #{repetition + 1} repacked something")

        change_one_byte(os.path.join(dirs[(7 * repetition) % EXTENSIONS], "dist", "main.wasm"))
        warm1 = spawn_timed(batch_command(root, out, cache), stdout_path)
        times["warm1"].append(warm1.seconds)
        if _summary(warm1.stdout)["packed"] != 1:
            problems.append(f"warm1 run #{repetition + 1} did not repack exactly one extension")
        print(
            f"  #{repetition + 1} " + "  ".join(f"{name} {values[-1]:.3f}s" for name, values in times.items()),
            file=sys.stderr,
        )

    executors = {}
    if args.executors:
        for _ in range(args.repeat):
            for executor in (ThreadPoolExecutor, ProcessPoolExecutor):
                executors.setdefault(executor.__name__, []).append(cold_in_process(root, scratch, executor))

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        "cold_vs_shell": medians["shell"] / medians["cold"],
        "warm_vs_cold": medians["cold"] / medians["warm"],
        "warm1_vs_cold": medians["cold"] / medians["warm1"],
    }
    report = {
        "extensions": EXTENSIONS,
        "input_bytes": total_bytes,
        "cpus": os.cpu_count(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # shared machines: context for noise
        "seconds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "median_seconds": {name: round(value, 4) for name, value in medians.items()},
        "ratios": {name: round(value, 2) for name, value in ratios.items()},
        "targets": {name: {"target": TARGETS[name], "met": ratios[name] >= TARGETS[name]} for name in TARGETS},
        "executors_cold_median_seconds": {k: round(statistics.median(v), 4) for k, v in executors.items()},
        "problems": problems,
    }
    print(
        f"\nmonorepo: {EXTENSIONS} extensions, {total_bytes / 1e6:.1f} MB, {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f}"
    )
    for name, value in medians.items():
        print(f"  {name:<6} median {value:8.3f} s")
    for name, value in ratios.items():
        verdict = "met" if value >= TARGETS[name] else "MISSED"
        print(f"  {name:<14} {value:7.2f}x (target {TARGETS[name]}x) {verdict}")
    for name, values in executors.items():
        print(f"  cold in-process, {name}: median {statistics.median(values):.3f} s")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
