"""`verify`: every check on a bundle from one read of its bytes.

The SHA-256 is computed on the bytes as the safe reader decompresses them, so
hash, zstd frame, tar structure, manifest and signature are all checked in a
single pass; the signature check reuses that hash state (`BundleDigest`).
A failing check never hides the others: each one is reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from fastpack.bundle import DEFAULT_LIMITS, BundleLimits, BundleReader, BundleSummary, HashingSource, collect
from fastpack.errors import BundleError, FastpackError, UsageError
from fastpack.hashing import BundleDigest

OK, FAIL, SKIP = "ok", "fail", "skip"
SIGNATURE_ALGORITHMS = ("cosign", "x509", "pgp")


@dataclass(frozen=True)
class Check:
    name: str  # sha256 | zstd | tar | manifest | signature
    status: str  # ok | fail | skip
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "message": self.message}


@dataclass
class VerifyReport:
    path: str
    sha256: str
    size: int
    checks: list[Check] = field(default_factory=list)
    summary: BundleSummary | None = None
    signature: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def add(self, name: str, status: str, message: str) -> None:
        self.checks.append(Check(name, status, message))

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "ok": self.ok,
            "sha256": self.sha256,
            "size": self.size,
            "checks": [check.to_json() for check in self.checks],
        }
        if self.signature is not None:
            data["signature"] = self.signature
        return data


@dataclass(frozen=True)
class SignatureRequest:
    """A detached signature to check and the trust it is checked against (exactly one of key/ca/keyring)."""

    signature: str  # path of the signature file
    algorithm: str
    key: str | None = None
    ca: str | None = None
    keyring: str | None = None


def _structure(reader: BundleReader, source: HashingSource) -> tuple[BundleSummary | None, list[Check]]:
    """zstd + tar checks; after a tar error the frame is still decompressed to check it separately."""
    try:
        summary = collect(reader)
    except BundleError as exc:
        if (exc.details or {}).get("check") != "tar":
            return None, [
                Check("zstd", FAIL, exc.message),
                Check("tar", SKIP, "not checked: the zstd stream could not be decompressed"),
            ]
        try:
            reader.finish()
        except BundleError as frame_exc:
            frame = Check("zstd", FAIL, frame_exc.message)
        else:
            frame = Check("zstd", OK, _frame_message(reader.compressed_size, reader.tar_size))
        return None, [frame, Check("tar", FAIL, exc.message)]
    finally:
        source.drain()
    counts = (
        f"{len(summary.members)} entries ({summary.count('file')} files, {summary.count('dir')} directories, "
        f"{summary.count('symlink')} symlinks), all paths safe"
    )
    return summary, [
        Check("zstd", OK, _frame_message(summary.compressed_size, summary.tar_size)),
        Check("tar", OK, counts),
    ]


def _frame_message(compressed: int, uncompressed: int) -> str:
    return f"one frame, content checksum verified ({compressed} → {uncompressed} bytes)"


def _check_sha256(report: VerifyReport, expected: str | None, bundle_path: str) -> None:
    from fastpack.sidecar import parse_expected_sha256, read_sidecar, sidecar_path

    source = expected
    try:
        if expected is not None:
            wanted = parse_expected_sha256(expected)
            source = expected if os.path.exists(expected) else "--sha256"
        elif os.path.exists(sidecar_path(bundle_path)):
            source = sidecar_path(bundle_path)
            wanted = read_sidecar(source)
        else:
            report.add("sha256", SKIP, f"{report.sha256} (no --sha256 given and no sidecar to compare with)")
            return
    except FastpackError as exc:
        report.add("sha256", FAIL, str(exc))
        return
    if wanted == report.sha256:
        report.add("sha256", OK, f"{report.sha256} matches {source}")
    else:
        report.add("sha256", FAIL, f"bundle is {report.sha256}, {source} expects {wanted}")


def _check_manifest(report: VerifyReport, summary: BundleSummary | None) -> None:
    from fastpack.manifest import MANIFEST_NAME, summarize, validate_with_members

    if summary is None:
        report.add("manifest", SKIP, "not checked: the bundle's structure is invalid")
        return
    if summary.manifest is None:
        report.add("manifest", FAIL, f"no {MANIFEST_NAME} at the bundle root")
        return
    issues = validate_with_members(summary.manifest, summary.names)
    if issues:
        report.add("manifest", FAIL, summarize(issues))
        return
    doc = json.loads(summary.manifest)
    report.add("manifest", OK, f"{doc['name']} {doc['version']} ({doc['runtime']}): valid and consistent")


def _check_signature(report: VerifyReport, request: SignatureRequest, digest: BundleDigest) -> None:
    from fastpack.sign import verify_signature

    try:
        with open(request.signature, encoding="utf-8") as handle:
            text = handle.read(1 << 20)
    except FileNotFoundError:
        report.add("signature", FAIL, f"{request.signature}: signature file not found")
        return
    except (OSError, UnicodeDecodeError) as exc:
        report.add("signature", FAIL, f"{request.signature}: cannot read signature: {exc}")
        return
    try:
        info = verify_signature(
            text, request.algorithm, digest, key=request.key, ca=request.ca, keyring=request.keyring
        )
    except UsageError:
        raise
    except FastpackError as exc:
        report.add("signature", FAIL, str(exc))
        return
    report.signature = info.to_json()
    report.add("signature", OK, f"valid {request.algorithm} signature" + (f" by {info.signer}" if info.signer else ""))


def verify_bundle(
    path: str,
    *,
    expected_sha256: str | None = None,
    signature: SignatureRequest | None = None,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> VerifyReport:
    """Check a bundle file; `expected_sha256` is 64 hex or a sidecar path (default: the sidecar next to it)."""
    from fastpack.bundle import open_bundle

    with open_bundle(path) as handle:
        source = HashingSource(handle)
        summary, structure = _structure(BundleReader(source, limits, path), source)
    report = VerifyReport(path, source.state.hexdigest(), source.size, summary=summary)
    _check_sha256(report, expected_sha256, path)
    report.checks += structure
    _check_manifest(report, summary)
    if signature is not None:
        _check_signature(report, signature, BundleDigest.from_state(source.state, source.size))
    return report
