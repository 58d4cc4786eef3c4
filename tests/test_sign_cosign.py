"""cosign signatures: real cosign keys decrypt, openssl verifies fastpack's signatures and vice versa."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign import sign_bundle, sign_digest, verify_signature
from fastpack.sign.pem import pem_blocks
from helpers_sign import (
    COSIGN_FIXTURE_KEYS,
    COSIGN_FIXTURE_PASSWORD,
    COSIGN_FIXTURES,
    make_bundle,
    openssl_der_verify,
    run_tool,
    tampered_copy,
    tool_bytes,
)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


@pytest.mark.parametrize("name", COSIGN_FIXTURE_KEYS)
def test_real_cosign_keys_decrypt_and_openssl_verifies_the_signature(
    name: str, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    result = sign_bundle(str(bundle), "cosign", key=str(COSIGN_FIXTURES / f"{name}.key"))

    assert result.path == f"{bundle}.SIGNATURE"
    assert Path(result.path).read_text() == result.text
    assert result.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    der = base64.b64decode(result.text.strip(), validate=True)
    checked = openssl_der_verify(COSIGN_FIXTURES / f"{name}.pub", der, bundle, tmp_path)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr
    rejected = openssl_der_verify(COSIGN_FIXTURES / f"{name}.pub", der, tampered_copy(bundle, tmp_path), tmp_path)
    assert rejected.returncode != 0


def test_fastpack_verifies_and_names_the_key(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    result = sign_bundle(str(bundle), "cosign", key=str(COSIGN_FIXTURES / "sigstore-label-n32768.key"))
    public = COSIGN_FIXTURES / "sigstore-label-n32768.pub"
    info = verify_signature(result.text, "cosign", BundleDigest.from_file(bundle), key=str(public))
    assert info.verified and info.algorithm == "cosign"
    spki_der = tool_bytes("openssl", "pkey", "-pubin", "-in", str(public), "-outform", "DER")
    assert info.signer == "sha256:" + hashlib.sha256(spki_der).hexdigest()
    assert info.signer == result.signer


def test_openssl_signature_with_plain_pkcs8_key_verifies(bundle: Path, tmp_path: Path) -> None:
    key, pub, sig = tmp_path / "key.pem", tmp_path / "key.pub", tmp_path / "sig.der"
    assert (
        run_tool(
            "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key
        ).returncode
        == 0
    )
    assert run_tool("openssl", "pkey", "-in", key, "-pubout", "-out", pub).returncode == 0
    assert run_tool("openssl", "dgst", "-sha256", "-sign", key, "-out", sig, bundle).returncode == 0
    digest = BundleDigest.from_file(bundle)

    text = base64.b64encode(sig.read_bytes()).decode()
    assert verify_signature(text, "cosign", digest, key=str(pub)).verified
    ours = sign_digest(digest, "cosign", key=str(key))
    checked = openssl_der_verify(pub, base64.b64decode(ours), bundle, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_tampered_bundle_and_wrong_key_are_rejected(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    text = sign_bundle(str(bundle), "cosign", key=str(COSIGN_FIXTURES / "cosign-label-n65536.key")).text
    right = str(COSIGN_FIXTURES / "cosign-label-n65536.pub")
    wrong = str(COSIGN_FIXTURES / "cosign-label-n32768.pub")
    tampered = BundleDigest.from_file(tampered_copy(bundle, tmp_path))

    with pytest.raises(SignatureError, match=r"does not verify with .*n65536\.pub \(wrong key or tampered bundle\)"):
        verify_signature(text, "cosign", tampered, key=right)
    with pytest.raises(SignatureError, match=r"does not verify with .*n32768\.pub"):
        verify_signature(text, "cosign", BundleDigest.from_file(bundle), key=wrong)


@pytest.mark.parametrize("garbage", ["not base64 at all!", base64.b64encode(b"\x30\x03abcdefgh").decode(), ""])
def test_garbage_signature_is_rejected(garbage: str, bundle: Path) -> None:
    with pytest.raises(SignatureError, match="not a cosign signature"):
        verify_signature(
            garbage, "cosign", BundleDigest.from_file(bundle), key=str(COSIGN_FIXTURES / "cosign-label-n65536.pub")
        )


def test_wrong_password_names_the_key_and_writes_nothing(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = str(COSIGN_FIXTURES / "cosign-label-n32768.key")
    monkeypatch.setenv("COSIGN_PASSWORD", "not-hello")
    with pytest.raises(SigningKeyError, match=f"wrong password for {key}"):
        sign_bundle(str(bundle), "cosign", key=key)
    assert sorted(os.listdir(bundle.parent)) == [bundle.name]


def test_keys_of_other_types_are_refused(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    rsa = tmp_path / "rsa.pem"
    assert (
        run_tool("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa).returncode
        == 0
    )
    with pytest.raises(SigningKeyError, match="cosign needs an ECDSA P-256 private key, this is a RSA key"):
        sign_bundle(str(bundle), "cosign", key=str(rsa))
    with pytest.raises(SigningKeyError, match="OpenPGP key, not a cosign private key"):
        sign_bundle(str(bundle), "cosign", key=str(sign_keys / "pgp-secret.asc"))
    assert sorted(os.listdir(tmp_path)) == sorted([bundle.name, "rsa.pem"])


def test_sigstore_bundle_carries_digest_signature_and_key_hint(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    out = tmp_path / "bundle.sigstore.json"
    result = sign_bundle(
        str(bundle), "cosign", key=str(COSIGN_FIXTURES / "cosign-label-n65536.key"), bundle_out=str(out)
    )
    document = json.loads(out.read_text())
    public = COSIGN_FIXTURES / "cosign-label-n65536.pub"

    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    message = document["messageSignature"]
    assert message["messageDigest"] == {
        "algorithm": "SHA2_256",
        "digest": base64.b64encode(hashlib.sha256(bundle.read_bytes()).digest()).decode(),
    }
    assert message["signature"] == result.text.strip()
    spki = tool_bytes("openssl", "pkey", "-pubin", "-in", str(public), "-outform", "DER")
    assert (
        document["verificationMaterial"]["publicKey"]["hint"]
        == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    )
    checked = openssl_der_verify(public, base64.b64decode(message["signature"]), bundle, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert verify_signature(out.read_text(), "cosign", BundleDigest.from_file(bundle), key=str(public)).verified


def test_keygen_key_has_the_structure_of_real_cosign_keys(
    sign_keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastpack.sign import cosign

    ours = pem_blocks((sign_keys / "cosign.key").read_bytes())
    theirs = pem_blocks((COSIGN_FIXTURES / "sigstore-label-n32768.key").read_bytes())
    assert [label for label, _ in ours] == [label for label, _ in theirs] == ["ENCRYPTED SIGSTORE PRIVATE KEY"]
    assert all(len(line) == 64 for line in ours[0][1][:-1]) and all(len(line) == 64 for line in theirs[0][1][:-1])
    envelope = json.loads(base64.b64decode("".join(ours[0][1])))
    reference = json.loads(base64.b64decode("".join(theirs[0][1])))

    def shape(value: object) -> object:
        return {key: shape(item) for key, item in value.items()} if isinstance(value, dict) else type(value).__name__

    assert shape(envelope) == shape(reference)
    assert list(envelope) == list(reference) and list(envelope["kdf"]) == list(reference["kdf"])
    assert envelope["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert (envelope["kdf"]["name"], envelope["cipher"]["name"]) == ("scrypt", "nacl/secretbox")
    assert len(base64.b64decode(envelope["kdf"]["salt"])) == len(base64.b64decode(reference["kdf"]["salt"])) == 32
    assert len(base64.b64decode(envelope["cipher"]["nonce"])) == 24

    monkeypatch.setenv("COSIGN_PASSWORD", "test-password")
    private_key = cosign.load_private_key(str(sign_keys / "cosign.key"))
    pkcs8 = tmp_path / "decrypted.der"
    from cryptography.hazmat.primitives import serialization

    pkcs8.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    derived = tool_bytes("openssl", "pkey", "-inform", "DER", "-in", str(pkcs8), "-pubout")
    assert derived == (sign_keys / "cosign.pub").read_bytes()


def test_signing_uses_the_given_digest_without_reading_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path)
    digest = BundleDigest.from_file(bundle)
    moved = tmp_path / "elsewhere.bin"
    bundle.rename(moved)
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    output = tmp_path / "sig"

    sign_bundle(
        str(bundle), "cosign", key=str(COSIGN_FIXTURES / "cosign-label-n65536.key"), digest=digest, output=str(output)
    )

    checked = openssl_der_verify(
        COSIGN_FIXTURES / "cosign-label-n65536.pub", base64.b64decode(output.read_text()), moved, tmp_path
    )
    assert checked.returncode == 0, checked.stderr
