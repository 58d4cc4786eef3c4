"""The native (C) backend: built by default, optional, selectable, GNU-tar-exact, memory-safe.

Expected bytes come from GNU tar, b3sum and the pure-Python encoder, never
from the native code's own output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastpack.backend import backend_name, native_available, open_tar_source, scan_tree
from fastpack.pack import pack
from fastpack.tarformat import OCTAL11_LIMIT, member_header
from fastpack.tarstream import tar_size
from fastpack.tree import scan
from helpers_tree import gnu_tar_available, gnu_tar_stream

REPO = Path(__file__).resolve().parent.parent
needs_native = pytest.mark.skipif(not native_available(), reason="native backend not built")
WITHOUT_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def run_fastpack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastpack", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def read_all(source: object, chunk: int = 1 << 20) -> bytes:
    buffer = bytearray(chunk)
    out = bytearray()
    while count := source.readinto(buffer):  # type: ignore[attr-defined]
        out += buffer[:count]
    source.close()  # type: ignore[attr-defined]
    return bytes(out)


@pytest.fixture
def edge_tree(tmp_path: Path) -> Path:
    """Names at and past the ustar limits (100-byte names, 255-byte components, > 255-byte paths),
    unicode, deep nesting, empty files and dirs, executables, sizes at block boundaries."""
    root = tmp_path / "tree"
    deep = root.joinpath(*[f"d{i}" for i in range(30)])
    deep.mkdir(parents=True)
    (deep / ("x" * 200)).write_bytes(b"deep\n")
    (root / ("a" * 100)).write_bytes(b"exactly 100")
    (root / ("b" * 101)).write_bytes(b"101")
    (root / ("c" * 255)).write_bytes(bytes(512))
    (root / ("ü" * 120)).mkdir()
    (root / ("ü" * 120) / "日本語.txt").write_bytes(b"unicode\n" * 100)
    (root / "empty-dir").mkdir()
    (root / "empty-file").touch()
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "block-1023").write_bytes(os.urandom(1023))
    (root / "block-1024").write_bytes(os.urandom(1024))
    return root


@needs_native
def test_native_backend_is_built_and_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTPACK_NATIVE", raising=False)
    assert backend_name() == "native"
    monkeypatch.setenv("FASTPACK_NATIVE", "0")
    assert backend_name() == "python"


@needs_native
def test_version_and_json_say_which_backend_ran(edge_tree: Path, tmp_path: Path) -> None:
    assert "backend: native" in run_fastpack("--version").stdout
    assert "backend: python" in run_fastpack("--version", env={"FASTPACK_NATIVE": "0"}).stdout
    for env, expected in (({}, "native"), ({"FASTPACK_NATIVE": "0"}, "python")):
        proc = run_fastpack(
            "pack", str(edge_tree), str(tmp_path / f"{expected}.tar.zst"), "--no-validate", "--json", env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["backend"] == expected
    assert (tmp_path / "native.tar.zst").read_bytes() == (tmp_path / "python.tar.zst").read_bytes()


@needs_native
@pytest.mark.skipif(not gnu_tar_available(), reason="GNU tar not installed")
@pytest.mark.parametrize("chunk", [1, 511, 512, 513, 10240, 1 << 20])
def test_native_stream_is_gnu_tar_exact(edge_tree: Path, chunk: int) -> None:
    entries = scan_tree(edge_tree, backend="native")
    assert read_all(open_tar_source(entries, 1234567890, "native"), chunk) == gnu_tar_stream(edge_tree, 1234567890)


@needs_native
@pytest.mark.skipif(not (gnu_tar_available() and shutil.which("b3sum")), reason="GNU tar and b3sum needed")
def test_packed_tar_blake3_matches_b3sum_of_gnu_tar(edge_tree: Path, tmp_path: Path) -> None:
    result = pack(edge_tree, tmp_path / "b.tar.zst", validate=False, backend="native")
    b3sum = subprocess.run(["b3sum", "--no-names"], input=gnu_tar_stream(edge_tree), capture_output=True, check=True)
    assert result.tar_blake3 == b3sum.stdout.decode().strip()
    zstd = shutil.which("zstd")
    if zstd:
        tar = subprocess.run([zstd, "-dc", str(tmp_path / "b.tar.zst")], capture_output=True, check=True).stdout
        assert tar == gnu_tar_stream(edge_tree)


@needs_native
def test_files_of_8_gib_and_more_get_a_pax_size_record(tmp_path: Path) -> None:
    """A sparse file past the 11-octal-digit limit: same header and tar size as the Python encoder."""
    root = tmp_path / "huge"
    root.mkdir()
    with open(root / "big.bin", "wb") as handle:
        handle.truncate(OCTAL11_LIMIT + 1)
    native_entries = scan_tree(root, backend="native")
    python_entries = scan(root)
    assert native_entries.tar_size == tar_size(python_entries)  # type: ignore[attr-defined]
    expected = member_header(b"big.bin", 0o644, OCTAL11_LIMIT + 1, 0, b"0")
    assert b" size=8589934593\n" in expected
    for backend, entries in (("native", native_entries), ("python", python_entries)):
        source = open_tar_source(entries, 0, backend)
        head = bytearray(len(expected) + 512)
        assert source.readinto(head) == len(head)
        source.close()  # mid-file: closes the file, no error
        assert bytes(head) == expected + bytes(512)


@needs_native
def test_c_scan_handles_plain_trees_and_defers_everything_else(tmp_path: Path, edge_tree: Path) -> None:
    from fastpack.native import NativeEntries, scan_native

    entries = scan_native(edge_tree)
    assert isinstance(entries, NativeEntries)
    assert list(entries) == scan(edge_tree)
    assert len(entries) == len(scan(edge_tree))
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "f").write_text("x")
    os.symlink("f", odd / "link")
    assert scan_native(odd) is None  # symlinks: tree.scan decides
    assert list(scan_tree(odd, backend="native")) == scan(odd)
    assert scan_native(tmp_path / "missing") is None
    assert scan_native(odd / "f") is None


@needs_native
def test_c_scan_of_a_wide_root_keeps_order_and_defers_on_a_late_subtree(tmp_path: Path) -> None:
    """The C scan splits the root's children between threads (in runs when there are many):
    the joined result must still be tree.scan's order, and one odd file anywhere defers all."""
    from fastpack.native import scan_native

    root = tmp_path / "wide"
    root.mkdir()
    for i in range(600):
        if i % 3:
            (root / f"n{i:04d}").write_bytes(b"x" * i)
        else:
            sub = root / f"n{i:04d}" / "inner"
            sub.mkdir(parents=True)
            (sub / "f").write_bytes(b"y" * i)
    entries = scan_native(root)
    assert entries is not None
    assert list(entries) == scan(root)
    assert entries.tar_size == tar_size(scan(root))
    os.symlink("f", root / "n0597" / "inner" / "link")
    assert scan_native(root) is None


