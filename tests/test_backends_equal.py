"""SPEC §1: the native and pure-Python backends give byte-identical bundles and identical errors.

Generated trees (unicode and long names, deep nesting, empty files and dirs,
executables, in-tree symlinks, hard links) are packed by both backends; trees
that change between scan and read, and trees that cannot be packed, must fail
with the same exception type and message on both, leaving nothing behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastpack.backend import native_available, open_tar_source, scan_tree
from fastpack.errors import FastpackError
from fastpack.pack import pack
from fastpack.tarformat import DIRTYPE, OCTAL11_LIMIT, REGTYPE, SYMTYPE, member_header
from fastpack.tree import Entry, scan
from helpers_tree import Node, build_tree, trees

pytestmark = pytest.mark.skipif(not native_available(), reason="native backend not built")

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_stream(entries: Sequence[Entry], backend: str, chunk: int, mtime: int = 0) -> bytes:
    source = open_tar_source(entries, mtime, backend)
    buffer = bytearray(chunk)
    out = bytearray()
    try:
        while count := source.readinto(buffer):
            out += buffer[:count]
    finally:
        source.close()
    return bytes(out)


def outcome(action: Callable[[], object]) -> tuple[type, str] | None:
    try:
        action()
    except FastpackError as exc:
        return type(exc), str(exc)
    return None


# ---------------------------------------------------------------- headers

_names = st.one_of(
    st.text(min_size=1, max_size=120).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(min_size=1, max_size=300),
    # the ustar/pax boundaries: 100 bytes fit, 101 do not
    st.builds(
        lambda n, c: c * n, st.sampled_from([99, 100, 101, 102, 255, 256]), st.sampled_from([b"a", b"/", b"\xc3"])
    ),
).filter(lambda b: b"\0" not in b)


@settings(max_examples=400, deadline=None)
@given(
    name=_names,
    link=st.one_of(st.just(b""), _names),
    size=st.one_of(st.integers(0, 4096), st.integers(OCTAL11_LIMIT - 2, OCTAL11_LIMIT + 2), st.integers(0, 2**62)),
    mtime=st.one_of(st.just(0), st.integers(0, OCTAL11_LIMIT - 1)),
    typeflag=st.sampled_from([REGTYPE, DIRTYPE, SYMTYPE]),
    mode=st.sampled_from([0o644, 0o755]),
)
def test_c_header_encoder_equals_python(name: bytes, link: bytes, size: int, mtime: int, typeflag: bytes, mode: int):
    from fastpack._native import ffi, lib

    capacity = lib.fp_header_capacity(len(name), len(link))
    out = ffi.new("unsigned char[]", capacity)
    length = lib.fp_encode_header(name, len(name), mode, size, mtime, typeflag, link, len(link), out, capacity)
    assert ffi.buffer(out, length)[:] == member_header(name, mode, size, mtime, typeflag, link)
    assert lib.fp_encode_header(name, len(name), mode, size, mtime, typeflag, link, len(link), out, 511) == 0


# ------------------------------------------------------------------ trees


@PROPERTY
@given(nodes=trees(), mtime=st.sampled_from([0, 1700000000, OCTAL11_LIMIT - 1]), chunk=st.sampled_from([1, 700, 65536]))
def test_generated_trees_stream_identically(nodes: list[Node], mtime: int, chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_tree(Path(tmp), nodes, mtime_jitter=True)
        python_entries = scan(tmp)
        native_entries = scan_tree(tmp, backend="native")
        assert list(native_entries) == python_entries
        expected = read_stream(python_entries, "python", 1 << 20, mtime)
        assert read_stream(native_entries, "native", chunk, mtime) == expected


@PROPERTY
@given(nodes=trees(), threads=st.sampled_from([1, 2]))
def test_generated_trees_pack_to_identical_bundles(nodes: list[Node], threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        build_tree(src, nodes)
        results = {}
        for backend in ("python", "native"):
            out = Path(tmp, f"{backend}.tar.zst")
            result = pack(src, out, validate=False, backend=backend, threads=threads, chunk_size=4096)
            assert result.backend == backend
            results[backend] = (out.read_bytes(), result.sha256, result.tar_size, result.tar_blake3, result.entries)
        assert results["native"] == results["python"]


def test_plain_tree_is_scanned_in_c_and_matches_tree_scan(tmp_path: Path) -> None:
    """Deep nesting, long and unicode names, empty dirs: the C scan's entries are tree.scan's, stat fields included."""
    deep = tmp_path.joinpath(*[f"level{i:02d}-ünïcödé" for i in range(40)])
    deep.mkdir(parents=True)
    (deep / ("n" * 255)).write_bytes(b"x" * 513)
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "empty-file").touch()
    (tmp_path / "tool").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o4750)
    from fastpack.native import NativeEntries

    entries = scan_tree(tmp_path, backend="native")
    assert isinstance(entries, NativeEntries)
    assert list(entries) == scan(tmp_path)
    assert entries.tar_size == len(read_stream(scan(tmp_path), "python", 1 << 20))


# ---------------------------------------------------------- changing files


def _replace_with_new_file(path: Path) -> None:
    path.with_name(path.name + ".new").write_bytes(path.read_bytes())
    os.replace(path.with_name(path.name + ".new"), path)


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _rewrite_same_size(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(bytes(b ^ 0xFF for b in data))
    os.utime(path, ns=(1, 1))


CHANGES: dict[str, Callable[[Path], object]] = {
    "disappears": Path.unlink,
    "grows": lambda p: p.write_bytes(p.read_bytes() + b"more"),
    "shrinks": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "emptied": lambda p: p.write_bytes(b""),
    "rewritten same size": _rewrite_same_size,
    "replaced": _replace_with_new_file,
    "replaced by a directory": _replace_with_directory,
}


@PROPERTY
@given(
    nodes=trees(), change=st.sampled_from(sorted(CHANGES)), pick=st.integers(0, 100), chunk=st.sampled_from([1, 4096])
)
def test_files_changing_after_the_scan_fail_identically(nodes: list[Node], change: str, pick: int, chunk: int) -> None:
    files = [node for node in nodes if node.kind == "file" and node.content]
    assume(files)
    target = files[pick % len(files)]
    outcomes = {}
    for backend in ("python", "native"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            build_tree(root, nodes)
            entries = scan_tree(root, backend=backend)
            CHANGES[change](root.joinpath(*target.path))
            outcomes[backend] = outcome(lambda: read_stream(entries, backend, chunk))  # noqa: B023
            if outcomes[backend] is not None:
                outcomes[backend] = (outcomes[backend][0], outcomes[backend][1].replace(tmp, "<root>"))
    assert outcomes["python"] is not None
    assert outcomes["native"] == outcomes["python"]


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("backend", ["python", "native"])
def test_pack_fails_on_change_and_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, backend: str
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    target = src / "sub" / "data.bin"
    target.write_bytes(bytes(range(256)) * 20)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    import fastpack.backend as backend_module

    original = backend_module.scan_tree

    def scan_then_change(*args: object, **kwargs: object) -> Sequence[Entry]:
        entries = original(*args, **kwargs)  # type: ignore[arg-type]
        CHANGES[change](target)
        return entries

    monkeypatch.setattr(backend_module, "scan_tree", scan_then_change)
    with pytest.raises(FastpackError) as info:
        pack(src, out_dir / "b.tar.zst", validate=False, backend=backend)
    assert info.value.path == str(target)
    assert "while being packed" in info.value.message
    assert list(out_dir.iterdir()) == []


# ------------------------------------------------------- refused trees


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe")


def _socket(root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))


REFUSALS: dict[str, Callable[[Path], object]] = {
    "fifo": _fifo,
    "socket": _socket,
    "absolute symlink": lambda root: os.symlink("/etc/hostname", root / "abs"),
    "escaping symlink": lambda root: os.symlink("../../outside", root / "sub" / "up"),
    "dangling escaping symlink": lambda root: os.symlink("../nowhere/../../x", root / "dang"),
    "non-UTF-8 name": lambda root: (root / "sub" / os.fsdecode(b"bad-\xff")).write_bytes(b"x"),
    "symlink loop with --follow-symlinks": lambda root: os.symlink("..", root / "sub" / "loop"),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_refused_trees_fail_identically_on_both_backends(tmp_path: Path, refusal: str) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "file.txt").write_text("content")
    REFUSALS[refusal](src)
    follow = refusal.endswith("--follow-symlinks")
    outcomes = {}
    for backend in ("python", "native"):
        out_dir = tmp_path / f"out-{backend}"
        out_dir.mkdir()
        outcomes[backend] = outcome(
            lambda: pack(src, out_dir / "b.tar.zst", validate=False, backend=backend, follow_symlinks=follow)  # noqa: B023
        )
        assert list(out_dir.iterdir()) == []
        shutil.rmtree(out_dir)
    assert outcomes["python"] is not None
    assert outcomes["native"] == outcomes["python"]
    assert str(src) in outcomes["native"][1]
