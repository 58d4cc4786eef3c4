"""The safe streaming reader: hostile tar and zstd input rejected with the member and problem named;
well-formed bundles (fastpack's and GNU tar's) read exactly as independent tools read them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpack.bundle import BundleLimits, BundleReader, iter_members, read_manifest, summarize_bundle
from fastpack.errors import BundleError
from fastpack.pack import pack
from helpers_bundles import (
    MALICIOUS_TARS,
    VALID_MANIFEST,
    compress,
    end,
    header,
    member,
    pax_member,
    valid_tar,
    write,
    zeros_bomb,
)
from helpers_tree import GNU_TAR_ARGS, build_tree, gnu_tar_available, trees


def rejected(data: bytes, limits: BundleLimits | None = None) -> BundleError:
    with pytest.raises(BundleError) as caught:
        summarize_bundle(io.BytesIO(data), *([limits] if limits else []))
    return caught.value


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS))
def test_malicious_tar_rejected_naming_member_and_problem(case: str) -> None:
    tar, phrase, member_name = MALICIOUS_TARS[case]
    error = rejected(compress(tar))
    assert phrase in error.message
    assert error.details["check"] == "tar"
    if member_name is not None:
        assert error.message.startswith(f"member {member_name}: ")
        assert error.details["member"] == member_name


def test_error_names_the_bundle_path(tmp_path: Path) -> None:
    path = write(tmp_path / "evil.tar.zst", compress(MALICIOUS_TARS["traversal"][0]))
    with pytest.raises(BundleError) as caught:
        summarize_bundle(str(path))
    assert str(caught.value) == f"{path}: member ../evil: name contains a '..' segment (path traversal)"


# --- zstd layer -------------------------------------------------------------------------------------------

GOOD = compress(valid_tar())


@pytest.mark.parametrize("keep", [0, 3, 4, 5, 20, len(GOOD) // 2, len(GOOD) - 4, len(GOOD) - 1])
def test_truncated_frame(keep: int) -> None:
    error = rejected(GOOD[:keep])
    expected = "empty file" if keep == 0 else "truncated zstd frame"
    assert expected in error.message
    assert error.details["check"] == "zstd"


def test_corrupted_byte_in_compressed_data() -> None:
    data = bytearray(compress(valid_tar(member("big.txt", os.urandom(2000).hex().encode()))))
    data[len(data) // 2] ^= 0x55
    error = rejected(bytes(data))
    assert error.details["check"] in ("zstd", "tar")
    assert error.message


def test_wrong_frame_checksum() -> None:
    data = bytearray(GOOD)
    data[-1] ^= 0x01
    error = rejected(bytes(data))
    assert "checksum" in error.message and error.details["check"] == "zstd"


def test_trailing_garbage() -> None:
    error = rejected(GOOD + b"garbage")
    assert f"unexpected data after the zstd frame (which ends at byte {len(GOOD)})" in error.message


def test_second_frame_is_trailing_data() -> None:
    assert "unexpected data after the zstd frame" in rejected(GOOD + GOOD).message


def test_skippable_frame_rejected() -> None:
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"meta"
    assert "skippable zstd frame" in rejected(skippable + GOOD).message


def test_frame_without_checksum_rejected() -> None:
    assert "no content checksum" in rejected(compress(valid_tar(), checksum=False)).message


def test_not_zstd() -> None:
    assert "not a zstd frame (bad magic number)" in rejected(valid_tar()).message


def test_window_larger_than_limit() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28, write_checksum=1, write_content_size=0)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()  # size unknown: full window
    data = compressor.compress(valid_tar()) + compressor.flush()
    assert "zstd window of 268435456 bytes exceeds the limit" in rejected(data).message
    summary = summarize_bundle(io.BytesIO(data), BundleLimits(max_window_size=1 << 28))
    assert summary.manifest == json.dumps(VALID_MANIFEST).encode()


def test_declared_content_size_over_limit_rejected_before_decompressing() -> None:
    error = rejected(GOOD, BundleLimits(max_total_size=4096))
    assert f"declares {len(valid_tar())} uncompressed bytes, more than the limit of 4096" in error.message


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zeros_bomb(tmp_path_factory.mktemp("bomb") / "bomb.tar.zst")


def test_zeros_bomb_rejected_by_ratio_after_little_output(bomb: Path) -> None:
    assert bomb.stat().st_size < 200_000  # 1 GB of zeros, small on disk
    with open(bomb, "rb") as handle:
        reader = BundleReader(handle, label=str(bomb))
        with pytest.raises(BundleError) as caught:
            for _ in reader.members():
                pass
    assert "compression ratio exceeds the limit of 200" in caught.value.message
    assert reader.tar_size < 8 << 20  # stopped within a few MiB of 1 GB


def test_zeros_bomb_rejected_by_size_limit_when_ratio_is_lifted(bomb: Path) -> None:
    limits = BundleLimits(max_total_size=16 << 20, max_ratio=1e9)
    with pytest.raises(BundleError) as caught:
        summarize_bundle(str(bomb), limits)
    # the 1e9-byte member is declared in its header: refused before its data is decompressed
    assert "member zeros: declares 1000000000 bytes, more than the uncompressed limit" in caught.value.message


def test_undeclared_growth_stopped_by_size_limit() -> None:
    compressor = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    data = compressor.compress(end(member("a", os.urandom(64 << 10)) * 1)) + compressor.flush()
    error = rejected(data, BundleLimits(max_total_size=32 << 10))
    assert "uncompressed size exceeds the limit of 32768 bytes" in error.message


def test_flood_of_empty_zstd_blocks_rejected() -> None:
    empty_raw_block = (0).to_bytes(3, "little")  # not last, raw, size 0: 3 bytes of input, no output
    assert GOOD[4] == 0x64  # single segment, checksum, 2-byte content size: the frame header is 7 bytes
    frame = GOOD[:7] + empty_raw_block * 100_000 + GOOD[7:]
    assert "hostile zstd frame: 4097 blocks" in rejected(frame).message


def test_entry_count_limit() -> None:
    tar = end(b"".join(member(f"f{i}", b"x") for i in range(5)))
    assert summarize_bundle(io.BytesIO(compress(tar)), BundleLimits(max_entries=5)).count("file") == 5
    error = rejected(compress(tar), BundleLimits(max_entries=4))
    assert error.message == "member f4: more than 4 entries (limit)"


# --- tar details ------------------------------------------------------------------------------------------


def test_pax_headers_give_long_names_links_and_sizes() -> None:
    long_name = "d/" + "é" * 80 + ".txt"
    tar = end(
        member("d/", typeflag=b"5")
        + pax_member({"path": long_name, "mtime": "0"})
        + member("short", b"hello")
        + pax_member({"linkpath": "../" + "é" * 60 + ".txt"})
        + member("d/link", typeflag=b"2")
        + pax_member({"size": "3"})
        + header("sized", size=0)
        + member("", b"abc")[512:]
    )
    members = {m.name: m for m in summarize_bundle(io.BytesIO(compress(tar))).members}
    assert members[long_name].size == 5
    assert members["d/link"].linkname == "../" + "é" * 60 + ".txt"
    assert members["sized"].size == 3


@pytest.mark.parametrize(
    ("tar", "phrase"),
    [
        (end(pax_member({"path": "a"}) + pax_member({"path": "b"}) + member("c")), "two pax headers in a row"),
        (end(pax_member({"path": "a"})), "pax header at the end of the archive"),
        (end(member("x", b"5 a=b\n", typeflag=b"x") + member("c")), "malformed pax record"),
        (end(pax_member({"size": "-1"}) + member("c")), "invalid pax size"),
        (end(header("a", size_field=b"0000000009\0\0")), "size field is not octal"),
        (end(header("a", size_field=b"\x80" + bytes(11))), "base-256"),
        (end(member("a", magic=b"\0" * 8)), "not a ustar header"),
        (end(member("dir/", b"data", typeflag=b"5")), "a dir must have size 0"),
        (end(member("file/", b"")), "must not end with '/'"),
        (end(member("l", typeflag=b"2")), "symlink has an empty target"),
        (end(member("a", b"x") + member("a/b", b"y")), "lies inside a, which is a file"),
        (end(member("a/b", b"y") + member("a", b"x")), "is also a directory"),
        (end(member("./a", b"x")), "'.' segment"),
        (end(member("l", typeflag=b"2", linkname="l/x")), "symlink loop"),
        (end(member("x", b"x", typeflag=b"g")), "pax global header"),
        (end(member("x", typeflag=b"S")), "unsupported type"),
        (end(member(b"\xff\xfe", b"x")), "not valid UTF-8"),
    ],
)
def test_tar_structure_errors(tar: bytes, phrase: str) -> None:
    assert phrase in rejected(compress(tar)).message


def test_gnu_magic_and_prefix_field_accepted() -> None:
    block = bytearray(header("name.txt", size=1))
    block[345:350] = b"deep/"[:-1] + b"\0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    tar = end(bytes(block) + b"x".ljust(512, b"\0") + member("gnu.txt", b"y", magic=b"ustar  \0"))
    assert [m.name for m in summarize_bundle(io.BytesIO(compress(tar))).members] == ["deep/name.txt", "gnu.txt"]


def test_in_tree_symlinks_accepted() -> None:
    tar = end(
        member("a/", typeflag=b"5")
        + member("a/target", b"t")
        + member("a/sibling", typeflag=b"2", linkname="target")
        + member("up", typeflag=b"2", linkname="a/../a/target")
        + member("a/dangling", typeflag=b"2", linkname="../missing")
        + member("a/via", typeflag=b"2", linkname="../up")
    )
    assert summarize_bundle(io.BytesIO(compress(tar))).count("symlink") == 4


def test_member_content_streams_and_expires() -> None:
    content = os.urandom(300_000)
    tar = end(member("big", content) + member("next", b"n"))
    it = iter_members(io.BytesIO(compress(tar)))
    first = next(it)
    chunks = list(first.read_chunks())
    assert b"".join(chunks) == content and len(chunks) > 1
    second = next(it)
    with pytest.raises(BundleError, match="content read after the next member"):
        list(first.read_chunks())
    assert b"".join(second.read_chunks()) == b"n"
    assert list(it) == []


def test_read_manifest_exact_bytes_and_errors(tmp_path: Path) -> None:
    text = b'{"name": "x",   "version": "1.0.0", "runtime": "wasm-js@1"}\n'
    bundle = write(tmp_path / "b.tar.zst", compress(end(member("a", b"1") + member("manifest.json", text))))
    assert read_manifest(str(bundle)) == text
    with pytest.raises(BundleError, match=r"no manifest\.json at the bundle root"):
        read_manifest(io.BytesIO(compress(end(member("sub/manifest.json", text)))))
    with pytest.raises(BundleError, match=rf"member manifest\.json: is {len(text)} bytes, larger than the limit of 10"):
        read_manifest(io.BytesIO(compress(end(member("manifest.json", text)))), BundleLimits(max_manifest_size=10))
    with pytest.raises(BundleError, match=r"member manifest\.json: is a dir"):
        read_manifest(io.BytesIO(compress(end(member("manifest.json/", typeflag=b"5")))))
    with pytest.raises(BundleError, match="duplicate member name"):
        read_manifest(io.BytesIO(compress(end(member("manifest.json", text) + member("manifest.json", b"{}")))))


# --- round trips against independent readers --------------------------------------------------------------


def independent_listing(bundle: Path) -> dict[str, tuple[str, int, int, str, bytes]]:
    """Members as the zstd CLI + Python's tarfile see them."""
    tar_bytes = subprocess.run(["zstd", "-dc", str(bundle)], capture_output=True, check=True).stdout
    listing = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        for info in archive.getmembers():
            kind = "dir" if info.isdir() else "symlink" if info.issym() else "file"
            data = archive.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            listing[info.name.rstrip("/")] = (kind, info.mode, info.size, info.linkname, data)
    return listing


