"""kill -9 at any moment, restart: results equal an uninterrupted run (effectively once)."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from processor.core.alerts import WindowClosed
from processor.core.engine import Engine, EngineConfig
from processor.simulator.generator import SimulationConfig, generate
from tests.integration.conftest import Topics, WorkerProcess, engine_env
from tests.integration.kafka import (
    committed_offsets,
    end_offsets,
    keyed,
    produce,
    read_all,
    wait_until_committed,
)
from tests.support.events import T0, typed

CONFIG = SimulationConfig(start_ms=T0, streams=60, rate=300.0, max_events=120_000, seed=11)
ENGINE = EngineConfig(
    tier_window_ms=30_000,
    tier_step_ms=5_000,
    tumbling_ms=20_000,
    grace_ms=10_000,
    moderate=150,
    high=1_000,
    session_moderate=2_000,
    session_high=8_000,
)
KILL_AT = (0.15, 0.4, 0.7)  # fractions of the input committed when the worker is killed
MALFORMED = [(b"s-x", b"{broken"), (b"s-y", b'{"v": 1}'), (None, b"[]")]


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return worker_env | engine_env(ENGINE) | {"LIVEPULSE_COMMIT_INTERVAL_SECONDS": "0.2"}


def uninterrupted(events: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """What one engine computes in one go (the engine itself is checked elsewhere)."""
    engine = Engine(ENGINE)
    alerts, windows = [], []
    for event in events:
        for output in engine.process(typed(event)).outputs:
            record = output.to_record(0)
            del record["emitted_at"]
            (windows if isinstance(output, WindowClosed) else alerts).append(record)
    return alerts, windows


async def committed_total(broker: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        committed = await committed_offsets(admin, group, topic) or {}
    finally:
        await admin.close()
    return sum(offset for offset in committed.values() if offset > 0)


def dedupe(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One record per id; every copy of an id must be the same record."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        record = {k: v for k, v in record.items() if k != "emitted_at"}
        first = seen.setdefault(record[key], record)
        assert first == record, f"two different records share {key} {record[key]}"
    return list(seen.values())


def test_kill_9_at_several_points_gives_the_uninterrupted_result(
    broker: str, topics: Topics, worker: WorkerProcess
) -> None:
    events = list(generate(CONFIG))
    expected_alerts, expected_windows = uninterrupted(events)
    records = keyed(events)
    for i, bad in enumerate(MALFORMED):
        records.insert(1_000 + 20_000 * i, bad)
    total = len(records)
    # The worker goes through the whole input in seconds, so the input arrives in steps:
    # when a kill's point is reached, the records up to the next kill point are already
    # there, and the kill lands while the worker is working through them.
    produce_to = [int(f * total) for f in (*KILL_AT[1:], 1.0)]
    produced = 0

    def produce_until(end: int) -> None:
        nonlocal produced
        asyncio.run(produce(broker, topics.events, records[produced:end]))
        produced = end

    produce_until(produce_to[0])
    kills = []
    for i, fraction in enumerate(KILL_AT):
        deadline = time.monotonic() + 120
        while (done := asyncio.run(committed_total(broker, topics.app_id, topics.events))) < (
            fraction * total
        ):
            assert time.monotonic() < deadline, f"stuck at {done}/{total}: {worker.log()}"
            time.sleep(0.02)
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        kills.append(done)
        produce_until(produce_to[i + 1] if i + 1 < len(produce_to) else total)
        worker.start()
    assert all(k < total for k in kills), f"a kill came after the end: {kills} of {total}"
    assert sum(asyncio.run(end_offsets(broker, topics.events)).values()) == total

    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events, deadline_s=180))
    alerts = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.alerts))]
    windows = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.windows))]

    def by_id(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return sorted(records, key=lambda r: str(r[key]))

    assert by_id(dedupe(alerts, "alert_id"), "alert_id") == by_id(expected_alerts, "alert_id")
    assert by_id(dedupe(windows, "window_id"), "window_id") == by_id(expected_windows, "window_id")
    assert len(expected_alerts) > 100 and len(expected_windows) > 500
    dead = asyncio.run(read_all(broker, topics.dlq))
    sources = {dict(r.headers)["livepulse.source.offset"] for r in dead}
    assert len(sources) == len(MALFORMED)
