"""pgp: OpenPGP v4 (RFC 4880) detached signatures, keys and ASCII armor, written and read directly.

A v4 signature hashes data || signed header || trailer. The bundle part comes
from `BundleDigest.continued()` (the SHA-256 state after the bundle's bytes),
so the bundle is read once. Keys: Ed25519 (EdDSA, what keygen writes) and RSA.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign.pem import pem_blocks, read_material

ALGO_RSA = (1, 3)  # RSA (encrypt or sign), RSA sign-only
ALGO_EDDSA = 22
ALGO_ECDH = 18
HASH_SHA256 = 8
HASH_NAMES = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160", 8: "SHA-256", 9: "SHA-384", 10: "SHA-512", 11: "SHA-224"}
ED25519_OID = bytes.fromhex("2b06010401da470f01")
SIG_BINARY = 0x00
SIG_POSITIVE_CERTIFICATION = 0x13
TAG_SIGNATURE, TAG_SECRET_KEY, TAG_PUBLIC_KEY, TAG_SECRET_SUBKEY, TAG_USER_ID, TAG_PUBLIC_SUBKEY = 2, 5, 6, 7, 13, 14
SUB_CREATED, SUB_PREF_SYM, SUB_ISSUER, SUB_PREF_HASH, SUB_KEY_FLAGS, SUB_FEATURES, SUB_ISSUER_FPR = (
    2,
    11,
    16,
    21,
    27,
    30,
    33,
)
_KEY_TAGS = (TAG_SECRET_KEY, TAG_PUBLIC_KEY, TAG_SECRET_SUBKEY, TAG_PUBLIC_SUBKEY)

KEYGEN_FILES = ("pgp-secret.asc", "pgp-public.asc", "pgp-public.gpg")


class Malformed(ValueError):
    """Bytes that are not the OpenPGP structure they should be; callers turn it into a user error."""


# --- ASCII armor -------------------------------------------------------------------------------------------------


def crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(label: str, data: bytes) -> str:
    body = base64.b64encode(data).decode("ascii")
    lines = [body[index : index + 64] for index in range(0, len(body), 64)]
    checksum = base64.b64encode(crc24(data).to_bytes(3, "big")).decode("ascii")
    return f"-----BEGIN {label}-----\n\n" + "\n".join(lines) + f"\n={checksum}\n-----END {label}-----\n"


def dearmor(data: bytes, labels: tuple[str, ...]) -> bytes | None:
    """The binary packets of the first armored block with one of `labels` (CRC checked), or None."""
    for label, lines in pem_blocks(data):
        if label not in labels:
            continue
        checksum = lines.pop() if lines and lines[-1].startswith("=") else None
        try:
            packets = base64.b64decode("".join(lines), validate=True)
            expected = base64.b64decode(checksum[1:], validate=True) if checksum else None
        except ValueError:
            raise Malformed("armor is not valid base64") from None
        if expected is not None and crc24(packets).to_bytes(3, "big") != expected:
            raise Malformed("armor checksum (CRC-24) does not match: the text was altered")
        return packets
    return None


# --- packets -------------------------------------------------------------------------------------------------


def packet(tag: int, body: bytes) -> bytes:
    """New-format packet header + body."""
    length = len(body)
    if length < 192:
        header = bytes([length])
    elif length < 8384:
        length -= 192
        header = bytes([(length >> 8) + 192, length & 0xFF])
    else:
        header = b"\xff" + length.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + header + body


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos < len(data):
        first = data[pos]
        if not first & 0x80:
            raise Malformed(f"not an OpenPGP packet at byte {pos}")
        if first & 0x40:
            tag = first & 0x3F
            octet = data[pos + 1] if pos + 1 < len(data) else 0
            if octet < 192:
                length, pos = octet, pos + 2
            elif octet < 224:
                length, pos = ((octet - 192) << 8) + data[pos + 2] + 192, pos + 3
            elif octet == 255:
                length, pos = int.from_bytes(data[pos + 2 : pos + 6], "big"), pos + 6
            else:
                raise Malformed("partial-length packets are not supported here")
        else:
            tag, kind = (first >> 2) & 0x0F, first & 0x03
            if kind == 3:
                raise Malformed("indeterminate-length packets are not supported here")
            size = (1, 2, 4)[kind]
            length, pos = int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size
        if pos + length > len(data):
            raise Malformed("truncated OpenPGP packet")
        yield tag, data[pos : pos + length]
        pos += length


def mpi(value: int | bytes) -> bytes:
    number = int.from_bytes(value, "big") if isinstance(value, bytes) else value
    return number.bit_length().to_bytes(2, "big") + number.to_bytes((number.bit_length() + 7) // 8, "big")


def read_mpi(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(data):
        raise Malformed("truncated MPI")
    size = (int.from_bytes(data[pos : pos + 2], "big") + 7) // 8
    if pos + 2 + size > len(data):
        raise Malformed("truncated MPI")
    return data[pos + 2 : pos + 2 + size], pos + 2 + size


def subpacket(kind: int, data: bytes) -> bytes:
    length = len(data) + 1
    if length >= 192:
        raise ValueError("subpacket too long")
    return bytes([length, kind]) + data


def read_subpackets(data: bytes) -> list[tuple[int, bytes]]:
    result, pos = [], 0
    while pos < len(data):
        first = data[pos]
        if first < 192:
            length, pos = first, pos + 1
        elif first < 255:
            length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
        else:
            length, pos = int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
        if length < 1 or pos + length > len(data):
            raise Malformed("bad signature subpacket length")
        result.append((data[pos] & 0x7F, data[pos + 1 : pos + length]))
        pos += length
    return result


# --- keys ----------------------------------------------------------------------------------------------------


@dataclass
class PgpKey:
    """One primary key or subkey: its public packet body, the usable public key, the secret one if present."""

    body: bytes
    algorithm: int
    public: Any
    secret: Any = None
    user_ids: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha1(b"\x99" + len(self.body).to_bytes(2, "big") + self.body).digest()

    @property
    def key_id(self) -> bytes:
        return self.fingerprint[-8:]

    @property
    def hex_fingerprint(self) -> str:
        return self.fingerprint.hex().upper()


def _parse_public(body: bytes) -> tuple[int, Any, int]:
    """(algorithm, cryptography public key or None if unsupported, end of the public part)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if len(body) < 6 or body[0] != 4:
        raise Malformed(f"unsupported OpenPGP key version {body[0] if body else '?'} (only v4)")
    algorithm, pos = body[5], 6
    if algorithm in ALGO_RSA:
        n, pos = read_mpi(body, pos)
        e, pos = read_mpi(body, pos)
        public = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
        return algorithm, public, pos
    if algorithm in (ALGO_EDDSA, 19, ALGO_ECDH):
        oid_length = body[pos]
        oid = body[pos + 1 : pos + 1 + oid_length]
        point, pos = read_mpi(body, pos + 1 + oid_length)
        if algorithm == ALGO_ECDH:
            pos += 1 + body[pos]
        if algorithm == ALGO_EDDSA and oid == ED25519_OID and len(point) == 33 and point[0] == 0x40:
            return algorithm, ed25519.Ed25519PublicKey.from_public_bytes(point[1:]), pos
        return algorithm, None, pos
    return algorithm, None, len(body)


