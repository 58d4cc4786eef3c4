"""`fastpack publish` and `fastpack pack --publish…` as users run them: JSON out, one-line errors, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from helpers_server import clean_env, make_bundle, write_extension
from s3server import bucket_keys, live_uploads


def fastpack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastpack", *args], capture_output=True, text=True, env=clean_env(env or {})
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastpack: error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_publish_to_a_local_store(tmp_path):
    bundle, manifest, sha = make_bundle(tmp_path, "com.example.cli", "1.0.0")
    (tmp_path / "manifest.json").write_bytes(manifest)
    store = tmp_path / "store"
    result = fastpack(
        "publish",
        "--bundle",
        str(bundle),
        "--manifest",
        str(tmp_path / "manifest.json"),
        "--store",
        str(store),
        "--declared-hash",
        str(bundle.parent / "bundle.sha256"),
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["extension"] == "com.example.cli" and output["contentHash"] == sha and output["uploaded"] is True
    assert hashlib.sha256((store / output["canonicalKey"]).read_bytes()).hexdigest() == sha
    assert (store / output["manifestKey"]).read_bytes() == manifest
    assert "published com.example.cli@1.0.0" in result.stderr
    again = fastpack("publish", "--bundle", str(bundle), "--json", env={"FASTPACK_STORE": str(store)})
    assert again.returncode == 0 and json.loads(again.stdout)["uploaded"] is False and again.stderr == ""


def test_publish_errors_are_one_line_and_leave_nothing(tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.err", "1.0.0")
    store = tmp_path / "store"
    cases = [
        (["--bundle", str(tmp_path / "missing.tar.zst")], 1, "missing.tar.zst: no such file"),
        (
            ["--bundle", str(bundle), "--declared-hash", "f" * 64],
            1,
            f"bundle hashes to {sha}, declared {'f' * 64}",
        ),
        (["--bundle", str(bundle), "--declared-hash", "xyz"], 1, "expected a 64-hex SHA-256 or a sidecar file"),
        (["--bundle", str(bundle), "--s3", "bucket-without-scheme"], 2, "--s3 expects s3://bucket[/prefix]"),
        (["--bundle", str(bundle), "--part-size", "1MiB"], 2, "part size must be at least 5242880 bytes"),
        (
            ["--bundle", str(bundle), "--signature-algorithm", "cosign"],
            2,
            "--signature-algorithm given without --signature",
        ),
    ]
    for args, code, message in cases:
        result = fastpack("publish", *args, "--store", str(store)) if "--s3" not in args else fastpack("publish", *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in one_line_error(result), (args, result.stderr)
    assert not (store / "sha256").exists() and not (store / "extensions").exists()


def test_version_conflict_exit_code_and_message(tmp_path):
    one, _, sha_one = make_bundle(tmp_path, "com.example.vc", "1.0.0", b"1")
    two, _, _ = make_bundle(tmp_path, "com.example.vc", "1.0.0", b"2")
    store = str(tmp_path / "store")
    assert fastpack("publish", "--bundle", str(one), "--store", store).returncode == 0
    result = fastpack("publish", "--bundle", str(two), "--store", store)
    assert result.returncode == 1
    assert f"com.example.vc@1.0.0 is already published with content {sha_one}" in one_line_error(result)


def test_pack_publish_store_writes_and_publishes_in_one_pass(tmp_path):
    source = write_extension(tmp_path / "ext", "com.example.fused", "0.3.0", os.urandom(100_000))
    out = tmp_path / "bundle.tar.zst"
    store = tmp_path / "store"
    result = fastpack("pack", str(source), str(out), "--publish-store", str(store), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert report["sha256"] == sha and report["publish"]["contentHash"] == sha
    assert (store / "sha256" / sha / "bundle.tar.zst").read_bytes() == out.read_bytes()
    assert json.loads((store / "extensions/com.example.fused/0.3.0.json").read_text())["contentHash"] == sha
    assert not any((store / "sha256" / "_staging").rglob("*.zst"))


def test_pack_publish_refuses_an_invalid_tree_and_uploads_nothing(tmp_path):
    source = write_extension(tmp_path / "ext", "com.example.invalid", "0.1.0")
    (source / "dist" / "main.wasm").unlink()
    store = tmp_path / "store"
    result = fastpack("pack", str(source), str(tmp_path / "b.tar.zst"), "--publish-store", str(store))
    assert result.returncode == 1
    assert "dist/main.wasm" in one_line_error(result)
    assert not (tmp_path / "b.tar.zst").exists()
    assert not (store / "sha256").exists() or not any(p.is_file() for p in (store / "sha256").rglob("*"))


@pytest.mark.s3
def test_publish_and_pack_publish_to_s3(s3_server, s3_bucket, tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.s3cli", "1.0.0")
    env = s3_server.env("unused-bucket")
    result = fastpack("publish", "--bundle", str(bundle), "--s3", f"s3://{s3_bucket}/prefix", env=env)
    assert result.returncode == 0, result.stderr
    client = s3_server.client()
    assert f"prefix/sha256/{sha}/bundle.tar.zst" in bucket_keys(client, s3_bucket)
    body = client.get_object(Bucket=s3_bucket, Key=f"prefix/sha256/{sha}/bundle.tar.zst")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha

    source = write_extension(tmp_path / "fused", "com.example.s3fused", "2.0.0", os.urandom(6 << 20))
    out = tmp_path / "fused.tar.zst"
    packed = fastpack(
        "pack", str(source), str(out), "--publish", f"s3://{s3_bucket}", "--part-size", "5MiB", "--json", env=env
    )
    assert packed.returncode == 0, packed.stderr
    fused_sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert json.loads(packed.stdout)["publish"]["uploaded"] is True
    obj = client.get_object(Bucket=s3_bucket, Key=f"sha256/{fused_sha}/bundle.tar.zst")
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == fused_sha
    assert [key for key in bucket_keys(client, s3_bucket) if "_staging" in key] == []
    assert live_uploads(client, s3_bucket) == []


@pytest.mark.s3
def test_s3_configuration_errors_through_the_cli(s3_server, s3_bucket, tmp_path):
    bundle, _, _ = make_bundle(tmp_path, "com.example.s3err", "1.0.0")
    wrong = fastpack(
        "publish", "--bundle", str(bundle), env=s3_server.env(s3_bucket, STORAGE_S3_SECRET_KEY="wrong-secret")
    )
    assert wrong.returncode == 1
    message = one_line_error(wrong)
    assert "S3 refused access key 'fastpack-test-access'" in message and s3_bucket in message
    missing = fastpack("publish", "--bundle", str(bundle), env=s3_server.env("no-such-bucket-cli"))
    assert missing.returncode == 1
    assert "bucket 'no-such-bucket-cli' does not exist" in one_line_error(missing)
    assert bucket_keys(s3_server.client(), s3_bucket) == []


@pytest.mark.s3
def test_pack_publish_checks_the_store_before_packing(s3_server, s3_bucket, tmp_path):
    source = write_extension(tmp_path / "ext", "com.example.preflight", "1.0.0")
    out = tmp_path / "out.tar.zst"
    env = s3_server.env(s3_bucket, STORAGE_S3_SECRET_KEY="wrong-secret")
    result = fastpack("pack", str(source), str(out), "--publish", f"s3://{s3_bucket}", env=env)
    assert result.returncode == 1
    assert "S3 refused access key 'fastpack-test-access'" in one_line_error(result)
    assert not out.exists() and not (tmp_path / "out.tar.zst.sha256").exists()
    assert bucket_keys(s3_server.client(), s3_bucket) == []
