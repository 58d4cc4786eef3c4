"""Shared pytest fixtures. Topic helpers live in tests/helpers_*.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
SHARED = REPO.parent / "shared"
EXAMPLE_DIST = REPO / "examples" / "hello-extension" / "dist"

sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture
def example_dist() -> Path:
    return EXAMPLE_DIST


@pytest.fixture
def shared_fixtures() -> Path:
    path = Path(os.environ.get("FASTPACK_SHARED_FIXTURES", SHARED / "fixtures"))
    if not path.is_dir():
        pytest.fail(f"shared fixtures not found at {path} (set FASTPACK_SHARED_FIXTURES)")
    return path


@pytest.fixture(scope="session")
def sign_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key material made once by `fastpack keygen` for every algorithm (cosign password: `test-password`)."""
    from fastpack.sign.keygen import keygen

    directory = tmp_path_factory.mktemp("sign-keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COSIGN_PASSWORD", "test-password")
        for algorithm in ("cosign", "x509", "pgp"):
            keygen(algorithm, str(directory))
    return directory


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One SeaweedFS S3 server for the session (tests marked `s3`); stopped by PID at the end."""
    from s3server import SeaweedS3

    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty bucket on the session's S3 server."""
    return str(s3_server.new_bucket())
