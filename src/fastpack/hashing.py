"""SHA-256 of a bundle, computed once and handed on.

Signing and verification need either the digest (cosign, x509) or the hash
state after the bundle's bytes, to continue with a trailer (OpenPGP). Both come
from one streaming pass, or from the pass that wrote or uploaded the bundle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, overload

from fastpack.errors import InputError

READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class BundleDigest:
    """SHA-256 state after all of a bundle's bytes, plus its size."""

    _state: Any
    size: int

    @property
    def sha256(self) -> str:
        return self._state.hexdigest()

    @property
    def digest(self) -> bytes:
        return self._state.digest()

    def continued(self) -> Any:
        """A copy of the hash state, to be updated further (e.g. with an OpenPGP trailer)."""
        return self._state.copy()

    @classmethod
    def from_state(cls, state: Any, size: int) -> BundleDigest:
        return cls(state.copy(), size)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], chunk_size: int = READ_CHUNK) -> BundleDigest:
        state = hashlib.sha256()
        size = 0
        for chunk in file_chunks(path, chunk_size):
            state.update(chunk)
            size += len(chunk)
        return cls(state, size)


@overload
def file_chunks(path: str | os.PathLike[str], chunk_size: int = ..., *, fresh: Literal[True]) -> Iterator[bytes]: ...


@overload
def file_chunks(
    path: str | os.PathLike[str], chunk_size: int = ..., *, fresh: Literal[False] = ...
) -> Iterator[memoryview]: ...


def file_chunks(
    path: str | os.PathLike[str], chunk_size: int = READ_CHUNK, *, fresh: bool = False
) -> Iterator[memoryview] | Iterator[bytes]:
    """A file's bytes in order, with errors that name the path.

    By default every chunk is a view of one reused buffer (consumers copy what they keep);
    `fresh=True` yields new bytes objects for consumers that hold on to chunks.
    """
    label = os.fspath(path)
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise InputError("no such file", path=label) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a bundle file", path=label) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=label) from None
    return _read_chunks(handle, label, chunk_size, fresh)


def _read_chunks(handle: Any, label: str, chunk_size: int, fresh: bool) -> Iterator[Any]:
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    with handle:
        while True:
            try:
                count = handle.readinto(buffer)
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", path=label) from None
            if not count:
                return
            yield bytes(view[:count]) if fresh else view[:count]
