"""x509: detached CMS SignedData (RFC 5652) built from the bundle's digest, and its verification.

The bundle's SHA-256 goes into the `messageDigest` signed attribute; the key
signs the DER SET OF signed attributes, so the bundle is never read again.
"""

from __future__ import annotations

import datetime
from typing import Any

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign.pem import b64decode, pem_blocks, pem_encode, read_material

CMS_LABELS = ("CMS", "PKCS7")
_MAX_CHAIN = 8

KEYGEN_FILES = ("ca.pem", "ca.key", "signer.pem", "signer.key")


def load_certificates(path: str, what: str = "certificate") -> list[Any]:
    from cryptography import x509

    data = read_material(path, what)
    blocks = [lines for label, lines in pem_blocks(data) if label in ("CERTIFICATE", "TRUSTED CERTIFICATE")]
    if not blocks:
        found = ", ".join(label for label, _ in pem_blocks(data)) or "no PEM block"
        raise SigningKeyError(f"expected a PEM {what} (CERTIFICATE), found {found}", path=path)
    bad = SigningKeyError(f"{what} is not valid PEM", path=path)
    try:
        return [x509.load_der_x509_certificate(b64decode("".join(lines), bad)) for lines in blocks]
    except (ValueError, x509.InvalidVersion) as exc:
        raise SigningKeyError(f"cannot read {what}: {exc}", path=path) from None


def _load_private_key(path: str, password: bytes | None) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    data = read_material(path, "signing key")
    labels = [label for label, _ in pem_blocks(data)]
    key_labels = [label for label in labels if label.endswith("PRIVATE KEY")]
    if any(label.startswith("ENCRYPTED SIGSTORE") or label.startswith("ENCRYPTED COSIGN") for label in key_labels):
        raise SigningKeyError("this is a cosign key, not an x509 signing key (use --algorithm cosign)", path=path)
    if not key_labels:
        found = ", ".join(labels) or "no PEM block"
        raise SigningKeyError(f"expected a PEM private key for x509 signing, found {found}", path=path)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        raise SigningKeyError("private key is encrypted and no password was given", path=path) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"cannot read private key (wrong password?): {exc}", path=path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SigningKeyError("x509 signing needs an ECDSA or RSA key", path=path)
    return key


def _spki(key_or_cert: Any) -> bytes | None:
    """SubjectPublicKeyInfo DER of a public key or a certificate's key (None if cryptography cannot load it)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = key_or_cert.public_key() if isinstance(key_or_cert, x509.Certificate) else key_or_cert
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, UnsupportedAlgorithm):
        return None


def load_signer(key: str, cert: str | None, chain: str | None, password: bytes | None) -> tuple[Any, list[Any]]:
    """(private key, [signer certificate, chain...]); the certificate may sit in the key file."""

    private_key = _load_private_key(key, password)
    if cert is None and b"-----BEGIN CERTIFICATE-----" not in read_material(key, "signing key"):
        raise SigningKeyError(
            "x509 signing needs the signer certificate: pass --cert or set FASTPACK_SIGNING_CERT", path=key
        )
    certificates = load_certificates(cert or key, "signing certificate")
    mine = _spki(private_key.public_key())
    matching = [c for c in certificates if _spki(c) == mine]
    if not matching:
        raise SigningKeyError(f"certificate does not match the private key {key}", path=cert or key)
    leaf = matching[0]
    extra = [c for c in certificates if c is not leaf]
    if chain:
        extra += load_certificates(chain, "certificate chain")
    return private_key, [leaf, *extra]


def _signature_algorithm(private_key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    return "sha256_ecdsa" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "rsassa_pkcs1v15"


def _sign_bytes(private_key: Any, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def sign(digest: BundleDigest, private_key: Any, certificates: list[Any]) -> str:
    """PEM `CMS` detached SignedData over the bundle whose SHA-256 is `digest`."""
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    certs = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in certificates]
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": now})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest.digest]}),
        ]
    )
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": certs[0].issuer, "serial_number": certs[0].serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": _signature_algorithm(private_key)},
            "signature": _sign_bytes(private_key, signed_attrs.dump()),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": certs,
            "signer_infos": [signer],
        }
    )
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return pem_encode("CMS", content_info.dump())


def _parse(text: str) -> Any:
    from asn1crypto import cms

    garbage = SignatureError("not a CMS signature (expected PEM '-----BEGIN CMS-----' or PKCS7)")
    blocks = [lines for label, lines in pem_blocks(text.encode("utf-8", "replace")) if label in CMS_LABELS]
    if len(blocks) != 1:
        raise garbage
    try:
        info = cms.ContentInfo.load(b64decode("".join(blocks[0]), garbage))
        if info["content_type"].native != "signed_data":
            raise SignatureError(f"CMS content is {info['content_type'].native}, expected signed_data")
        signed = info["content"]
        signed.native  # noqa: B018 - parse everything now so malformed input fails here, not later
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise garbage from None
    if signed["encap_content_info"]["content"].native is not None:
        raise SignatureError("CMS signature is not detached (it embeds content)")
    if len(signed["signer_infos"]) == 0:
        raise SignatureError("CMS signature has no signer")
    return signed


def _attribute(signer_info: Any, name: str) -> Any:
    values = [attr["values"] for attr in signer_info["signed_attrs"] if attr["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        raise SignatureError(f"CMS signer must have exactly one {name} signed attribute")
    return values[0][0].native


def _find_signer_cert(signer_info: Any, certificates: list[Any]) -> Any:
    from cryptography import x509

    sid = signer_info["sid"]
    for cert in certificates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and cert.issuer.public_bytes() == (
                wanted["issuer"].dump()
            ):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return cert
    raise SignatureError("CMS signature does not include the signer's certificate")


def _verify_bytes(public_key: Any, signature: bytes, data: bytes, algorithm: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm in ("sha256_ecdsa", "ecdsa"):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey) and algorithm in ("rsassa_pkcs1v15", "sha256_rsa"):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SignatureError(f"unsupported CMS signature algorithm {algorithm} for this certificate's key")
    except InvalidSignature:
        raise SignatureError(
            "CMS signature is invalid: signed attributes do not verify with the signer certificate"
        ) from None


def _check_dates(cert: Any, now: datetime.datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SignatureError(
            f"certificate {cert.subject.rfc4514_string()} is not valid now "
            f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})"
        )


def _is_ca(cert: Any) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: Any, issuer: Any) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_chain(leaf: Any, intermediates: list[Any], anchors: list[Any]) -> Any:
    """The trust anchor that `leaf` chains to (signatures, validity dates, CA flags), else SignatureError."""
    now = datetime.datetime.now(datetime.timezone.utc)
    anchor_ders = {anchor.tbs_certificate_bytes for anchor in anchors}
    cert = leaf
    _check_dates(cert, now)
    for _ in range(_MAX_CHAIN):
        if cert.tbs_certificate_bytes in anchor_ders:
            return cert
        for anchor in anchors:
            if _issued_by(cert, anchor):
                _check_dates(anchor, now)
                return anchor
        parents = [c for c in intermediates if c is not cert and _is_ca(c) and _issued_by(cert, c)]
        if not parents:
            break
        cert = parents[0]
        _check_dates(cert, now)
    raise SignatureError(f"signer certificate {leaf.subject.rfc4514_string()} does not chain to a trusted CA")


def verify(text: str, digest: BundleDigest, anchors: list[Any], sources: str) -> str:
    """Subject of the signer certificate, once every signer verifies and chains to `anchors`."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    signed = _parse(text)
    try:
        return _verify_signers(signed, digest, anchors, sources)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        UnsupportedAlgorithm,
        x509.InvalidVersion,
    ) as exc:
        raise SignatureError(f"malformed CMS signature: {exc}") from None


