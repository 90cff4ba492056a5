"""Guards for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

import processor

PACKAGE = Path(processor.__file__).parent


def stale_extensions() -> list[str]:
    """Compiled modules older than their Python source: an edit since `make compile`."""
    stale = []
    for compiled in PACKAGE.rglob("*.so"):
        source = compiled.with_name(compiled.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            stale.append(str(source.relative_to(PACKAGE.parent)))
    return stale


def pytest_sessionstart(session: pytest.Session) -> None:
    if processor.core_is_compiled() and (stale := stale_extensions()):
        raise pytest.UsageError(
            f"the compiled core is older than {', '.join(stale)}: run `make compile` "
            "(or LIVEPULSE_PURE_PYTHON=1 to test the Python source)"
        )
