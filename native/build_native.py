"""cffi build script for `fastpack._native` (API mode: calls release the GIL).

Used by setup.py (`cffi_modules`); run directly to build in place for development.
"""

from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "fastpack_native.c")
HEADER = os.path.join(HERE, "fastpack_native.h")

CFLAGS = ["-O2", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"]


def _cdef() -> str:
    with open(HEADER, encoding="utf-8") as handle:
        return handle.read()


def make_builder(extra_cflags: list[str] | None = None, extra_ldflags: list[str] | None = None) -> FFI:
    """The FFI builder; extra flags serve instrumented builds (AddressSanitizer tests)."""
    builder = FFI()
    builder.cdef(_cdef())
    builder.set_source(
        "fastpack._native",
        '#include <stddef.h>\n#include <stdint.h>\n#include "fastpack_native.h"\n',
        sources=[os.path.relpath(SOURCE)],
        include_dirs=[os.path.relpath(HERE)],
        extra_compile_args=CFLAGS + (extra_cflags or []),
        extra_link_args=["-pthread", *(extra_ldflags or [])],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(HERE, os.pardir, "src"), verbose=True)
