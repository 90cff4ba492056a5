"""Build hook: compile the pure core with mypyc when a C compiler is at hand.

Everything else about the package is in pyproject.toml. The modules below are plain typed
Python (mypy --strict clean); mypyc turns them into C extensions that run the batch step
about 1.6x faster (README, "Compiled core"). The build never depends on it:

  LIVEPULSE_COMPILE=auto  (default) compile; if mypyc or the C compiler fails, install the
                          pure-Python modules and say so
  LIVEPULSE_COMPILE=1     compile or fail
  LIVEPULSE_COMPILE=0     do not compile (the Makefile's editable install: it compiles in
                          place with `make compile`, so an edit is never run stale)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The hot path and nothing that needs Faust, Kafka or msgspec classes (mypyc compiles
# neither msgspec Structs nor the alert dataclasses with class variables as they are).
COMPILED_MODULES = [
    "processor/core/contributors.py",
    "processor/core/engine.py",
    "processor/core/rules.py",
    "processor/core/tiers.py",
    "processor/core/windows.py",
    "processor/worker/partitions.py",
]

MODE = os.environ.get("LIVEPULSE_COMPILE", "auto").strip().lower()
if MODE not in ("auto", "0", "1"):
    sys.exit(f"LIVEPULSE_COMPILE must be auto, 0 or 1, not {MODE!r}")


def _warn(why: object) -> None:
    print(
        f"livepulse: not compiling the core ({why}); installing it as pure Python, "
        "about 1.6x slower per event. LIVEPULSE_COMPILE=1 makes this an error.",
        file=sys.stderr,
    )


class OptionalBuildExt(build_ext):  # type: ignore[misc]
    """build_ext that installs all the compiled modules or none (the shared library and
    its shims only work together), falling back to pure Python unless compiling is
    required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the pure modules still work
            if MODE == "1":
                raise
            for ext in self.extensions:  # built ones, and in place ones from an earlier build
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
                in_place = self.get_ext_filename(self.get_ext_fullname(ext.name))
                (Path(__file__).parent / in_place).unlink(missing_ok=True)
            _warn(exc)


def _extensions() -> list[Any]:
    if MODE == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        if MODE == "1":
            raise
        _warn(exc)
        return []
    try:
        # one shared library inside the package (not a top-level module named by a hash)
        return list(mypycify(COMPILED_MODULES, opt_level="3", group_name="processor.native"))
    except Exception as exc:  # mypyc itself refused (a type error, an unsupported form)
        if MODE == "1":
            raise
        _warn(exc)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
