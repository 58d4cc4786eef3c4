"""HTTP validators and ranges for immutable objects (RFC 9110 §13.1.2 If-None-Match, §14 Range)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The single requested range lies outside the object."""


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires: `W/"x"` matches `"x"`; `*` matches any existing object."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(","))


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range of a single-range `Range` header, or None to serve the whole object.

    Multiple ranges and syntactically invalid headers are ignored (a full 200 is allowed by the RFC);
    a valid range that starts past the end raises RangeNotSatisfiable (416).
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable()
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(end, size - 1)
