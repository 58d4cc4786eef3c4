"""finalize with SIGNING_TRUST_BUNDLE: real cosign, x509 and pgp signatures; missing or bad ones publish nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers_server import TOKEN, make_bundle, running_server, store_files

API = "/api/ext-bundles"
PASSWORD = "server-test-password"


def fastpack(*args: str | os.PathLike[str]) -> None:
    env = {**os.environ, "COSIGN_PASSWORD": PASSWORD}
    done = subprocess.run(
        [sys.executable, "-m", "fastpack", *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-signatures")


@pytest.fixture(scope="module")
def keys(workdir) -> dict[str, Path]:
    """Trusted material for each algorithm (made by `fastpack keygen`) plus an untrusted cosign key."""
    for algorithm in ("cosign", "x509", "pgp"):
        (workdir / algorithm).mkdir()
        fastpack("keygen", "--algorithm", algorithm, "--output-dir", workdir / algorithm)
    (workdir / "stranger").mkdir()
    fastpack("keygen", "--algorithm", "cosign", "--output-dir", workdir / "stranger")
    trust = workdir / "trust"
    trust.mkdir()
    shutil.copy(workdir / "cosign" / "cosign.pub", trust / "cosign.pub")
    shutil.copy(workdir / "x509" / "ca.pem", trust / "ca.pem")
    shutil.copy(workdir / "pgp" / "pgp-public.asc", trust / "pgp-public.asc")
    return {"trust": trust, "dir": workdir}


@pytest.fixture(scope="module")
def server(workdir, keys):
    env = {"FASTPACK_API_TOKENS": TOKEN, "SIGNING_TRUST_BUNDLE": str(keys["trust"]), "FASTPACK_RATE_LIMIT": "0"}
    with running_server(str(workdir / "store"), env, workdir / "server.log") as process:
        yield process


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
        yield http


def sign(bundle: Path, algorithm: str, keydir: Path) -> str:
    output = bundle.with_name(f"{bundle.name}.{algorithm}.{keydir.name}.SIGNATURE")
    if algorithm == "cosign":
        fastpack("sign", bundle, "--algorithm", "cosign", "--key", keydir / "cosign.key", "--output", output)
    elif algorithm == "x509":
        fastpack("sign", bundle, "--algorithm", "x509", "--key", keydir / "signer.key", "--cert", keydir / "signer.pem",
                 "--output", output)  # fmt: skip
    else:
        fastpack("sign", bundle, "--algorithm", "pgp", "--key", keydir / "pgp-secret.asc", "--output", output)
    return output.read_text()


def stage(client, bundle: Path) -> str:
    data = bundle.read_bytes()
    response = client.post(f"{API}/upload-proxy", params={"filename": bundle.name, "size": len(data)}, content=data)
    assert response.status_code == 200, response.text
    return response.json()["upload"]["key"]


def published(workdir: Path) -> dict[str, bytes]:
    return {k: v for k, v in store_files(workdir / "store").items() if not k.startswith("sha256/_staging/")}


@pytest.mark.parametrize("algorithm", ["cosign", "x509", "pgp"])
def test_trusted_signature_is_verified_and_stored(client, workdir, keys, algorithm):
    bundle, _, sha = make_bundle(workdir, f"com.example.signed-{algorithm}", "1.0.0")
    text = sign(bundle, algorithm, keys["dir"] / algorithm)
    key = stage(client, bundle)
    response = client.post(f"{API}/finalize", json={"key": key, "signature": {"text": text, "algorithm": algorithm}})
    assert response.status_code == 200, response.text
    signature = response.json()["signature"]
    assert signature["algorithm"] == algorithm and signature["verified"] is True and signature["signer"]
    objects = published(workdir)
    assert objects[f"sha256/{sha}/SIGNATURE"] == text.encode()
    fetched = client.get(f"{API}/sha256/{sha}/SIGNATURE")
    assert fetched.status_code == 200 and fetched.text == text


def test_string_signature_with_signature_algorithm(client, workdir, keys):
    bundle, _, _ = make_bundle(workdir, "com.example.string-signature", "1.0.0")
    text = sign(bundle, "cosign", keys["dir"] / "cosign")
    key = stage(client, bundle)
    response = client.post(f"{API}/finalize", json={"key": key, "signature": text, "signatureAlgorithm": "cosign"})
    assert response.status_code == 200, response.text
    assert response.json()["signature"]["verified"] is True


def bad_signatures(bundle: Path, other: Path, keys: dict[str, Path]) -> dict[str, dict]:
    return {
        "missing": {},
        "garbage": {"signature": {"text": "bm90IGEgc2lnbmF0dXJl", "algorithm": "cosign"}},
        "untrusted key": {
            "signature": {"text": sign(bundle, "cosign", keys["dir"] / "stranger"), "algorithm": "cosign"}
        },
        "other bundle": {"signature": {"text": sign(other, "cosign", keys["dir"] / "cosign"), "algorithm": "cosign"}},
        "wrong algorithm": {"signature": sign(bundle, "pgp", keys["dir"] / "pgp"), "signatureAlgorithm": "cosign"},
    }


def test_missing_or_bad_signatures_publish_nothing(client, workdir, keys):
    bundle, _, _ = make_bundle(workdir, "com.example.unsigned", "1.0.0")
    other, _, _ = make_bundle(workdir, "com.example.unsigned", "1.0.0", payload=b"other")
    for case, fields in bad_signatures(bundle, other, keys).items():
        before = published(workdir)
        key = stage(client, bundle)
        response = client.post(f"{API}/finalize", json={"key": key, **fields})
        assert response.status_code == 400, (case, response.text)
        assert response.json()["code"] == "INVALID_SIGNATURE", (case, response.text)
        assert published(workdir) == before, case
        assert client.post(f"{API}/abort", json={"key": key}).json()["aborted"] is True
    assert client.get(f"{API}/extensions/com.example.unsigned/1.0.0").status_code == 404
