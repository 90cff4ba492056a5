"""livepulse: engagement tiers, alerts and windows for live streams, on Kafka with Faust.

The hot path (``setup.py``'s ``COMPILED_MODULES``) may be installed compiled by mypyc.
``LIVEPULSE_PURE_PYTHON=1`` runs its Python source instead: the tests run both, and it
rules the compiled code out when a result looks wrong.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType


class _SourceFirst:
    """A meta path finder that loads ``processor`` modules from their ``.py`` files even
    where a compiled extension of the same name sits beside them."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(f"{__name__}.") or not path:
            return None
        leaf = name.rpartition(".")[2]
        for entry in path:
            source = Path(entry, f"{leaf}.py")
            if source.is_file():
                return importlib.util.spec_from_file_location(name, source)
        return None


def core_is_compiled() -> bool:
    """Whether the engine runs as mypyc-compiled code."""
    from processor.core import engine

    return not (engine.__file__ or "").endswith(".py")


if os.environ.get("LIVEPULSE_PURE_PYTHON", "").strip() not in ("", "0"):
    sys.meta_path.insert(0, _SourceFirst())