def _parse_secret(algorithm: int, public: Any, data: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if not data:
        raise Malformed("secret key packet has no secret part")
    if data[0] != 0:
        raise Malformed(
            "secret key is protected with a passphrase, which fastpack does not support: "
            "export it without a passphrase or use `fastpack keygen --algorithm pgp`"
        )
    pos = 1
    if algorithm in ALGO_RSA:
        numbers = []
        for _ in range(4):
            value, pos = read_mpi(data, pos)
            numbers.append(int.from_bytes(value, "big"))
        d, p, q, _u = numbers
        public_numbers = public.public_numbers()
        return rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public_numbers
        ).private_key()
    if algorithm == ALGO_EDDSA and public is not None:
        seed, pos = read_mpi(data, pos)
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed.rjust(32, b"\x00"))
    return None


def parse_keys(data: bytes) -> list[PgpKey]:
    """Every primary key and subkey in armored or binary OpenPGP data (public or secret)."""
    binary = dearmor(data, ("PGP PUBLIC KEY BLOCK", "PGP PRIVATE KEY BLOCK"))
    if binary is None:
        if data[8:12] == b"KBXf":
            raise Malformed("this is a gpg keybox (pubring.kbx); export the keys with `gpg --export > pub.gpg`")
        if data[:1] and not data[0] & 0x80:
            raise Malformed("not OpenPGP key data (neither armored nor binary packets)")
        binary = data
    keys: list[PgpKey] = []
    for tag, body in packets(binary):
        if tag in _KEY_TAGS:
            try:
                algorithm, public, end = _parse_public(body)
                key = PgpKey(body[:end], algorithm, public)
                if tag in (TAG_SECRET_KEY, TAG_SECRET_SUBKEY):
                    key.secret = _parse_secret(algorithm, public, body[end:])
            except Malformed:
                raise
            except (ValueError, IndexError) as exc:
                raise Malformed(f"invalid key material: {exc}") from None
            keys.append(key)
        elif tag == TAG_USER_ID and keys:
            keys[-1].user_ids.append(body.decode("utf-8", "replace"))
    if not keys:
        raise Malformed("no OpenPGP key found")
    return keys


