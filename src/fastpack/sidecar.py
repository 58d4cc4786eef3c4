"""The `bundle.sha256` sidecar of SPEC §2.4, in sha256sum format."""

from __future__ import annotations

import os
import re

from fastpack.errors import FastpackError, InputError

_LINE = re.compile(r"^([0-9a-fA-F]{64})(?:[ \t]+\*?(.+))?$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def sidecar_path(bundle_path: str) -> str:
    """`bundle.tar.zst` → `bundle.sha256`; any other name X → X.sha256."""
    directory, name = os.path.split(bundle_path)
    if name == "bundle.tar.zst":
        return os.path.join(directory, "bundle.sha256")
    return bundle_path + ".sha256"


def sidecar_text(sha256: str, bundle_path: str) -> str:
    return f"{sha256}  {os.path.basename(bundle_path)}\n"


def read_sidecar(path: str) -> str:
    """The lowercase hex digest in a sidecar (sha256sum line or bare hex)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(4096)
    except FileNotFoundError:
        raise InputError("sidecar not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read sidecar: {exc}", path=path) from None
    lines = [line for line in text.splitlines() if line.strip()]
    match = _LINE.match(lines[0].strip()) if len(lines) == 1 else None
    if match is None:
        raise InputError("not a sha256 sidecar (expected '<64 hex>  <name>' or a bare 64-hex line)", path=path)
    return match.group(1).lower()


def parse_expected_sha256(value: str) -> str:
    """A digest given on the command line: 64 hex characters, or the path of a sidecar file."""
    if _HEX.match(value.lower()) and not os.path.exists(value):
        return value.lower()
    if os.path.exists(value):
        return read_sidecar(value)
    raise FastpackError(f"expected a 64-hex SHA-256 or a sidecar file, got {value!r}")