def reader_listing(bundle: Path) -> dict[str, tuple[str, int, int, str, bytes]]:
    return {m.name: (m.type, m.mode, m.size, m.linkname, b"".join(m.read_chunks())) for m in iter_members(str(bundle))}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=trees())
def test_reader_matches_tarfile_on_packed_trees(tmp_path_factory: pytest.TempPathFactory, nodes: list) -> None:
    root = tmp_path_factory.mktemp("tree")
    src = root / "src"
    src.mkdir()
    build_tree(src, nodes)
    bundle = root / "b.tar.zst"
    pack(src, bundle, validate=False)
    assert reader_listing(bundle) == independent_listing(bundle)


@pytest.mark.skipif(not gnu_tar_available(), reason="GNU tar not installed")
def test_reads_gnu_tar_plus_zstd_cli_bundle(tmp_path: Path, example_dist: Path) -> None:
    names = sorted(os.listdir(example_dist))
    tar_bytes = subprocess.run(
        [*GNU_TAR_ARGS, "--mtime=@0", "-cf", "-", *names], cwd=example_dist, capture_output=True, check=True
    ).stdout
    bundle = tmp_path / "gnu.tar.zst"
    subprocess.run(["zstd", "-q", "-3", "--check", "-o", str(bundle)], input=tar_bytes, check=True)
    summary = summarize_bundle(str(bundle))
    assert summary.tar_size == len(tar_bytes)
    assert summary.manifest == (example_dist / "manifest.json").read_bytes()
    assert reader_listing(bundle) == independent_listing(bundle)


