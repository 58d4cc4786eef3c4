"""Crafted (often hostile) bundles for the reader, verify and unpack tests.

Tar headers are built here byte by byte, independently of fastpack's encoder, so
the tests can express what fastpack itself would never write.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import zstandard

VALID_MANIFEST = {
    "name": "com.example.crafted",
    "version": "1.0.0",
    "runtime": "wasm-js@1",
    "ui": {"type": "iframe", "entry": "ui/index.html"},
}


def header(
    name: bytes | str,
    *,
    size: int = 0,
    typeflag: bytes = b"0",
    linkname: bytes | str = b"",
    mode: int = 0o644,
    size_field: bytes | None = None,
    magic: bytes = b"ustar\x0000",
    checksum_delta: int = 0,
) -> bytes:
    """One 512-byte ustar header with a correct checksum (unless `checksum_delta` breaks it)."""
    name = name.encode() if isinstance(name, str) else name
    linkname = linkname.encode() if isinstance(linkname, str) else linkname
    block = bytearray(512)
    block[0:100] = name[:100].ljust(100, b"\0")
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = linkname[:100].ljust(100, b"\0")
    block[257:265] = magic
    block[148:156] = b"%06o\0 " % (sum(block) + checksum_delta)
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def member(name: bytes | str, content: bytes = b"", **kwargs: object) -> bytes:
    return header(name, size=len(content), **kwargs) + pad(content)  # type: ignore[arg-type]


def pax_member(records: dict[str, str], name: str = "./PaxHeaders/x") -> bytes:
    body = b""
    for key, value in records.items():
        text = f" {key}={value}\n".encode()
        length = len(text) + 1
        while len(str(length)) + len(text) != length:
            length += 1
        body += str(length).encode() + text
    return member(name, body, typeflag=b"x")


def end(tar: bytes) -> bytes:
    """Two zero blocks and the padding to a 10240-byte record."""
    tar += bytes(1024)
    return tar + bytes(-len(tar) % 10240)


def compress(data: bytes, *, checksum: bool = True) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_checksum=checksum, write_content_size=True).compress(data)


def valid_tar(extra: bytes = b"") -> bytes:
    """A well-formed bundle tar (manifest, dist/main.wasm, ui/index.html) plus `extra` members."""
    return end(
        member("dist/", typeflag=b"5", mode=0o755)
        + member("dist/main.wasm", b"\0asm\x01\0\0\0")
        + member("manifest.json", json.dumps(VALID_MANIFEST).encode())
        + member("ui/", typeflag=b"5", mode=0o755)
        + member("ui/index.html", b"<html></html>")
        + extra
    )


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zeros_bomb(path: Path, size: int = 10**9, chunk: int = 1 << 22) -> Path:
    """A bundle holding one file of `size` zero bytes, compressed by streaming (small on disk)."""
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()
    zeros = bytes(chunk)
    with open(path, "wb") as out:
        out.write(compressor.compress(header("zeros", size=size)))
        remaining = size
        while remaining:
            count = min(chunk, remaining)
            out.write(compressor.compress(zeros if count == chunk else bytes(count)))
            remaining -= count
        tail = bytes(-size % 512) + bytes(1024)
        out.write(compressor.compress(tail + bytes(-(512 + size + len(tail)) % 10240)))
        out.write(compressor.flush())
    return path


# name → (tar bytes, a phrase the rejection message must contain, the member it must name or None)
MALICIOUS_TARS: dict[str, tuple[bytes, str, str | None]] = {
    "traversal": (end(member("../evil", b"x")), "'..' segment (path traversal)", "../evil"),
    "nested_traversal": (end(member("ui/../../evil", b"x")), "'..' segment (path traversal)", "ui/../../evil"),
    "absolute": (end(member("/etc/evil", b"x")), "absolute path", "/etc/evil"),
    "pax_traversal": (
        end(pax_member({"path": "../../pax-evil"}) + member("innocent", b"x")),
        "'..' segment",
        "../../pax-evil",
    ),
    "symlink_escape": (end(member("link", typeflag=b"2", linkname="../../etc")), "points outside the bundle", "link"),
    "symlink_absolute": (end(member("link", typeflag=b"2", linkname="/etc/passwd")), "absolute target", "link"),
    "symlink_chain_escape": (
        end(
            member("a/", typeflag=b"5")
            + member("a/b/", typeflag=b"5")
            + member("a/b/up", typeflag=b"2", linkname="../..")
            + member("m", typeflag=b"2", linkname="a/b/up/../escaped")
        ),
        "resolves outside the bundle",
        "m",
    ),
    "write_through_symlink": (
        end(member("sub/", typeflag=b"5") + member("l", typeflag=b"2", linkname="sub") + member("l/x", b"x")),
        "lies inside the symlink l",
        "l/x",
    ),
    "hardlink": (end(member("h", typeflag=b"1", linkname="/etc/passwd")), "hard link", "h"),
    "hardlink_inside": (end(member("a", b"x") + member("h", typeflag=b"1", linkname="a")), "hard link", "h"),
    "char_device": (end(member("dev", typeflag=b"3")), "character device", "dev"),
    "block_device": (end(member("blk", typeflag=b"4")), "block device", "blk"),
    "fifo": (end(member("fifo", typeflag=b"6")), "FIFO", "fifo"),
    "gnu_longname": (end(member("././@LongLink", b"x" * 200, typeflag=b"L")), "GNU long-name", "././@LongLink"),
    "huge_declared_size": (
        end(header("huge", size_field=b"77777777777\0")),
        "more than the uncompressed limit",
        "huge",
    ),
    "duplicate": (end(member("a", b"1") + member("a", b"2")), "duplicate member name", "a"),
    "bad_header_checksum": (end(header("a", checksum_delta=1)), "header checksum mismatch", None),
    "truncated_content": (header("a", size=4096) + b"x" * 512, "content are missing", "a"),
    "no_end_marker": (member("a", b"x"), "no end-of-archive marker", None),
    "garbage_after_end": (end(member("a", b"x")) + b"junk" + bytes(508), "after the end-of-archive marker", None),
    "empty_segment": (end(member("a//b", b"x")), "empty segment", "a//b"),
    "not_tar": (b"hello world, this is not a tar stream".ljust(10240, b"\0"), "not a ustar header", None),
}
