"""One exception hierarchy for the whole library.

Every error carries a user-facing message (and, where it helps, the path it is
about), a stable machine code shared with the HTTP API, the HTTP status the
server maps it to, and the CLI exit code. Front ends never format tracebacks.
"""

from __future__ import annotations

from typing import Any


class FastpackError(Exception):
    """Base class: anything fastpack refuses or fails at, with a message for humans."""

    code = "FASTPACK_ERROR"
    status = 400
    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.details = details

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class UsageError(FastpackError):
    """The caller asked for something that cannot be done as asked (bad option values)."""

    code = "BAD_REQUEST"
    exit_code = 2


class MissingDependency(FastpackError):
    """An optional extra (boto3, cryptography, the server) is needed but not installed."""

    code = "MISSING_DEPENDENCY"
    status = 500


class InputError(FastpackError):
    """The input tree cannot be packed as it is (special file, escaping symlink, bad name...)."""

    code = "INVALID_INPUT"


class SourceChangedError(InputError):
    """A file changed size, content or identity while it was being packed."""

    code = "SOURCE_CHANGED"


class OutputError(FastpackError):
    """The output could not be written (directory missing, not writable, disk full)."""

    code = "OUTPUT_ERROR"


class ManifestError(FastpackError):
    """The manifest is invalid; ``details`` holds every issue as ``{"path", "message"}``."""

    code = "INVALID_MANIFEST"


class ManifestMismatch(FastpackError):
    """The manifest given alongside a bundle differs from the one inside it."""

    code = "MANIFEST_MISMATCH"


class BundleError(FastpackError):
    """A bundle is corrupt, truncated, or crafted to escape or exhaust the reader."""

    code = "INVALID_BUNDLE"


class HashMismatch(FastpackError):
    """Bytes do not hash to what was declared."""

    code = "HASH_MISMATCH"


class SizeMismatch(FastpackError):
    """Bytes are not as long as was declared."""

    code = "SIZE_MISMATCH"


class TooLarge(FastpackError):
    """More bytes than the configured cap."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class SignatureError(FastpackError):
    """A signature is missing, malformed, or does not verify."""

    code = "INVALID_SIGNATURE"


class SigningKeyError(FastpackError):
    """Key material cannot be read, decrypted, or used for the requested algorithm."""

    code = "INVALID_KEY"


class StoreError(FastpackError):
    """The storage backend failed or refused (credentials, missing bucket, I/O)."""

    code = "STORAGE_ERROR"
    status = 502


class NotFound(StoreError):
    """The requested object or key does not exist."""

    code = "NOT_FOUND"
    status = 404


class VersionConflict(StoreError):
    """name@version is already published with different content."""

    code = "EXTENSION_VERSION_ALREADY_EXISTS"
    status = 409


class Unauthorized(FastpackError):
    """The HTTP API got no credentials, or credentials it does not know."""

    code = "UNAUTHORIZED"
    status = 401


class Forbidden(FastpackError):
    """The credentials are valid but do not allow this operation."""

    code = "FORBIDDEN"
    status = 403


class RateLimited(FastpackError):
    """Too many requests from one client in the configured window."""

    code = "RATE_LIMITED"
    status = 429
