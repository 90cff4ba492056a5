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
        "LIVEPULSE_SECURITY_PROTOCOL",
        "LIVEPULSE_SASL_MECHANISM",
        "LIVEPULSE_SASL_PASSWORD_FILE",
        "LIVEPULSE_SSL_CAFILE",
        "LIVEPULSE_SSL_CHECK_HOSTNAME",
    ):
        assert text in result.stdout


def test_a_password_never_reaches_help_or_errors() -> None:
    secret = {"LIVEPULSE_SASL_PASSWORD": "pw-8c1f-never-shown", "LIVEPULSE_SASL_USERNAME": "u"}
    for args in (["--help"], ["worker", "--help"], ["alerts"]):
        result = livepulse(*args, env=secret)  # PLAINTEXT with SASL set: a config error
        assert "pw-8c1f-never-shown" not in result.stdout + result.stderr
    assert result.returncode == 2
    assert "LIVEPULSE_SASL_USERNAME is set but LIVEPULSE_SECURITY_PROTOCOL is PLAINTEXT" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIVEPULSE_TIER_HIGH": "500"}, "LIVEPULSE_TIER_HIGH: must be greater than"),
        ({"LIVEPULSE_METRICS_PORT": "http"}, "LIVEPULSE_METRICS_PORT: expected a port"),
        ({"LIVEPULSE_BROKER": "nowhere"}, "LIVEPULSE_BROKER: expected host:port"),
        (
            {"LIVEPULSE_SECURITY_PROTOCOL": "SASL_SSL", "LIVEPULSE_SASL_MECHANISM": "OAUTHBEARER"},
            "LIVEPULSE_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
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
