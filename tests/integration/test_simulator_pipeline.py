"""The simulator's realistic traffic through the real worker, against the reference model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import orjson
import pytest

from processor.contract import decode_event, encode_event
from processor.simulator.generator import SimulationConfig, generate
from tests.integration.conftest import Topics, WorkerProcess, engine_env
from tests.integration.kafka import read_all, wait_until_committed
from tests.support.events import T0, plain
from tests.support.reference import Params, engine_config, expected_outcome

CONFIG = SimulationConfig(start_ms=T0, streams=40, rate=150.0, max_events=30_000, seed=7)
# short windows and low thresholds so three virtual minutes see tiers rise and fall
PARAMS = Params(window_ms=30_000, step_ms=5_000, moderate=150, high=1_000)


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return worker_env | engine_env(engine_config(PARAMS))


def test_simulated_traffic_gives_exactly_the_reference_alerts(
    broker: str, topics: Topics, worker: WorkerProcess, worker_env: dict[str, str]
) -> None:
    typed = list(generate(CONFIG))
    for event in typed:  # the simulator speaks the contract: its events are the contract's
        assert decode_event(encode_event(event), event.stream_id.encode()) == event
    events = plain(typed)
    expected = expected_outcome(events, PARAMS)
    transitions = Counter(
        (a["from_tier"], a["to_tier"]) for a in expected.alerts if a["type"] == "tier_changed"
    )
    # the scenario exercises every kind of transition but low<->high jumps
    assert set(transitions) >= {
        ("low", "moderate"),
        ("moderate", "high"),
        ("high", "moderate"),
        ("moderate", "low"),
    }, transitions

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "processor.cli",
            "simulate",
            "--fast",
            "--quiet",
            "--events",
            str(CONFIG.max_events),
            "--streams",
            str(CONFIG.streams),
            "--rate",
            str(CONFIG.rate),
            "--seed",
            str(CONFIG.seed),
            "--start-ms",
            str(T0),
        ],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    alerts = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.alerts))]
    for alert in alerts:
        del alert["emitted_at"]

    def order(a: dict[str, object]) -> tuple[str, str]:
        return str(a["stream_id"]), str(a["alert_id"])

    assert sorted(alerts, key=order) == sorted(expected.alerts, key=order)
    ended = sum(1 for a in alerts if a["type"] == "stream_ended")
    assert (len(alerts), ended) == (sum(transitions.values()) + CONFIG.streams, CONFIG.streams)

    windows = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.windows))]
    for window in windows:
        del window["emitted_at"]
    assert sorted(windows, key=lambda w: w["window_id"]) == sorted(
        expected.windows, key=lambda w: w["window_id"]
    )
    assert len(windows) > CONFIG.streams  # several windows per stream
    assert asyncio.run(read_all(broker, topics.dlq)) == []
