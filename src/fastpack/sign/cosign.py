"""cosign: ECDSA P-256 over the bundle's SHA-256, cosign's encrypted key format, sigstore bundles.

The encrypted key is cosign's (go-tuf `encrypted`): a PEM whose body is JSON with
scrypt parameters, a salt, a nacl/secretbox nonce and the sealed PKCS#8 DER key.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
import os
import sys
from typing import Any

from fastpack.errors import SignatureError, SigningKeyError, UsageError
from fastpack.hashing import BundleDigest
from fastpack.sign.pem import b64decode, pem_blocks, pem_encode, read_material

ENCRYPTED_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
PLAIN_LABELS = ("PRIVATE KEY", "EC PRIVATE KEY")
SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
KEYGEN_SCRYPT = {"N": 65536, "r": 8, "p": 1}
_SCRYPT_MAX_MEMORY = 1 << 30

KEYGEN_FILES = ("cosign.key", "cosign.pub")


def resolve_password(path: str, *, confirm: bool = False) -> bytes:
    """COSIGN_PASSWORD (empty is a valid password, as in cosign), else a prompt on a terminal."""
    env = os.environ.get("COSIGN_PASSWORD")
    if env is not None:
        return env.encode()
    if not sys.stdin.isatty():
        raise SigningKeyError("encrypted key needs a password: set COSIGN_PASSWORD", path=path)
    password = getpass.getpass(f"Password for {path}: ")
    if confirm and getpass.getpass("Confirm password: ") != password:
        raise SigningKeyError("passwords do not match", path=path)
    return password.encode()


def _scrypt_key(password: bytes, salt: bytes, params: dict[str, Any], path: str) -> bytes:
    try:
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
    except (KeyError, TypeError, ValueError):
        raise SigningKeyError("encrypted cosign key has bad scrypt parameters", path=path) from None
    memory = 128 * r * (n + p + 2)
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or memory > _SCRYPT_MAX_MEMORY:
        raise SigningKeyError(f"unsupported scrypt parameters N={n} r={r} p={p}", path=path)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=memory + (1 << 20), dklen=32)


def decrypt_key(body: bytes, password: bytes, path: str) -> bytes:
    """The PKCS#8 DER inside cosign's encrypted key JSON."""
    import nacl.exceptions
    import nacl.secret

    bad = SigningKeyError("not a valid encrypted cosign key (bad JSON inside the PEM)", path=path)
    try:
        envelope = json.loads(body)
        kdf, cipher = envelope["kdf"], envelope["cipher"]
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(envelope["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SigningKeyError(
            f"unsupported key encryption {kdf.get('name')!r}/{cipher.get('name')!r} (expected scrypt/nacl/secretbox)",
            path=path,
        )
    key = _scrypt_key(password, salt, kdf.get("params") or {}, path)
    try:
        return nacl.secret.SecretBox(key).decrypt(sealed, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SigningKeyError(f"wrong password for {path}") from None


def encrypt_key(pkcs8_der: bytes, password: bytes, label: str = ENCRYPTED_LABELS[0]) -> str:
    import nacl.secret
    import nacl.utils

    salt = nacl.utils.random(32)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    key = _scrypt_key(password, salt, KEYGEN_SCRYPT, "<new key>")
    sealed = nacl.secret.SecretBox(key).encrypt(pkcs8_der, nonce).ciphertext
    envelope = {
        "kdf": {"name": "scrypt", "params": KEYGEN_SCRYPT, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return pem_encode(label, json.dumps(envelope, separators=(",", ":")).encode())


def _require_p256(key: Any, path: str, kind: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        name = type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "")
        raise SigningKeyError(f"cosign needs an ECDSA P-256 {kind}, this is a {name} key", path=path)
    return key


def load_private_key(path: str, password: bytes | None = None) -> Any:
    """An encrypted cosign/sigstore key or a plain PKCS#8 / SEC1 PEM, as an ECDSA P-256 private key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = read_material(path, "signing key")
    blocks = pem_blocks(data)
    labels = [label for label, _ in blocks]
    for label, lines in blocks:
        if label in ENCRYPTED_LABELS:
            body = b64decode("".join(lines), SigningKeyError("encrypted cosign key is not valid base64", path=path))
            der = decrypt_key(body, password if password is not None else resolve_password(path), path)
            try:
                key = serialization.load_der_private_key(der, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise SigningKeyError("decrypted cosign key is not a PKCS#8 key", path=path) from None
            return _require_p256(key, path, "private key")
        if label in PLAIN_LABELS:
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise SigningKeyError(f"cannot read private key: {exc}", path=path) from None
            return _require_p256(key, path, "private key")
    raise SigningKeyError(_not_a_key_message(labels, "cosign private key"), path=path)


def _not_a_key_message(labels: list[str], wanted: str) -> str:
    if any("PGP" in label for label in labels):
        return f"this is an OpenPGP key, not a {wanted} (use --algorithm pgp)"
    if labels:
        return f"expected a {wanted}, found PEM block(s) {', '.join(labels)}"
    return f"expected a {wanted} (PEM), found no PEM block"


def load_public_key(path: str) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = read_material(path, "public key")
    labels = [label for label, _ in pem_blocks(data)]
    if "PUBLIC KEY" not in labels:
        raise SigningKeyError(_not_a_key_message(labels, "cosign public key"), path=path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"cannot read public key: {exc}", path=path) from None
    return _require_p256(key, path, "public key")


def _spki_sha256(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def fingerprint(public_key: Any) -> str:
    """`sha256:<hex>` of the SubjectPublicKeyInfo DER: stable across PEM formatting."""
    return "sha256:" + _spki_sha256(public_key).hex()


def sign_der(digest: BundleDigest, private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    return private_key.sign(digest.digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def sigstore_bundle(signature_der: bytes, digest: BundleDigest, public_key: Any) -> dict[str, Any]:
    """A sigstore bundle v0.3 with a messageSignature; the key hint is cosign's (base64 SHA-256 of the SPKI)."""
    hint = base64.b64encode(_spki_sha256(public_key)).decode()
    return {
        "mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(digest.digest).decode()},
            "signature": base64.b64encode(signature_der).decode(),
        },
    }


def parse_signature(text: str, digest: BundleDigest) -> bytes:
    """DER signature from the base64 signature file or from a sigstore bundle JSON."""
    text = text.strip()
    garbage = SignatureError("not a cosign signature (expected base64 of a DER ECDSA signature)")
    if text.startswith("{"):
        try:
            message = json.loads(text)["messageSignature"]
            algorithm = message["messageDigest"]["algorithm"]
            signed = base64.b64decode(message["messageDigest"]["digest"], validate=True)
            text = message["signature"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SignatureError("not a sigstore bundle with a messageSignature") from None
        if algorithm != "SHA2_256":
            raise SignatureError(f"only SHA2_256 message digests are supported, bundle uses {algorithm}")
        if signed != digest.digest:
            raise SignatureError("bundle does not match the sigstore bundle's messageDigest (tampered bundle?)")
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    der = b64decode("".join(text.split()), garbage)
    try:
        decode_dss_signature(der)
    except ValueError:
        raise garbage from None
    return der


def verify(text: str, digest: BundleDigest, keys: list[tuple[str, Any]]) -> str:
    """Fingerprint of the first key in `keys` ((source, public key) pairs) that verifies the signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    der = parse_signature(text, digest)
    for _, key in keys:
        try:
            key.verify(der, digest.digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        except InvalidSignature:
            continue
        return fingerprint(key)
    sources = ", ".join(source for source, _ in keys)
    raise SignatureError(f"cosign signature does not verify with {sources} (wrong key or tampered bundle)")


def keygen(name: str | None = None) -> list[tuple[str, bytes, bool]]:
    """cosign.key (encrypted with COSIGN_PASSWORD, cosign's format) and cosign.pub: (path, bytes, secret)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if name is not None:
        raise UsageError("cosign keys carry no identity: --name is for x509 and pgp")
    password = resolve_password(KEYGEN_FILES[0], confirm=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [
        (KEYGEN_FILES[0], encrypt_key(pkcs8, password).encode(), True),
        (KEYGEN_FILES[1], public_pem, False),
    ]
