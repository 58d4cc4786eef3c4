"""`keygen`: key material for each algorithm, written all-or-nothing and never over existing files."""

from __future__ import annotations

import contextlib
import importlib
import os

from fastpack.errors import OutputError
from fastpack.sign import check_algorithm


def _create_new(path: str, data: bytes, secret: bool) -> None:
    """O_EXCL create (never replaces a file that appeared meanwhile); private keys readable by the owner only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    except FileExistsError:
        raise OutputError("refusing to overwrite existing key file", path=path) from None
    except OSError as exc:
        raise OutputError(f"cannot create key file: {exc.strerror}", path=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise OutputError(f"cannot write key file: {exc.strerror}", path=path) from None


def keygen(algorithm: str, output_dir: str = ".", *, name: str | None = None) -> list[str]:
    """Generate keys for `algorithm` into `output_dir`; returns the paths written (private keys mode 0600)."""
    module = importlib.import_module(f"fastpack.sign.{check_algorithm(algorithm)}")
    if not os.path.isdir(output_dir):
        try:
            os.mkdir(output_dir, 0o700)  # a fresh key directory, readable by its owner only
        except FileNotFoundError:
            raise OutputError("output directory does not exist", path=output_dir) from None
        except OSError as exc:
            raise OutputError(f"cannot create output directory: {exc.strerror}", path=output_dir) from None
    existing = [
        path for path in (os.path.join(output_dir, file) for file in module.KEYGEN_FILES) if os.path.lexists(path)
    ]
    if existing:
        raise OutputError(f"refusing to overwrite existing key file(s): {', '.join(existing)}", path=existing[0])
    created: list[str] = []
    try:
        for file, data, secret in module.keygen(name):
            path = os.path.join(output_dir, file)
            _create_new(path, data, secret)
            created.append(path)
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return created
