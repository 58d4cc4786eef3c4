"""Build hook for the optional native backend; all other metadata is in pyproject.toml.

The C extension is an accelerator, never a requirement: if it cannot be compiled
(no compiler, unusual platform) the install still succeeds with a warning and
fastpack runs on its pure-Python backend, which produces identical bundles.
"""

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # any compiler failure means: no native backend
            self.warn(f"fastpack: native backend not built ({exc}); using the pure-Python backend")


setup(cffi_modules=["native/build_native.py:ffibuilder"], cmdclass={"build_ext": OptionalBuildExt})
