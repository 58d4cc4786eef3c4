"""Find the extensions of a monorepo: directories holding a `manifest.json`.

Discovery stops at an extension (a `manifest.json` deeper inside it is part of
its content), skips hidden directories, `node_modules` and the batch's own
output and cache directories, does not follow symlinked directories, and
returns a deterministic order: roots in the order given, then paths sorted by
their bytes. Each extension keeps its path relative to its root, the key that
sharding hashes (stable across checkouts in other places).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastpack.errors import InputError
from fastpack.tree import display

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Extension:
    path: str  # absolute directory
    key: str  # POSIX path relative to its root ("." for the root itself); shards hash it
    real: str = ""  # symlink-free path, when discovery already knows it

    @property
    def real_path(self) -> str:
        return self.real or os.path.realpath(self.path)

    @property
    def display(self) -> str:
        return display(self.path)


def _excluded(key: str, patterns: Sequence[str]) -> bool:
    base = key.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(base, pattern) for pattern in patterns)


def _relative_key(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _walk(root: str, patterns: Sequence[str], skip: frozenset[str]) -> list[Extension]:
    """Symlinked directories are not followed, so real paths are the real root joined with names."""
    found: list[Extension] = []
    stack = [(root, os.path.realpath(root))]
    while stack:
        directory, real = stack.pop()
        if os.path.isfile(os.path.join(directory, MANIFEST)):
            found.append(Extension(directory, _relative_key(directory, root), real))
            continue
        try:
            with os.scandir(directory) as it:
                children = [entry for entry in it if entry.is_dir(follow_symlinks=False)]
        except OSError as exc:
            raise InputError(f"cannot list directory: {exc.strerror}", path=display(directory)) from None
        for child in sorted(children, key=lambda entry: os.fsencode(entry.name), reverse=True):
            child_real = os.path.join(real, child.name)
            if child.name.startswith(".") or child.name == "node_modules" or child_real in skip:
                continue
            if _excluded(_relative_key(child.path, root), patterns):
                continue
            stack.append((child.path, child_real))
    return sorted(found, key=lambda ext: os.fsencode(ext.key))


def read_list(list_file: str) -> list[str]:
    """Directories listed one per line (relative to the current directory; `-` reads stdin).

    Blank lines and `#` comments are skipped.
    """
    try:
        if list_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(list_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read extension list: {exc.strerror}", path=list_file) from None
    except UnicodeDecodeError:
        raise InputError("extension list is not valid UTF-8", path=list_file) from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def discover(
    roots: Sequence[str],
    *,
    listed: Iterable[str] = (),
    exclude: Sequence[str] = (),
    skip: Iterable[str] = (),
) -> list[Extension]:
    """Extensions under `roots` then the `listed` directories, each once, minus `exclude` globs.

    A glob matches an extension's path relative to its root or its directory name (`*` crosses `/`).
    Listed directories must hold a manifest; their key is their path relative to the current directory.
    `skip` names directories never to descend into (the output and cache directories).
    """
    skipped = frozenset(os.path.realpath(path) for path in skip)
    result: list[Extension] = []
    seen: set[str] = set()

    def add(extension: Extension) -> None:
        real = extension.real_path
        if real not in seen:
            seen.add(real)
            result.append(extension)

    for root in roots:
        if not os.path.isdir(root):
            raise InputError("no such directory", path=root)
        for extension in _walk(os.path.abspath(root), exclude, skipped):
            add(extension)
    for entry in listed:
        path = os.path.abspath(entry)
        if not os.path.isfile(os.path.join(path, MANIFEST)):
            raise InputError(f"listed extension has no {MANIFEST}", path=entry)
        key = _relative_key(path, os.getcwd())
        if not _excluded(key, exclude):
            add(Extension(path, key))
    return result
