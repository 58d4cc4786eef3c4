"""`fastpack publish --server`: the CLI client against a real `fastpack serve`, through `python -m fastpack`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_server import TOKEN, clean_env, free_port, make_bundle, running_server, store_files, write_extension

API = "/api/ext-bundles"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("client")


@pytest.fixture(scope="module")
def store_dir(workdir) -> Path:
    return workdir / "store"


@pytest.fixture(scope="module")
def server(workdir, store_dir):
    env = {"FASTPACK_API_TOKENS": TOKEN, "FASTPACK_TRUST_ADMIN_HEADER": "true", "FASTPACK_RATE_LIMIT": "0"}
    with running_server(str(store_dir), env, workdir / "server.log") as process:
        yield process


def publish(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastpack", "publish", *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def requests_logged(server, path_suffix: str) -> list[dict]:
    return [r for r in server.log_records() if r.get("event") == "request" and r["path"].endswith(path_suffix)]


def staging_keys(store_dir: Path) -> list[str]:
    return [key for key in store_files(store_dir) if key.startswith("sha256/_staging/")]


def test_publish_then_republish_skips_the_upload(server, workdir, store_dir):
    bundle, manifest, sha = make_bundle(workdir, "com.example.client", "1.0.0")
    manifest_file = workdir / "client-manifest.json"
    manifest_file.write_bytes(manifest)
    args = ["--bundle", str(bundle), "--manifest", str(manifest_file)]
    first = publish(*args, "--declared-hash", sha, "--server", server.url, "--token", TOKEN)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert (result["extension"], result["version"], result["contentHash"]) == ("com.example.client", "1.0.0", sha)
    assert result["uploaded"] is True
    objects = store_files(store_dir)
    assert objects[f"sha256/{sha}/bundle.tar.zst"] == bundle.read_bytes()
    assert objects[f"sha256/{sha}/manifest.json"] == manifest
    uploads_before = len(requests_logged(server, "/upload-proxy"))
    # The reference CI's environment: SERVER_BASE and FASTPACK_TOKEN, the declared hash from the sidecar.
    second = publish(
        *args, "--declared-hash", str(bundle.parent / "bundle.sha256"), SERVER_BASE=server.url, FASTPACK_TOKEN=TOKEN
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["uploaded"] is False
    assert f"published com.example.client@1.0.0 ({bundle.stat().st_size} bytes, already on the server)" in second.stderr
    assert len(requests_logged(server, "/upload-proxy")) == uploads_before
    assert staging_keys(store_dir) == []


def test_without_declared_hash_the_server_hashes(server, workdir, store_dir):
    bundle, _, sha = make_bundle(workdir, "com.example.nohash", "1.0.0")
    done = publish("--bundle", str(bundle), "--server", server.url, "--token", TOKEN, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["contentHash"] == sha
    assert done.stderr == ""


def test_legacy_admin_header_where_the_server_trusts_it(server, workdir):
    bundle, _, sha = make_bundle(workdir, "com.example.admin", "1.0.0")
    done = publish("--bundle", str(bundle), "--declared-hash", sha, SERVER_BASE=server.url, ALGA_ADMIN_HEADER="true")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["contentHash"] == sha


def test_no_token_is_refused_with_a_hint(server, workdir, store_dir):
    bundle, _, sha = make_bundle(workdir, "com.example.notoken", "1.0.0")
    before = store_files(store_dir)
    done = publish("--bundle", str(bundle), "--declared-hash", sha, "--server", server.url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"fastpack: error: {server.url}: ")
    assert "[UNAUTHORIZED]" in done.stderr and "FASTPACK_TOKEN" in done.stderr
    assert store_files(store_dir) == before


def test_wrong_declared_hash_is_refused_and_nothing_kept(server, workdir, store_dir):
    bundle, _, _ = make_bundle(workdir, "com.example.wronghash", "1.0.0")
    before = store_files(store_dir)
    done = publish("--bundle", str(bundle), "--declared-hash", "0" * 64, "--server", server.url, "--token", TOKEN)
    assert done.returncode == 1
    assert "[HASH_MISMATCH]" in done.stderr
    assert store_files(store_dir) == before


def test_local_file_differing_from_an_existing_declared_bundle(server, workdir, store_dir):
    """HEAD says the declared bundle exists, but the local file is another: refuse before finalizing."""
    published, _, sha = make_bundle(workdir, "com.example.swap", "1.0.0")
    assert publish("--bundle", str(published), "--server", server.url, "--token", TOKEN).returncode == 0
    other, _, _ = make_bundle(workdir, "com.example.swap", "1.0.0", payload=b"other bytes")
    finalizes = len(requests_logged(server, "/finalize"))
    before = store_files(store_dir)
    done = publish("--bundle", str(other), "--declared-hash", sha, "--server", server.url, "--token", TOKEN)
    assert done.returncode == 1
    assert f"fastpack: error: {other}: bundle hashes to " in done.stderr and f"but {sha} was declared" in done.stderr
    assert len(requests_logged(server, "/finalize")) == finalizes
    assert store_files(store_dir) == before


def test_version_conflict_is_explained_and_staging_aborted(server, workdir, store_dir):
    first, _, _ = make_bundle(workdir, "com.example.clash", "3.0.0")
    second, _, _ = make_bundle(workdir, "com.example.clash", "3.0.0", payload=b"changed")
    assert publish("--bundle", str(first), "--server", server.url, "--token", TOKEN).returncode == 0
    before = store_files(store_dir)
    done = publish("--bundle", str(second), "--server", server.url, "--token", TOKEN)
    assert done.returncode == 1
    assert "[EXTENSION_VERSION_ALREADY_EXISTS]" in done.stderr and "bump the version" in done.stderr
    assert store_files(store_dir) == before
    assert staging_keys(store_dir) == []


def test_invalid_manifest_lists_every_issue(server, workdir, store_dir):
    from fastpack.pack import pack

    source = write_extension(workdir / "broken", "com.example.broken", "1.0")
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["runtime"] = "wasm"
    (source / "manifest.json").write_text(json.dumps(manifest))
    pack(source, workdir / "broken.tar.zst", validate=False)
    before = store_files(store_dir)
    done = publish("--bundle", str(workdir / "broken.tar.zst"), "--server", server.url, "--token", TOKEN)
    assert done.returncode == 1
    assert "[INVALID_MANIFEST]" in done.stderr
    assert "\n  version: " in done.stderr and "\n  runtime: " in done.stderr
    assert store_files(store_dir) == before


def test_unreachable_server_fails_after_retries(workdir):
    bundle, _, sha = make_bundle(workdir, "com.example.offline", "1.0.0")
    url = f"http://127.0.0.1:{free_port()}"
    done = publish("--bundle", str(bundle), "--declared-hash", sha, "--server", url, "--token", TOKEN)
    assert done.returncode == 1
    assert done.stderr.startswith(f"fastpack: error: {url}: cannot reach the server")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "ftp://example"], "server must be an http(s):// URL"),
        (["--server", "http://127.0.0.1:1", "--trust", "x.pem"], "--trust is for direct publishing"),
    ],
)
def test_usage_errors(workdir, args, message):
    done = publish("--bundle", "b.tar.zst", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_bundle(server):
    done = publish("--bundle", "/nonexistent/bundle.tar.zst", "--server", server.url, "--token", TOKEN)
    assert done.returncode == 1
    assert done.stderr == "fastpack: error: /nonexistent/bundle.tar.zst: no such file\n"
