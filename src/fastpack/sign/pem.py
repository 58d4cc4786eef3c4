"""PEM / ASCII-armor blocks and reading key files, shared by the signature formats."""

from __future__ import annotations

import base64
import binascii
import re

from fastpack.errors import FastpackError, SigningKeyError

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----[ \t]*\r?\n(.*?)-----END \1-----", re.S)


def pem_blocks(data: bytes) -> list[tuple[str, list[str]]]:
    """Every `-----BEGIN X-----` block as (label, body lines), armor headers (`Key: value`) dropped."""
    blocks = []
    for match in _BLOCK.finditer(data):
        lines = [line.strip() for line in match.group(2).decode("ascii", "replace").splitlines()]
        if any(":" in line for line in lines):
            lines = lines[lines.index("") + 1 :] if "" in lines else [line for line in lines if ":" not in line]
        blocks.append((match.group(1).decode("ascii"), [line for line in lines if line]))
    return blocks


def b64decode(text: str, error: FastpackError) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error from None


def pem_encode(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[index : index + 64] for index in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def read_material(path: str, what: str, error: type[FastpackError] = SigningKeyError) -> bytes:
    """A key, certificate or keyring file; `what` names it in the message when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16 << 20)
    except FileNotFoundError:
        raise error(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise error(f"{what} is a directory, expected a file", path=path) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", path=path) from None
