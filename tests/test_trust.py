"""Trust bundles (SIGNING_TRUST_BUNDLE): a file or directory of cosign keys, CA certificates, OpenPGP keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign import sign_bundle
from fastpack.sign.trust import Trust
from helpers_sign import COSIGN_FIXTURE_PASSWORD, COSIGN_FIXTURES, make_bundle, tampered_copy


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


@pytest.fixture
def signatures(bundle: Path, tmp_path: Path, sign_keys: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("COSIGN_PASSWORD", COSIGN_FIXTURE_PASSWORD)
    out = tmp_path / "signatures"
    out.mkdir()
    return {
        "cosign": sign_bundle(
            str(bundle), "cosign", key=str(COSIGN_FIXTURES / "cosign-label-n32768.key"), output=str(out / "c")
        ).text,
        "x509": sign_bundle(
            str(bundle),
            "x509",
            key=str(sign_keys / "signer.key"),
            cert=str(sign_keys / "signer.pem"),
            output=str(out / "x"),
        ).text,
        "pgp": sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc"), output=str(out / "p")).text,
    }


@pytest.fixture
def trust_dir(tmp_path: Path, sign_keys: Path) -> Path:
    directory = tmp_path / "trust"
    directory.mkdir()
    shutil.copy(COSIGN_FIXTURES / "cosign-label-n65536.pub", directory / "a-release.pub")
    shutil.copy(COSIGN_FIXTURES / "cosign-label-n32768.pub", directory / "b-release.pub")
    shutil.copy(sign_keys / "ca.pem", directory / "ca.pem")
    shutil.copy(sign_keys / "pgp-public.gpg", directory / "release.gpg")
    return directory


def test_directory_trusts_every_kind_of_material(trust_dir: Path, bundle: Path, signatures: dict[str, str]) -> None:
    trust = Trust.load(str(trust_dir))
    assert (len(trust.cosign_keys), len(trust.ca_certificates), len(trust.pgp_keys)) == (2, 1, 1)
    digest = BundleDigest.from_file(bundle)
    signers = {algorithm: trust.verify(text, algorithm, digest).signer for algorithm, text in signatures.items()}
    assert signers["cosign"].startswith("sha256:")
    assert signers["x509"] == "CN=fastpack signer"
    assert signers["pgp"] == trust.pgp_keys[0].hex_fingerprint


def test_single_file_with_several_pem_blocks_and_armored_pgp(
    tmp_path: Path, sign_keys: Path, bundle: Path, signatures: dict[str, str]
) -> None:
    combined = tmp_path / "trust.pem"
    combined.write_bytes(
        (COSIGN_FIXTURES / "cosign-label-n32768.pub").read_bytes()
        + (sign_keys / "ca.pem").read_bytes()
        + (sign_keys / "pgp-public.asc").read_bytes()
    )
    trust = Trust.load(str(combined))
    digest = BundleDigest.from_file(bundle)
    for algorithm, text in signatures.items():
        assert trust.verify(text, algorithm, digest).verified


def test_untrusted_signer_and_tampered_bundle_are_rejected(
    tmp_path: Path, bundle: Path, signatures: dict[str, str]
) -> None:
    only_other_key = tmp_path / "other.pub"
    shutil.copy(COSIGN_FIXTURES / "cosign-label-n65536.pub", only_other_key)
    with pytest.raises(SignatureError, match=r"does not verify with .*other\.pub \(wrong key or tampered bundle\)"):
        Trust.load(str(only_other_key)).verify(signatures["cosign"], "cosign", BundleDigest.from_file(bundle))


def test_tampered_bundle_is_rejected_for_every_algorithm(
    trust_dir: Path, tmp_path: Path, bundle: Path, signatures: dict[str, str]
) -> None:
    trust = Trust.load(str(trust_dir))
    tampered = BundleDigest.from_file(tampered_copy(bundle, tmp_path))
    for algorithm, text in signatures.items():
        with pytest.raises(SignatureError, match="tampered bundle"):
            trust.verify(text, algorithm, tampered)


def test_missing_material_and_wrong_algorithm(
    tmp_path: Path, sign_keys: Path, bundle: Path, signatures: dict[str, str]
) -> None:
    trust = Trust.load(str(sign_keys / "ca.pem"))
    digest = BundleDigest.from_file(bundle)
    with pytest.raises(SignatureError, match=r"trust bundle .*ca\.pem has no cosign public keys"):
        trust.verify(signatures["cosign"], "cosign", digest)
    with pytest.raises(SignatureError, match=r"this is a pgp signature, not x509 \(use --algorithm pgp\)"):
        trust.verify(signatures["pgp"], "x509", digest)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("secret.asc", None, "holds a private key; a trust bundle holds public material only"),
        ("notes.txt", b"just some text\n", "not a PEM key, certificate or OpenPGP key"),
        ("pubring.kbx", b"\x00\x00\x00\x20\x01\x01\x00\x00KBXf" + bytes(20), "gpg keybox"),
        ("weird.pem", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "unexpected PEM block X509 CRL"),
    ],
)
def test_bad_trust_files_are_named(
    name: str, content: bytes | None, message: str, tmp_path: Path, sign_keys: Path
) -> None:
    directory = tmp_path / "trust"
    directory.mkdir()
    shutil.copy(COSIGN_FIXTURES / "cosign-label-n65536.pub", directory / "good.pub")
    path = directory / name
    if content is None:
        shutil.copy(sign_keys / "pgp-secret.asc", path)
    else:
        path.write_bytes(content)
    with pytest.raises(SigningKeyError, match=message) as caught:
        Trust.load(str(directory))
    assert caught.value.path == str(path)


def test_empty_or_missing_trust(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="trust directory holds no key files"):
        Trust.load(str(tmp_path))
    with pytest.raises(SigningKeyError, match="trust file not found"):
        Trust.load(str(tmp_path / "nope.pem"))


def test_signatures_of_another_algorithm_are_named(trust_dir: Path, bundle: Path, signatures: dict[str, str]) -> None:
    trust = Trust.load(str(trust_dir))
    digest = BundleDigest.from_file(bundle)
    for claimed in ("cosign", "x509", "pgp"):
        for actual, text in signatures.items():
            if actual != claimed:
                with pytest.raises(SignatureError, match=f"this is a {actual} signature, not {claimed}"):
                    trust.verify(text, claimed, digest)
