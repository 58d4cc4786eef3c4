"""`fastpack sign` and `fastpack keygen` as a user runs them: outputs, exit codes, messages, nothing left behind."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_sign import (
    COSIGN_FIXTURE_PASSWORD,
    COSIGN_FIXTURES,
    gpgv,
    make_bundle,
    openssl_cms_verify,
    openssl_der_verify,
    run_cli,
)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


def test_reference_command_line_with_environment(bundle: Path, tmp_path: Path) -> None:
    key = tmp_path / "cosign.key"
    shutil.copy(COSIGN_FIXTURES / "cosign-label-n65536.key", key)
    env = {"FASTPACK_SIGNING_KEY": str(key), "COSIGN_PASSWORD": COSIGN_FIXTURE_PASSWORD}

    done = run_cli("sign", bundle, "--algorithm", "cosign", env=env)

    assert done.returncode == 0, done.stderr
    signature = Path(f"{bundle}.SIGNATURE")
    assert done.stdout.strip() == str(signature)
    der = base64.b64decode(signature.read_text().strip())
    checked = openssl_der_verify(COSIGN_FIXTURES / "cosign-label-n65536.pub", der, bundle, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_json_result_and_x509_from_environment(bundle: Path, sign_keys: Path) -> None:
    env = {
        "FASTPACK_SIGNING_KEY": str(sign_keys / "signer.key"),
        "FASTPACK_SIGNING_CERT": str(sign_keys / "signer.pem"),
    }
    done = run_cli("sign", bundle, "--algorithm", "x509", "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {
        "algorithm": "x509",
        "path": f"{bundle}.SIGNATURE",
        "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
        "signer": "CN=fastpack signer",
        "bundle_out": None,
    }
    assert openssl_cms_verify(Path(result["path"]), bundle, sign_keys / "ca.pem").returncode == 0


def test_pgp_with_output_and_sidecar_check(bundle: Path, tmp_path: Path, sign_keys: Path) -> None:
    sidecar = tmp_path / "bundle.sha256"
    sidecar.write_text(subprocess.run(["sha256sum", bundle.name], cwd=tmp_path, capture_output=True, text=True).stdout)
    output = tmp_path / "bundle.asc"
    done = run_cli(
        "sign", bundle, "-a", "pgp", "--key", sign_keys / "pgp-secret.asc", "--output", output, "--sha256", sidecar
    )
    assert done.returncode == 0, done.stderr
    assert gpgv(sign_keys / "pgp-public.gpg", output, bundle).returncode == 0


def test_bundle_out_writes_sigstore_json(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "sigstore.json"
    done = run_cli(
        "sign", bundle, "-a", "cosign", "--key", COSIGN_FIXTURES / "sigstore-label-n32768.key", "--bundle-out", out,
        env={"COSIGN_PASSWORD": COSIGN_FIXTURE_PASSWORD},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"


FAILURES = [
    pytest.param(
        ["--key", "{fixtures}/cosign-label-n32768.key"],
        "cosign",
        {"COSIGN_PASSWORD": "wrong"},
        "fastpack: error: wrong password for {fixtures}/cosign-label-n32768.key",
        id="wrong-password",
    ),
    pytest.param(
        ["--key", "{fixtures}/cosign-label-n32768.key"],
        "cosign",
        {},
        "fastpack: error: {fixtures}/cosign-label-n32768.key: encrypted key needs a password: set COSIGN_PASSWORD",
        id="no-password-no-terminal",
    ),
    pytest.param(
        [],
        "cosign",
        {},
        "fastpack: error: no signing key for cosign: pass --key or set FASTPACK_SIGNING_KEY",
        id="no-key",
    ),
    pytest.param(
        ["--key", "{keys}/missing.key"],
        "pgp",
        {},
        "fastpack: error: {keys}/missing.key: signing key not found",
        id="missing-key",
    ),
    pytest.param(
        ["--key", "{keys}/pgp-secret.asc"],
        "cosign",
        {},
        "fastpack: error: {keys}/pgp-secret.asc: this is an OpenPGP key, not a cosign private key "
        "(use --algorithm pgp)",
        id="pgp-key-for-cosign",
    ),
    pytest.param(
        ["--key", "{keys}/cosign.key", "--cert", "{keys}/signer.pem"],
        "x509",
        {},
        "fastpack: error: {keys}/cosign.key: this is a cosign key, not an x509 signing key (use --algorithm cosign)",
        id="cosign-key-for-x509",
    ),
    pytest.param(
        ["--key", "{keys}/signer.key"],
        "pgp",
        {},
        "fastpack: error: {keys}/signer.key: this is not an OpenPGP key but PEM PRIVATE KEY "
        "(use --algorithm cosign or x509)",
        id="pem-key-for-pgp",
    ),
    pytest.param(
        ["--key", "{keys}/pgp-secret.asc", "--sha256", "0" * 64],
        "pgp",
        {},
        "fastpack: error: {bundle}: bundle SHA-256 is {sha256}, expected {zeros}: not signing",
        id="sha256-mismatch",
    ),
    pytest.param(
        ["--key", "{keys}/pgp-secret.asc", "--output", "{tmp}/no/such/dir/sig"],
        "pgp",
        {},
        "fastpack: error: {tmp}/no/such/dir: output directory does not exist",
        id="output-dir-missing",
    ),
]


@pytest.mark.parametrize(("extra", "algorithm", "env", "message"), FAILURES)
def test_failures_exit_1_with_a_clear_message_and_no_signature(
    extra: list[str], algorithm: str, env: dict[str, str], message: str, bundle: Path, tmp_path: Path, sign_keys: Path
) -> None:
    values = {
        "fixtures": str(COSIGN_FIXTURES),
        "keys": str(sign_keys),
        "tmp": str(tmp_path),
        "bundle": str(bundle),
        "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
        "zeros": "0" * 64,
    }
    before = sorted(os.listdir(tmp_path))
    done = run_cli("sign", bundle, "--algorithm", algorithm, *(arg.format(**values) for arg in extra), env=env)
    assert done.returncode == 1
    assert done.stderr.strip() == message.format(**values)
    assert done.stdout == ""
    assert sorted(os.listdir(tmp_path)) == before


def test_missing_bundle_and_usage_errors(tmp_path: Path, sign_keys: Path) -> None:
    missing = tmp_path / "missing.tar.zst"
    done = run_cli("sign", missing, "-a", "pgp", "--key", sign_keys / "pgp-secret.asc")
    assert (done.returncode, done.stderr.strip()) == (1, f"fastpack: error: {missing}: bundle not found")
    done = run_cli("sign", missing, "-a", "rsa")
    assert done.returncode == 2 and "invalid choice: 'rsa'" in done.stderr
    bundle = make_bundle(tmp_path)
    done = run_cli(
        "sign", bundle, "-a", "pgp", "--key", sign_keys / "pgp-secret.asc", "--bundle-out", tmp_path / "x.json"
    )
    assert done.returncode == 2 and "--bundle-out (a sigstore bundle) is only for --algorithm cosign" in done.stderr
    assert sorted(os.listdir(tmp_path)) == [bundle.name]


@pytest.mark.parametrize(
    ("algorithm", "files"),
    [
        ("cosign", ["cosign.key", "cosign.pub"]),
        ("x509", ["ca.pem", "ca.key", "signer.pem", "signer.key"]),
        ("pgp", ["pgp-secret.asc", "pgp-public.asc", "pgp-public.gpg"]),
    ],
)
def test_keygen_writes_keys_and_refuses_to_overwrite(algorithm: str, files: list[str], tmp_path: Path) -> None:
    env = {"COSIGN_PASSWORD": "pw"}
    done = run_cli("keygen", "--algorithm", algorithm, "--output-dir", tmp_path, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"algorithm": algorithm, "files": [str(tmp_path / name) for name in files]}
    for name in files:
        secret = name.endswith((".key", "-secret.asc"))
        assert oct(os.stat(tmp_path / name).st_mode & 0o777) == ("0o600" if secret else "0o644")
    contents = {name: (tmp_path / name).read_bytes() for name in files}

    again = run_cli("keygen", "--algorithm", algorithm, "--output-dir", tmp_path, env=env)
    assert again.returncode == 1
    listed = ", ".join(str(tmp_path / name) for name in files)
    assert (
        again.stderr.strip()
        == f"fastpack: error: {tmp_path / files[0]}: refusing to overwrite existing key file(s): {listed}"
    )
    assert {name: (tmp_path / name).read_bytes() for name in files} == contents
    assert sorted(os.listdir(tmp_path)) == sorted(files)


def test_keygen_partial_clash_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_text("mine")
    done = run_cli("keygen", "-a", "x509", "-d", tmp_path)
    assert (
        done.returncode == 1
        and "refusing to overwrite existing key file(s): " + str(tmp_path / "signer.pem") in done.stderr
    )
    assert os.listdir(tmp_path) == ["signer.pem"] and (tmp_path / "signer.pem").read_text() == "mine"


def test_keygen_names_the_identity(tmp_path: Path) -> None:
    assert run_cli("keygen", "-a", "x509", "-d", tmp_path, "--name", "Acme Releases").returncode == 0
    subject = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "signer.pem", "-noout", "-subject"], capture_output=True, text=True
    ).stdout
    assert "CN = Acme Releases" in subject
    refused = run_cli("keygen", "-a", "cosign", "-d", tmp_path, "--name", "x", env={"COSIGN_PASSWORD": "pw"})
    assert refused.returncode == 2 and "cosign keys carry no identity" in refused.stderr
    assert not (tmp_path / "cosign.key").exists()


def test_keygen_cosign_without_password_on_a_pipe(tmp_path: Path) -> None:
    done = run_cli("keygen", "-a", "cosign", "-d", tmp_path)
    assert done.returncode == 1 and "encrypted key needs a password: set COSIGN_PASSWORD" in done.stderr
    assert os.listdir(tmp_path) == []


def test_help_does_not_import_crypto_libraries() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from fastpack.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['sign', '--help'])\n"
        "print(sorted(m for m in ('cryptography', 'nacl', 'asn1crypto') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def _run_on_terminal(argv: list[str], answers: list[bytes], env: dict[str, str]) -> tuple[int, bytes]:
    """Run `fastpack` with a pseudo-terminal as its controlling terminal, answering each prompt in turn."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child: exec at once, nothing else
        os.execve(sys.executable, [sys.executable, "-m", "fastpack", *argv], env)
    transcript = b""
    pending = list(answers)
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        transcript += chunk
        if pending and chunk.endswith(b": "):  # a prompt, written after getpass turned echo off
            os.write(fd, pending.pop(0) + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript


def test_password_prompt_on_a_terminal(bundle: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    key = str(COSIGN_FIXTURES / "cosign-label-n65536.key")
    code, transcript = _run_on_terminal(["sign", str(bundle), "-a", "cosign", "--key", key], [b"hello"], env)
    assert code == 0, transcript
    assert f"Password for {key}:".encode() in transcript and b"hello" not in transcript
    der = base64.b64decode(Path(f"{bundle}.SIGNATURE").read_text().strip())
    assert openssl_der_verify(COSIGN_FIXTURES / "cosign-label-n65536.pub", der, bundle, tmp_path).returncode == 0

    keys = tmp_path / "keys"
    keys.mkdir()
    code, transcript = _run_on_terminal(["keygen", "-a", "cosign", "-d", str(keys)], [b"s3cret", b"other"], env)
    assert code == 1 and b"passwords do not match" in transcript
    assert os.listdir(keys) == []
