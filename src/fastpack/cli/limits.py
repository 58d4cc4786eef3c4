"""Bundle-reader limit flags shared by verify, inspect, unpack and manifest check."""

from __future__ import annotations

import argparse
import re

_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from '1073741824', '512M', '1GiB' (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 1073741824, 512M or 1GiB, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("safety limits (decompression bombs, entry floods)")
    group.add_argument("--max-size", type=parse_size, help="max uncompressed tar size (default 1GiB)")
    group.add_argument("--max-entries", type=_positive_int, help="max number of entries (default 100000)")
    group.add_argument("--max-ratio", type=_positive_float, help="max compression ratio (default 200)")
    group.add_argument(
        "--max-window", type=parse_size, help="max zstd window, i.e. decoder memory (default 128MiB; pack --long > 27)"
    )


def limits_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """BundleLimits with the defaults replaced by whatever flags were given."""
    from dataclasses import replace

    from fastpack.bundle import DEFAULT_LIMITS

    overrides = {
        name: value
        for name, value in (
            ("max_total_size", args.max_size),
            ("max_entries", args.max_entries),
            ("max_ratio", args.max_ratio),
            ("max_window_size", args.max_window),
        )
        if value is not None
    }
    return replace(DEFAULT_LIMITS, **overrides)
