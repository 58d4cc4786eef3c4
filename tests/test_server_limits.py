"""Limits of `fastpack serve`: rate limit, the upload cap with flat memory, concurrent uploads, generic 5xx."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers_server import TOKEN, free_port, running_server, store_files

API = "/api/ext-bundles"
MiB = 1 << 20
CAP = 209_715_200
AUTH = {"authorization": f"Bearer {TOKEN}"}


def generated_body(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """`total` bytes made on the fly (never stored), sent chunked by httpx."""
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


class PeakRss:
    """Samples a server's RSS in a thread while a block runs; `.peak` and `.baseline` in bytes."""

    def __init__(self, server) -> None:
        self.server = server
        self.baseline = server.rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.server.rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-limits")


@pytest.fixture(scope="module")
def server(workdir):
    env = {"FASTPACK_API_TOKENS": TOKEN, "FASTPACK_RATE_LIMIT": "0"}
    with running_server(str(workdir / "store"), env, workdir / "server.log") as process:
        yield process


def assert_nothing_stored(store: Path) -> None:
    assert store_files(store) == {}
    assert [p for p in (store / ".fastpack" / "tmp").rglob("*") if p.is_file()] == []


def test_rate_limit_per_client(workdir):
    env = {
        "FASTPACK_API_TOKENS": f"{TOKEN},second-token",
        "FASTPACK_RATE_LIMIT": "3",
        "FASTPACK_RATE_WINDOW": "3600",
    }
    with running_server(str(workdir / "rl-store"), env, workdir / "rl.log") as server:
        url = f"{server.url}{API}/extensions/none/1.0.0"
        assert [httpx.get(url, headers=AUTH).status_code for _ in range(3)] == [404, 404, 404]
        limited = httpx.get(url, headers=AUTH)
        assert limited.status_code == 429
        assert limited.json()["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["x-request-id"]
        upload = httpx.post(
            f"{server.url}{API}/upload-proxy", params={"filename": "b", "size": 3}, content=b"abc", headers=AUTH
        )
        assert upload.status_code == 429
        assert httpx.get(url, headers={"authorization": "Bearer second-token"}).status_code == 404
        assert [httpx.get(url).status_code for _ in range(4)] == [401, 401, 401, 429]
        invented = httpx.get(url, headers={"authorization": "Bearer invented-token"})
        assert invented.status_code == 429, "unknown tokens share their address's budget"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert_nothing_stored(workdir / "rl-store")


def test_storage_failures_are_generic_502s(workdir):
    port = free_port()
    env = {
        "EXT_BUNDLES_ALLOW_INSECURE": "true",
        "STORAGE_S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "STORAGE_S3_BUCKET": "secret-bucket-name",
        "STORAGE_S3_ACCESS_KEY": "key",
        "STORAGE_S3_SECRET_KEY": "secret",
    }
    with running_server(None, env, workdir / "down.log") as server:
        responses = [
            httpx.get(f"{server.url}{API}/sha256/{'0' * 64}/bundle.tar.zst"),
            httpx.post(f"{server.url}{API}/upload-proxy", params={"filename": "b", "size": 3}, content=b"abc"),
        ]
        for response in responses:
            assert response.status_code == 502
            assert response.json() == {"error": "the storage backend failed; try again later", "code": "STORAGE_ERROR"}
            assert "secret-bucket-name" not in response.text and str(port) not in response.text
        logged = server.wait_for_logs(lambda r: r.get("msg") == "request failed", 2)
        assert all("secret-bucket-name" in record["error"] for record in logged)


def test_body_over_the_cap_is_cut_off_with_flat_memory(server, workdir):
    """201 MiB streamed against the default 200 MiB cap (declared size = the cap): 413, nothing kept."""
    with PeakRss(server) as rss:
        response = httpx.post(
            f"{server.url}{API}/upload-proxy",
            params={"filename": "big.tar.zst", "size": CAP},
            content=generated_body(201 * MiB),
            headers=AUTH,
            timeout=120,
        )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert rss.peak - rss.baseline < 48 * MiB, (rss.baseline, rss.peak)
    assert_nothing_stored(workdir / "store")


def test_declared_size_over_the_cap_is_refused_before_reading(server, workdir):
    response = httpx.post(
        f"{server.url}{API}/upload-proxy",
        params={"filename": "big.tar.zst", "size": 201 * MiB},
        content=generated_body(201 * MiB),
        headers=AUTH,
        timeout=120,
    )
    assert response.status_code == 413
    assert "exceeds this server's limit of 209715200 bytes" in response.json()["error"]
    assert_nothing_stored(workdir / "store")


def test_four_concurrent_150_mib_uploads_stay_under_200_mib(server, workdir):
    size = 150 * MiB

    def send(_: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}{API}/upload-proxy",
            params={"filename": "b.tar.zst", "size": size},
            content=generated_body(size),
            headers=AUTH,
            timeout=300,
        )

    with PeakRss(server) as rss, ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(send, range(4)))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    assert len({r.json()["upload"]["key"] for r in responses}) == 4
    assert all(r.json()["size"] == size for r in responses)
    assert rss.peak < 200 * MiB, (rss.baseline, rss.peak)
    for response in responses:
        abort = httpx.post(f"{server.url}{API}/abort", json={"key": response.json()["upload"]["key"]}, headers=AUTH)
        assert abort.json()["aborted"] is True
    assert_nothing_stored(workdir / "store")


def test_client_vanishing_mid_upload_leaves_nothing(server, workdir):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/ext-bundles/upload-proxy?filename=b.tar.zst&size=10485760 HTTP/1.1\r\n"
            b"host: 127.0.0.1\r\ncontent-length: 10485760\r\n"
            + f"authorization: Bearer {TOKEN}\r\nx-request-id: vanishing-client\r\n\r\n".encode()
            + b"x" * MiB
        )
    logged = server.wait_for_logs(lambda r: r.get("request_id") == "vanishing-client", 1)
    assert [(r["status"], r["code"]) for r in logged] == [(499, "CLIENT_DISCONNECTED")]
    assert "exception" not in logged[0]
    assert_nothing_stored(workdir / "store")
