"""Read side: canonical objects (streamed, ETag, 304, Range) and the version index."""

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fastpack.errors import NotFound, StoreError
from fastpack.server.auth import Principal
from fastpack.server.conditional import RangeNotSatisfiable, etag_matches, parse_range
from fastpack.server.schemas import HEX_PATTERN, ErrorBody, VersionIndexEntry, error_responses
from fastpack.store import IMMUTABLE, INDEX_PREFIX, ObjectInfo, ObjectReader, canonical_key, check_key

ObjectName = Literal["bundle.tar.zst", "manifest.json", "SIGNATURE"]
CONTENT_TYPES = {
    "bundle.tar.zst": "application/zstd",
    "manifest.json": "application/json",
    "SIGNATURE": "text/plain; charset=utf-8",
}
_GET_SUMMARY = "Fetch a canonical object (bundle, manifest or signature)"
_HEAD_SUMMARY = "Headers of a canonical object (size, ETag) without its body"
_OBJECT_CONTENT = {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}


def build_router(require_read: Any) -> APIRouter:
    router = APIRouter(prefix="/api/ext-bundles", tags=["serve"])
    reader = Annotated[Principal, Depends(require_read)]

    object_responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "the whole object", "content": _OBJECT_CONTENT},
        206: {"description": "the requested byte range", "content": _OBJECT_CONTENT},
        304: {"description": "the client's copy (If-None-Match) is current"},
        416: {"description": "the range starts past the end", "model": ErrorBody},
        **error_responses(400, 401, 403, 404, 429, 502),
    }

    async def get_object(
        request: Request,
        principal: reader,
        content_hash: Annotated[str, Path(pattern=HEX_PATTERN, description="lowercase hex SHA-256 of the bundle")],
        name: ObjectName,
    ) -> Response:
        key = canonical_key(content_hash, name)
        store = request.app.state.config.store
        info: ObjectInfo | None = await anyio.to_thread.run_sync(store.head, key)
        if info is None:
            raise NotFound(f"no such object: {key}")
        headers = {
            "etag": info.etag,
            "cache-control": IMMUTABLE,
            "accept-ranges": "bytes",
            "content-type": info.content_type or CONTENT_TYPES[name],
        }
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, info.etag):
            return Response(status_code=304, headers={k: headers[k] for k in ("etag", "cache-control")})
        byte_range = None
        range_header = request.headers.get("range")
        if range_header is not None:
            try:
                byte_range = parse_range(range_header, info.size)
            except RangeNotSatisfiable:
                return JSONResponse(
                    {"error": f"range not satisfiable: {range_header!r} for {info.size} bytes", "code": "BAD_RANGE"},
                    status_code=416,
                    headers={"content-range": f"bytes */{info.size}"},
                )
        status = 200
        length = info.size
        if byte_range is not None:
            status = 206
            length = byte_range[1] - byte_range[0] + 1
            headers["content-range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{info.size}"
        headers["content-length"] = str(length)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        stream: ObjectReader = await anyio.to_thread.run_sync(lambda: store.get(key, byte_range=byte_range))
        return StreamingResponse(_chunks(stream), status_code=status, headers=headers)

    for method, operation_id, summary in (("GET", "getObject", _GET_SUMMARY), ("HEAD", "headObject", _HEAD_SUMMARY)):
        router.add_api_route(
            "/sha256/{content_hash}/{name}",
            get_object,
            methods=[method],
            operation_id=operation_id,
            summary=summary,
            response_class=Response,
            responses=object_responses,
        )

    @router.get(
        "/extensions/{name}/{version}",
        summary="The version index entry of name@version",
        operation_id="getVersion",
        response_model=VersionIndexEntry,
        responses=error_responses(400, 401, 403, 404, 429),
    )
    async def get_version(request: Request, principal: reader, name: str, version: str) -> JSONResponse:
        key = check_key(f"{INDEX_PREFIX}{name}/{version}.json")
        store = request.app.state.config.store
        entry = await anyio.to_thread.run_sync(_read_json, store, key)
        return JSONResponse(entry, headers={"cache-control": "no-cache"})

    return router


def _chunks(stream: ObjectReader) -> Iterator[bytes]:
    try:
        yield from stream
    finally:
        stream.close()


def _read_json(store: Any, key: str) -> Any:
    try:
        stream = store.get(key)
    except NotFound:
        raise NotFound(f"no such version: {key}") from None
    try:
        text = b"".join(stream)
    finally:
        stream.close()
    try:
        return json.loads(text)
    except ValueError:
        raise StoreError(f"corrupt version index entry {key}") from None
