"""Request and response bodies, as the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEX_PATTERN = r"^[0-9a-f]{64}$"
Algorithm = Literal["cosign", "x509", "pgp"]


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong, for humans")
    code: str = Field(description="stable machine code, e.g. HASH_MISMATCH")
    details: Any = Field(default=None, description="structured details, e.g. {'issues': [{path, message}]}")


_DESCRIPTIONS = {
    400: "invalid request (bad query, body, key, manifest, signature, hash or size)",
    401: "no or unknown credentials",
    403: "credentials valid but not allowed to do this",
    404: "no such object, staging upload or version",
    409: "name@version already published with other content",
    413: "body longer than the declared size or the server's cap",
    429: "rate limit exceeded (see Retry-After)",
    500: "internal error (generic body)",
    502: "storage backend failed (generic body)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": _DESCRIPTIONS[status], "model": ErrorBody} for status in statuses}


class UploadTarget(BaseModel):
    key: str = Field(description="staging key to pass to finalize or abort")
    strategy: Literal["staging"]


class UploadResponse(BaseModel):
    upload: UploadTarget
    filename: str
    size: int
    sha256: str = Field(pattern=HEX_PATTERN)


class SignatureBody(BaseModel):
    text: str = Field(min_length=1, description="the signature file's content")
    algorithm: Algorithm


class FinalizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1, max_length=1024, description="staging key from upload-proxy, or a canonical key")
    size: int | None = Field(default=None, gt=0)
    declaredHash: str | None = Field(default=None, pattern=HEX_PATTERN)
    manifestJson: str | dict[str, Any] | None = Field(
        default=None, description="manifest text (or object) that must equal the bundle's manifest.json"
    )
    signature: SignatureBody | str | None = Field(
        default=None, description="{text, algorithm}, or the text alone with signatureAlgorithm"
    )
    signatureAlgorithm: Algorithm | None = None


class SignatureInfoBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    algorithm: str
    verified: bool
    signer: str | None = None


class FinalizeResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    extension: str
    version: str
    contentHash: str = Field(pattern=HEX_PATTERN)
    canonicalKey: str
    manifestKey: str
    indexKey: str | None = None
    uploaded: bool | None = Field(default=None, description="true if this call created the canonical bundle")
    size: int | None = None
    publishedAt: str | None = Field(default=None, description="when name@version was first published (UTC)")
    signature: SignatureInfoBody | None = None


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1, max_length=1024)


class AbortResponse(BaseModel):
    key: str
    aborted: bool = Field(description="true if a staging object was removed; false for canonical or absent keys")


class VersionIndexEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    contentHash: str = Field(pattern=HEX_PATTERN)
    publishedAt: str
    size: int
    canonicalKey: str | None = None
    manifestKey: str | None = None
    signature: SignatureInfoBody | None = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