# --- fuzzing: whatever the bytes, the reader either succeeds or raises BundleError -------------------------

FUZZ_TAR = valid_tar(
    pax_member({"path": "ui/" + "ü" * 70})
    + member("x", b"long")
    + member("ui/link", typeflag=b"2", linkname="index.html")
    + member("big", os.urandom(3000))
)


def reads_or_rejects(data: bytes) -> None:
    try:
        summarize_bundle(io.BytesIO(data), BundleLimits(max_total_size=1 << 20))
    except BundleError as exc:
        assert exc.message and exc.details["check"] in ("zstd", "tar")


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(FUZZ_TAR) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, len(FUZZ_TAR))),
)
def test_fuzzed_tar_streams(edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(FUZZ_TAR)
    for position, value in edits:
        data[position] = value
    reads_or_rejects(compress(bytes(data[:cut])))


FUZZ_BUNDLE = compress(FUZZ_TAR)


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(FUZZ_BUNDLE) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, len(FUZZ_BUNDLE))),
    tail=st.binary(max_size=8),
)
def test_fuzzed_compressed_bytes(edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> None:
    data = bytearray(FUZZ_BUNDLE)
    for position, value in edits:
        data[position] = value
    reads_or_rejects(bytes(data[:cut]) + tail)


def test_python_memory_stays_bounded_on_a_large_member(tmp_path: Path) -> None:
    import tracemalloc

    size = 128 << 20
    block = os.urandom(1 << 20)
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()
    path = tmp_path / "large.tar.zst"
    with open(path, "wb") as out:
        out.write(compressor.compress(header("large", size=size)))
        for _ in range(size // len(block)):
            out.write(compressor.compress(block))
        out.write(compressor.compress(bytes(1024 + (-(512 + size + 1024) % 10240))) + compressor.flush())
    limits = BundleLimits(max_ratio=1e6)
    tracemalloc.start()
    try:
        summary = summarize_bundle(str(path), limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.content_size == size
    assert peak < 8 << 20, peak  # a few MiB of buffers for a 128 MiB member
