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
