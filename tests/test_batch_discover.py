"""Extension discovery: manifests under roots or from a list, excludes, deterministic order."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from fastpack.batch.discover import discover, read_list
from fastpack.errors import InputError
from helpers_batch import write_extension


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    rng = random.Random(5)
    root = tmp_path / "repo"
    for rel in ["apps/b", "apps/a", "apps/a-legacy", "libs/x/dist", "Z", ".hidden/e", "node/e2", "node_modules/m"]:
        write_extension(root / rel, rel.replace("/", "-"), rng)
    # A manifest inside an extension is its content, not another extension.
    write_extension(root / "apps" / "a" / "ui" / "nested", "nested", rng)
    return root


def keys(extensions: list) -> list[str]:
    return [extension.key for extension in extensions]


def test_discovery_order_and_stop_at_extension(repo: Path) -> None:
    found = discover([str(repo)])
    assert keys(found) == ["Z", "apps/a", "apps/a-legacy", "apps/b", "libs/x/dist", "node/e2"]
    assert all(os.path.isabs(extension.path) for extension in found)


def test_excludes_match_relative_path_or_directory_name(repo: Path) -> None:
    assert keys(discover([str(repo)], exclude=["*-legacy", "libs/*"])) == ["Z", "apps/a", "apps/b", "node/e2"]
    assert keys(discover([str(repo)], exclude=["node"])) == ["Z", "apps/a", "apps/a-legacy", "apps/b", "libs/x/dist"]


def test_skip_directories_and_duplicates(repo: Path) -> None:
    found = discover([str(repo), str(repo / "apps")], skip=[str(repo / "libs")])
    assert keys(found) == ["Z", "apps/a", "apps/a-legacy", "apps/b", "node/e2"]  # apps/* not repeated


def test_list_file(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "extensions.txt"
    listing.write_text("# extensions to build\n\napps/b\n  libs/x/dist  \n")
    monkeypatch.chdir(repo)
    found = discover([], listed=read_list(str(listing)))
    assert keys(found) == ["apps/b", "libs/x/dist"]
    assert found[0].path == str(repo / "apps" / "b")


def test_listed_directory_without_manifest(repo: Path) -> None:
    with pytest.raises(InputError, match=r"listed extension has no manifest\.json") as info:
        discover([], listed=[str(repo / "apps")])
    assert info.value.path == str(repo / "apps")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        discover([str(tmp_path / "missing")])


def test_list_from_stdin(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setattr("sys.stdin", io.StringIO("./apps/a\nZ\n"))
    assert keys(discover([], listed=read_list("-"))) == ["apps/a", "Z"]
