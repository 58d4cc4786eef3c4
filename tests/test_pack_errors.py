"""Bad input: a clear message naming the problem and the path, a non-zero exit, and no output left behind."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fastpack.backend as backend_module
import fastpack.pack as pack_module
from fastpack.cli import main
from fastpack.errors import InputError, SourceChangedError

# root ignores file permissions; without these two capabilities it honours them like any user.
WITHOUT_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def run_cli(*args: str, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    prefix = WITHOUT_DAC_OVERRIDE if unprivileged else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "fastpack", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def assert_refused(proc: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> None:
    assert proc.returncode == code, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("fastpack: error: "), line
    assert "Traceback" not in proc.stderr and len(line.splitlines()) == 1
    for fragment in fragments:
        assert fragment in line


def assert_no_output(out_dir: Path) -> None:
    assert sorted(p.name for p in out_dir.iterdir()) == []


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "file.txt").write_text("content")
    return path


def test_missing_dir(tmp_path: Path, out_dir: Path) -> None:
    proc = run_cli("pack", str(tmp_path / "nope"), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "no such directory", str(tmp_path / "nope"))
    assert_no_output(out_dir)


def test_dir_is_a_file(tmp_path: Path, out_dir: Path) -> None:
    (tmp_path / "f").write_text("x")
    proc = run_cli("pack", str(tmp_path / "f"), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "not a directory", str(tmp_path / "f"))
    assert_no_output(out_dir)


def test_fifo(src: Path, out_dir: Path) -> None:
    os.mkfifo(src / "sub" / "pipe")
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "is a FIFO", str(src / "sub" / "pipe"))
    assert_no_output(out_dir)


def test_socket(src: Path, out_dir: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    path = src / "s.sock"
    try:
        sock.bind(str(path))
        proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    finally:
        sock.close()
    assert_refused(proc, "is a socket", str(path))
    assert_no_output(out_dir)


def test_device_node(src: Path, out_dir: Path) -> None:
    try:
        os.mknod(src / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating device nodes needs privileges")
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "is a character device", str(src / "null"))
    assert_no_output(out_dir)


@pytest.mark.parametrize(
    ("target", "message"),
    [("/etc/passwd", "absolute target"), ("../../outside", "points outside the tree"), ("../..", "outside")],
)
def test_escaping_symlinks(src: Path, out_dir: Path, target: str, message: str) -> None:
    os.symlink(target, src / "sub" / "link")
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, message, str(src / "sub" / "link"), "--follow-symlinks")
    assert_no_output(out_dir)


def test_symlink_escaping_through_another_symlink(src: Path, out_dir: Path, tmp_path: Path) -> None:
    os.symlink(str(tmp_path), src / "abs")  # absolute: refused on its own
    os.symlink("sub", src / "ok")  # inside: fine
    (src / "abs").unlink()
    os.symlink("../..", src / "sub" / "up")  # resolves to tmp_path: outside
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "points outside the tree", str(src / "sub" / "up"))


def test_follow_symlinks_stores_the_target_content(src: Path, tmp_path: Path, out_dir: Path) -> None:
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(str(tmp_path / "outside.txt"), src / "link")
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate", "--follow-symlinks")
    assert proc.returncode == 0, proc.stderr
    listing = subprocess.run(["tar", "--zstd", "-tvf", str(out_dir / "b.tar.zst")], capture_output=True, text=True)
    assert "-rw-r--r-- 0/0               7 1970-01-01 00:00 link" in listing.stdout


def test_invalid_utf8_name(src: Path, out_dir: Path) -> None:
    bad = os.path.join(os.fsencode(src), b"bad-\xff-name")
    with open(bad, "wb") as handle:
        handle.write(b"x")
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "not valid UTF-8", "bad-")
    assert_no_output(out_dir)


def test_unreadable_file(src: Path, out_dir: Path) -> None:
    secret = src / "sub" / "file.txt"
    secret.chmod(0o000)
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate", unprivileged=True)
    assert_refused(proc, "cannot read file", "Permission denied", str(secret))
    assert_no_output(out_dir)


def test_unwritable_output_directory(src: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    proc = run_cli("pack", str(src), str(locked / "b.tar.zst"), "--no-validate", unprivileged=True)
    assert_refused(proc, "cannot create output file", "Permission denied", str(locked))
    assert_no_output(locked)


def test_missing_output_directory(src: Path, tmp_path: Path) -> None:
    proc = run_cli("pack", str(src), str(tmp_path / "no" / "b.tar.zst"), "--no-validate")
    assert_refused(proc, "output directory does not exist", str(tmp_path / "no"))
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--threads", "0", "--threads must be at least 1"),
        ("--level", "23", "--level must be between"),
        ("--mtime", "yesterday", "--mtime must be seconds"),
        ("--mtime", "-5", "--mtime must be between"),
    ],
)
def test_bad_options_are_usage_errors(src: Path, out_dir: Path, flag: str, value: str, message: str) -> None:
    proc = run_cli("pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate", f"{flag}={value}")
    assert_refused(proc, message, code=2)
    assert_no_output(out_dir)


CHANGES = {
    "grows": (lambda p: p.write_text("content and more"), SourceChangedError, "changed size"),
    "shrinks": (lambda p: p.write_text("c"), SourceChangedError, "changed size"),
    "disappears": (lambda p: p.unlink(), SourceChangedError, "disappeared"),
    "rewritten same size": (
        lambda p: (p.write_text("CONTENT"), os.utime(p, ns=(1, 1))),
        SourceChangedError,
        "was modified",
    ),
    "replaced": (
        lambda p: (p.with_name("new").write_text("content"), os.replace(p.with_name("new"), p)),
        SourceChangedError,
        "was replaced",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_file_changed_during_pack(
    src: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys, change: str
) -> None:
    mutate, error_type, message = CHANGES[change]
    target = src / "sub" / "file.txt"

    scan_tree = backend_module.scan_tree

    def scan_then_change(*args, **kwargs):
        entries = scan_tree(*args, **kwargs)
        mutate(target)
        return entries

    monkeypatch.setattr(backend_module, "scan_tree", scan_then_change)
    with pytest.raises(error_type) as info:
        pack_module.pack(src, out_dir / "b.tar.zst", validate=False)
    assert message in str(info.value) and str(target) in str(info.value)
    assert_no_output(out_dir)
    target.write_text("content")
    assert main(["pack", str(src), str(out_dir / "b.tar.zst"), "--no-validate"]) == 1
    assert message in capsys.readouterr().err
    assert_no_output(out_dir)


def test_failed_pack_keeps_the_previous_bundle_and_sidecar_pair(src: Path, out_dir: Path) -> None:
    good = pack_module.pack(src, out_dir / "b.tar.zst", validate=False)
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    os.mkfifo(src / "pipe")
    with pytest.raises(InputError):
        pack_module.pack(src, out_dir / "b.tar.zst", validate=False)
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert before["b.tar.zst.sha256"].decode().startswith(good.sha256)
