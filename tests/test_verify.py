"""`fastpack verify`: one line per check, each failure reported on its own line, exit 1 on any failure.
Expected hashes come from hashlib; signatures from openssl and from `fastpack sign` with fresh keys."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastpack.cli import main
from fastpack.pack import pack
from fastpack.verify import SignatureRequest, verify_bundle
from helpers_bundles import MALICIOUS_TARS, VALID_MANIFEST, compress, end, member, sha256_file, write, zeros_bomb


def statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {check.name: check.status for check in report.checks}


def messages(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {check.name: check.message for check in report.checks}


@pytest.fixture
def bundle(tmp_path: Path, example_dist: Path) -> Path:
    out = tmp_path / "bundle.tar.zst"
    pack(example_dist, out)
    return out


def test_good_bundle_with_sidecar(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = sha256_file(bundle)
    assert main(["verify", str(bundle)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"ok   sha256: {expected} matches {bundle.parent / 'bundle.sha256'}"
    assert lines[1].startswith("ok   zstd: one frame, content checksum verified")
    assert lines[2] == "ok   tar: 7 entries (5 files, 2 directories, 0 symlinks), all paths safe"
    assert lines[3].startswith("ok   manifest: com.example.hello-extension")
    assert lines[4] == f"{bundle}: OK"


def test_expected_hash_from_flag_hex_and_file(bundle: Path, tmp_path: Path) -> None:
    expected = sha256_file(bundle)
    (bundle.parent / "bundle.sha256").unlink()
    report = verify_bundle(str(bundle))
    assert statuses(report)["sha256"] == "skip" and report.ok and report.sha256 == expected
    assert verify_bundle(str(bundle), expected_sha256=expected.upper()).ok
    other = write(tmp_path / "elsewhere.sha256", f"{expected}  bundle.tar.zst\n".encode())
    assert statuses(verify_bundle(str(bundle), expected_sha256=str(other)))["sha256"] == "ok"
    wrong = "0" * 64
    report = verify_bundle(str(bundle), expected_sha256=wrong)
    assert not report.ok
    assert messages(report)["sha256"] == f"bundle is {expected}, --sha256 expects {wrong}"
    assert statuses(report) == {"sha256": "fail", "zstd": "ok", "tar": "ok", "manifest": "ok"}


def test_bad_expected_hash_value(bundle: Path) -> None:
    report = verify_bundle(str(bundle), expected_sha256="abc")
    assert statuses(report)["sha256"] == "fail" and "expected a 64-hex SHA-256" in messages(report)["sha256"]


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS))
def test_malicious_tar_fails_tar_check_only(tmp_path: Path, case: str) -> None:
    tar, phrase, _ = MALICIOUS_TARS[case]
    path = write(tmp_path / "evil.tar.zst", compress(tar))
    report = verify_bundle(str(path), expected_sha256=sha256_file(path))
    assert [(check.name, check.status) for check in report.checks] == [
        ("sha256", "ok"),
        ("zstd", "ok"),
        ("tar", "fail"),
        ("manifest", "skip"),
    ]
    assert phrase in messages(report)["tar"]


def test_tampered_bundle_fails_hash_and_zstd(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(bundle.read_bytes())
    data[-2] ^= 0x10
    bundle.write_bytes(bytes(data))
    assert main(["verify", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert "FAIL sha256: bundle is " in out and "FAIL zstd: corrupt zstd frame" in out
    assert "skip tar: not checked" in out and "skip manifest: not checked" in out
    assert out.endswith(f"{bundle}: FAILED\n")


@pytest.mark.parametrize(
    ("mangle", "phrase"),
    [
        (lambda data: data[:-7], "truncated zstd frame"),
        (lambda data: data + b"trailing", "unexpected data after the zstd frame"),
    ],
)
def test_truncated_or_trailing(bundle: Path, mangle, phrase: str) -> None:  # type: ignore[no-untyped-def]
    bundle.write_bytes(mangle(bundle.read_bytes()))
    report = verify_bundle(str(bundle))
    assert statuses(report)["zstd"] == "fail" and phrase in messages(report)["zstd"]
    assert report.sha256 == sha256_file(bundle)  # the whole file was hashed, trailing bytes included
    assert statuses(report)["sha256"] == "fail"


def test_bomb(tmp_path: Path) -> None:
    report = verify_bundle(str(zeros_bomb(tmp_path / "bomb.tar.zst")))
    assert statuses(report)["zstd"] == "fail" and "compression ratio exceeds" in messages(report)["zstd"]
    assert report.sha256 == sha256_file(tmp_path / "bomb.tar.zst")


def test_invalid_and_missing_manifest(tmp_path: Path) -> None:
    doc = dict(VALID_MANIFEST, version="one")
    path = write(tmp_path / "a.tar.zst", compress(end(member("manifest.json", json.dumps(doc).encode()))))
    report = verify_bundle(str(path))
    assert statuses(report)["manifest"] == "fail"
    assert messages(report)["manifest"] == (
        "invalid manifest: version: must be X.Y.Z (optionally -prerelease / +build) or X.Y.*, got 'one'; "
        "runtime: runtime 'wasm-js@1' needs dist/main.wasm, which is not in the bundle; "
        "ui.entry: ui/index.html is not in the bundle"
    )
    path = write(tmp_path / "b.tar.zst", compress(end(member("readme", b"hi"))))
    assert messages(verify_bundle(str(path)))["manifest"] == "no manifest.json at the bundle root"


def test_json_report(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(bundle), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["sha256"] == sha256_file(bundle)
    assert report["size"] == bundle.stat().st_size
    assert [check["check"] for check in report["checks"]] == ["sha256", "zstd", "tar", "manifest"]


def test_missing_bundle_exit_code(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fastpack", "verify", str(tmp_path / "nope.tar.zst")], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr == f"fastpack: error: {tmp_path}/nope.tar.zst: no such file\n"


# --- signatures -------------------------------------------------------------------------------------------


@pytest.fixture
def openssl_key(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "ec.pem", tmp_path / "ec.pub"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key], check=True
    )
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True)
    return key, pub


def openssl_cosign_signature(bundle: Path, key: Path) -> Path:
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, bundle], capture_output=True, check=True).stdout
    return write(bundle.with_name(bundle.name + ".sig"), base64.b64encode(der))


def test_openssl_made_cosign_signature(bundle: Path, openssl_key: tuple[Path, Path]) -> None:
    key, pub = openssl_key
    signature = openssl_cosign_signature(bundle, key)
    report = verify_bundle(str(bundle), signature=SignatureRequest(str(signature), "cosign", key=str(pub)))
    assert statuses(report)["signature"] == "ok" and report.ok
    assert report.signature is not None and report.signature["verified"] is True


def test_signature_of_other_bundle_fails(
    bundle: Path, tmp_path: Path, openssl_key: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = openssl_key
    signature = openssl_cosign_signature(bundle, key)
    other = write(
        tmp_path / "other.tar.zst", compress(end(member("manifest.json", json.dumps(VALID_MANIFEST).encode())))
    )
    args = ["verify", str(other), "--signature", str(signature), "--algorithm", "cosign", "--key", str(pub)]
    assert main(args) == 1
    assert "FAIL signature: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(b"bm90IGEgc2lnbmF0dXJl", ""), (b"\x00\x01garbage", ""), (None, "signature file not found")],
    ids=["base64-garbage", "binary-garbage", "missing"],
)
def test_bad_signature_files(bundle: Path, tmp_path: Path, openssl_key: tuple[Path, Path], content, phrase) -> None:  # type: ignore[no-untyped-def]
    _, pub = openssl_key
    signature = tmp_path / "sig"
    if content is not None:
        signature.write_bytes(content)
    report = verify_bundle(str(bundle), signature=SignatureRequest(str(signature), "cosign", key=str(pub)))
    assert statuses(report)["signature"] == "fail" and not report.ok
    assert phrase in messages(report)["signature"]
    assert statuses(report)["manifest"] == "ok"  # other checks still reported


def test_fastpack_signatures_round_trip_and_wrong_trust(bundle: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    env = dict(os.environ, COSIGN_PASSWORD="pw")
    for algorithm in ("cosign", "x509", "pgp"):
        subprocess.run(
            [sys.executable, "-m", "fastpack", "keygen", "-a", algorithm, "-d", str(keys)],
            check=True,
            env=env,
            capture_output=True,
        )
    signing = {
        "cosign": ["--key", str(keys / "cosign.key")],
        "x509": ["--key", str(keys / "signer.key"), "--cert", str(keys / "signer.pem")],
        "pgp": ["--key", str(keys / "pgp-secret.asc")],
    }
    trust = {
        "cosign": ["--key", str(keys / "cosign.pub")],
        "x509": ["--ca", str(keys / "ca.pem")],
        "pgp": ["--keyring", str(keys / "pgp-public.asc")],
    }
    for algorithm, flags in signing.items():
        signature = tmp_path / f"{algorithm}.sig"
        subprocess.run(
            [sys.executable, "-m", "fastpack", "sign", str(bundle), "-q", "--algorithm", algorithm, *flags,
             "--output", str(signature)],
            check=True,
            env=env,
            capture_output=True,
        )  # fmt: skip
        ok = run_verify(bundle, "--signature", signature, "--algorithm", algorithm, *trust[algorithm])
        assert ok.returncode == 0 and f"ok   signature: valid {algorithm} signature" in ok.stdout
    wrong = run_verify(bundle, "--signature", tmp_path / "x509.sig", "--algorithm", "cosign", *trust["cosign"])
    assert wrong.returncode == 1 and "FAIL signature: " in wrong.stdout
    wrong_key = tmp_path / "other.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tmp_path / "o.pem"])
    subprocess.run(["openssl", "ec", "-in", tmp_path / "o.pem", "-pubout", "-out", wrong_key], capture_output=True)
    wrong = run_verify(bundle, "--signature", tmp_path / "cosign.sig", "--algorithm", "cosign", "--key", wrong_key)
    assert wrong.returncode == 1 and "FAIL signature: " in wrong.stdout


def run_verify(bundle: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastpack", "verify", str(bundle), *map(str, args)], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--signature", "s"], "--signature needs --algorithm"),
        (["--signature", "s", "--algorithm", "cosign"], "--signature needs the trust"),
        (["--algorithm", "cosign", "--key", "k"], "need --signature"),
    ],
)
def test_signature_usage_errors(bundle: Path, args: list[str], phrase: str) -> None:
    result = run_verify(bundle, *args)
    assert result.returncode == 2 and phrase in result.stderr
