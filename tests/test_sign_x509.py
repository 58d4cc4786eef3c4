"""x509 signatures: detached CMS that `openssl cms -verify` accepts, and openssl's CMS verified by fastpack."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign import sign_bundle, verify_signature
from helpers_sign import make_bundle, openssl_cms_verify, run_tool, tampered_copy


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


def _sign(bundle: Path, keys: Path, **options: Any) -> Path:
    result = sign_bundle(str(bundle), "x509", key=str(keys / "signer.key"), cert=str(keys / "signer.pem"), **options)
    return Path(result.path)


def test_openssl_accepts_fastpack_cms_and_rejects_a_tampered_bundle(
    bundle: Path, tmp_path: Path, sign_keys: Path
) -> None:
    signature = _sign(bundle, sign_keys)
    assert signature.read_text().startswith("-----BEGIN CMS-----\n")

    accepted = openssl_cms_verify(signature, bundle, sign_keys / "ca.pem")
    assert accepted.returncode == 0, accepted.stderr
    assert "Verification successful" in accepted.stderr
    rejected = openssl_cms_verify(signature, tampered_copy(bundle, tmp_path), sign_keys / "ca.pem")
    assert rejected.returncode != 0


def test_signed_attributes_as_openssl_prints_them(bundle: Path, sign_keys: Path) -> None:
    signature = _sign(bundle, sign_keys)
    printed = run_tool("openssl", "cms", "-cmsout", "-print", "-inform", "PEM", "-in", signature)
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout.replace(" ", "").replace("\n", "").lower()
    for attribute in ("contenttype", "signingtime", "messagedigest"):
        assert attribute in text
    parsed = run_tool("openssl", "asn1parse", "-inform", "PEM", "-in", signature).stdout.splitlines()
    at = next(index for index, line in enumerate(parsed) if ":messageDigest" in line)
    digest_line = next(line for line in parsed[at:] if "OCTET STRING" in line)
    assert digest_line.split("[HEX DUMP]:")[1].lower() == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert "eContent: <ABSENT>".replace(" ", "").lower() in text
    assert "cn=fastpacksigner" in text


def test_fastpack_verifies_its_own_and_rejects_tampering(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    signature = _sign(bundle, sign_keys).read_text()
    info = verify_signature(signature, "x509", BundleDigest.from_file(bundle), ca=str(sign_keys / "ca.pem"))
    assert (info.algorithm, info.verified, info.signer) == ("x509", True, "CN=fastpack signer")
    with pytest.raises(SignatureError, match="differs from the signed messageDigest"):
        verify_signature(
            signature, "x509", BundleDigest.from_file(tampered_copy(bundle, tmp_path)), ca=str(sign_keys / "ca.pem")
        )


@pytest.mark.parametrize("keyid", [False, True], ids=["issuer-serial", "subject-key-id"])
def test_fastpack_verifies_openssl_cms_sign(keyid: bool, bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    signature = tmp_path / "openssl.cms"
    made = run_tool(
        "openssl", "cms", "-sign", "-binary", "-outform", "PEM", "-in", bundle, "-signer", sign_keys / "signer.pem",
        "-inkey", sign_keys / "signer.key", "-out", signature, *(["-keyid"] if keyid else []),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    ca = str(sign_keys / "ca.pem")

    info = verify_signature(signature.read_text(), "x509", BundleDigest.from_file(bundle), ca=ca)
    assert info.signer == "CN=fastpack signer"
    with pytest.raises(SignatureError, match="messageDigest"):
        verify_signature(signature.read_text(), "x509", BundleDigest.from_file(tampered_copy(bundle, tmp_path)), ca=ca)


def test_pkcs7_label_and_rsa_keys(bundle: Path, tmp_path: Path) -> None:
    key, cert = tmp_path / "rsa.key", tmp_path / "rsa.pem"
    made = run_tool(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
        "-subj", "/CN=rsa signer", "-days", "2",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = sign_bundle(str(bundle), "x509", key=str(key), cert=str(cert), output=str(tmp_path / "sig"))
    accepted = openssl_cms_verify(Path(result.path), bundle, cert)
    assert accepted.returncode == 0, accepted.stderr

    as_pkcs7 = result.text.replace("BEGIN CMS", "BEGIN PKCS7").replace("END CMS", "END PKCS7")
    assert verify_signature(as_pkcs7, "x509", BundleDigest.from_file(bundle), ca=str(cert)).signer == "CN=rsa signer"


# --- chains, other CAs, dates: certificates built here, judged by openssl too ------------------------------------


def _cert(name: str, issuer: tuple[Any, Any] | None, *, ca: bool, days: tuple[int, int] = (-1, 30)) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def _write(directory: Path, name: str, cert: Any, key: Any | None = None) -> Path:
    from cryptography.hazmat.primitives import serialization

    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (directory / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return directory / f"{name}.pem"


def test_chain_through_an_intermediate(bundle: Path, tmp_path: Path) -> None:
    root = _cert("root", None, ca=True)
    intermediate = _cert("intermediate", root, ca=True)
    leaf = _cert("leaf", intermediate, ca=False)
    root_pem = _write(tmp_path, "root", *root)
    chain = _write(tmp_path, "intermediate", intermediate[0])
    _write(tmp_path, "leaf", *leaf)
    digest = BundleDigest.from_file(bundle)
    options = {"key": str(tmp_path / "leaf.key"), "cert": str(tmp_path / "leaf.pem")}

    with_chain = sign_bundle(str(bundle), "x509", chain=str(chain), output=str(tmp_path / "with"), **options)
    assert openssl_cms_verify(Path(with_chain.path), bundle, root_pem).returncode == 0
    assert verify_signature(with_chain.text, "x509", digest, ca=str(root_pem)).signer == "CN=leaf"

    without = sign_bundle(str(bundle), "x509", output=str(tmp_path / "without"), **options)
    assert openssl_cms_verify(Path(without.path), bundle, root_pem).returncode != 0
    with pytest.raises(SignatureError, match="signer certificate CN=leaf does not chain to a trusted CA"):
        verify_signature(without.text, "x509", digest, ca=str(root_pem))


def test_signer_from_another_ca_is_rejected(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    other_ca = _write(tmp_path, "other", _cert("other CA", None, ca=True)[0])
    signature = _sign(bundle, sign_keys, output=str(tmp_path / "sig"))
    assert openssl_cms_verify(signature, bundle, other_ca).returncode != 0
    with pytest.raises(SignatureError, match=r"does not chain to a trusted CA \(trusted: .*other\.pem\)"):
        verify_signature(signature.read_text(), "x509", BundleDigest.from_file(bundle), ca=str(other_ca))


def test_expired_signer_certificate_is_rejected(bundle: Path, tmp_path: Path) -> None:
    root = _cert("root", None, ca=True)
    expired = _cert("expired", root, ca=False, days=(-30, -1))
    root_pem = _write(tmp_path, "root", *root)
    _write(tmp_path, "expired", *expired)
    result = sign_bundle(
        str(bundle),
        "x509",
        key=str(tmp_path / "expired.key"),
        cert=str(tmp_path / "expired.pem"),
        output=str(tmp_path / "s"),
    )
    assert openssl_cms_verify(Path(result.path), bundle, root_pem).returncode != 0
    with pytest.raises(SignatureError, match="certificate CN=expired is not valid now"):
        verify_signature(result.text, "x509", BundleDigest.from_file(bundle), ca=str(root_pem))


@pytest.mark.parametrize(
    "text",
    ["garbage", "-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n", "-----BEGIN CMS-----\n!!!!\n-----END CMS-----\n"],
    ids=["no-pem", "bad-der", "bad-base64"],
)
def test_garbage_cms_is_rejected(text: str, bundle: Path, sign_keys: Path) -> None:
    with pytest.raises(SignatureError, match="not a CMS signature"):
        verify_signature(text, "x509", BundleDigest.from_file(bundle), ca=str(sign_keys / "ca.pem"))


def test_certificate_must_match_the_key_and_be_given(bundle: Path, sign_keys: Path) -> None:
    with pytest.raises(SigningKeyError, match="certificate does not match the private key"):
        sign_bundle(str(bundle), "x509", key=str(sign_keys / "signer.key"), cert=str(sign_keys / "ca.pem"))
    with pytest.raises(SigningKeyError, match="needs the signer certificate: pass --cert or set FASTPACK_SIGNING_CERT"):
        sign_bundle(str(bundle), "x509", key=str(sign_keys / "signer.key"))
    with pytest.raises(SigningKeyError, match="this is a cosign key, not an x509 signing key"):
        sign_bundle(str(bundle), "x509", key=str(sign_keys / "cosign.key"), cert=str(sign_keys / "signer.pem"))
    assert os.listdir(bundle.parent) == [bundle.name]


def test_keygen_certificates_as_openssl_sees_them(sign_keys: Path) -> None:
    chained = run_tool("openssl", "verify", "-CAfile", sign_keys / "ca.pem", sign_keys / "signer.pem")
    assert chained.returncode == 0, chained.stderr
    ca = run_tool("openssl", "x509", "-in", sign_keys / "ca.pem", "-noout", "-text").stdout
    assert "CA:TRUE" in ca and "Certificate Sign" in ca
    signer = run_tool("openssl", "x509", "-in", sign_keys / "signer.pem", "-noout", "-text").stdout
    assert "CA:FALSE" in signer and "Digital Signature" in signer
    assert oct(os.stat(sign_keys / "signer.key").st_mode & 0o777) == "0o600"


def test_every_corrupted_byte_gives_a_signature_error_not_a_crash(bundle: Path, sign_keys: Path) -> None:
    import base64

    text = _sign(bundle, sign_keys).read_text()
    der = base64.b64decode("".join(text.strip().splitlines()[1:-1]))
    digest = BundleDigest.from_file(bundle)
    outcomes = set()
    for position in range(len(der)):
        corrupted = bytearray(der)
        corrupted[position] ^= 0x41
        pem = "-----BEGIN CMS-----\n" + base64.b64encode(bytes(corrupted)).decode() + "\n-----END CMS-----\n"
        try:
            verify_signature(pem, "x509", digest, ca=str(sign_keys / "ca.pem"))
            outcomes.add("verified")
        except SignatureError:
            outcomes.add("rejected")
    assert "rejected" in outcomes
