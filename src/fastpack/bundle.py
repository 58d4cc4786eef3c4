"""The one safe streaming reader of bundles: zstd frame → tar members, distrusting every byte.

Bundles come from the network and from other people, so the reader assumes
they are hostile: it walks the zstd frame's block structure itself (so output
per step is bounded by one block, the frame's end is known exactly, and
truncation or trailing bytes are caught), enforces the size, entry-count and
compression-ratio limits while decompressing, and parses tar headers with its
own small parser that accepts only what fastpack writes: ustar/pax headers,
regular files, directories and symlinks that stay inside the bundle.

Errors are `BundleError`s naming the bundle and the member; `details["check"]`
says which layer failed (`zstd` or `tar`) so `verify` can report per check.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastpack.errors import BundleError, InputError
from fastpack.manifest import MANIFEST_NAME

BLOCK = 512
READ_SIZE = 1 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_MAX_BLOCK = 128 * 1024
RATIO_GRACE = 1 << 20  # the ratio limit applies beyond the first MiB: tar headers alone compress very well
MAX_PAX_HEADER = 64 * 1024
MAX_SYMLINK_HOPS = 40
FREE_BLOCKS = 4096  # beyond this many zstd blocks, each must yield MIN_BLOCK_OUTPUT bytes on average
MIN_BLOCK_OUTPUT = 64  # (empty blocks cost CPU per 3 bytes of input and produce nothing: a CPU bomb)
_ZERO_BLOCK = bytes(BLOCK)
_FILE_TYPES = (b"0", b"\0")
_REJECTED_TYPES = {
    b"1": "is a hard link; hard links are not allowed in bundles",
    b"3": "is a character device; only files, directories and symlinks are allowed",
    b"4": "is a block device; only files, directories and symlinks are allowed",
    b"6": "is a FIFO; only files, directories and symlinks are allowed",
    b"7": "is a contiguous file (type 7); only files, directories and symlinks are allowed",
    b"g": "is a pax global header; not allowed in bundles",
    b"L": "uses the GNU long-name extension; bundles use pax headers",
    b"K": "uses the GNU long-link extension; bundles use pax headers",
}


class Readable(Protocol):
    """Where bundle bytes come from: a file, a request body, a hashing wrapper."""

    def read(self, count: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class BundleLimits:
    """What a reader accepts before it calls a bundle hostile (decompression bombs, entry floods)."""

    max_total_size: int = 1 << 30  # uncompressed tar bytes
    max_entries: int = 100_000
    max_ratio: float = 200.0  # uncompressed / compressed, checked while streaming
    max_manifest_size: int = 1 << 20
    max_window_size: int = 1 << 27  # zstd window = decoder memory


DEFAULT_LIMITS = BundleLimits()


def _show(name: str) -> str:
    return name if name.isprintable() else repr(name)[1:-1]


@dataclass(frozen=True)
class FrameInfo:
    content_size: int | None
    window_size: int | None
    checksum: bool


class _Frame:
    """Walks one zstd frame block by block, feeding libzstd and yielding bounded decompressed chunks."""

    def __init__(self, source: Readable, limits: BundleLimits, label: str | None) -> None:
        import zstandard

        self._source = source
        self._limits = limits
        self._label = label
        self._buffer = b""
        self._offset = 0
        self.consumed = 0  # compressed bytes handed to the decoder
        self.produced = 0  # decompressed bytes out of it
        self.info: FrameInfo | None = None
        self.finished = False
        self._decoder = zstandard.ZstdDecompressor(max_window_size=limits.max_window_size).decompressobj()
        self._zstd_error = zstandard.ZstdError

    def error(self, message: str) -> BundleError:
        return BundleError(message, path=self._label, details={"check": "zstd"})

    def _take(self, count: int, what: str) -> bytes:
        """Exactly `count` bytes of the frame (buffered reads), or a truncation error."""
        parts = []
        while count:
            if self._offset == len(self._buffer):
                self._buffer = self._source.read(READ_SIZE)
                self._offset = 0
                if not self._buffer:
                    raise self.error(
                        f"truncated zstd frame: the file ends after {self.consumed} bytes, inside the {what}"
                    )
            piece = self._buffer[self._offset : self._offset + count]
            self._offset += len(piece)
            count -= len(piece)
            self.consumed += len(piece)
            parts.append(piece)
        return b"".join(parts)

    def _feed(self, data: bytes) -> bytes:
        try:
            out = self._decoder.decompress(data)
        except self._zstd_error as exc:
            raise self.error(f"corrupt zstd frame: {exc}") from None
        self.produced += len(out)
        limits = self._limits
        if self.produced > limits.max_total_size:
            raise self.error(
                f"uncompressed size exceeds the limit of {limits.max_total_size} bytes (decompression bomb?)"
            )
        if self.produced > limits.max_ratio * self.consumed + RATIO_GRACE:
            raise self.error(
                f"compression ratio exceeds the limit of {limits.max_ratio:g} "
                f"({self.produced} bytes from {self.consumed}; decompression bomb?)"
            )
        return out

    def _header(self) -> bytes:
        magic = self._take(4, "frame header") if self._peek_any() else b""
        if not magic:
            raise self.error("empty file: not a zstd bundle")
        if magic != ZSTD_MAGIC:
            if magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:
                raise self.error("starts with a skippable zstd frame; a bundle is exactly one zstd frame")
            raise self.error("not a zstd frame (bad magic number)")
        descriptor = self._take(1, "frame header")[0]
        fcs_flag, single_segment = descriptor >> 6, descriptor >> 5 & 1
        checksum, dict_flag = descriptor >> 2 & 1, descriptor & 3
        if descriptor & 0x08:
            raise self.error("corrupt zstd frame header (reserved bit set)")
        if dict_flag:
            raise self.error("zstd frame needs a dictionary; bundles never use one")
        if not checksum:
            raise self.error("zstd frame has no content checksum; bundles always carry one")
        window_size = None
        window = b""
        if not single_segment:
            window = self._take(1, "frame header")
            exponent, mantissa = window[0] >> 3, window[0] & 7
            base = 1 << (10 + exponent)
            window_size = base + base // 8 * mantissa
        fcs_length = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
        fcs_bytes = self._take(fcs_length, "frame header") if fcs_length else b""
        content_size = int.from_bytes(fcs_bytes, "little") if fcs_bytes else None
        if content_size is not None and fcs_length == 2:
            content_size += 256
        if single_segment:
            window_size = content_size
        self.info = FrameInfo(content_size, window_size, bool(checksum))
        if window_size is not None and window_size > self._limits.max_window_size:
            raise self.error(
                f"zstd window of {window_size} bytes exceeds the limit of {self._limits.max_window_size} "
                "(decoder memory)"
            )
        if content_size is not None and content_size > self._limits.max_total_size:
            raise self.error(
                f"declares {content_size} uncompressed bytes, more than the limit of {self._limits.max_total_size}"
            )
        return magic + bytes([descriptor]) + window + fcs_bytes

    def _peek_any(self) -> bool:
        if self._offset < len(self._buffer):
            return True
        self._buffer = self._source.read(READ_SIZE)
        self._offset = 0
        return bool(self._buffer)

    def chunks(self) -> Iterator[bytes]:
        """Decompressed bytes, at most one zstd block (128 KiB) per chunk; checks the whole frame."""
        out = self._feed(self._header())
        if out:
            yield out
        last = False
        blocks = 0
        while not last:
            blocks += 1
            if blocks > FREE_BLOCKS and self.produced < MIN_BLOCK_OUTPUT * blocks:
                raise self.error(f"hostile zstd frame: {blocks} blocks for only {self.produced} bytes of output")
            header = self._take(3, "block header")
            value = int.from_bytes(header, "little")
            last, kind, size = bool(value & 1), value >> 1 & 3, value >> 3
            if kind == 3:
                raise self.error("corrupt zstd frame (reserved block type)")
            if size > ZSTD_MAX_BLOCK:
                raise self.error(f"corrupt zstd frame (block of {size} bytes)")
            out = self._feed(header)
            if out:
                yield out
            remaining = 1 if kind == 1 else size
            while remaining:
                piece = self._take(min(remaining, 65536), "block data")
                remaining -= len(piece)
                out = self._feed(piece)
                if out:
                    yield out
        out = self._feed(self._take(4, "content checksum"))
        if out:
            yield out
        if not self._decoder.eof:
            raise self.error("corrupt zstd frame: the decoder did not reach the end of the frame")
        assert self.info is not None
        if self.info.content_size is not None and self.info.content_size != self.produced:
            raise self.error(f"zstd frame declares {self.info.content_size} bytes but decompresses to {self.produced}")
        if self._peek_any():
            raise self.error(f"unexpected data after the zstd frame (which ends at byte {self.consumed})")
        self.finished = True


@dataclass(frozen=True)
class Member:
    """One bundle member; a file's content is readable with read_chunks() until the next member is requested."""

    name: str  # no trailing '/' for directories
    type: str  # 'file' | 'dir' | 'symlink'
    mode: int
    size: int
    linkname: str = ""
    _reader: Any = field(default=None, repr=False, compare=False)
    _serial: int = field(default=0, repr=False, compare=False)

    def read_chunks(self) -> Iterator[bytes]:
        if self.type != "file" or self._reader is None:
            return iter(())
        return self._reader._content(self)

    def read(self, limit: int) -> bytes:
        """The whole content, refusing files larger than `limit`."""
        if self.size > limit:
            raise self._reader.tar_error(self.name, f"is {self.size} bytes, larger than the limit of {limit}")
        return b"".join(self.read_chunks())

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"path": self.name, "type": self.type, "mode": f"{self.mode:04o}", "size": self.size}
        if self.type == "symlink":
            data["linkname"] = self.linkname
        return data


