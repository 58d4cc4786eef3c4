"""End to end, with only the `fastpack` command: keygen → pack → sign → publish --server → fetch → verify.

Runs against a `fastpack serve` on the embedded local store and on the real SeaweedFS S3 server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers_server import TOKEN, clean_env, running_server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello-extension" / "dist"
PASSWORD = "e2e-password"


def fastpack(*args: str | os.PathLike[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "fastpack", *map(str, args)],
        cwd=cwd,
        env=clean_env({"COSIGN_PASSWORD": PASSWORD, **env}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"fastpack {' '.join(map(str, args))}:\n{done.stderr}"
    return done


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request, tmp_path):
    """(server --store argument, server env, reader of stored objects by key)."""
    if request.param == "local":
        root = tmp_path / "store"
        yield str(root), {}, lambda key: (root / key).read_bytes()
    else:
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.new_bucket()
        client = s3.client()
        yield None, s3.env(bucket), lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_pack_sign_publish_fetch_verify(storage, tmp_path):
    store_arg, store_env, read_object = storage
    work = tmp_path / "ci"
    shutil.copytree(EXAMPLE, work / "dist")  # the "build" output of the reference pipeline
    keys = work / "keys"
    keys.mkdir()
    fastpack("keygen", "--algorithm", "cosign", "--output-dir", keys, cwd=work)
    fastpack("pack", "dist", "bundle.tar.zst", cwd=work)
    fastpack("sign", "bundle.tar.zst", "--algorithm", "cosign", cwd=work, FASTPACK_SIGNING_KEY=str(keys / "cosign.key"))
    bundle = (work / "bundle.tar.zst").read_bytes()
    sha = hashlib.sha256(bundle).hexdigest()
    assert (work / "bundle.sha256").read_text().split()[0] == sha

    env = {"FASTPACK_API_TOKENS": TOKEN, "SIGNING_TRUST_BUNDLE": str(keys / "cosign.pub"), **store_env}
    with running_server(store_arg, env, tmp_path / "server.log") as server:
        done = fastpack(
            "publish", "--bundle", "bundle.tar.zst", "--manifest", "dist/manifest.json",
            "--declared-hash", "bundle.sha256", "--signature", "bundle.tar.zst.SIGNATURE",
            "--signature-algorithm", "cosign",
            cwd=work, SERVER_BASE=server.url, FASTPACK_TOKEN=TOKEN,
        )  # fmt: skip
        result = json.loads(done.stdout)
        assert result["extension"] == "com.example.hello-extension" and result["version"] == "0.1.0"
        assert result["contentHash"] == sha and result["uploaded"] is True
        assert result["signature"]["verified"] is True

        signature = (work / "bundle.tar.zst.SIGNATURE").read_bytes()
        assert read_object(f"sha256/{sha}/bundle.tar.zst") == bundle
        assert read_object(f"sha256/{sha}/manifest.json") == (work / "dist" / "manifest.json").read_bytes()
        assert read_object(f"sha256/{sha}/SIGNATURE") == signature
        index = json.loads(read_object("extensions/com.example.hello-extension/0.1.0.json"))
        assert index["contentHash"] == sha

        auth = {"authorization": f"Bearer {TOKEN}"}
        url = f"{server.url}/api/ext-bundles/sha256/{sha}/bundle.tar.zst"
        fetched = httpx.get(url, headers=auth)
        assert fetched.status_code == 200 and fetched.content == bundle
        assert fetched.headers["cache-control"] == "public, max-age=31536000, immutable"
        etag = fetched.headers["etag"]
        assert httpx.get(url, headers={**auth, "if-none-match": etag}).status_code == 304
        part = httpx.get(url, headers={**auth, "range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == bundle[100:200]
        fetched_signature = httpx.get(url.replace("bundle.tar.zst", "SIGNATURE"), headers=auth).content
        assert fetched_signature == signature
        entry = httpx.get(f"{server.url}/api/ext-bundles/extensions/com.example.hello-extension/0.1.0", headers=auth)
        assert entry.json()["contentHash"] == sha

    back = tmp_path / "fetched"
    back.mkdir()
    (back / "bundle.tar.zst").write_bytes(fetched.content)
    (back / "bundle.tar.zst.SIGNATURE").write_bytes(fetched_signature)
    verified = fastpack(
        "verify", "bundle.tar.zst", "--sha256", sha, "--signature", "bundle.tar.zst.SIGNATURE",
        "--algorithm", "cosign", "--key", keys / "cosign.pub", cwd=back,
    )  # fmt: skip
    assert "FAIL" not in verified.stdout
