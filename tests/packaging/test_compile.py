"""The optional compiled core: setup.py compiles it, or installs the pure modules and says
so, or, when compiling is required, fails. Runs mypyc and the C compiler for real on a copy
of the sources (about 20 s a case); the C compiler is made to fail with ``CC=false``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "processor",
        tmp_path / "processor",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    return tmp_path


def build(where: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=where,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def extensions(where: Path) -> list[str]:
    return sorted(str(p.relative_to(where)) for p in (where / "processor").rglob("*.so"))


def test_without_a_c_compiler_the_build_installs_the_pure_core_and_says_so(
    source_copy: Path,
) -> None:
    # what an earlier build left in place must not outlive a failed one: it would be stale
    stale = source_copy / "processor" / "core" / f"engine{sysconfig.get_config_var('EXT_SUFFIX')}"
    stale.write_bytes(b"an extension from an earlier build")
    done = build(source_copy, CC="false", LIVEPULSE_COMPILE="auto")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "livepulse: not compiling the core" in done.stderr
    assert extensions(source_copy) == []  # all or nothing: no shim without its library


def test_a_required_compile_that_cannot_compile_fails(source_copy: Path) -> None:
    done = build(source_copy, CC="false", LIVEPULSE_COMPILE="1")
    assert done.returncode != 0
    assert extensions(source_copy) == []


def test_with_a_c_compiler_every_listed_module_is_compiled(source_copy: Path) -> None:
    done = build(source_copy, LIVEPULSE_COMPILE="1")
    assert done.returncode == 0, done.stderr[-2000:]
    names = {Path(p).name.split(".", 1)[0] for p in extensions(source_copy)}
    assert names == {
        "contributors",
        "engine",
        "rules",
        "tiers",
        "windows",
        "partitions",
        "native__mypyc",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "from processor.core import engine; print(engine.__file__)"],
        cwd=source_copy,
        capture_output=True,
        text=True,
        timeout=60,
    )
    loaded = Path(probe.stdout.strip())
    assert loaded.parent == source_copy / "processor" / "core", probe.stderr[-2000:]
    assert loaded.name.startswith("engine.") and loaded.suffix == ".so"
