"""Shared by the signature tests: bundles, key material made once per session, independent tools."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

COSIGN_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cosign"
COSIGN_FIXTURE_KEYS = ("cosign-label-n65536", "cosign-label-n32768", "sigstore-label-n32768")
COSIGN_FIXTURE_PASSWORD = "hello"


def make_bundle(directory: Path, name: str = "bundle.tar.zst", size: int = 200_000, seed: int = 1) -> Path:
    """Bundle-like bytes: signatures are over bytes, their tar/zstd structure does not matter here."""
    data = hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)
    path = directory / name
    path.write_bytes(data)
    return path


def tampered_copy(bundle: Path, directory: Path) -> Path:
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    path = directory / ("tampered-" + bundle.name)
    path.write_bytes(bytes(data))
    return path


def run_tool(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True, env=env, timeout=120)


def tool_bytes(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> bytes:
    """Binary stdout of a tool that must succeed (DER keys, exported keyrings)."""
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, check=True, env=env, timeout=120).stdout


def run_cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`fastpack ...` in a fresh interpreter, with a clean signing environment plus `env`."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COSIGN_PASSWORD", "FASTPACK_SIGNING_KEY", "FASTPACK_SIGNING_CERT")
    }
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fastpack", *(os.fspath(a) for a in args)],
        capture_output=True,
        text=True,
        env=base,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def openssl_der_verify(
    public_key: Path, signature_der: bytes, bundle: Path, work: Path
) -> subprocess.CompletedProcess[str]:
    der = work / "signature.der"
    der.write_bytes(signature_der)
    return run_tool("openssl", "dgst", "-sha256", "-verify", public_key, "-signature", der, bundle)


def openssl_cms_verify(signature: Path, bundle: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return run_tool(
        "openssl", "cms", "-verify", "-binary", "-inform", "PEM", "-in", signature, "-content", bundle,
        "-CAfile", ca, "-out", os.devnull,
    )  # fmt: skip


def gpgv(keyring: Path, signature: Path, bundle: Path) -> subprocess.CompletedProcess[str]:
    return run_tool("gpgv", "--keyring", keyring.resolve(), signature, bundle)


@contextlib.contextmanager
def gnupg_home() -> Iterator[dict[str, str]]:
    """A throwaway GNUPGHOME (short path: the agent socket must fit), its agent stopped afterwards."""
    home = tempfile.mkdtemp(prefix="fpg", dir="/tmp")
    os.chmod(home, 0o700)
    env = {**os.environ, "GNUPGHOME": home}
    try:
        yield env
    finally:
        run_tool("gpgconf", "--kill", "all", env=env)
        subprocess.run(["rm", "-rf", home], check=False)


def leftovers(directory: Path, before: set[str]) -> set[str]:
    """Files that appeared in `directory` (signatures, temp files) since `before` was listed."""
    return set(os.listdir(directory)) - before
