"""Signing and verifying bundles (SPEC §4): cosign, x509 (CMS) and pgp, from the bundle's one-pass digest.

Every function takes the `BundleDigest` of the bundle (or computes it in one
streaming pass), so a bundle is never loaded into memory nor read twice.
Crypto libraries are imported lazily, inside the algorithm modules.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from fastpack.errors import (
    FastpackError,
    HashMismatch,
    InputError,
    OutputError,
    SignatureError,
    SigningKeyError,
    UsageError,
)
from fastpack.hashing import BundleDigest
from fastpack.sinks import write_atomic

ALGORITHMS = ("cosign", "x509", "pgp")
SIGNATURE_SUFFIX = ".SIGNATURE"
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class SignResult:
    algorithm: str
    path: str
    text: str
    sha256: str
    signer: str
    bundle_out: str | None = None

    def to_json(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if key != "text"}


@dataclass(frozen=True)
class SignatureInfo:
    algorithm: str
    verified: bool
    signer: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown signature algorithm {algorithm!r} (choose from {', '.join(ALGORITHMS)})")
    return algorithm


def detect_algorithm(signature_text: str) -> str | None:
    """The algorithm a signature's text looks like (by its armor), or None for unrecognisable text."""
    text = signature_text.lstrip()
    if text.startswith("-----BEGIN PGP SIGNATURE-----"):
        return "pgp"
    if text.startswith(("-----BEGIN CMS-----", "-----BEGIN PKCS7-----")):
        return "x509"
    if text.startswith("{") and "messageSignature" in text:
        return "cosign"
    compact = "".join(text.split())
    if compact and _BASE64.match(compact) and len(compact) % 4 == 0 and base64.b64decode(compact)[:1] == b"\x30":
        return "cosign"
    return None


def check_kind(signature_text: str, algorithm: str) -> None:
    """Reject a signature of another algorithm with a message saying which one it is."""
    kind = detect_algorithm(signature_text)
    if kind is not None and kind != algorithm:
        raise SignatureError(f"this is a {kind} signature, not {algorithm} (use --algorithm {kind})")


def _key_path(key: str | None, algorithm: str) -> str:
    key = key or os.environ.get("FASTPACK_SIGNING_KEY") or None
    if key is None:
        raise SigningKeyError(f"no signing key for {algorithm}: pass --key or set FASTPACK_SIGNING_KEY")
    return key


def _load_signer(
    algorithm: str, key: str | None, cert: str | None, chain: str | None, password: bytes | None
) -> tuple[Any, str]:
    """(loaded key material, signer identity); done before hashing so bad keys fail fast."""
    key = _key_path(key, check_algorithm(algorithm))
    if algorithm == "cosign":
        from fastpack.sign import cosign

        private_key = cosign.load_private_key(key, password)
        return private_key, cosign.fingerprint(private_key.public_key())
    if algorithm == "x509":
        from fastpack.sign import x509

        cert = cert or os.environ.get("FASTPACK_SIGNING_CERT") or None
        private_key, certificates = x509.load_signer(key, cert, chain, password)
        return (private_key, certificates), certificates[0].subject.rfc4514_string()
    from fastpack.sign import pgp

    secret = pgp.load_secret_key(key)
    return secret, secret.hex_fingerprint


def _signature_text(algorithm: str, material: Any, digest: BundleDigest) -> str:
    if algorithm == "cosign":
        from fastpack.sign import cosign

        return base64.b64encode(cosign.sign_der(digest, material)).decode() + "\n"
    if algorithm == "x509":
        from fastpack.sign import x509

        return x509.sign(digest, *material)
    from fastpack.sign import pgp

    return pgp.sign(digest, material)


def sign_digest(
    digest: BundleDigest,
    algorithm: str,
    *,
    key: str | None = None,
    cert: str | None = None,
    chain: str | None = None,
    password: bytes | None = None,
) -> str:
    """The signature text for a bundle whose digest the caller already holds (pack/publish pipelines)."""
    material, _ = _load_signer(algorithm, key, cert, chain, password)
    return _signature_text(algorithm, material, digest)


