"""SHA-256 of a bundle, computed once and handed on.

Signing and verification need either the digest (cosign, x509) or the hash
state after the bundle's bytes, to continue with a trailer (OpenPGP). Both come
from one streaming pass, or from the pass that wrote or uploaded the bundle.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

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
        buffer = bytearray(chunk_size)
        view = memoryview(buffer)
        try:
            with open(path, "rb", buffering=0) as handle:
                while count := handle.readinto(buffer):
                    state.update(view[:count])
                    size += count
        except FileNotFoundError:
            raise InputError("no such file", path=os.fspath(path)) from None
        except IsADirectoryError:
            raise InputError("is a directory, expected a bundle file", path=os.fspath(path)) from None
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path=os.fspath(path)) from None
        return cls(state, size)
