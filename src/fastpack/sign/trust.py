"""Trusted verification material (SIGNING_TRUST_BUNDLE): cosign keys, CA certificates, OpenPGP keys.

One file or a directory of files; each file may hold several PEM blocks. The
server and publish check a signature against whatever matches its algorithm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign import SignatureInfo, check_algorithm, check_kind
from fastpack.sign.pem import b64decode, pem_blocks, read_material

_PGP_ARMOR = ("PGP PUBLIC KEY BLOCK",)


@dataclass
class Trust:
    source: str
    cosign_keys: list[tuple[str, Any]] = field(default_factory=list)
    ca_certificates: list[Any] = field(default_factory=list)
    pgp_keys: list[Any] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> Trust:
        """Everything trusted in `path` (a file, or every non-hidden file of a directory)."""
        trust = cls(path)
        if os.path.isdir(path):
            names = sorted(name for name in os.listdir(path) if not name.startswith("."))
            files = [os.path.join(path, name) for name in names if os.path.isfile(os.path.join(path, name))]
            if not files:
                raise SigningKeyError("trust directory holds no key files", path=path)
        else:
            files = [path]
        for file in files:
            trust._add_file(file)
        return trust

    def _add_file(self, path: str) -> None:
        data = read_material(path, "trust file")
        blocks = pem_blocks(data)
        if not blocks:
            self._add_pgp(path, data)
            return
        for label, lines in blocks:
            bad = SigningKeyError(f"{label} block is not valid base64", path=path)
            if label == "PUBLIC KEY":
                self._add_cosign(path, b64decode("".join(lines), bad))
            elif label == "CERTIFICATE":
                self._add_certificate(path, b64decode("".join(lines), bad))
            elif label in _PGP_ARMOR:
                continue
            elif "PRIVATE KEY" in label:
                raise SigningKeyError("holds a private key; a trust bundle holds public material only", path=path)
            else:
                raise SigningKeyError(f"unexpected PEM block {label} in trust bundle", path=path)
        if any(label in _PGP_ARMOR for label, _ in blocks):
            self._add_pgp(path, data)

    def _add_cosign(self, path: str, der: bytes) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SigningKeyError(f"cannot read public key: {exc}", path=path) from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SigningKeyError("public key is not ECDSA P-256 (cosign)", path=path)
        self.cosign_keys.append((path, key))

    def _add_certificate(self, path: str, der: bytes) -> None:
        from cryptography import x509

        try:
            self.ca_certificates.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion) as exc:
            raise SigningKeyError(f"cannot read certificate: {exc}", path=path) from None

    def _add_pgp(self, path: str, data: bytes) -> None:
        from fastpack.sign import pgp

        try:
            keys = pgp.parse_keys(data)
        except pgp.Malformed as exc:
            raise SigningKeyError(f"not a PEM key, certificate or OpenPGP key: {exc}", path=path) from None
        if any(key.secret is not None for key in keys):
            raise SigningKeyError("holds a private key; a trust bundle holds public material only", path=path)
        self.pgp_keys.extend(keys)

    def verify(self, signature_text: str, algorithm: str, digest: BundleDigest) -> SignatureInfo:
        """Accept the signature only if trusted material of its algorithm verifies it."""
        check_algorithm(algorithm)
        check_kind(signature_text, algorithm)
        if algorithm == "cosign":
            from fastpack.sign import cosign

            self._require(self.cosign_keys, "cosign public keys")
            signer = cosign.verify(signature_text, digest, self.cosign_keys)
        elif algorithm == "x509":
            from fastpack.sign import x509

            self._require(self.ca_certificates, "CA certificates")
            signer = x509.verify(signature_text, digest, self.ca_certificates, f"trust bundle {self.source}")
        else:
            from fastpack.sign import pgp

            self._require(self.pgp_keys, "OpenPGP public keys")
            signer = pgp.verify(signature_text, digest, self.pgp_keys, f"trust bundle {self.source}")
        return SignatureInfo(algorithm, True, signer)

    def _require(self, material: list[Any], what: str) -> None:
        if not material:
            raise SignatureError(f"trust bundle {self.source} has no {what}")
