"""livepulse against a secured broker: the pipeline scenario over SASL_SSL, mutual TLS and
SASL_PLAINTEXT, and every way of getting the connection wrong stopping start-up fast with a
message that names the setting to check.

The broker (deploy/kafka/kafka.sh with LIVEPULSE_KAFKA_SECURE=1) keeps its PLAINTEXT
listener; the tests use it only to create topics and to read results independently.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import ROOT, SecureBroker, Topics, WorkerProcess, free_port
from tests.integration.kafka import read_all, wait_until_committed
from tests.integration.test_pipeline import scenario, without_emitted_at
from tests.support.http import get
from tests.support.reference import Params, expected_outcome

# Long enough for the worker's 20 s broker check plus Python and Faust start-up on a busy
# machine; a misconfigured worker should stop within about 30 s, not hang.
FAIL_FAST_S = 45.0


def secured(broker: SecureBroker, tmp_path: Path, mechanism: str) -> dict[str, str]:
    """Settings of a client that connects over SASL_SSL as the broker's user, with the
    password from a file (as a Kubernetes secret is mounted)."""
    password_file = tmp_path / f"password-{mechanism}"
    password_file.write_text(broker.password + "\n")
    return {
        "LIVEPULSE_BROKER": broker.sasl_ssl,
        "LIVEPULSE_SECURITY_PROTOCOL": "SASL_SSL",
        "LIVEPULSE_SASL_MECHANISM": mechanism,
        "LIVEPULSE_SASL_USERNAME": broker.username,
        "LIVEPULSE_SASL_PASSWORD_FILE": str(password_file),
        "LIVEPULSE_SSL_CAFILE": str(broker.ca_file),
    }


def livepulse(
    *args: str, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until_ready(worker: WorkerProcess, deadline_s: float = 90.0) -> str:
    """Poll /readyz until it answers 200 (the worker restored its partitions)."""
    give_up = time.monotonic() + deadline_s
    seen: tuple[int, str] | str = "no answer"
    while time.monotonic() < give_up:
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()
        try:
            seen = get(worker.metrics_port, "/readyz")
        except OSError as exc:  # the server is not up yet
            seen = str(exc)
        if seen[0] == 200:
            return str(seen[1])
        time.sleep(0.2)
    raise AssertionError(f"/readyz never 200 (last: {seen}); log:\n{worker.log()}")


def test_the_pipeline_scenario_over_sasl_ssl_gives_exactly_the_expected_alerts(
    secure_broker: SecureBroker,
    broker: str,
    topics: Topics,
    unstarted_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    """Producer (`livepulse replay`, PLAIN), worker (SCRAM-SHA-256) and subscriber
    (`livepulse alerts`, SCRAM-SHA-512), all over SASL_SSL with the test CA."""
    worker = unstarted_worker
    worker.env = worker.env | secured(secure_broker, tmp_path, "SCRAM-SHA-256")
    worker.start()
    ready = wait_until_ready(worker)
    assert ready == f"ready: partitions [0, 1, 2, 3] of {topics.events!r} assigned and restored\n"
    assert get(worker.metrics_port, "/healthz") == (200, "ok\n")

    events, _ = scenario()
    lines = [orjson.dumps(e) for e in events] + [b"{not json"]
    replay_file = tmp_path / "scenario.ndjson"
    replay_file.write_bytes(b"\n".join(lines) + b"\n")
    client = os.environ | {
        "LIVEPULSE_EVENTS_TOPIC": topics.events,
        "LIVEPULSE_ALERTS_TOPIC": topics.alerts,
    }
    sent = livepulse(
        "replay",
        "--quiet",
        str(replay_file),
        env=client | secured(secure_broker, tmp_path, "PLAIN"),
    )
    assert sent.returncode == 0, sent.stderr
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    expected = expected_outcome(events, Params())
    alerts = [
        without_emitted_at(orjson.loads(r.value))
        for r in asyncio.run(read_all(broker, topics.alerts))
    ]

    def per_stream(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            grouped.setdefault(r["stream_id"], []).append(r)
        return grouped

    assert len(alerts) == 9  # as tests/integration/test_pipeline.py works out by hand
    assert per_stream(alerts) == per_stream(expected.alerts)
    dead = asyncio.run(read_all(broker, topics.dlq))
    reasons = sorted(dict(r.headers)["livepulse.reason"].decode() for r in dead)
    assert reasons == ["after_end", "invalid_json", "late"]

    # the subscriber's view, over SASL_SSL with SCRAM-SHA-512: the same alerts
    read = livepulse(
        "alerts",
        "--json",
        "--from-beginning",
        "--max",
        str(len(alerts)),
        env=client | secured(secure_broker, tmp_path, "SCRAM-SHA-512"),
    )
    assert read.returncode == 0, read.stderr
    subscribed = [without_emitted_at(orjson.loads(line)) for line in read.stdout.splitlines()]
    assert per_stream(subscribed) == per_stream(alerts)

    assert get(worker.metrics_port, "/readyz")[0] == 200
    assert worker.stop() == 0
    output = worker.log_path.read_text() + sent.stdout + sent.stderr + read.stderr
    assert secure_broker.password not in output
    assert f"SASL_SSL, SCRAM-SHA-256 as {secure_broker.username!r}" in output


@pytest.mark.parametrize("listener", ["ssl", "sasl_plaintext"])
def test_mutual_tls_and_sasl_plaintext_carry_events_too(
    secure_broker: SecureBroker, broker: str, topics: Topics, tmp_path: Path, listener: str
) -> None:
    """`livepulse replay` over mutual TLS (client certificate), and over SASL_PLAINTEXT with
    SCRAM-SHA-512; the plaintext listener reads exactly what was sent."""
    if listener == "ssl":
        security = {
            "LIVEPULSE_BROKER": secure_broker.ssl,
            "LIVEPULSE_SECURITY_PROTOCOL": "SSL",
            "LIVEPULSE_SSL_CAFILE": str(secure_broker.ca_file),
            "LIVEPULSE_SSL_CERTFILE": str(secure_broker.client_cert),
            "LIVEPULSE_SSL_KEYFILE": str(secure_broker.client_key),
        }
    else:
        security = {
            "LIVEPULSE_BROKER": secure_broker.sasl_plaintext,
            "LIVEPULSE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "LIVEPULSE_SASL_MECHANISM": "SCRAM-SHA-512",
            "LIVEPULSE_SASL_USERNAME": secure_broker.username,
            "LIVEPULSE_SASL_PASSWORD": secure_broker.password,
        }
    events, _ = scenario()
    replay_file = tmp_path / "events.ndjson"
    replay_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    env = os.environ | {"LIVEPULSE_EVENTS_TOPIC": topics.events} | security
    sent = livepulse("replay", "--quiet", str(replay_file), env=env)
    assert sent.returncode == 0, sent.stderr
    got = asyncio.run(read_all(broker, topics.events))
    assert sorted(r.value for r in got) == sorted(orjson.dumps(e) for e in events)


def failure_cases(
    broker: SecureBroker, tmp_path: Path
) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Each wrong connection: the settings, and what the message must say."""
    good = secured(broker, tmp_path, "SCRAM-SHA-256")
    wrong_password = tmp_path / "wrong-password"
    wrong_password.write_text("not-the-password\n")
    return {
        "wrong password": (
            good | {"LIVEPULSE_SASL_PASSWORD_FILE": str(wrong_password)},
            [
                "authentication failed for user 'livepulse' with SCRAM-SHA-256",
                "LIVEPULSE_SASL_USERNAME and LIVEPULSE_SASL_PASSWORD",
            ],
        ),
        "untrusted CA": (
            good | {"LIVEPULSE_SSL_CAFILE": str(broker.untrusted_ca_file)},
            ["TLS certificate is not trusted", "LIVEPULSE_SSL_CAFILE"],
        ),
        "plaintext client at the TLS port": (
            {"LIVEPULSE_BROKER": broker.sasl_ssl},
            ["LIVEPULSE_SECURITY_PROTOCOL (now PLAINTEXT)"],
        ),
        "mechanism the listener does not enable": (
            {
                "LIVEPULSE_BROKER": broker.sasl_plaintext,
                "LIVEPULSE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "LIVEPULSE_SASL_MECHANISM": "PLAIN",
                "LIVEPULSE_SASL_USERNAME": broker.username,
                "LIVEPULSE_SASL_PASSWORD": broker.password,
            },
            [
                "does not accept SASL mechanism PLAIN (it offers SCRAM-SHA-512): check LIVEPULSE_SASL_MECHANISM"
            ],
        ),
        "unknown mechanism": (
            good | {"LIVEPULSE_SASL_MECHANISM": "SCRAM-SHA-1"},
            ["configuration error: LIVEPULSE_SASL_MECHANISM: expected one of PLAIN"],
        ),
        "no client certificate for mutual TLS": (
            {
                "LIVEPULSE_BROKER": broker.ssl,
                "LIVEPULSE_SECURITY_PROTOCOL": "SSL",
                "LIVEPULSE_SSL_CAFILE": str(broker.ca_file),
            },
            ["LIVEPULSE_SSL_CERTFILE and LIVEPULSE_SSL_KEYFILE"],
        ),
        "TLS client at the plaintext port": (
            good | {"LIVEPULSE_BROKER": broker.plaintext},
            ["LIVEPULSE_SECURITY_PROTOCOL"],
        ),
    }


FAILURES = [
    "wrong password",
    "untrusted CA",
    "plaintext client at the TLS port",
    "mechanism the listener does not enable",
    "unknown mechanism",
    "no client certificate for mutual TLS",
    "TLS client at the plaintext port",
]


@pytest.mark.parametrize("case", FAILURES)
def test_a_wrong_connection_stops_the_worker_fast_naming_the_setting(
    secure_broker: SecureBroker, topics: Topics, tmp_path: Path, case: str
) -> None:
    settings, says = failure_cases(secure_broker, tmp_path)[case]
    env = (
        os.environ
        | {
            "LIVEPULSE_EVENTS_TOPIC": topics.events,
            "LIVEPULSE_APP_ID": topics.app_id,
            "LIVEPULSE_DATA_DIR": str(tmp_path / "data"),
            "LIVEPULSE_METRICS_PORT": str(free_port()),
        }
        | settings
    )
    try:
        result = livepulse("worker", env=env, timeout=FAIL_FAST_S)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{case}: worker still running after {FAIL_FAST_S:.0f} s") from exc
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for text in says:
        assert text in result.stderr, result.stderr
    assert secure_broker.password not in result.stdout + result.stderr
