"""OpenPGP signatures: gpgv accepts fastpack's, fastpack verifies gpg's, keys import into gpg."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastpack.errors import SignatureError, SigningKeyError
from fastpack.hashing import BundleDigest
from fastpack.sign import sign_bundle, verify_signature
from fastpack.sign.pgp import crc24
from helpers_sign import gnupg_home, gpgv, make_bundle, run_tool, tampered_copy, tool_bytes


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


@pytest.fixture
def gpg_env() -> Iterator[dict[str, str]]:
    with gnupg_home() as env:
        yield env


def _fingerprint(env: dict[str, str]) -> str:
    listing = run_tool("gpg", "--batch", "--with-colons", "--list-keys", env=env).stdout.splitlines()
    return next(line.split(":")[9] for line in listing if line.startswith("fpr:"))


def gpg_detach_sign(bundle: Path, signature: Path, gpg_env: dict[str, str], *, digest: str) -> None:
    """An armored detached signature made by gpg itself, the independent signer."""
    made = run_tool(
        "gpg", "--batch", "--yes", "--detach-sign", "--armor", "--digest-algo", digest, "-o", signature, bundle,
        env=gpg_env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def test_gpgv_accepts_fastpack_signature_and_rejects_a_tampered_bundle(
    bundle: Path, tmp_path: Path, sign_keys: Path
) -> None:
    result = sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc"))
    signature = Path(result.path)
    assert signature.read_text().startswith("-----BEGIN PGP SIGNATURE-----\n")

    accepted = gpgv(sign_keys / "pgp-public.gpg", signature, bundle)
    assert accepted.returncode == 0, accepted.stderr
    assert "Good signature" in accepted.stderr and result.signer in accepted.stderr.replace(" ", "")
    rejected = gpgv(sign_keys / "pgp-public.gpg", signature, tampered_copy(bundle, tmp_path))
    assert rejected.returncode != 0 and "BAD signature" in rejected.stderr


def test_fastpack_verifies_its_own_and_rejects_tampering(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    text = sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc")).text
    for keyring in ("pgp-public.asc", "pgp-public.gpg"):
        info = verify_signature(text, "pgp", BundleDigest.from_file(bundle), keyring=str(sign_keys / keyring))
        assert info.verified and len(info.signer) == 40
    with pytest.raises(SignatureError, match="bundle does not match the OpenPGP signature"):
        verify_signature(
            text,
            "pgp",
            BundleDigest.from_file(tampered_copy(bundle, tmp_path)),
            keyring=str(sign_keys / "pgp-public.asc"),
        )


def test_keygen_keys_import_into_gpg_and_gpg_signatures_verify(
    bundle: Path, tmp_path: Path, sign_keys: Path, gpg_env: dict[str, str]
) -> None:
    imported = run_tool("gpg", "--batch", "--import", sign_keys / "pgp-secret.asc", env=gpg_env)
    assert imported.returncode == 0 and "secret keys imported: 1" in imported.stderr, imported.stderr
    listing = run_tool("gpg", "--batch", "--list-secret-keys", env=gpg_env).stdout
    assert "ed25519" in listing and "fastpack signer" in listing
    signature = tmp_path / "gpg.asc"
    gpg_detach_sign(bundle, signature, gpg_env, digest="SHA256")

    info = verify_signature(
        signature.read_text(), "pgp", BundleDigest.from_file(bundle), keyring=str(sign_keys / "pgp-public.asc")
    )
    assert info.signer == _fingerprint(gpg_env)
    dearmored = run_tool(
        "gpg", "--batch", "--dearmor", "-o", tmp_path / "pub.gpg", sign_keys / "pgp-public.asc", env=gpg_env
    )
    assert dearmored.returncode == 0
    assert (tmp_path / "pub.gpg").read_bytes() == (sign_keys / "pgp-public.gpg").read_bytes()


def test_rsa_key_generated_by_gpg_both_ways(bundle: Path, tmp_path: Path, gpg_env: dict[str, str]) -> None:
    generated = run_tool(
        "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "RSA Signer <rsa@example.test>", "rsa3072",
        "sign", "never", env=gpg_env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    public, secret = tmp_path / "rsa-pub.gpg", tmp_path / "rsa-secret.gpg"
    public.write_bytes(tool_bytes("gpg", "--batch", "--export", "rsa@example.test", env=gpg_env))
    secret.write_bytes(
        tool_bytes(
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--export-secret-keys",
            "rsa@example.test",
            env=gpg_env,
        )
    )
    theirs = tmp_path / "theirs.asc"
    gpg_detach_sign(bundle, theirs, gpg_env, digest="SHA256")
    digest = BundleDigest.from_file(bundle)
    assert verify_signature(theirs.read_text(), "pgp", digest, keyring=str(public)).signer == _fingerprint(gpg_env)

    ours = sign_bundle(str(bundle), "pgp", key=str(secret), output=str(tmp_path / "ours.asc"))
    accepted = gpgv(public, Path(ours.path), bundle)
    assert accepted.returncode == 0 and "RSA Signer" in accepted.stderr, accepted.stderr


def test_non_sha256_signatures_are_refused_by_name(
    bundle: Path, tmp_path: Path, sign_keys: Path, gpg_env: dict[str, str]
) -> None:
    assert run_tool("gpg", "--batch", "--import", sign_keys / "pgp-secret.asc", env=gpg_env).returncode == 0
    signature = tmp_path / "sha512.asc"
    gpg_detach_sign(bundle, signature, gpg_env, digest="SHA512")
    with pytest.raises(SignatureError, match="only SHA-256 OpenPGP signatures are supported, this one uses SHA-512"):
        verify_signature(
            signature.read_text(), "pgp", BundleDigest.from_file(bundle), keyring=str(sign_keys / "pgp-public.asc")
        )


def test_wrong_keyring_names_the_signing_key(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    from fastpack.sign.keygen import keygen

    other = tmp_path / "other"
    other.mkdir()
    keygen("pgp", str(other))
    result = sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc"), output=str(tmp_path / "sig"))
    assert gpgv(other / "pgp-public.gpg", Path(result.path), bundle).returncode != 0
    with pytest.raises(
        SignatureError, match=f"signed by OpenPGP key {result.signer}, which is not in .*other/pgp-public.asc"
    ):
        verify_signature(result.text, "pgp", BundleDigest.from_file(bundle), keyring=str(other / "pgp-public.asc"))


def test_altered_armor_fails_its_checksum(bundle: Path, sign_keys: Path) -> None:
    text = sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc")).text
    lines = text.splitlines()
    body = lines[2]
    lines[2] = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(SignatureError, match=r"CRC-24"):
        verify_signature(
            "\n".join(lines), "pgp", BundleDigest.from_file(bundle), keyring=str(sign_keys / "pgp-public.asc")
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("garbage", "not an OpenPGP signature"),
        ("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n", "malformed OpenPGP signature"),
        ("-----BEGIN PGP SIGNATURE-----\n\nwAA=\n-----END PGP SIGNATURE-----\n", "found 0"),
    ],
    ids=["no-armor", "not-packets", "no-signature-packet"],
)
def test_garbage_signature_is_rejected(text: str, message: str, bundle: Path, sign_keys: Path) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(text, "pgp", BundleDigest.from_file(bundle), keyring=str(sign_keys / "pgp-public.asc"))


def test_crc24_matches_the_rfc_4880_reference() -> None:
    # RFC 4880 §6.1: CRC-24 of the empty string is the initial value 0xB704CE.
    assert crc24(b"") == 0xB704CE
    assert crc24(b"123456789") == 0x21CF02  # the CRC-24/OPENPGP check value


def test_key_files_that_cannot_sign_are_refused(bundle: Path, sign_keys: Path) -> None:
    with pytest.raises(SigningKeyError, match="this is an OpenPGP public key; signing needs the secret key"):
        sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-public.asc"))
    with pytest.raises(SigningKeyError, match="not an OpenPGP key but PEM PRIVATE KEY"):
        sign_bundle(str(bundle), "pgp", key=str(sign_keys / "signer.key"))
    assert os.listdir(bundle.parent) == [bundle.name]
    assert oct(os.stat(sign_keys / "pgp-secret.asc").st_mode & 0o777) == "0o600"


def test_every_corrupted_byte_gives_a_signature_error_not_a_crash(bundle: Path, sign_keys: Path) -> None:
    from fastpack.sign.pgp import armor, dearmor

    text = sign_bundle(str(bundle), "pgp", key=str(sign_keys / "pgp-secret.asc")).text
    packets = dearmor(text.encode(), ("PGP SIGNATURE",))
    assert packets is not None
    digest = BundleDigest.from_file(bundle)
    assert packets[0] == 0xC2 and packets[1] < 192  # new-format signature packet, one-octet length
    signed_end = 2 + 6 + int.from_bytes(packets[6:8], "big")  # header, version..hash algorithm, hashed subpackets
    for position in range(len(packets)):
        corrupted = bytearray(packets)
        corrupted[position] ^= 0x41
        try:
            verify_signature(
                armor("PGP SIGNATURE", bytes(corrupted)), "pgp", digest, keyring=str(sign_keys / "pgp-public.asc")
            )
        except SignatureError:
            continue
        assert position >= signed_end, f"a change at byte {position}, inside the signed header, still verified"