def sign_bundle(
    bundle: str,
    algorithm: str,
    *,
    key: str | None = None,
    cert: str | None = None,
    chain: str | None = None,
    password: bytes | None = None,
    digest: BundleDigest | None = None,
    expected_sha256: str | None = None,
    output: str | None = None,
    bundle_out: str | None = None,
) -> SignResult:
    """Sign `bundle` and write `<bundle>.SIGNATURE` (or `output`) atomically; nothing is written on failure.

    The key is loaded (and decrypted) before the bundle is hashed, so a wrong key
    or password fails fast. `expected_sha256` only checks the computed hash.
    """
    check_algorithm(algorithm)
    if bundle_out is not None and algorithm != "cosign":
        raise UsageError("--bundle-out (a sigstore bundle) is only for --algorithm cosign")
    if digest is None and not os.path.isfile(bundle):
        problem = "not a regular file, expected a bundle" if os.path.exists(bundle) else "bundle not found"
        raise InputError(problem, path=bundle)
    path = output or bundle + SIGNATURE_SUFFIX
    for target in (path, bundle_out):
        if target is not None and not os.path.isdir(os.path.dirname(os.path.abspath(target))):
            raise OutputError("output directory does not exist", path=os.path.dirname(target))
    material, signer = _load_signer(algorithm, key, cert, chain, password)
    if digest is None:
        digest = BundleDigest.from_file(bundle)
    if expected_sha256 is not None and digest.sha256 != expected_sha256:
        raise HashMismatch(f"bundle SHA-256 is {digest.sha256}, expected {expected_sha256}: not signing", path=bundle)
    text = _signature_text(algorithm, material, digest)
    sigstore_text = None
    if bundle_out is not None:
        from fastpack.sign import cosign

        der = base64.b64decode(text)
        sigstore_text = json.dumps(cosign.sigstore_bundle(der, digest, material.public_key()), indent=2) + "\n"
    write_atomic(path, text.encode())
    if bundle_out is not None and sigstore_text is not None:
        try:
            write_atomic(bundle_out, sigstore_text.encode())
        except FastpackError:
            os.unlink(path)
            raise
    return SignResult(algorithm, path, text, digest.sha256, signer, bundle_out)


def verify_signature(
    signature_text: str,
    algorithm: str,
    digest: BundleDigest,
    *,
    key: str | None = None,
    ca: str | None = None,
    keyring: str | None = None,
) -> SignatureInfo:
    """Check a signature of the bundle whose digest is `digest` against the given key, CA or keyring."""
    check_algorithm(algorithm)
    check_kind(signature_text, algorithm)
    if algorithm == "cosign":
        from fastpack.sign import cosign

        if key is None:
            raise UsageError("verifying a cosign signature needs --key (the cosign.pub public key)")
        signer = cosign.verify(signature_text, digest, [(key, cosign.load_public_key(key))])
    elif algorithm == "x509":
        from fastpack.sign import x509

        if ca is None:
            raise UsageError("verifying an x509 signature needs --ca (the CA certificate(s), PEM)")
        signer = x509.verify(signature_text, digest, x509.load_certificates(ca, "CA certificate"), ca)
    else:
        from fastpack.sign import pgp

        keyring = keyring or key
        if keyring is None:
            raise UsageError("verifying a pgp signature needs --keyring (the public key, armored or binary)")
        signer = pgp.verify(signature_text, digest, pgp.load_keyring(keyring), keyring)
    return SignatureInfo(algorithm, True, signer)


__all__ = [
    "ALGORITHMS",
    "SignResult",
    "SignatureInfo",
    "detect_algorithm",
    "sign_bundle",
    "sign_digest",
    "verify_signature",
]
