"""A real `fastpack serve` in a subprocess on a free 127.0.0.1 port, and small extensions to publish to it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

STARTUP_SECONDS = 60
TOKEN = "publish-token-0123456789"
READ_TOKEN = "read-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any server/storage configuration, plus `extra`."""
    prefixes = ("STORAGE_S3_", "FASTPACK_", "EXT_BUNDLES_", "SIGNING_", "SERVER_BASE", "ALGA_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.update(extra)
    return env


class ServerProcess:
    """`python -m fastpack serve` with its JSON log captured in a file."""

    def __init__(self, store: str | None, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "fastpack", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if store is not None:
            command += ["--store", store]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=clean_env(env), stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fastpack serve exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fastpack serve did not become ready:\n{self.log_text()}")

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"unparsed": line})
        return records

    def wait_for_logs(self, predicate: Any, count: int) -> list[dict[str, Any]]:
        """The log records matching `predicate`, once there are `count` of them (lines land after the response)."""
        deadline = time.monotonic() + 10
        while True:
            records = [record for record in self.log_records() if predicate(record)]
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextmanager
def running_server(store: str | None, env: Mapping[str, str], log_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(store, env, log_path)
    try:
        yield server
    finally:
        server.stop()


def write_extension(root: Path, name: str, version: str, payload: bytes = b"") -> Path:
    """A minimal valid extension tree (SPEC §3): manifest, dist/main.wasm, ui/index.html."""
    (root / "dist").mkdir(parents=True)
    (root / "ui").mkdir()
    manifest = {
        "name": name,
        "version": version,
        "runtime": "wasm-js@1",
        "ui": {"type": "iframe", "entry": "ui/index.html"},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "dist" / "main.wasm").write_bytes(b"\0asm\1\0\0\0" + payload)
    (root / "ui" / "index.html").write_text(f"<!doctype html><title>{name}</title>\n")
    return root


def make_bundle(tmp: Path, name: str, version: str, payload: bytes = b"") -> tuple[Path, bytes, str]:
    """Pack an extension with fastpack; returns (bundle, manifest bytes, sha256 computed by hashlib)."""
    from fastpack.pack import pack

    tag = f"{name}-{version}-{hashlib.sha256(payload).hexdigest()[:8]}"
    source = write_extension(tmp / f"src-{tag}", name, version, payload)
    out_dir = tmp / f"out-{tag}"
    out_dir.mkdir()
    bundle = out_dir / "bundle.tar.zst"
    pack(source, bundle)
    return bundle, (source / "manifest.json").read_bytes(), sha256_file(bundle)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_files(root: Path) -> dict[str, bytes]:
    """Every object in a local store (internal bookkeeping under .fastpack/ excluded), key → bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(".fastpack/"):
            files[relative] = path.read_bytes()
    return files
