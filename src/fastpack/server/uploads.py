"""Write side: upload-proxy (streamed into staging), finalize (publish), abort.

The request body goes from the socket to `fastpack.publish.stage_upload` chunk by
chunk: a worker thread pulls the next chunk from the event loop only when the
store has taken the previous one, so memory stays at a few chunks per upload.
"""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request

from fastpack.errors import SizeMismatch, TooLarge, UsageError
from fastpack.server.auth import Principal
from fastpack.server.schemas import (
    HEX_PATTERN,
    AbortRequest,
    AbortResponse,
    FinalizeRequest,
    FinalizeResponse,
    UploadResponse,
    error_responses,
)

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "the bundle's bytes, exactly `size` of them",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def build_router(require_publish: Any) -> APIRouter:
    router = APIRouter(prefix="/api/ext-bundles", tags=["publish"])
    publisher = Annotated[Principal, Depends(require_publish)]

    @router.post(
        "/upload-proxy",
        operation_id="uploadProxy",
        summary="Stream a bundle into a staging object",
        response_model=UploadResponse,
        responses=error_responses(400, 401, 403, 413, 429, 502),
        openapi_extra=_RAW_BODY,
    )
    async def upload_proxy(
        request: Request,
        principal: publisher,
        filename: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")],
        size: Annotated[int, Query(gt=0, description="exact body length in bytes; at most the server's cap")],
        declaredHash: Annotated[str | None, Query(pattern=HEX_PATTERN, description="expected SHA-256 (hex)")] = None,
    ) -> dict[str, Any]:
        from fastpack.publish import stage_upload

        config = request.app.state.config
        if size > config.max_bytes:
            raise TooLarge(f"size {size} exceeds this server's limit of {config.max_bytes} bytes")
        declared_length = request.headers.get("content-length")
        if declared_length is not None and declared_length.strip() != str(size):
            raise SizeMismatch(f"content-length {declared_length.strip()} does not match size={size}")
        chunks = _blocking_chunks(request.stream(), limit=size)
        staged = await anyio.to_thread.run_sync(
            lambda: stage_upload(
                config.store,
                chunks,
                size=size,
                declared_hash=declaredHash,
                max_bytes=config.max_bytes,
                part_size=config.upload_part_size,
                concurrency=config.upload_concurrency,
            )
        )
        return {
            "upload": {"key": staged.key, "strategy": "staging"},
            "filename": filename,
            "size": staged.size,
            "sha256": staged.sha256,
        }

    @router.post(
        "/finalize",
        operation_id="finalize",
        summary="Verify a staged (or existing canonical) bundle and publish it",
        response_model=FinalizeResponse,
        responses=error_responses(400, 401, 403, 404, 409, 429, 502),
    )
    async def finalize(request: Request, principal: publisher, body: FinalizeRequest) -> dict[str, Any]:
        from fastpack.publish import finalize_staged

        config = request.app.state.config
        signature = _signature_input(body)
        manifest = body.manifestJson
        if isinstance(manifest, dict):
            manifest = json.dumps(manifest)
        result = await anyio.to_thread.run_sync(
            lambda: finalize_staged(
                config.store,
                body.key,
                size=body.size,
                declared_hash=body.declaredHash,
                manifest_json=manifest,
                signature=signature,
                trust=config.trust,
            )
        )
        response: dict[str, Any] = result.to_json()
        return response

    @router.post(
        "/abort",
        operation_id="abort",
        summary="Remove a staging object (a no-op for canonical keys)",
        response_model=AbortResponse,
        responses=error_responses(400, 401, 403, 429, 502),
    )
    async def abort(request: Request, principal: publisher, body: AbortRequest) -> dict[str, Any]:
        from fastpack.publish import abort_staged

        removed = await anyio.to_thread.run_sync(abort_staged, request.app.state.config.store, body.key)
        return {"key": body.key, "aborted": bool(removed)}

    return router


def _signature_input(body: FinalizeRequest) -> Any:
    """Both reference shapes: `{"text", "algorithm"}`, or the text with `signatureAlgorithm`."""
    from fastpack.publish import SignatureInput

    if body.signature is None:
        if body.signatureAlgorithm is not None:
            raise UsageError("signatureAlgorithm given without a signature")
        return None
    if isinstance(body.signature, str):
        if body.signatureAlgorithm is None:
            raise UsageError("a signature given as text needs signatureAlgorithm (cosign, x509 or pgp)")
        if not body.signature.strip():
            raise UsageError("signature is empty")
        return SignatureInput(body.signature, body.signatureAlgorithm)
    if body.signatureAlgorithm is not None and body.signatureAlgorithm != body.signature.algorithm:
        raise UsageError(
            f"signatureAlgorithm {body.signatureAlgorithm!r} contradicts signature.algorithm "
            f"{body.signature.algorithm!r}"
        )
    return SignatureInput(body.signature.text, body.signature.algorithm)


def _blocking_chunks(stream: AsyncIterator[bytes], *, limit: int) -> Iterator[bytes]:
    """The body as a blocking iterator for a worker thread; stops reading once it is longer than `limit`.

    `stage_upload` enforces size and cap itself; stopping here too means a client
    that sends more than it declared never makes the server read the excess.
    """

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    received = 0
    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if not chunk:
            continue
        received += len(chunk)
        yield chunk
        if received > limit:
            return
