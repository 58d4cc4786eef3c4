"""fastpack: reproducible, content-addressed extension bundles — pack, sign, publish, verify.

The public functions are imported lazily so that `import fastpack` (and the CLI's
`--help`) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "pack": "fastpack.pack",
    "PackResult": "fastpack.pack",
    "scan": "fastpack.tree",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'fastpack' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
