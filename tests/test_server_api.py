"""The HTTP API of SPEC §6 against a real `fastpack serve` on the local store: every documented answer.

Each refused request asserts its status and code and that storage did not change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from helpers_server import READ_TOKEN, TOKEN, make_bundle, running_server, store_files, write_extension

AUTH = {"authorization": f"Bearer {TOKEN}"}
API = "/api/ext-bundles"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-api")


@pytest.fixture(scope="module")
def store_dir(workdir) -> Path:
    return workdir / "store"


@pytest.fixture(scope="module")
def server(workdir, store_dir):
    env = {"FASTPACK_API_TOKENS": TOKEN, "FASTPACK_API_READ_TOKENS": READ_TOKEN, "FASTPACK_RATE_LIMIT": "0"}
    with running_server(str(store_dir), env, workdir / "server.log") as process:
        yield process


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def bundle(workdir):
    return make_bundle(workdir, "com.example.api", "1.0.0")


def upload(client, path: Path, **params) -> httpx.Response:
    data = path.read_bytes()
    query = {"filename": path.name, "size": len(data), "declaredHash": hashlib.sha256(data).hexdigest()}
    query.update(params)
    return client.post(f"{API}/upload-proxy", params={k: v for k, v in query.items() if v is not None}, content=data)


def assert_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) <= {"error", "code", "details"}
    if message is not None:
        assert message in body["error"], body
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"]
    return body


def published(store_dir: Path) -> dict[str, bytes]:
    """Canonical objects and version index entries (what the outside world can see)."""
    return {key: value for key, value in store_files(store_dir).items() if not key.startswith("sha256/_staging/")}


def staging(store_dir: Path) -> list[str]:
    return [key for key in store_files(store_dir) if key.startswith("sha256/_staging/")]


def leftover_temp_files(store_dir: Path) -> list[Path]:
    return [path for path in (store_dir / ".fastpack" / "tmp").rglob("*") if path.is_file()]


@pytest.fixture
def unchanged(store_dir):
    """Asserts, after the test body, that storage holds exactly what it held before (no staging, no temp)."""
    before = store_files(store_dir)
    yield
    assert store_files(store_dir) == before
    assert leftover_temp_files(store_dir) == []


def test_upload_finalize_and_fetch(client, bundle, store_dir):
    path, manifest, sha = bundle
    response = upload(client, path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "upload": {"key": body["upload"]["key"], "strategy": "staging"},
        "filename": "bundle.tar.zst",
        "size": path.stat().st_size,
        "sha256": sha,
    }
    key = body["upload"]["key"]
    assert key.startswith("sha256/_staging/") and staging(store_dir) == [key]
    final = client.post(f"{API}/finalize", json={"key": key, "manifestJson": manifest.decode()})
    assert final.status_code == 200, final.text
    result = final.json()
    assert (result["extension"], result["version"], result["contentHash"]) == ("com.example.api", "1.0.0", sha)
    assert result["canonicalKey"] == f"sha256/{sha}/bundle.tar.zst"
    assert result["manifestKey"] == f"sha256/{sha}/manifest.json"
    assert staging(store_dir) == []
    objects = published(store_dir)
    assert objects[f"sha256/{sha}/bundle.tar.zst"] == path.read_bytes()
    assert objects[f"sha256/{sha}/manifest.json"] == manifest
    index = client.get(f"{API}/extensions/com.example.api/1.0.0")
    assert index.status_code == 200
    assert index.json()["contentHash"] == sha
    assert index.json() == json.loads(objects["extensions/com.example.api/1.0.0.json"])


def test_republishing_identical_content_is_idempotent(client, bundle, store_dir):
    path, manifest, sha = bundle
    test_upload_finalize_and_fetch(client, bundle, store_dir)
    before = published(store_dir)
    key = upload(client, path).json()["upload"]["key"]
    again = client.post(f"{API}/finalize", json={"key": key, "manifestJson": manifest.decode()})
    assert again.status_code == 200, again.text
    assert again.json()["contentHash"] == sha
    assert published(store_dir) == before
    assert staging(store_dir) == []


def test_finalize_of_an_existing_canonical_bundle_needs_no_upload(client, bundle, store_dir):
    _path, manifest, sha = bundle
    test_upload_finalize_and_fetch(client, bundle, store_dir)
    response = client.post(
        f"{API}/finalize",
        json={"key": f"sha256/{sha}/bundle.tar.zst", "declaredHash": sha, "manifestJson": manifest.decode()},
    )
    assert response.status_code == 200, response.text
    assert response.json()["contentHash"] == sha


@pytest.mark.usefixtures("unchanged")
class TestRefusedUploads:
    def test_missing_filename(self, client, bundle):
        body = assert_error(upload(client, bundle[0], filename=None), 400, "BAD_REQUEST", "filename")
        assert body["details"]["issues"][0]["path"] == "query.filename"

    @pytest.mark.parametrize("size", ["0", "-1", "ten", ""])
    def test_bad_size(self, client, bundle, size):
        assert_error(upload(client, bundle[0], size=size), 400, "BAD_REQUEST", "size")

    @pytest.mark.parametrize("declared", ["A" * 64, "abc", "g" * 64])
    def test_bad_declared_hash(self, client, bundle, declared):
        assert_error(upload(client, bundle[0], declaredHash=declared), 400, "BAD_REQUEST", "declaredHash")

    def test_size_above_the_cap_is_413_before_reading(self, client):
        response = client.post(
            f"{API}/upload-proxy", params={"filename": "b.tar.zst", "size": 209715201}, content=b"x" * 10
        )
        assert_error(response, 413, "PAYLOAD_TOO_LARGE", "209715200")

    def test_content_length_differs_from_size(self, client, bundle):
        data = bundle[0].read_bytes()
        response = client.post(
            f"{API}/upload-proxy", params={"filename": "b.tar.zst", "size": len(data) + 1}, content=data
        )
        assert_error(response, 400, "SIZE_MISMATCH", "content-length")

    def test_short_body(self, client, bundle):
        data = bundle[0].read_bytes()
        response = client.post(
            f"{API}/upload-proxy", params={"filename": "b.tar.zst", "size": len(data) + 100}, content=iter([data])
        )
        assert_error(response, 400, "SIZE_MISMATCH")

    def test_long_body(self, client, bundle):
        data = bundle[0].read_bytes()
        response = client.post(
            f"{API}/upload-proxy", params={"filename": "b.tar.zst", "size": len(data) - 1}, content=iter([data])
        )
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")

    def test_wrong_hash(self, client, bundle):
        body = assert_error(upload(client, bundle[0], declaredHash="0" * 64), 400, "HASH_MISMATCH")
        assert "0" * 64 in body["error"]

    def test_no_token(self, server, bundle):
        assert_error(upload(httpx.Client(base_url=server.url), bundle[0]), 401, "UNAUTHORIZED", "missing credentials")

    def test_wrong_token(self, server, bundle):
        http = httpx.Client(base_url=server.url, headers={"authorization": "Bearer wrong"})
        assert_error(upload(http, bundle[0]), 401, "UNAUTHORIZED", "invalid API token")

    def test_admin_header_is_not_trusted_by_default(self, server, bundle):
        http = httpx.Client(base_url=server.url, headers={"x-alga-admin": "true"})
        assert_error(upload(http, bundle[0]), 401, "UNAUTHORIZED")

    def test_read_token_may_not_publish(self, server, bundle):
        http = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {READ_TOKEN}"})
        assert_error(upload(http, bundle[0]), 403, "FORBIDDEN", "may only read")
        for path, body in (("finalize", {"key": "sha256/_staging/x/bundle.tar.zst"}), ("abort", {"key": "k"})):
            assert_error(http.post(f"{API}/{path}", json=body), 403, "FORBIDDEN")


@pytest.mark.usefixtures("unchanged")
class TestRefusedFinalize:
    def test_malformed_json(self, client):
        response = client.post(f"{API}/finalize", content=b"{not json", headers={"content-type": "application/json"})
        assert_error(response, 400, "BAD_REQUEST")

    def test_missing_key(self, client):
        body = assert_error(client.post(f"{API}/finalize", json={"size": 3}), 400, "BAD_REQUEST", "key")
        assert body["details"]["issues"][0]["path"] == "key"

    def test_unknown_staging_key(self, client):
        key = "sha256/_staging/0123456789abcdef0123456789abcdef/bundle.tar.zst"
        assert_error(client.post(f"{API}/finalize", json={"key": key}), 404, "NOT_FOUND")

    @pytest.mark.parametrize(
        "key", ["sha256/../x", "sha256/_staging/../../etc/passwd", "/etc/passwd", "extensions/x/1.0.0.json"]
    )
    def test_traversal_and_foreign_keys(self, client, key):
        assert_error(client.post(f"{API}/finalize", json={"key": key}), 400, "BAD_REQUEST")

    @pytest.mark.parametrize("key", ["sha256/../x", "sha256/_staging/../../etc/passwd", "../../x"])
    def test_abort_rejects_traversal(self, client, key):
        assert_error(client.post(f"{API}/abort", json={"key": key}), 400, "BAD_REQUEST")

    def test_string_signature_needs_its_algorithm(self, client):
        body = {"key": "sha256/_staging/x/bundle.tar.zst", "signature": "c2ln"}
        assert_error(client.post(f"{API}/finalize", json=body), 400, "BAD_REQUEST", "signatureAlgorithm")


def test_invalid_manifest_publishes_nothing(client, workdir, store_dir):
    from fastpack.pack import pack

    source = write_extension(workdir / "bad-manifest", "com.example.bad", "1.0")
    pack(source, workdir / "bad.tar.zst", validate=False)
    before = published(store_dir)
    key = upload(client, workdir / "bad.tar.zst").json()["upload"]["key"]
    body = assert_error(client.post(f"{API}/finalize", json={"key": key}), 400, "INVALID_MANIFEST")
    assert [issue["path"] for issue in body["details"]["issues"]] == ["version"]
    assert published(store_dir) == before
    client.post(f"{API}/abort", json={"key": key})
    assert staging(store_dir) == []


def test_manifest_mismatch_publishes_nothing(client, workdir, store_dir):
    path, manifest, _ = make_bundle(workdir, "com.example.mismatch", "1.0.0")
    before = published(store_dir)
    key = upload(client, path).json()["upload"]["key"]
    other = manifest.decode().replace("1.0.0", "1.0.1")
    response = client.post(f"{API}/finalize", json={"key": key, "manifestJson": other})
    assert_error(response, 400, "MANIFEST_MISMATCH")
    assert published(store_dir) == before
    assert client.post(f"{API}/abort", json={"key": key}).json() == {"key": key, "aborted": True}
    assert staging(store_dir) == []


def test_version_conflict_is_409_and_keeps_the_first(client, workdir, store_dir):
    first, _manifest, sha = make_bundle(workdir, "com.example.conflict", "2.0.0")
    second, _, _ = make_bundle(workdir, "com.example.conflict", "2.0.0", payload=b"different")
    key = upload(client, first).json()["upload"]["key"]
    assert client.post(f"{API}/finalize", json={"key": key}).status_code == 200
    before = published(store_dir)
    key = upload(client, second).json()["upload"]["key"]
    body = assert_error(client.post(f"{API}/finalize", json={"key": key}), 409, "EXTENSION_VERSION_ALREADY_EXISTS")
    assert "com.example.conflict" in body["error"]
    assert published(store_dir) == before
    assert client.get(f"{API}/extensions/com.example.conflict/2.0.0").json()["contentHash"] == sha
    client.post(f"{API}/abort", json={"key": key})


def test_abort_removes_staging_and_is_a_noop_for_canonical_keys(client, bundle, store_dir):
    path, _, sha = bundle
    key = upload(client, path).json()["upload"]["key"]
    assert staging(store_dir) == [key]
    assert client.post(f"{API}/abort", json={"key": key}).json() == {"key": key, "aborted": True}
    assert staging(store_dir) == []
    test_upload_finalize_and_fetch(client, bundle, store_dir)
    before = published(store_dir)
    canonical = f"sha256/{sha}/bundle.tar.zst"
    assert client.post(f"{API}/abort", json={"key": canonical}).json() == {"key": canonical, "aborted": False}
    assert published(store_dir) == before


def test_get_head_etag_304_and_range(client, bundle, store_dir):
    path, manifest, sha = bundle
    test_upload_finalize_and_fetch(client, bundle, store_dir)
    data = path.read_bytes()
    url = f"{API}/sha256/{sha}/bundle.tar.zst"
    response = client.get(url)
    assert response.status_code == 200 and response.content == data
    etag = response.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "application/zstd"
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and int(head.headers["content-length"]) == len(data)
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304
    assert client.get(url, headers={"if-none-match": '"other"'}).status_code == 200
    part = client.get(url, headers={"range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert client.get(url, headers={"range": "bytes=-7"}).content == data[-7:]
    beyond = client.get(url, headers={"range": f"bytes={len(data)}-"})
    assert_error(beyond, 416, "BAD_RANGE")
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert client.get(f"{API}/sha256/{sha}/manifest.json").content == manifest


def test_reads_need_credentials_and_accept_read_tokens(server, bundle, client, store_dir):
    test_upload_finalize_and_fetch(client, bundle, store_dir)
    url = f"{API}/sha256/{bundle[2]}/bundle.tar.zst"
    assert_error(httpx.get(server.url + url), 401, "UNAUTHORIZED")
    assert httpx.get(server.url + url, headers={"authorization": f"Bearer {READ_TOKEN}"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"{API}/sha256/{'0' * 64}/bundle.tar.zst", 404, "NOT_FOUND"),
        (f"{API}/sha256/{'0' * 63}/bundle.tar.zst", 400, "BAD_REQUEST"),
        (f"{API}/sha256/{'0' * 64}/other.txt", 400, "BAD_REQUEST"),
        (f"{API}/extensions/none/1.0.0", 404, "NOT_FOUND"),
        ("/nowhere", 404, "NOT_FOUND"),
    ],
)
def test_read_errors(client, path, status, code):
    assert_error(client.get(path), status, code)


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"x-request-id": "ci-run-42"}).headers["x-request-id"] == "ci-run-42"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"}).headers["x-request-id"] != (
        "bad id\twith spaces"
    )
    assert client.post(f"{API}/finalize", content=b"[").headers["x-request-id"]


def test_one_json_log_line_per_request(server, client):
    client.get("/healthz", headers={"x-request-id": "log-check-1"})
    client.get(f"{API}/extensions/none/9.9.9", headers={"x-request-id": "log-check-2"})
    records = server.wait_for_logs(lambda r: str(r.get("request_id")).startswith("log-check-"), 2)
    assert [(r["request_id"], r["status"], r["code"]) for r in records] == [
        ("log-check-1", 200, None),
        ("log-check-2", 404, "NOT_FOUND"),
    ]
    assert all(r["event"] == "request" and r["method"] == "GET" and "duration_ms" in r for r in records)
    assert TOKEN not in server.log_text()


def test_healthz_and_openapi_are_open(server):
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert set(schema["paths"]) >= {
        f"{API}/upload-proxy",
        f"{API}/finalize",
        f"{API}/abort",
        f"{API}/sha256/{{content_hash}}/{{name}}",
        f"{API}/extensions/{{name}}/{{version}}",
        "/healthz",
    }


def test_without_trust_a_signature_is_stored_unverified(client, workdir, store_dir):
    path, _, sha = make_bundle(workdir, "com.example.unverified", "1.0.0")
    key = upload(client, path).json()["upload"]["key"]
    response = client.post(
        f"{API}/finalize", json={"key": key, "signature": "c2lnbmF0dXJl", "signatureAlgorithm": "pgp"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["signature"] == {"algorithm": "pgp", "verified": False, "signer": None}
    assert published(store_dir)[f"sha256/{sha}/SIGNATURE"] == b"c2lnbmF0dXJl"