def _octal(field_bytes: bytes, what: str) -> int:
    if field_bytes[:1] and field_bytes[0] & 0x80:
        raise ValueError(f"{what} uses base-256 encoding, which bundles never use")
    text = field_bytes.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not all(48 <= char <= 55 for char in text):
        raise ValueError(f"{what} field is not octal ({text!r})")
    return int(text, 8)


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        length_text = data[position:space] if space > 0 else b""
        if not length_text.isdigit():
            raise ValueError("malformed pax record length")
        length = int(length_text)
        record = data[position : position + length]
        if length <= len(length_text) + 1 or len(record) != length or not record.endswith(b"\n"):
            raise ValueError("malformed pax record")
        key, sep, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not sep:
            raise ValueError("pax record without '='")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("pax record is not valid UTF-8") from None
        position += length
    return records


def _name_problem(name: str) -> str | None:
    if not name:
        return "has an empty name"
    if "\0" in name:
        return "name contains a NUL byte"
    if name.startswith("/"):
        return "has an absolute path"
    segments = name.split("/")
    if ".." in segments:
        return "name contains a '..' segment (path traversal)"
    if "" in segments:
        return "name contains an empty segment ('//')"
    if "." in segments:
        return "name contains a '.' segment"
    return None


def _escapes(name: str, target: str, symlinks: dict[str, str]) -> str | None:
    """Where resolving `name -> target` leaves the bundle (following the bundle's symlinks), or None."""
    stack = name.split("/")[:-1]
    parts = deque(target.split("/"))
    hops = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return "resolves outside the bundle"
            stack.pop()
            continue
        stack.append(part)
        link = symlinks.get("/".join(stack))
        if link is not None:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return "is part of a symlink loop"
            stack.pop()
            parts.extendleft(reversed(link.split("/")))
    return None


