"""One broken extension is reported with its error; every other extension still succeeds; exit 1."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_batch import make_monorepo, run_batch_cli, write_extension


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_monorepo(root, 12)
    return root


def test_invalid_manifest_and_fifo_are_reported_while_the_rest_succeed(repo: Path, tmp_path: Path) -> None:
    broken_manifest = repo / "teams" / "t1" / "ext-001" / "manifest.json"
    broken_manifest.write_text('{"name": "ext-001", "version": "one", "runtime": "wasm-js@1", "color": 1}')
    fifo = repo / "teams" / "t2" / "ext-002" / "ui" / "pipe"
    os.mkfifo(fifo)
    out = tmp_path / "out"

    run = run_batch_cli(repo, "--out", out, "--cache-dir", tmp_path / "cache")
    assert run.code == 1
    assert run.with_status("failed") == {"teams/t1/ext-001", "teams/t2/ext-002"}
    assert len(run.with_status("packed")) == 10
    manifest_error = run.results["teams/t1/ext-001"]["error"]
    assert manifest_error["code"] == "INVALID_MANIFEST"
    assert manifest_error["path"] == str(broken_manifest)
    assert "version" in manifest_error["message"] and "color" in manifest_error["message"]
    fifo_error = run.results["teams/t2/ext-002"]["error"]
    assert fifo_error["code"] == "INVALID_INPUT"
    assert fifo_error["path"] == str(fifo) and "FIFO" in fifo_error["message"]
    assert run.summary["failed"] == 2 and run.summary["packed"] == 10
    # Nothing of the failed extensions in OUT: no bundle, no sidecar, no temp file.
    assert not (out / "ext-001").exists()
    assert not any((out / "ext-002").rglob("*"))
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(["bundle.tar.zst", "bundle.sha256"] * 10)


def test_cli_exit_code_and_messages_for_a_broken_extension(repo: Path, tmp_path: Path) -> None:
    os.mkfifo(repo / "teams" / "t3" / "ext-003" / "dist" / "fifo")
    cmd = [sys.executable, "-m", "fastpack", "batch", str(repo), "--out", str(tmp_path / "out")]
    proc = subprocess.run([*cmd, "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"fastpack: error: {repo}/teams/t3/ext-003/dist/fifo: is a FIFO" in proc.stderr
    assert "12 extensions: 11 packed, 0 cached, 0 fetched, 1 failed" in proc.stderr
    assert len(proc.stdout.splitlines()) == 11  # "<sha256>  <bundle>" per success


def test_missing_wasm_is_a_manifest_consistency_error(repo: Path, tmp_path: Path) -> None:
    (repo / "teams" / "t4" / "ext-004" / "dist" / "main.wasm").unlink()
    run = run_batch_cli(repo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    assert run.code == 1
    error = run.results["teams/t4/ext-004"]["error"]
    assert error["code"] == "INVALID_MANIFEST" and "main.wasm" in error["message"]
    assert not (tmp_path / "out" / "ext-004" / "1.0.0" / "bundle.tar.zst").exists()


def test_duplicate_name_and_version_fail_both(repo: Path, tmp_path: Path) -> None:
    write_extension(repo / "other" / "copy", "ext-000", random.Random(1))
    run = run_batch_cli(repo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    assert run.code == 1
    assert run.with_status("failed") == {"teams/t0/ext-000", "other/copy"}
    message = run.results["other/copy"]["error"]["message"]
    assert "ext-000@1.0.0 is also declared by" in message and "teams/t0/ext-000" in message


def test_unusable_name_is_refused(repo: Path, tmp_path: Path) -> None:
    manifest = repo / "teams" / "t5" / "ext-005" / "manifest.json"
    manifest.write_text(json.dumps({"name": "../escape", "version": "1.0.0", "runtime": "wasm-js@1"}))
    run = run_batch_cli(repo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    error = run.results["teams/t5/ext-005"]["error"]
    assert "cannot be used as an output directory" in error["message"] and error["path"] == str(manifest)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3/3"], "--shard I/N needs N >= 1 and 0 <= I < N, got '3/3'"),
        (["--shard", "one"], "--shard must look like I/N"),
        (["--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["--level", "40"], "--level must be between -7 and 22"),
    ],
)
def test_usage_errors_exit_2(repo: Path, tmp_path: Path, args: list[str], message: str) -> None:
    cmd = [sys.executable, "-m", "fastpack", "batch", str(repo), "--out", str(tmp_path / "out"), *args]
    proc = subprocess.run([*cmd, "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not any((tmp_path / "out").rglob("*.zst"))


def test_missing_root_and_bad_list(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fastpack", "batch", "--out", str(tmp_path / "out")]
    proc = subprocess.run([*cmd, str(tmp_path / "nope")], capture_output=True, text=True)
    assert proc.returncode == 1 and f"fastpack: error: {tmp_path}/nope: no such directory" in proc.stderr
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path}\n")
    proc = subprocess.run([*cmd, "--list", str(listing)], capture_output=True, text=True)
    assert proc.returncode == 1 and f"{tmp_path}: listed extension has no manifest.json" in proc.stderr


def test_unreachable_store_fails_once_before_any_work(repo: Path, tmp_path: Path) -> None:
    env = {**os.environ, "STORAGE_S3_ENDPOINT": "http://127.0.0.1:9", "STORAGE_S3_ACCESS_KEY": "k"}
    env["STORAGE_S3_SECRET_KEY"] = "s"
    cmd = [sys.executable, "-m", "fastpack", "batch", str(repo), "--out", str(tmp_path / "out")]
    cmd += ["--cache-dir", str(tmp_path / "cache"), "--publish", "s3://bucket"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    assert len(errors) == 1 and "cannot reach the S3 endpoint http://127.0.0.1:9 for bucket 'bucket'" in errors[0]
    assert not (tmp_path / "out").exists() and proc.stdout == ""


def test_output_directory_inside_an_extension_is_refused_for_it(repo: Path, tmp_path: Path) -> None:
    host = repo / "teams" / "t6" / "ext-006"
    run = run_batch_cli(repo, "--out", host / "bundles", "--cache-dir", tmp_path / "cache")
    assert run.code == 1
    assert run.with_status("failed") == {"teams/t6/ext-006"}
    error = run.results["teams/t6/ext-006"]["error"]
    assert error["path"] == str(host)
    assert (
        error["message"]
        == f"the batch output directory {host / 'bundles'} is inside this extension; choose one outside it"
    )
    assert len(run.with_status("packed")) == 11
    assert not (host / "bundles" / "ext-006").exists()
