"""Generated trees for property tests, and the independent references they are checked against.

The references are GNU tar (SPEC §2.2 command), the zstd CLI, sha256sum and b3sum: expected bytes and
hashes come from them, never from fastpack's own output.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

GNU_TAR_ARGS = [
    "tar",
    "--sort=name",
    "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mode=u=rwX,go=rX",
    "--hard-dereference",
]


def gnu_tar_available() -> bool:
    tar = shutil.which("tar")
    if not tar:
        return False
    return b"GNU tar" in subprocess.run([tar, "--version"], capture_output=True).stdout


def gnu_tar_stream(directory: Path, mtime: int = 0) -> bytes:
    """The uncompressed stream of SPEC §2.2's command for `directory` (top-level names sorted bytewise)."""
    names = sorted(os.listdir(os.fsencode(directory)))
    if not names:
        return bytes(10240)
    result = subprocess.run(
        [*GNU_TAR_ARGS, f"--mtime=@{mtime}", "-cf", "-", "--", *names],
        cwd=directory,
        capture_output=True,
        check=True,
    )
    return result.stdout


# Name components: ASCII, unicode (multi-byte UTF-8), long enough to force pax headers.
_ALPHABET = st.sampled_from([*list("abcXYZ019._- "), "é", "ß", "日", "本", "😀", "ø"])
_component = st.one_of(
    st.text(_ALPHABET, min_size=1, max_size=12),
    st.text(_ALPHABET, min_size=60, max_size=70),  # 60-70 chars, up to ~280 bytes of UTF-8
).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 255)


@dataclass(frozen=True)
class Node:
    path: tuple[str, ...]
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    content: bytes = b""
    executable: bool = False
    target: tuple[str, ...] = ()  # for symlink/hardlink: path of an existing file node


@st.composite
def trees(draw: st.DrawFn, max_nodes: int = 14) -> list[Node]:
    """A tree of dirs, files (some executable, some empty), in-tree symlinks and hard links."""
    nodes: list[Node] = []
    dirs: list[tuple[str, ...]] = [()]
    used: set[tuple[str, ...]] = set()
    for _ in range(draw(st.integers(1, max_nodes))):
        parent = draw(st.sampled_from(dirs))
        name = draw(_component)
        path = (*parent, name)
        if path in used or len(os.fsencode("/".join(path))) > 900:
            continue
        used.add(path)
        files = [n for n in nodes if n.kind == "file"]
        kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink"] if files else ["file", "dir"]))
        if kind == "dir":
            nodes.append(Node(path, "dir"))
            dirs.append(path)
        elif kind == "file":
            content = draw(st.one_of(st.just(b""), st.binary(max_size=3000)))
            nodes.append(Node(path, "file", content, draw(st.booleans())))
        else:
            nodes.append(Node(path, kind, target=draw(st.sampled_from(files)).path))
    return nodes


def build_tree(root: Path, nodes: list[Node], *, seed: int = 0, mtime_jitter: bool = False) -> None:
    """Materialize nodes under root; `seed` shuffles creation order (parents still first)."""
    rng = random.Random(seed)
    order = list(nodes)
    rng.shuffle(order)
    order.sort(key=lambda n: (n.kind in ("symlink", "hardlink"), len(n.path)))
    for node in order:
        path = root.joinpath(*node.path)
        if node.kind == "dir":
            path.mkdir()
        elif node.kind == "file":
            path.write_bytes(node.content)
            path.chmod(0o755 if node.executable else 0o644)
        elif node.kind == "symlink":
            os.symlink(os.path.relpath(root.joinpath(*node.target), path.parent), path)
        else:
            os.link(root.joinpath(*node.target), path)
    if mtime_jitter:
        for node in nodes:
            stamp = rng.randrange(0, 2_000_000_000)
            os.utime(root.joinpath(*node.path), (stamp, stamp), follow_symlinks=False)