def load_keyring(path: str) -> list[PgpKey]:
    data = read_material(path, "keyring")
    labels = [label for label, _ in pem_blocks(data)]
    if labels and not any(label.startswith("PGP ") for label in labels):
        raise SigningKeyError(f"expected an OpenPGP public key, found PEM {', '.join(labels)}", path=path)
    try:
        return parse_keys(data)
    except Malformed as exc:
        raise SigningKeyError(f"cannot read OpenPGP keyring: {exc}", path=path) from None


def load_secret_key(path: str) -> PgpKey:
    """The primary secret key of an (unprotected) OpenPGP secret key file."""
    data = read_material(path, "signing key")
    labels = [label for label, _ in pem_blocks(data)]
    if labels and not any(label.startswith("PGP ") for label in labels):
        raise SigningKeyError(
            f"this is not an OpenPGP key but PEM {', '.join(labels)} (use --algorithm cosign or x509)", path=path
        )
    try:
        keys = parse_keys(data)
    except Malformed as exc:
        raise SigningKeyError(f"cannot read OpenPGP secret key: {exc}", path=path) from None
    primary = keys[0]
    if primary.secret is None:
        if primary.public is not None and not any(key.secret for key in keys):
            raise SigningKeyError("this is an OpenPGP public key; signing needs the secret key", path=path)
        raise SigningKeyError("unsupported OpenPGP key algorithm for signing (use Ed25519 or RSA)", path=path)
    return primary


# --- signatures ----------------------------------------------------------------------------------------------


def _signature_packet(key: PgpKey, sig_type: int, hashed: bytes, state: Any) -> bytes:
    """Finish `state` (already fed with the signed data) with the v4 trailer and sign it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    header = bytes([4, sig_type, key.algorithm, HASH_SHA256]) + len(hashed).to_bytes(2, "big") + hashed
    state.update(header + b"\x04\xff" + len(header).to_bytes(4, "big"))
    value = state.digest()
    if key.algorithm == ALGO_EDDSA:
        raw = key.secret.sign(value)
        material = mpi(raw[:32]) + mpi(raw[32:])
    else:
        material = mpi(key.secret.sign(value, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())))
    unhashed = subpacket(SUB_ISSUER, key.key_id)
    return packet(TAG_SIGNATURE, header + len(unhashed).to_bytes(2, "big") + unhashed + value[:2] + material)


def _base_subpackets(key: PgpKey, created: int) -> bytes:
    return subpacket(SUB_CREATED, created.to_bytes(4, "big")) + subpacket(SUB_ISSUER_FPR, b"\x04" + key.fingerprint)


def sign(digest: BundleDigest, key: PgpKey) -> str:
    """Armored detached binary-document signature of the bundle whose hash state is `digest`."""
    hashed = _base_subpackets(key, int(time.time()))
    return armor("PGP SIGNATURE", _signature_packet(key, SIG_BINARY, hashed, digest.continued()))


@dataclass
class ParsedSignature:
    sig_type: int
    algorithm: int
    hash_algorithm: int
    hashed_header: bytes
    issuers: list[bytes]
    left16: bytes
    material: list[bytes]


def parse_signature(text: str) -> ParsedSignature:
    garbage = SignatureError("not an OpenPGP signature (expected '-----BEGIN PGP SIGNATURE-----')")
    try:
        binary = dearmor(text.encode("utf-8", "replace"), ("PGP SIGNATURE",))
        if binary is None:
            raise garbage
        signatures = [body for tag, body in packets(binary) if tag == TAG_SIGNATURE]
        if len(signatures) != 1:
            raise SignatureError(f"expected one OpenPGP signature packet, found {len(signatures)}")
        body = signatures[0]
        if body[0] != 4:
            raise SignatureError(f"unsupported OpenPGP signature version {body[0]} (only v4)")
        hashed_length = int.from_bytes(body[4:6], "big")
        hashed_end = 6 + hashed_length
        unhashed_length = int.from_bytes(body[hashed_end : hashed_end + 2], "big")
        unhashed_end = hashed_end + 2 + unhashed_length
        subpackets = read_subpackets(body[6:hashed_end]) + read_subpackets(body[hashed_end + 2 : unhashed_end])
        left16 = body[unhashed_end : unhashed_end + 2]
        material, pos = [], unhashed_end + 2
        while pos < len(body):
            value, pos = read_mpi(body, pos)
            material.append(value)
    except (Malformed, IndexError) as exc:
        raise SignatureError(f"malformed OpenPGP signature: {exc}") from None
    issuers = [
        data[1:] if kind == SUB_ISSUER_FPR else data
        for kind, data in subpackets
        if kind in (SUB_ISSUER, SUB_ISSUER_FPR)
    ]
    return ParsedSignature(body[1], body[2], body[3], body[:hashed_end], issuers, left16, material)


def _matches(key: PgpKey, issuers: list[bytes]) -> bool:
    return not issuers or any(issuer in (key.fingerprint, key.key_id) for issuer in issuers)


def verify(text: str, digest: BundleDigest, keys: list[PgpKey], sources: str) -> str:
    """Fingerprint of the key in `keys` that made this signature of the bundle, else SignatureError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    sig = parse_signature(text)
    if sig.sig_type != SIG_BINARY:
        raise SignatureError(f"OpenPGP signature type 0x{sig.sig_type:02x} is not a binary document signature (0x00)")
    if sig.hash_algorithm != HASH_SHA256:
        name = HASH_NAMES.get(sig.hash_algorithm, str(sig.hash_algorithm))
        raise SignatureError(f"only SHA-256 OpenPGP signatures are supported, this one uses {name}")
    candidates = [key for key in keys if key.public is not None and _matches(key, sig.issuers)]
    if not candidates:
        issuer = sig.issuers[0].hex().upper() if sig.issuers else "unknown"
        raise SignatureError(f"signed by OpenPGP key {issuer}, which is not in {sources} (wrong key)")
    state = digest.continued()
    state.update(sig.hashed_header + b"\x04\xff" + len(sig.hashed_header).to_bytes(4, "big"))
    value = state.digest()
    if value[:2] != sig.left16:
        raise SignatureError(
            "bundle does not match the OpenPGP signature (tampered bundle or another bundle's signature)"
        )
    for key in candidates:
        if key.algorithm != sig.algorithm:
            continue
        try:
            if key.algorithm == ALGO_EDDSA and len(sig.material) == 2:
                key.public.verify(b"".join(part.rjust(32, b"\x00") for part in sig.material), value)
            elif key.algorithm in ALGO_RSA and len(sig.material) == 1:
                size = (key.public.key_size + 7) // 8
                key.public.verify(
                    sig.material[0].rjust(size, b"\x00"), value, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
                )
            else:
                continue
        except InvalidSignature:
            continue
        return key.hex_fingerprint
    raise SignatureError(f"OpenPGP signature does not verify with the matching key in {sources}")


