"""Byte-exact tar encoding of SPEC §2.2 (GNU tar's POSIX mode with fastpack's options).

Pure functions from entry fields to header bytes. The native backend encodes
the same bytes in C; both are tested against GNU tar and against each other.
"""

from __future__ import annotations

BLOCK = 512
RECORD = 10240
NAME_MAX = 100
LINK_MAX = 100
OCTAL11_LIMIT = 8**11  # sizes/mtimes at or above this do not fit the 12-byte ustar fields

REGTYPE = b"0"
SYMTYPE = b"2"
DIRTYPE = b"5"
PAXTYPE = b"x"

_ZERO_OCTAL7 = b"0000000\0"


def padded_size(size: int) -> int:
    """Bytes a member's data occupies in the archive (rounded up to whole blocks)."""
    return (size + BLOCK - 1) // BLOCK * BLOCK


def end_of_archive_size(stream_size: int) -> int:
    """Bytes of the two zero blocks plus padding that close an archive of stream_size bytes."""
    total = stream_size + 2 * BLOCK
    return total + (-total % RECORD) - stream_size


def _octal(value: int, width: int) -> bytes:
    """Zero-padded octal of width-1 digits followed by NUL, as GNU tar writes numeric fields."""
    return b"%0*o\0" % (width - 1, value)


def _ustar_block(
    name: bytes,
    mode: int,
    size_field: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes,
    devnumbers: bytes,
) -> bytes:
    header = bytearray(BLOCK)
    header[0:100] = name[:NAME_MAX].ljust(100, b"\0")
    header[100:108] = _octal(mode, 8)
    header[108:116] = _ZERO_OCTAL7
    header[116:124] = _ZERO_OCTAL7
    header[124:136] = _octal(size_field, 12)
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[157:257] = linkname[:LINK_MAX].ljust(100, b"\0")
    header[257:265] = b"ustar\x0000"
    header[329:345] = devnumbers
    checksum = sum(header)
    header[148:156] = b"%06o\0 " % checksum
    return bytes(header)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _pax_header_name(name: bytes) -> bytes:
    """GNU's exthdr.name=%d/PaxHeaders/%f: %d is '.' at the top level; trailing '/' dropped."""
    trimmed = name.rstrip(b"/")
    head, sep, base = trimmed.rpartition(b"/")
    directory = head if sep else b"."
    return (directory + b"/PaxHeaders/" + base)[:NAME_MAX]


def _needs_pax(data: bytes, limit: int) -> bool:
    """Names need a pax `path` when too long or not ASCII; link targets only when too long (as GNU tar)."""
    return len(data) > limit or not data.isascii()


def member_header(name: bytes, mode: int, size: int, mtime: int, typeflag: bytes, linkname: bytes = b"") -> bytes:
    """Header bytes for one member: an optional pax 'x' header, then the ustar header."""
    records = b""  # GNU tar's record order: linkpath, path, size
    if len(linkname) > LINK_MAX:
        records += _pax_record(b"linkpath", linkname)
    if _needs_pax(name, NAME_MAX):
        records += _pax_record(b"path", name)
    size_field = size
    if size >= OCTAL11_LIMIT:
        records += _pax_record(b"size", b"%d" % size)
        size_field = 0
    ustar = _ustar_block(name, mode, size_field, mtime, typeflag, linkname, _ZERO_OCTAL7 * 2)
    if not records:
        return ustar
    pax = _ustar_block(_pax_header_name(name), 0o644, len(records), mtime, PAXTYPE, b"", bytes(16))
    return pax + records + bytes(padded_size(len(records)) - len(records)) + ustar


def _pax_record_size(key_len: int, value_len: int) -> int:
    body = key_len + value_len + 3  # " " + "=" + "\n"
    length = body + 1
    while len(str(length)) + body != length:
        length += 1
    return length


def member_header_size(name: bytes, size: int, linkname: bytes = b"") -> int:
    """len(member_header(...)) without encoding it, for pledging the exact tar size up front."""
    records = 0
    if _needs_pax(name, NAME_MAX):
        records += _pax_record_size(4, len(name))
    if len(linkname) > LINK_MAX:
        records += _pax_record_size(8, len(linkname))
    if size >= OCTAL11_LIMIT:
        records += _pax_record_size(4, len(b"%d" % size))
    return BLOCK + (BLOCK + padded_size(records) if records else 0)
