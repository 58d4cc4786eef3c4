"""A bundle is a standard artifact: tar, zstd, sha256sum, b3sum and Python's tarfile all agree with it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from fastpack.pack import pack
from helpers_tree import gnu_tar_available, gnu_tar_stream

needs_tools = pytest.mark.skipif(
    not (gnu_tar_available() and shutil.which("zstd") and shutil.which("b3sum")), reason="tar/zstd/b3sum missing"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "empty-dir").mkdir()
    (src / "ui" / "deep" / "er").mkdir(parents=True)
    (src / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (src / "bin" / "tool").chmod(0o4711)  # setuid + exec only for the owner: stored as 0755
    (src / "secret.txt").write_text("private")
    (src / "secret.txt").chmod(0o600)  # stored as 0644
    (src / "empty").write_bytes(b"")
    (src / "ui" / "deep" / "er" / ("n" * 120 + ".js")).write_text("long name")
    (src / "ui" / "日本語.html").write_text("unicode")
    (src / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    os.link(src / "big.bin", src / "hard.bin")
    os.symlink("ui/日本語.html", src / "link")
    return src


def test_cli_json_result_and_sidecar(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.zst"
    proc = subprocess.run(
        [sys.executable, "-m", "fastpack", "pack", str(tree), str(out), "--no-validate", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert set(result) >= {
        "path",
        "sha256",
        "size",
        "sidecar",
        "entries",
        "tar_size",
        "tar_blake3",
        "level",
        "format",
        "zstd",
        "backend",
        "seconds",
    }
    data = out.read_bytes()
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["size"] == len(data)
    assert result["format"] == "fastpack-bundle-v1"
    assert result["level"] == 3
    assert result["zstd"] == ".".join(map(str, zstandard.ZSTD_VERSION))
    assert result["sidecar"] == str(tmp_path / "bundle.sha256")
    assert (tmp_path / "bundle.sha256").read_text() == f"{result['sha256']}  bundle.tar.zst\n"
    assert proc.stderr == ""  # not a terminal: no progress


@needs_tools
def test_standard_tools_accept_the_bundle(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.zst"
    result = pack(tree, out, validate=False)
    subprocess.run(["sha256sum", "-c", "bundle.sha256"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(["zstd", "-t", "-q", str(out)], check=True)
    frame = zstandard.get_frame_parameters(out.read_bytes()[:18])
    assert frame.has_checksum and frame.content_size == result.tar_size
    reference = gnu_tar_stream(tree)
    assert zstandard.ZstdDecompressor().decompress(out.read_bytes()) == reference
    b3 = subprocess.run(["b3sum", "--no-names"], input=reference, capture_output=True, check=True).stdout
    assert b3.decode().strip() == result.tar_blake3
    zstd_cli = subprocess.run(["zstd", "-dc", str(out)], capture_output=True, check=True).stdout
    assert zstd_cli == reference


@needs_tools
def test_extraction_reproduces_bytes_and_normalized_modes(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.zst"
    pack(tree, out, validate=False)
    extracted = tmp_path / "x"
    extracted.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(out), "-C", str(extracted)], check=True)
    for path in sorted(tree.rglob("*")):
        twin = extracted / path.relative_to(tree)
        if path.is_symlink():
            assert os.readlink(twin) == os.readlink(path)
        elif path.is_dir():
            assert twin.is_dir() and (twin.stat().st_mode & 0o7777) == 0o755
        else:
            assert twin.read_bytes() == path.read_bytes()
            expected = 0o755 if path.stat().st_mode & 0o111 else 0o644
            assert twin.stat().st_mode & 0o7777 == expected

    with tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompress(out.read_bytes()))) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["bin/tool"].mode == 0o755 and members["secret.txt"].mode == 0o644
    assert members["hard.bin"].isreg()  # hard links are stored as independent regular files
    assert members["link"].issym() and members["link"].linkname == "ui/日本語.html"
    assert {m.uid for m in members.values()} == {0} and {m.mtime for m in members.values()} == {0}
    assert not any(name.startswith("./") for name in members)


def test_out_inside_dir_is_never_packed_into_itself(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    first = pack(src, src / "bundle.tar.zst", validate=False)
    second = pack(src, src / "bundle.tar.zst", validate=False)
    assert first.sha256 == second.sha256
    stream = zstandard.ZstdDecompressor().decompress((src / "bundle.tar.zst").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
        names = archive.getnames()
    assert names == ["a.txt"]


def test_level_and_long_change_bytes_and_are_echoed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello " * 5000)
    default = pack(src, tmp_path / "d.tar.zst", validate=False)
    level19 = pack(src, tmp_path / "l.tar.zst", validate=False, level=19)
    long = pack(src, tmp_path / "w.tar.zst", validate=False, long_window=27)
    assert level19.level == 19 and long.long == 27
    assert default.tar_blake3 == level19.tar_blake3 == long.tar_blake3
    assert len({default.sha256, level19.sha256}) == 2
    for result in (default, level19, long):
        subprocess.run(["zstd", "-t", "-q", "--long=27", result.path], check=True)
