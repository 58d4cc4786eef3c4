"""Side-by-side comparison: fastpack (native, Python) against the standard tools, in one run.

    python -m benches.compare [--quick] [--json FILE] [--repeat N] [--workdir DIR] [--corpus NAME ...]

For each corpus, every tool runs as a separate process, alternating tool by
tool within each repetition (in a rotating order, after a sync), from a warm
page cache; the table shows medians.
Throughput is the uncompressed tar size over wall time (the same work for
every tool). Peak RSS is the child's own (wait4). The best-of-N columns help
read results on a shared machine, where other load inflates some runs. Fastpack runs skip manifest
validation, as tar does.

Exit status is non-zero when a tool fails or when fastpack's backends disagree
(bundle SHA-256 across backends and repetitions, and tar BLAKE3 against GNU
tar's stream); timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field

import blake3

from benches.corpus import DEFAULT_WORKDIR, GENERATORS, ensure

MB = 1_000_000
GNU_TAR = (
    "tar --sort=name --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "
    "--mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX --hard-dereference "
    "-cf - $(ls -A | LC_ALL=C sort)"
)
TOOLS = ("fastpack-native", "fastpack-python", "standard", "tarfile+zstandard", "zstd-only", "cat")
TARGETS = {  # corpus: [(tool, baseline, minimum ratio)]
    "extension": [("fastpack-native", "standard", 1.8), ("fastpack-native", "zstd-only", 0.9)],
    "tiny": [("fastpack-native", "standard", 1.3)],
    "large": [("fastpack-native", "zstd-only", 0.9)],
}
RSS_LIMIT_MIB = 150


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int
    stdout: str


@dataclass
class ToolResult:
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def best(self) -> float:
        return min(run.seconds for run in self.runs)

    @property
    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_kib for run in self.runs) / 1024


def spawn_timed(argv: list[str], stdout_path: str, env: dict[str, str] | None = None) -> Run:
    """Run argv to completion; wall time and the child's own peak RSS (from wait4)."""
    executable = shutil.which(argv[0]) or argv[0]
    actions = [(os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    started = time.perf_counter()
    pid = os.posix_spawn(executable, argv, env if env is not None else dict(os.environ), file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(stdout_path) as handle:
        output = handle.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed ({os.waitstatus_to_exitcode(status)}): {' '.join(argv)}")
    return Run(seconds, usage.ru_maxrss, output)


def tool_command(tool: str, src: str, tar_path: str, out: str) -> tuple[list[str], dict[str, str] | None]:
    env = dict(os.environ)
    if tool.startswith("fastpack-"):
        backend = tool.removeprefix("fastpack-")
        argv = [sys.executable, "-m", "fastpack", "pack", src, out, "--json", "--no-validate", "--backend", backend]
        return argv, env
    if tool == "standard":
        script = f'cd "$1" && {GNU_TAR} | zstd -3 -T0 -q -f -o "$2" && sha256sum "$2"'
        return ["/bin/sh", "-c", script, "sh", src, out], env
    if tool == "tarfile+zstandard":
        return [sys.executable, "-m", "benches.naive_pack", src, out], env
    if tool == "zstd-only":
        return ["zstd", "-3", "-T0", "-q", "-f", tar_path, "-o", out], env
    if tool == "cat":
        return ["/bin/sh", "-c", 'find "$1" -type f -print0 | xargs -0 cat', "sh", src], env
    raise ValueError(tool)


def make_reference_tar(src: str, tar_path: str) -> str:
    """GNU tar's stream of the corpus (the zstd-only input); returns its BLAKE3."""
    with open(tar_path, "wb") as handle:
        pid = os.posix_spawn(
            "/bin/sh",
            ["/bin/sh", "-c", f'cd "$1" && {GNU_TAR}', "sh", src],
            dict(os.environ),
            file_actions=[(os.POSIX_SPAWN_DUP2, handle.fileno(), 1)],
        )
        _, status = os.waitpid(pid, 0)
    if status:
        raise SystemExit(f"GNU tar failed on {src}")
    digest = blake3.blake3()
    with open(tar_path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def bench_corpus(name: str, args: argparse.Namespace, problems: list[str]) -> dict[str, object]:
    src = ensure(name, args.workdir, args.quick)
    scratch = os.path.join(args.workdir, "out")
    os.makedirs(scratch, exist_ok=True)
    tar_path = os.path.join(scratch, f"{name}.tar")
    reference_blake3 = make_reference_tar(src, tar_path)
    tar_bytes = os.path.getsize(tar_path)
    stdout_path = os.path.join(scratch, "stdout")
    results = {tool: ToolResult() for tool in TOOLS}
    spawn_timed(tool_command("cat", src, tar_path, os.devnull)[0], os.devnull)  # warm the page cache
    for repetition in range(args.repeat):
        # Rotate the order so that no tool always follows the same one, and flush earlier
        # outputs first so that no tool pays for its predecessor's writeback.
        shift = repetition % len(TOOLS)
        for tool in TOOLS[shift:] + TOOLS[:shift]:
            out = os.path.join(scratch, f"{name}.{tool}.out")
            argv, env = tool_command(tool, src, tar_path, out)
            os.sync()
            run = spawn_timed(argv, os.devnull if tool == "cat" else stdout_path, env)
            results[tool].runs.append(run)
            print(f"  {name} #{repetition + 1} {tool:<18} {run.seconds:7.3f} s", file=sys.stderr)
    os.unlink(tar_path)
    hashes = set()
    for tool in ("fastpack-native", "fastpack-python"):
        for run in results[tool].runs:
            result = json.loads(run.stdout)
            hashes.add(result["sha256"])
            if result["tar_blake3"] != reference_blake3:
                problems.append(f"{name}: {tool} tar BLAKE3 {result['tar_blake3']} != GNU tar's {reference_blake3}")
            if result["tar_size"] != tar_bytes:
                problems.append(f"{name}: {tool} tar size {result['tar_size']} != GNU tar's {tar_bytes}")
    if len(hashes) != 1:
        problems.append(f"{name}: fastpack bundles differ across backends/runs: {sorted(hashes)}")
    standard, zstd_only = results["standard"].median, results["zstd-only"].median
    table = {}
    for tool, result in results.items():
        table[tool] = {
            "seconds": [round(run.seconds, 4) for run in result.runs],
            "median_seconds": round(result.median, 4),
            "best_seconds": round(result.best, 4),
            "best_vs_standard": round(results["standard"].best / result.best, 3),
            "best_vs_zstd_only": round(results["zstd-only"].best / result.best, 3),
            "mb_per_s": round(tar_bytes / MB / result.median, 1),
            "vs_standard": round(standard / result.median, 3),
            "vs_zstd_only": round(zstd_only / result.median, 3),
            "peak_rss_mib": round(result.peak_rss_mib, 1),
        }
    targets = []
    for tool, baseline, minimum in TARGETS.get(name, []):
        ratio = results[baseline].median / results[tool].median
        targets.append(
            {"tool": tool, "baseline": baseline, "ratio": round(ratio, 3), "target": minimum, "met": ratio >= minimum}
        )
    for tool in ("fastpack-native", "fastpack-python"):
        rss = results[tool].peak_rss_mib
        targets.append(
            {"tool": tool, "peak_rss_mib": round(rss, 1), "target": RSS_LIMIT_MIB, "met": rss <= RSS_LIMIT_MIB}
        )
    files = sum(len(names) for _, _, names in os.walk(src))
    return {
        "path": src,
        "files": files,
        "tar_bytes": tar_bytes,
        "tar_blake3": reference_blake3,
        "bundle_sha256": sorted(hashes),
        "tools": table,
        "targets": targets,
    }


def print_table(name: str, report: dict[str, object]) -> None:
    tar_mb = report["tar_bytes"] / MB  # type: ignore[operator]
    print(f"\n{name}: {report['files']} files, tar {tar_mb:.1f} MB")
    print(
        f"  {'tool':<18} {'median s':>9} {'MB/s':>8} {'x standard':>11} {'x zstd-only':>12} {'peak RSS MiB':>13}"
        f"  | {'best s':>7} {'x std':>6} {'x zstd':>7}"
    )
    for tool, row in report["tools"].items():  # type: ignore[attr-defined]
        print(
            f"  {tool:<18} {row['median_seconds']:9.3f} {row['mb_per_s']:8.1f} {row['vs_standard']:11.2f} "
            f"{row['vs_zstd_only']:12.2f} {row['peak_rss_mib']:13.1f}  | {row['best_seconds']:7.3f} "
            f"{row['best_vs_standard']:6.2f} {row['best_vs_zstd_only']:7.2f}"
        )
    for target in report["targets"]:  # type: ignore[attr-defined]
        verdict = "met" if target["met"] else "MISSED"
        if "ratio" in target:
            print(
                f"  target {target['tool']} >= {target['target']}x {target['baseline']}: "
                f"{target['ratio']:.2f}x {verdict}"
            )
        else:
            print(
                f"  target {target['tool']} peak RSS <= {target['target']} MiB: "
                f"{target['peak_rss_mib']:.1f} MiB {verdict}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="~10x smaller corpora (CI smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per tool (default 5)")
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"corpora and outputs (default {DEFAULT_WORKDIR})")
    parser.add_argument("--corpus", action="append", choices=list(GENERATORS), help="only these corpora")
    args = parser.parse_args(argv)
    for tool in ("tar", "zstd", "sha256sum"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is required for the comparison")
    problems: list[str] = []
    reports = {}
    if args.quick:
        print("quick corpora: a smoke run (identical hashes across backends); the targets are for the full corpora,")
        print("where fixed start-up costs do not dominate, so the verdicts below are indicative only")
    for name in args.corpus or list(GENERATORS):
        reports[name] = bench_corpus(name, args, problems)
        print_table(name, reports[name])
    if args.json:
        document = {
            "quick": args.quick,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "corpora": reports,
            "problems": problems,
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
