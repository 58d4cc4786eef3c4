"""SPEC §3 manifest rules: table-driven, every rule, all issues at once, exact issue paths."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from fastpack.cli import main
from fastpack.errors import ManifestError
from fastpack.manifest import Issue, check_bundle_consistency, load_manifest, validate_manifest
from fastpack.pack import pack
from helpers_bundles import compress, end, member

FIXTURE_NAMES = ("client-portal-test.json", "hello-world.json", "invoicing-demo.json")

BASE = {
    "name": "com.example.app",
    "publisher": "Example",
    "version": "1.2.3",
    "runtime": "wasm-js@1",
    "capabilities": ["cap:log.emit"],
    "assets": ["ui/**/*"],
    "precompiled": {"x86_64": "dist/main.cwasm"},
    "ui": {
        "type": "iframe",
        "entry": "ui/index.html",
        "hooks": {"appMenu": {"label": "App"}, "clientPortalMenu": {"label": "Portal"}, "other": {"x": 1}},
    },
    "api": {"endpoints": [{"method": "GET", "path": "/api/status", "handler": "dist/main"}]},
}


def mutated(path: str, value: object) -> dict[str, object]:
    """BASE with the dotted `path` set to `value` (or deleted when value is DELETE)."""
    doc = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target: object = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]  # type: ignore[index]
    if value is DELETE:
        del target[int(last) if isinstance(target, list) else last]  # type: ignore[attr-defined]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value  # type: ignore[index]
    return doc


DELETE = object()

VALID_VARIANTS = [
    ("version", "0.0.1"),
    ("version", "1.2.3-beta.1"),
    ("version", "1.2.3+build.5"),
    ("version", "1.2.3-rc-1+sha.abc"),
    ("version", "10.20.*"),
    ("runtime", "wasm-js@2"),
    ("runtime", "native-x"),
    ("runtime", "js@1"),
    ("publisher", DELETE),
    ("capabilities", []),
    ("assets", DELETE),
    ("precompiled", {}),
    ("ui", DELETE),
    ("ui.hooks", DELETE),
    ("ui.hooks", {}),
    ("api", DELETE),
    ("api.endpoints", []),
    ("api.endpoints.0.method", "post"),
    ("api.endpoints.0.method", "Options"),
    ("api.endpoints.0.method", "HEAD"),
]

# (dotted path to change, new value, expected issue path, phrase in the message)
INVALID_VARIANTS = [
    ("name", DELETE, "name", "is required"),
    ("name", "", "name", "non-empty string"),
    ("name", "   ", "name", "non-empty string"),
    ("name", 7, "name", "got a number"),
    ("version", DELETE, "version", "is required"),
    ("version", "1.2", "version", "X.Y.Z"),
    ("version", "v1.2.3", "version", "X.Y.Z"),
    ("version", "1.2.3-", "version", "X.Y.Z"),
    ("version", "1.2.3-beta_1", "version", "X.Y.Z"),
    ("version", "1.*.*", "version", "X.Y.Z"),
    ("version", "01.2.3", "version", "X.Y.Z"),
    ("version", 123, "version", "got a number"),
    ("runtime", DELETE, "runtime", "is required"),
    ("runtime", "", "runtime", "non-empty"),
    ("runtime", "wasm", "runtime", "wasm-js@1"),
    ("publisher", "", "publisher", "non-empty"),
    ("publisher", None, "publisher", "got null"),
    ("capabilities", "cap:x", "capabilities", "array of non-empty strings"),
    ("capabilities", ["ok", ""], "capabilities[1]", "non-empty"),
    ("capabilities", ["ok", 3], "capabilities[1]", "got a number"),
    ("assets", [None], "assets[0]", "got null"),
    ("precompiled", ["a"], "precompiled", "must be an object"),
    ("precompiled", {"x86_64": ""}, "precompiled.x86_64", "non-empty"),
    ("precompiled", {"linux/arm64": 1}, 'precompiled["linux/arm64"]', "got a number"),
    ("ui", "iframe", "ui", "must be an object"),
    ("ui.type", DELETE, "ui.type", "is required"),
    ("ui.type", "div", "ui.type", '"iframe"'),
    ("ui.entry", DELETE, "ui.entry", "is required"),
    ("ui.entry", "", "ui.entry", "non-empty"),
    ("ui.entry", "../index.html", "ui.entry", "'..'"),
    ("ui.entry", "ui/../../x.html", "ui.entry", "'..'"),
    ("ui.hooks", [], "ui.hooks", "must be an object"),
    ("ui.hooks.appMenu", "App", "ui.hooks.appMenu", "must be an object"),
    ("ui.hooks.appMenu", {}, "ui.hooks.appMenu.label", "is required"),
    ("ui.hooks.appMenu.label", "", "ui.hooks.appMenu.label", "non-empty"),
    ("ui.hooks.clientPortalMenu.label", 5, "ui.hooks.clientPortalMenu.label", "got a number"),
    ("api", [], "api", "must be an object"),
    ("api.endpoints", DELETE, "api.endpoints", "is required"),
    ("api.endpoints", {}, "api.endpoints", "must be an array"),
    ("api.endpoints.0", "GET /x", "api.endpoints[0]", "must be an object"),
    ("api.endpoints.0.method", "FETCH", "api.endpoints[0].method", "one of DELETE, GET"),
    ("api.endpoints.0.method", DELETE, "api.endpoints[0].method", "got missing"),
    ("api.endpoints.0.method", 1, "api.endpoints[0].method", "got 1"),
    ("api.endpoints.0.path", DELETE, "api.endpoints[0].path", "is required"),
    ("api.endpoints.0.path", "", "api.endpoints[0].path", "non-empty"),
    ("api.endpoints.0.path", "/api/a b", "api.endpoints[0].path", "whitespace"),
    ("api.endpoints.0.path", "/api/\tx", "api.endpoints[0].path", "whitespace"),
    ("api.endpoints.0.path", "/api/../admin", "api.endpoints[0].path", "'..'"),
    ("api.endpoints.0.handler", DELETE, "api.endpoints[0].handler", "is required"),
    ("api.endpoints.0.handler", "", "api.endpoints[0].handler", "non-empty"),
    ("api.endpoints.0.handler", "../dist/main", "api.endpoints[0].handler", "'..'"),
    ("extra", True, "extra", "unknown field"),
    ("sbom", "x", "sbom", "unknown field"),
    ("has space", 1, '$["has space"]', "unknown field"),
]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_world_fixture_manifests_pass(shared_fixtures: Path, name: str) -> None:
    data = (shared_fixtures / "manifests" / name).read_bytes()
    assert validate_manifest(data) == []
    assert load_manifest(data)["name"] == json.loads(data)["name"]


def test_base_manifest_is_valid() -> None:
    assert validate_manifest(BASE) == []
    assert validate_manifest(json.dumps(BASE)) == []


@pytest.mark.parametrize(("path", "value"), VALID_VARIANTS, ids=[f"{p}={v!r}" for p, v in VALID_VARIANTS])
def test_valid_variants(path: str, value: object) -> None:
    assert validate_manifest(mutated(path, value)) == []


@pytest.mark.parametrize(
    ("path", "value", "issue_path", "phrase"),
    INVALID_VARIANTS,
    ids=[f"{p}={'DELETE' if v is DELETE else repr(v)}" for p, v, _, _ in INVALID_VARIANTS],
)
def test_each_rule_reports_its_exact_path(path: str, value: object, issue_path: str, phrase: str) -> None:
    issues = validate_manifest(json.dumps(mutated(path, value)))
    assert [issue.path for issue in issues] == [issue_path], issues
    assert phrase in issues[0].message


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_mutated_fixture_fails_with_exact_paths(shared_fixtures: Path, name: str) -> None:
    doc = json.loads((shared_fixtures / "manifests" / name).read_bytes())
    doc["version"] = "one"
    doc["ui"]["hooks"]["appMenu"]["label"] = ""
    doc["ui"]["type"] = "window"
    del doc["runtime"]
    doc["owner"] = "someone"
    expected = ["owner", "runtime", "version", "ui.type", "ui.hooks.appMenu.label"]
    if "api" in doc:
        doc["api"]["endpoints"][1]["method"] = "SEND"
        expected.append("api.endpoints[1].method")
    assert [issue.path for issue in validate_manifest(json.dumps(doc))] == expected


def test_all_issues_at_once_and_load_manifest_summarizes_them() -> None:
    doc = {"name": "", "version": "1.0", "runtime": "x", "api": {"endpoints": [{"method": "GET", "path": "a b"}]}}
    issues = validate_manifest(doc)
    assert [issue.path for issue in issues] == [
        "name",
        "version",
        "runtime",
        "api.endpoints[0].path",
        "api.endpoints[0].handler",
    ]
    with pytest.raises(ManifestError) as caught:
        load_manifest(json.dumps(doc))
    message = caught.value.message
    assert message.startswith("invalid manifest: name: must be a non-empty string; version: must be X.Y.Z")
    assert "api.endpoints[0].handler: is required" in message
    assert caught.value.details == {"issues": [issue.to_json() for issue in issues]}
    assert caught.value.code == "INVALID_MANIFEST"


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (b"", "invalid JSON"),
        (b"{", "invalid JSON"),
        (b'{"name": "a",}', "invalid JSON"),
        (b'{"name": "a", "name": "b"}', "duplicate key 'name'"),
        (b'{"name": NaN}', "NaN is not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"name": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b'"text"', "must be a JSON object, got a string"),
        (b"null", "must be a JSON object, got null"),
    ],
)
def test_parse_errors_are_reported_at_root(text: bytes, phrase: str) -> None:
    issues = validate_manifest(text)
    assert [issue.path for issue in issues] == ["$"]
    assert phrase in issues[0].message


def test_issue_json_shape() -> None:
    assert Issue("version", "bad").to_json() == {"path": "version", "message": "bad"}


@pytest.mark.parametrize(
    ("manifest", "names", "expected"),
    [
        (BASE, {"dist/main.wasm", "ui/index.html"}, []),
        (BASE, {"ui/index.html"}, [("runtime", "needs dist/main.wasm")]),
        (BASE, {"dist/main.wasm"}, [("ui.entry", "ui/index.html is not in the bundle")]),
        (BASE, {"dist", "ui"}, [("runtime", "dist/main.wasm"), ("ui.entry", "not in the bundle")]),
        (mutated("runtime", "js@1"), {"ui/index.html"}, [("api.endpoints", "need dist/main.wasm")]),
        (mutated("api.endpoints", []) | {"runtime": "js@1"}, {"ui/index.html"}, []),
        (mutated("ui.entry", "./ui/index.html"), {"dist/main.wasm", "ui/index.html"}, []),
    ],
)
def test_bundle_consistency(manifest: dict, names: set[str], expected: list[tuple[str, str]]) -> None:
    issues = check_bundle_consistency(manifest, names)
    assert [issue.path for issue in issues] == [path for path, _ in expected]
    for issue, (_, phrase) in zip(issues, expected, strict=True):
        assert phrase in issue.message


# --- pack validates the tree it packs ---------------------------------------------------------------------


@pytest.fixture
def extension(tmp_path: Path, example_dist: Path) -> Path:
    tree = tmp_path / "ext"
    shutil.copytree(example_dist, tree, symlinks=True)
    return tree


def test_pack_accepts_the_example_extension(extension: Path, tmp_path: Path) -> None:
    assert pack(extension, tmp_path / "bundle.tar.zst").entries > 0


def test_pack_without_manifest_fails_and_suggests_no_validate(extension: Path, tmp_path: Path) -> None:
    (extension / "manifest.json").unlink()
    out = tmp_path / "bundle.tar.zst"
    with pytest.raises(ManifestError) as caught:
        pack(extension, out)
    assert caught.value.path == os.path.join(str(extension), "manifest.json")
    assert "--no-validate" in caught.value.message
    assert not out.exists() and not (tmp_path / "bundle.sha256").exists()
    pack(extension, out, validate=False)
    assert out.exists()


def test_pack_reports_schema_and_consistency_issues_together(extension: Path, tmp_path: Path) -> None:
    doc = json.loads((extension / "manifest.json").read_text())
    doc["version"] = "latest"
    (extension / "manifest.json").write_text(json.dumps(doc))
    (extension / "dist" / "main.wasm").unlink()
    (extension / "ui" / "index.html").unlink()
    out = tmp_path / "bundle.tar.zst"
    with pytest.raises(ManifestError) as caught:
        pack(extension, out)
    paths = [issue["path"] for issue in caught.value.details["issues"]]
    assert paths[0] == "version" and "runtime" in paths and "ui.entry" in paths
    assert not out.exists()


def test_pack_cli_invalid_manifest_exit_code_and_message(
    extension: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (extension / "manifest.json").write_text('{"name": "x"}')
    out = tmp_path / "bundle.tar.zst"
    assert main(["pack", str(extension), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"fastpack: error: {extension}/manifest.json: invalid manifest: version: is required" in err
    assert not out.exists()


# --- fastpack manifest check ------------------------------------------------------------------------------


def test_manifest_check_file_ok(shared_fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_fixtures / "manifests" / "invoicing-demo.json"
    assert main(["manifest", "check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid\n"


def test_manifest_check_file_invalid_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(mutated("api.endpoints.0.path", "/a b") | {"version": "x"}))
    assert main(["manifest", "check", str(path), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    assert [issue["path"] for issue in result["issues"]] == ["version", "api.endpoints[0].path"]


def test_manifest_check_human_output_lists_every_issue(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "m.json"
    path.write_text('{"name": "", "version": "1", "runtime": "r@1", "bogus": 1}')
    result = subprocess.run(
        [sys.executable, "-m", "fastpack", "manifest", "check", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{path}: bogus: unknown field" in result.stdout
    assert f"{path}: name: must be a non-empty string" in result.stdout
    assert f"{path}: version: must be X.Y.Z" in result.stdout
    assert "3 issues" in result.stdout


def test_manifest_check_directory_checks_consistency(extension: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "check", str(extension)]) == 0
    (extension / "dist" / "main.wasm").unlink()
    capsys.readouterr()
    assert main(["manifest", "check", str(extension), "--json"]) == 1
    assert [issue["path"] for issue in json.loads(capsys.readouterr().out)["issues"]] == ["runtime"]


def test_manifest_check_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = mutated("ui.entry", "ui/missing.html")
    bundle = tmp_path / "b.tar.zst"
    bundle.write_bytes(
        compress(end(member("dist/main.wasm", b"w") + member("manifest.json", json.dumps(doc).encode())))
    )
    assert main(["manifest", "check", str(bundle), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["issues"] == [{"path": "ui.entry", "message": "ui/missing.html is not in the bundle"}]


def test_manifest_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "check", str(tmp_path / "nope.json")]) == 1
    assert f"fastpack: error: {tmp_path}/nope.json: manifest not found" in capsys.readouterr().err


def test_manifest_check_bundle_without_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "b.tar.zst"
    bundle.write_bytes(compress(end(member("a.txt", b"a"))))
    assert main(["manifest", "check", str(bundle)]) == 1
    assert f"fastpack: error: {bundle}: no manifest.json at the bundle root" in capsys.readouterr().err