def _verify_signers(signed: Any, digest: BundleDigest, anchors: list[Any], sources: str) -> str:
    from cryptography import x509

    if signed["encap_content_info"]["content_type"].native != "data":
        raise SignatureError("CMS encapsulated content type is not id-data")
    certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"] or []]
    subject = ""
    for signer_info in signed["signer_infos"]:
        if signer_info["digest_algorithm"]["algorithm"].native != "sha256":
            raise SignatureError(
                f"only SHA-256 CMS signatures are supported, this one uses "
                f"{signer_info['digest_algorithm']['algorithm'].native}"
            )
        if not signer_info["signed_attrs"]:
            raise SignatureError("CMS signer has no signed attributes (messageDigest is required)")
        if _attribute(signer_info, "content_type") != "data":
            raise SignatureError("CMS signed contentType is not id-data")
        if _attribute(signer_info, "message_digest") != digest.digest:
            raise SignatureError(
                "bundle does not match the signature: its SHA-256 differs from the signed messageDigest "
                "(tampered bundle or a signature of another bundle)"
            )
        cert = _find_signer_cert(signer_info, certificates)
        attrs_der = b"\x31" + signer_info["signed_attrs"].dump()[1:]
        algorithm = signer_info["signature_algorithm"]["algorithm"].native
        _verify_bytes(cert.public_key(), signer_info["signature"].native, attrs_der, algorithm)
        try:
            check_chain(cert, certificates, anchors)
        except SignatureError as exc:
            raise SignatureError(f"{exc} (trusted: {sources})") from None
        subject = cert.subject.rfc4514_string()
    return subject


def _private_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(subject: Any, issuer: Any, public_key: Any, issuer_key: Any, *, ca: bool, days: int) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    usage.update({"key_cert_sign": True, "crl_sign": True} if ca else {"digital_signature": True})
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def keygen(name: str | None = None) -> list[tuple[str, bytes, bool]]:
    """A test CA (ca.pem, ca.key) and a signer certificate it issued (signer.pem, signer.key), ECDSA P-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fastpack signing CA")])
    signer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name or "fastpack signer")])
    ca_cert = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True, days=3650)
    signer_cert = _certificate(signer_name, ca_name, signer_key.public_key(), ca_key, ca=False, days=825)
    pem = serialization.Encoding.PEM
    return [
        ("ca.pem", ca_cert.public_bytes(pem), False),
        ("ca.key", _private_pem(ca_key), True),
        ("signer.pem", signer_cert.public_bytes(pem), False),
        ("signer.key", _private_pem(signer_key), True),
    ]