@needs_native
@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root's bypass")
@pytest.mark.parametrize("backend", ["native", "python"])
def test_unreadable_file_is_reported_with_its_path(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    secret = src / "secret.txt"
    secret.write_text("x")
    secret.chmod(0)
    out = tmp_path / "b.tar.zst"
    proc = subprocess.run(
        [*WITHOUT_DAC_OVERRIDE, sys.executable, "-m", "fastpack", "pack", str(src), str(out), "--no-validate",
         "--backend", backend],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == f"fastpack: error: {secret}: cannot read file: Permission denied\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_install_without_a_compiler_still_succeeds(tmp_path: Path) -> None:
    """setup.py's build_ext turns a failed C build into a warning: the package then runs on pure Python."""
    shutil.copy(REPO / "setup.py", tmp_path)
    shutil.copytree(REPO / "native", tmp_path / "native", ignore=shutil.ignore_patterns("*.o", "*.so"))
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-lib", "lib", "--build-temp", "tmp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "CC": "false", "LDSHARED": "false"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "native backend not built" in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("lib/**/*.so"))


def test_package_works_when_the_native_module_is_missing(edge_tree: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["fastpack._native"] = None  # as if the C build had failed
        from fastpack.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    version = subprocess.run([sys.executable, "-c", script, "--version"], capture_output=True, text=True)
    assert "backend: python" in version.stdout
    proc = subprocess.run(
        [sys.executable, "-c", script, "pack", str(edge_tree), str(tmp_path / "b.tar.zst"), "--no-validate", "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == "python"
    asked = subprocess.run(
        [sys.executable, "-c", script, "pack", str(edge_tree), str(tmp_path / "c.tar.zst"), "--backend", "native"],
        capture_output=True,
        text=True,
    )
    assert asked.returncode == 2
    assert "native backend is not built" in asked.stderr
    assert not (tmp_path / "c.tar.zst").exists()


ASAN_WORKLOAD = textwrap.dedent(
    """
    import os, sys
    import fastpack
    fastpack.__path__.insert(0, sys.argv[1])  # the instrumented fastpack/_native*.so
    import fastpack._native
    assert fastpack._native.__file__.startswith(sys.argv[1]), fastpack._native.__file__
    from fastpack.backend import open_tar_source, scan_tree
    from fastpack.errors import FastpackError
    from fastpack.tree import scan

    root = sys.argv[2]
    for chunk in (1, 513, 1 << 16):
        for entries in (scan_tree(root, backend="native"), scan(root)):
            source = open_tar_source(entries, 0, "native")
            buffer = bytearray(chunk)
            while source.readinto(buffer):
                pass
            source.close()
    entries = scan_tree(root, backend="native")
    victim = [e for e in scan(root) if e.size][0].source
    os.truncate(victim, 1)
    try:
        source = open_tar_source(entries, 0, "native")
        while source.readinto(bytearray(100)):
            pass
    except FastpackError as exc:
        print("refused:", exc)
    else:
        raise SystemExit("change not detected")
    print("ok")
    """
)


@needs_native
@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc needed for the AddressSanitizer build")
def test_native_module_is_clean_under_address_sanitizer(edge_tree: Path, tmp_path: Path) -> None:
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("libasan not installed")
    build = tmp_path / "asan"
    build.mkdir()
    builder = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "native")!r})
        from build_native import make_builder
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
        make_builder(flags, ["-fsanitize=address,undefined"]).compile(tmpdir={str(build)!r})
        """
    )
    subprocess.run([sys.executable, "-c", builder], cwd=build, check=True, capture_output=True)
    assert list((build / "fastpack").glob("_native*.so"))
    proc = subprocess.run(
        [sys.executable, "-c", ASAN_WORKLOAD, str(build / "fastpack"), str(edge_tree)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "LD_PRELOAD": libasan,
            "ASAN_OPTIONS": "detect_leaks=0",
            "UBSAN_OPTIONS": "print_stacktrace=1",
        },
    )
    assert "ERROR: AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused:" in proc.stdout and "changed size" in proc.stdout and proc.stdout.endswith("ok\n")