class _Tar:
    """Tar members from a decompressed byte stream, validated one header at a time."""

    def __init__(self, frame: _Frame, limits: BundleLimits, label: str | None) -> None:
        self._frame = frame
        self._chunks = frame.chunks()
        self._limits = limits
        self._label = label
        self._chunk = b""
        self._pos = 0
        self.offset = 0  # tar bytes consumed
        self.entries = 0
        self._serial = 0
        self._pending = 0  # unread data + padding of the current member
        self._kinds: dict[str, str] = {}  # name → 'file'|'dir'|'symlink'|'implicit'
        self._symlinks: dict[str, str] = {}
        self._previous = ""

    def tar_error(self, member: str | None, message: str) -> BundleError:
        text = f"member {_show(member)}: {message}" if member is not None else message
        return BundleError(text, path=self._label, details={"check": "tar", "member": member})

    def _fill(self) -> bool:
        while self._pos == len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._chunk, self._pos = chunk, 0
        return True

    def _read_exact(self, count: int, what: str) -> bytes:
        parts = []
        while count:
            if not self._fill():
                raise self.tar_error(None, f"truncated tar stream: it ends inside {what}")
            piece = self._chunk[self._pos : self._pos + count]
            self._pos += len(piece)
            self.offset += len(piece)
            count -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def _pieces(self, count: int, member: str) -> Iterator[bytes]:
        while count:
            if not self._fill():
                raise self.tar_error(member, f"truncated tar stream: {count} bytes of content are missing")
            piece = self._chunk[self._pos : self._pos + count]
            self._pos += len(piece)
            self.offset += len(piece)
            self._pending -= len(piece)
            count -= len(piece)
            yield piece

    def _content(self, member: Member) -> Iterator[bytes]:
        if member._serial != self._serial:
            raise self.tar_error(member.name, "content read after the next member was requested")
        if self._pending != -(-member.size // BLOCK) * BLOCK:
            raise self.tar_error(member.name, "content already read")
        yield from self._pieces(member.size, member.name)

    def _skip_pending(self) -> None:
        for _ in self._pieces(self._pending, self._previous):
            pass

    def members(self) -> Iterator[Member]:
        pax: dict[str, str] | None = None
        while True:
            self._skip_pending()
            if not self._fill():
                raise self.tar_error(None, "truncated tar stream: no end-of-archive marker")
            where = f"header at tar offset {self.offset}" + (
                f" (after {_show(self._previous)})" if self._previous else ""
            )
            block = self._read_exact(BLOCK, where)
            if block == _ZERO_BLOCK:
                if pax is not None:
                    raise self.tar_error(None, f"pax header at the end of the archive ({where})")
                self._expect_zeros()
                self._check_symlinks()
                return
            typeflag, raw_name, mode, size, raw_link = self._header(block, where)
            if typeflag == b"x":
                if pax is not None:
                    raise self.tar_error(None, f"two pax headers in a row ({where})")
                if size > MAX_PAX_HEADER:
                    raise self.tar_error(None, f"pax header of {size} bytes is too large ({where})")
                data = self._read_exact(-(-size // BLOCK) * BLOCK, f"pax header ({where})")[:size]
                try:
                    pax = _parse_pax(data)
                except ValueError as exc:
                    raise self.tar_error(None, f"{exc} ({where})") from None
                continue
            records, pax = pax or {}, None
            try:
                name = records["path"] if "path" in records else raw_name.decode("utf-8")
                linkname = records["linkpath"] if "linkpath" in records else raw_link.decode("utf-8")
            except UnicodeDecodeError:
                raise self.tar_error(None, f"name is not valid UTF-8 ({where})") from None
            if "size" in records:
                if not (records["size"].isascii() and records["size"].isdigit()):
                    raise self.tar_error(name, f"invalid pax size {records['size']!r}")
                size = int(records["size"])
            name, kind, linkname = self._member(typeflag, name, size, linkname)
            self._previous = name
            self._serial += 1
            self._pending = -(-size // BLOCK) * BLOCK
            yield Member(name, kind, mode, size, linkname, self, self._serial)

    def _header(self, block: bytes, where: str) -> tuple[bytes, bytes, int, int, bytes]:
        magic = block[257:263]
        if magic not in (b"ustar\x00", b"ustar "):
            raise self.tar_error(None, f"not a ustar header ({where})")
        try:
            stored = _octal(block[148:156], "checksum")
            mode = _octal(block[100:108], "mode")
            size = _octal(block[124:136], "size")
        except ValueError as exc:
            raise self.tar_error(None, f"corrupt header: {exc} ({where})") from None
        unsigned = sum(block) - sum(block[148:156]) + 8 * 32
        signed = (
            unsigned
            - 256 * sum(1 for byte in block if byte >= 128)
            + 256 * sum(1 for byte in block[148:156] if byte >= 128)
        )
        if stored not in (unsigned, signed):
            raise self.tar_error(None, f"header checksum mismatch ({where})")
        raw_name = block[0:100].split(b"\0", 1)[0]
        if magic == b"ustar\x00":
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                raw_name = prefix + b"/" + raw_name
        return block[156:157], raw_name, mode & 0o7777, size, block[157:257].split(b"\0", 1)[0]

    def _member(self, typeflag: bytes, name: str, size: int, linkname: str) -> tuple[str, str, str]:
        if typeflag in _REJECTED_TYPES:
            raise self.tar_error(name, _REJECTED_TYPES[typeflag])
        if typeflag == b"5":
            kind = "dir"
        elif typeflag == b"2":
            kind = "symlink"
        elif typeflag in _FILE_TYPES:
            kind = "file"
        else:
            raise self.tar_error(name, f"has unsupported type {typeflag!r}; only files, directories and symlinks")
        if kind == "dir" and name.endswith("/"):
            name = name[:-1]
        elif kind != "dir" and name.endswith("/"):
            raise self.tar_error(name, f"a {kind} member name must not end with '/'")
        problem = _name_problem(name)
        if problem:
            raise self.tar_error(name, problem)
        self.entries += 1
        if self.entries > self._limits.max_entries:
            raise self.tar_error(name, f"more than {self._limits.max_entries} entries (limit)")
        if kind != "file" and size:
            raise self.tar_error(name, f"a {kind} must have size 0, declares {size}")
        budget = self._limits.max_total_size - self.offset
        if size > budget:
            raise self.tar_error(
                name, f"declares {size} bytes, more than the uncompressed limit of {self._limits.max_total_size}"
            )
        if kind == "symlink":
            self._check_link(name, linkname)
        else:
            linkname = ""
        self._register(name, kind, linkname)
        return name, kind, linkname

    def _check_link(self, name: str, linkname: str) -> None:
        if not linkname:
            raise self.tar_error(name, "symlink has an empty target")
        if "\0" in linkname:
            raise self.tar_error(name, "symlink target contains a NUL byte")
        if linkname.startswith("/"):
            raise self.tar_error(name, f"symlink has an absolute target ({_show(linkname)})")
        if _escapes(name, linkname, {}):
            raise self.tar_error(name, f"symlink points outside the bundle ({_show(linkname)})")

    def _register(self, name: str, kind: str, linkname: str) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            existing = self._kinds.setdefault(parent, "implicit")
            if existing == "symlink":
                raise self.tar_error(name, f"lies inside the symlink {_show(parent)}")
            if existing == "file":
                raise self.tar_error(name, f"lies inside {_show(parent)}, which is a file")
        previous = self._kinds.get(name)
        if previous is not None and not (previous == "implicit" and kind == "dir"):
            raise self.tar_error(name, "duplicate member name" if previous != "implicit" else "is also a directory")
        self._kinds[name] = kind
        if kind == "symlink":
            self._symlinks[name] = linkname

    def _expect_zeros(self) -> None:
        while self._fill():
            piece = self._chunk[self._pos :]
            self._pos = len(self._chunk)
            if piece.count(0) != len(piece):
                raise self.tar_error(None, "non-zero data after the end-of-archive marker")
            self.offset += len(piece)

    def _check_symlinks(self) -> None:
        """Escapes through chains of symlinks (a -> b/.. where b -> ../..) need every link known."""
        for name, target in self._symlinks.items():
            problem = _escapes(name, target, self._symlinks)
            if problem:
                raise self.tar_error(name, f"symlink {problem} ({_show(target)}, following the bundle's symlinks)")


def label_of(source: str | Readable) -> str | None:
    if isinstance(source, str):
        return source
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


@contextlib.contextmanager
def open_bundle(source: str | Readable) -> Iterator[Readable]:
    if not isinstance(source, str):
        yield source
        return
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise InputError("no such file", path=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a bundle file", path=source) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from None
    with handle:
        yield handle


class HashingSource:
    """Wraps a bundle file so the bytes the reader pulls also feed SHA-256: one read serves both."""

    def __init__(self, raw: Readable) -> None:
        import hashlib

        self._raw = raw
        self.state = hashlib.sha256()
        self.size = 0

    def read(self, count: int = -1) -> bytes:
        data = self._raw.read(count)
        self.state.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash the bytes the reader did not need (after an error, or trailing data)."""
        while self.read(READ_SIZE):
            pass


class BundleReader:
    """One pass over a bundle: `members()` validates the tar layer; `finish()` checks the rest of the frame."""

    def __init__(self, source: Readable, limits: BundleLimits = DEFAULT_LIMITS, label: str | None = None) -> None:
        self.limits = limits
        self._frame = _Frame(source, limits, label)
        self._tar = _Tar(self._frame, limits, label)

    def members(self) -> Iterator[Member]:
        return self._tar.members()

    def finish(self) -> None:
        """Decompress whatever the tar layer left (after a tar error too), checking limits, checksum, trailing data."""
        for _ in self._tar._chunks:
            pass

    @property
    def frame(self) -> FrameInfo | None:
        return self._frame.info

    @property
    def compressed_size(self) -> int:
        return self._frame.consumed

    @property
    def tar_size(self) -> int:
        return self._frame.produced

    @property
    def entries(self) -> int:
        return self._tar.entries


@dataclass
class BundleSummary:
    """What inspect and verify report about a bundle that passed every structural check."""

    members: list[Member]
    manifest: bytes | None
    compressed_size: int
    tar_size: int
    frame: FrameInfo

    @property
    def names(self) -> frozenset[str]:
        return frozenset(member.name for member in self.members)

    @property
    def content_size(self) -> int:
        return sum(member.size for member in self.members)

    @property
    def ratio(self) -> float:
        return self.tar_size / self.compressed_size if self.compressed_size else 0.0

    def count(self, kind: str) -> int:
        return sum(1 for member in self.members if member.type == kind)


def _manifest_content(member: Member, limits: BundleLimits) -> bytes:
    if member.type != "file":
        raise member._reader.tar_error(member.name, f"is a {member.type}, expected a regular file")
    return member.read(limits.max_manifest_size)


def collect(reader: BundleReader) -> BundleSummary:
    """Read a whole bundle through `reader`: every member validated, the manifest's bytes kept."""
    members = []
    manifest = None
    for member in reader.members():
        if member.name == MANIFEST_NAME:
            manifest = _manifest_content(member, reader.limits)
        members.append(Member(member.name, member.type, member.mode, member.size, member.linkname))
    reader.finish()
    assert reader.frame is not None
    return BundleSummary(members, manifest, reader.compressed_size, reader.tar_size, reader.frame)


def summarize_bundle(source: str | Readable, limits: BundleLimits = DEFAULT_LIMITS) -> BundleSummary:
    """Members, manifest bytes, sizes and frame parameters of a bundle, in one checked pass."""
    with open_bundle(source) as handle:
        return collect(BundleReader(handle, limits, label_of(source)))


def iter_members(source: str | Readable, limits: BundleLimits = DEFAULT_LIMITS) -> Iterator[Member]:
    """Members in archive order; the iterator raises BundleError as soon as something is wrong."""
    with open_bundle(source) as handle:
        reader = BundleReader(handle, limits, label_of(source))
        yield from reader.members()
        reader.finish()


def read_manifest(source: str | Readable, limits: BundleLimits = DEFAULT_LIMITS) -> bytes:
    """The exact bytes of the root manifest.json, after checking the whole bundle (bounded memory)."""
    label = label_of(source)
    with open_bundle(source) as handle:
        reader = BundleReader(handle, limits, label)
        manifest = None
        for member in reader.members():
            if member.name == MANIFEST_NAME:
                manifest = _manifest_content(member, limits)
        reader.finish()
    if manifest is None:
        raise BundleError(f"no {MANIFEST_NAME} at the bundle root", path=label, details={"check": "manifest"})
    return manifest
