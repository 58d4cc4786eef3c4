"""`fastpack inspect`: entries, manifest summary, sizes and ratio, checked against independent tools."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from fastpack.cli import main
from fastpack.pack import pack
from helpers_bundles import MALICIOUS_TARS, compress, end, member, sha256_file, write


@pytest.fixture
def bundle(tmp_path: Path, example_dist: Path) -> Path:
    out = tmp_path / "bundle.tar.zst"
    pack(example_dist, out)
    return out


def test_inspect_json_matches_independent_tools(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(bundle), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    tar_bytes = subprocess.run(["zstd", "-dc", str(bundle)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        expected = [
            {"path": info.name.rstrip("/"), "mode": f"{info.mode:04o}", "size": info.size}
            for info in archive.getmembers()
        ]
    assert [{k: m[k] for k in ("path", "mode", "size")} for m in data["members"]] == expected
    assert data["sha256"] == sha256_file(bundle)
    assert data["size"] == bundle.stat().st_size
    assert data["tar_size"] == len(tar_bytes)
    assert data["ratio"] == round(len(tar_bytes) / bundle.stat().st_size, 3)
    assert data["format"] == "fastpack-bundle-v1"
    assert data["zstd"]["checksum"] is True and data["zstd"]["content_size"] == len(tar_bytes)
    assert data["manifest"] == {
        "name": "com.example.hello-extension",
        "version": "0.1.0",
        "runtime": "wasm-js@1",
        "publisher": "fastpack examples",
        "endpoints": 1,
        "valid": True,
        "issues": [],
    }


def test_inspect_human_output(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert f"sha256    {sha256_file(bundle)}" in out
    assert "manifest  valid  name=com.example.hello-extension  version=0.1.0" in out
    assert "0755             0  ui/" in out
    assert "0644            40  dist/main.wasm" in out


def test_inspect_shows_invalid_manifest_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "b.tar.zst", compress(end(member("manifest.json", b'{"name": "x"}'))))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "manifest  INVALID  name=x" in out and "version: is required" in out


def test_inspect_refuses_malicious_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "evil.tar.zst", compress(MALICIOUS_TARS["symlink_escape"][0]))
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"fastpack: error: {path}: member link: symlink points outside the bundle (../../etc)\n"