# --- keygen --------------------------------------------------------------------------------------------------


def keygen(name: str | None = None) -> list[tuple[str, bytes, bool]]:
    """An Ed25519 signing key with one self-certified user ID: secret (armored), public (armored and binary)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    secret = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    point = secret.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    seed = secret.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    created = int(time.time())
    body = bytes([4]) + created.to_bytes(4, "big") + bytes([ALGO_EDDSA, len(ED25519_OID)]) + ED25519_OID
    body += mpi(b"\x40" + point)
    key = PgpKey(body, ALGO_EDDSA, secret.public_key(), secret)
    user_id = (name or "fastpack signer").encode()
    hashed = _base_subpackets(key, created) + subpacket(SUB_KEY_FLAGS, b"\x03")
    hashed += subpacket(SUB_PREF_SYM, bytes([9, 7])) + subpacket(SUB_PREF_HASH, bytes([8, 10]))
    hashed += subpacket(SUB_FEATURES, b"\x01")
    state = hashlib.sha256(b"\x99" + len(body).to_bytes(2, "big") + body)
    state.update(b"\xb4" + len(user_id).to_bytes(4, "big") + user_id)
    certification = _signature_packet(key, SIG_POSITIVE_CERTIFICATION, hashed, state)
    secret_mpi = mpi(seed)
    secret_body = body + b"\x00" + secret_mpi + (sum(secret_mpi) & 0xFFFF).to_bytes(2, "big")
    tail = packet(TAG_USER_ID, user_id) + certification
    public_packets = packet(TAG_PUBLIC_KEY, body) + tail
    return [
        (
            "pgp-secret.asc",
            armor("PGP PRIVATE KEY BLOCK", packet(TAG_SECRET_KEY, secret_body) + tail).encode(),
            True,
        ),
        ("pgp-public.asc", armor("PGP PUBLIC KEY BLOCK", public_packets).encode(), False),
        ("pgp-public.gpg", public_packets, False),
    ]
