"""Manifest validation (SPEC §3): every issue at once, each with a JSONPath-like location.

Used before packing (so a broken extension never becomes a bundle), by
`fastpack manifest check`, by verify/inspect, and by publish/finalize.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from fastpack.errors import ManifestError
from fastpack.tree import Entry, display

MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
MAIN_WASM = "dist/main.wasm"

_FIELDS = ("name", "version", "runtime", "publisher", "capabilities", "assets", "precompiled", "ui", "api")
_REQUIRED = ("name", "version", "runtime")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})
_LABELLED_HOOKS = ("appMenu", "clientPortalMenu")
_NUMBER = r"(?:0|[1-9][0-9]*)"
_VERSION = re.compile(rf"{_NUMBER}\.{_NUMBER}\.(?:{_NUMBER}(?:-[A-Za-z0-9.-]+)?(?:\+[A-Za-z0-9.-]+)?|\*)")
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_MISSING = object()


@dataclass(frozen=True)
class Issue:
    """One problem in a manifest: where (`api.endpoints[0].path`, `$` for the whole document) and what."""

    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse(data: bytes | str) -> tuple[Any, list[Issue]]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Issue("$", f"not valid UTF-8 (byte {exc.start})")]
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant), []
    except json.JSONDecodeError as exc:
        return None, [Issue("$", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
    except ValueError as exc:
        return None, [Issue("$", f"invalid JSON: {exc}")]
    except RecursionError:
        return None, [Issue("$", "invalid JSON: nested too deeply")]


def _key_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if _SIMPLE_KEY.fullmatch(key) else f"{parent}[{json.dumps(key)}]"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


class _Checker:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def string(self, value: Any, path: str) -> str | None:
        """A non-empty (not just whitespace) string, else an issue."""
        if value is _MISSING:
            self.add(path, "is required (a non-empty string)")
            return None
        if not isinstance(value, str):
            self.add(path, f"must be a non-empty string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.add(path, "must be a non-empty string")
            return None
        return value

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be an object, got {_type_name(value)}")
            return None
        return value

    def string_list(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.add(path, f"must be an array of non-empty strings, got {_type_name(value)}")
            return
        for index, item in enumerate(value):
            self.string(item, f"{path}[{index}]")

    def no_dotdot(self, value: str | None, path: str) -> None:
        if value is not None and ".." in value:
            self.add(path, f"must not contain '..' (got {value!r})")

    def manifest(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.add("$", f"manifest must be a JSON object, got {_type_name(doc)}")
            return
        for key in doc:
            if key not in _FIELDS:
                self.add(_key_path("$", key).removeprefix("$."), f"unknown field (allowed: {', '.join(_FIELDS)})")
        for key in _REQUIRED:
            if key not in doc:
                self.add(key, "is required")
        if "name" in doc:
            self.string(doc["name"], "name")
        if "version" in doc:
            self.version(doc["version"])
        if "runtime" in doc:
            self.runtime(doc["runtime"])
        if "publisher" in doc:
            self.string(doc["publisher"], "publisher")
        for key in ("capabilities", "assets"):
            if key in doc:
                self.string_list(doc[key], key)
        if "precompiled" in doc:
            precompiled = self.obj(doc["precompiled"], "precompiled")
            for key, value in (precompiled or {}).items():
                self.string(value, _key_path("precompiled", key))
        if "ui" in doc:
            self.ui(doc["ui"])
        if "api" in doc:
            self.api(doc["api"])

    def version(self, value: Any) -> None:
        text = self.string(value, "version")
        if text is not None and not _VERSION.fullmatch(text):
            self.add("version", f"must be X.Y.Z (optionally -prerelease / +build) or X.Y.*, got {text!r}")

    def runtime(self, value: Any) -> None:
        text = self.string(value, "runtime")
        if text is not None and "@" not in text and "-" not in text:
            self.add("runtime", f"must name a runtime and version such as 'wasm-js@1', got {text!r}")

    def ui(self, value: Any) -> None:
        ui = self.obj(value, "ui")
        if ui is None:
            return
        if "type" not in ui:
            self.add("ui.type", 'is required and must be "iframe"')
        elif ui["type"] != "iframe":
            self.add("ui.type", f'must be "iframe", got {json.dumps(ui["type"])}')
        if "entry" not in ui:
            self.add("ui.entry", "is required")
        else:
            self.no_dotdot(self.string(ui["entry"], "ui.entry"), "ui.entry")
        if "hooks" in ui:
            hooks = self.obj(ui["hooks"], "ui.hooks")
            for name in _LABELLED_HOOKS:
                if hooks is None or name not in hooks:
                    continue
                hook = self.obj(hooks[name], f"ui.hooks.{name}")
                if hook is not None:
                    self.string(hook.get("label", _MISSING), f"ui.hooks.{name}.label")

    def api(self, value: Any) -> None:
        api = self.obj(value, "api")
        if api is None:
            return
        if "endpoints" not in api:
            self.add("api.endpoints", "is required")
            return
        endpoints = api["endpoints"]
        if not isinstance(endpoints, list):
            self.add("api.endpoints", f"must be an array, got {_type_name(endpoints)}")
            return
        for index, item in enumerate(endpoints):
            self.endpoint(item, f"api.endpoints[{index}]")

    def endpoint(self, value: Any, path: str) -> None:
        endpoint = self.obj(value, path)
        if endpoint is None:
            return
        method = endpoint.get("method")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            shown = json.dumps(method) if "method" in endpoint else "missing"
            self.add(f"{path}.method", f"must be one of {', '.join(sorted(_METHODS))} (any case), got {shown}")
        route = self.string(endpoint.get("path", _MISSING), f"{path}.path")
        if route is not None and any(char.isspace() for char in route):
            self.add(f"{path}.path", f"must not contain whitespace (got {route!r})")
        self.no_dotdot(route, f"{path}.path")
        self.no_dotdot(self.string(endpoint.get("handler", _MISSING), f"{path}.handler"), f"{path}.handler")


def _validate_document(data: bytes | str | dict[str, Any]) -> tuple[Any, list[Issue]]:
    if isinstance(data, dict):
        doc: Any = data
    else:
        doc, issues = _parse(data)
        if issues:
            return None, issues
    checker = _Checker()
    checker.manifest(doc)
    return doc, checker.issues


def validate_manifest(data: bytes | str | dict[str, Any]) -> list[Issue]:
    """Every schema issue of a manifest (JSON text or parsed object); empty when valid."""
    return _validate_document(data)[1]


def summarize(issues: Sequence[Issue]) -> str:
    return "invalid manifest: " + "; ".join(str(issue) for issue in issues)


def manifest_error(issues: Sequence[Issue], path: str | None = None) -> ManifestError:
    return ManifestError(summarize(issues), path=path, details={"issues": [issue.to_json() for issue in issues]})


def load_manifest(data: bytes | str) -> dict[str, Any]:
    """Parse and validate; raises ManifestError listing every issue."""
    doc, issues = _validate_document(data)
    if issues:
        raise manifest_error(issues)
    return doc  # type: ignore[no-any-return]


def check_bundle_consistency(manifest: dict[str, Any], member_names: Collection[str]) -> list[Issue]:
    """Files the manifest refers to that the bundle lacks (member names without a trailing '/')."""
    issues: list[Issue] = []
    if not isinstance(manifest, dict):
        return issues
    names = member_names if isinstance(member_names, (set, frozenset, dict)) else frozenset(member_names)
    runtime = manifest.get("runtime")
    api = manifest.get("api")
    endpoints = api.get("endpoints") if isinstance(api, dict) else None
    if MAIN_WASM not in names:
        if isinstance(runtime, str) and runtime.startswith("wasm"):
            issues.append(Issue("runtime", f"runtime {runtime!r} needs {MAIN_WASM}, which is not in the bundle"))
        elif isinstance(endpoints, list) and endpoints:
            issues.append(Issue("api.endpoints", f"API endpoints need {MAIN_WASM}, which is not in the bundle"))
    ui = manifest.get("ui")
    entry = ui.get("entry") if isinstance(ui, dict) else None
    if isinstance(entry, str) and entry.strip() and ".." not in entry:
        normalized = posixpath.normpath(entry)
        if normalized not in names:
            issues.append(Issue("ui.entry", f"{entry} is not in the bundle"))
    return issues


def validate_with_members(data: bytes | str, member_names: Collection[str]) -> list[Issue]:
    """Schema issues, then consistency issues against the bundle's members (when the schema allows)."""
    doc, issues = _validate_document(data)
    if isinstance(doc, dict):
        issues += check_bundle_consistency(doc, member_names)
    return issues


def read_manifest_file(path: str) -> bytes:
    """A manifest file's bytes, refusing anything larger than MAX_MANIFEST_BYTES."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError("manifest not found", path=path) from None
    except IsADirectoryError:
        raise ManifestError("manifest is a directory, expected a JSON file", path=path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read manifest: {exc.strerror}", path=path) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", path=path)
    return data


def check_tree(src: str, entries: Sequence[Entry]) -> None:
    """Before packing: the tree's manifest.json is valid and consistent with the entries to be packed."""
    path = os.path.join(display(src), MANIFEST_NAME)
    if not any(entry.name == MANIFEST_NAME.encode() for entry in entries):
        raise ManifestError(
            f"no {MANIFEST_NAME} at the root of the directory (pack with --no-validate to skip validation)",
            path=path,
        )
    names = frozenset(display(entry.name).removesuffix("/") for entry in entries)
    issues = validate_with_members(read_manifest_file(path), names)
    if issues:
        raise manifest_error(issues, path=path)
