"""The command line: help, and start-up refusing bad configuration with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def livepulse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ | (env or {}),
        timeout=60,
        check=False,
    )


def test_help_lists_commands_and_settings() -> None:
    result = livepulse("--help")
    assert result.returncode == 0
    for text in (
        "worker",
        "simulate",
        "replay",
        "alerts",
        "LIVEPULSE_BROKER",
        "LIVEPULSE_TIER_WINDOW_SECONDS",
        "LIVEPULSE_HYSTERESIS",
    ):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIVEPULSE_TIER_HIGH": "500"}, "LIVEPULSE_TIER_HIGH: must be greater than"),
        ({"LIVEPULSE_METRICS_PORT": "http"}, "LIVEPULSE_METRICS_PORT: expected a port"),
        ({"LIVEPULSE_BROKER": "nowhere"}, "LIVEPULSE_BROKER: expected host:port"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(env: dict[str, str], message: str) -> None:
    result = livepulse("worker", env=env)
    assert result.returncode == 2
    assert f"livepulse: configuration error: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_configuration_table_lists_every_setting_with_its_default() -> None:
    import re
    from pathlib import Path

    from processor.settings import settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(LIVEPULSE_[A-Z_]+)` \| `([^`]*)` \|", section, re.M)
    documented = dict(rows)
    expected = {env: default.strip("'") for env, _, default in settings_table()}
    assert documented == expected
