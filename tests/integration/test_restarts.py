"""kill -9 at any moment, restart: results equal an uninterrupted run (effectively once)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest

from processor.contract import InvalidRecord, decode_event
from processor.core.alerts import WindowClosed
from processor.core.engine import Engine
from processor.simulator.generator import SimulationConfig, generate
from tests.integration.conftest import (
    KILL_TEST_ENGINE,
    Topics,
    WorkerProcess,
    kill_9_once_committed,
    kill_test_env,
)
from tests.integration.kafka import (
    end_offsets,
    keyed,
    produce,
    read_all,
    wait_until_committed,
)
from tests.support.events import T0, plain

# 600,000 events: the worker takes several seconds over them, so each kill lands mid-work
CONFIG = SimulationConfig(start_ms=T0, streams=60, rate=300.0, max_events=600_000, seed=11)
ENGINE = KILL_TEST_ENGINE
KILL_AT = (0.15, 0.4, 0.7)  # fractions of the input committed when the worker is killed
MALFORMED = [(b"s-x", b"{broken"), (b"s-y", b'{"v": 1}'), (None, b"[]")]


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return kill_test_env(worker_env) | {"LIVEPULSE_PROCESSING_GUARANTEE": "exactly_once"}


def uninterrupted(records: list[tuple[bytes | None, bytes]]) -> tuple[list[Any], list[Any]]:
    """What one engine computes in one go from the valid records (the engine itself is
    checked elsewhere)."""
    engine = Engine(ENGINE)
    alerts, windows = [], []
    for key, value in records:
        event = decode_event(value, key)
        assert not isinstance(event, InvalidRecord), event
        for output in engine.process(event).outputs:
            record = output.to_record(0)
            del record["emitted_at"]
            (windows if isinstance(output, WindowClosed) else alerts).append(record)
    return alerts, windows


def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without their wall-clock ``emitted_at``."""
    return [{k: v for k, v in record.items() if k != "emitted_at"} for record in records]


def assert_same(got: list[dict[str, Any]], expected: list[dict[str, Any]], key: str) -> None:
    """The same records, each once: the differences named by id."""
    ids = Counter(str(r[key]) for r in got)
    twice = sorted(i for i, n in ids.items() if n > 1)
    assert not twice, f"{len(twice)} {key}s more than once, e.g. {twice[:5]}"
    wanted = {str(r[key]): r for r in expected}
    missing = sorted(set(wanted) - set(ids))
    extra = sorted(set(ids) - set(wanted))
    assert not missing and not extra, f"{key}s missing: {missing[:5]}, not expected: {extra[:5]}"
    differ = [(r, wanted[str(r[key])]) for r in got if r != wanted[str(r[key])]]
    assert not differ, f"{len(differ)} records differ; the first, got then expected: {differ[0]}"


def test_kill_9_at_several_points_gives_the_uninterrupted_result(
    broker: str, topics: Topics, unstarted_worker: WorkerProcess
) -> None:
    worker = unstarted_worker
    events = plain(generate(CONFIG))
    records = keyed(events)
    expected_alerts, expected_windows = uninterrupted(records)
    for i, bad in enumerate(MALFORMED):
        records.insert(1_000 + 200_000 * i, bad)
    # All of the input is there before the worker starts: a worker that caught up would
    # let its idle clock move stream time, and the result would depend on timing.
    asyncio.run(produce(broker, topics.events, records))
    total = sum(asyncio.run(end_offsets(broker, topics.events)).values())
    worker.start()

    kills = []
    for fraction in KILL_AT:
        kills.append(kill_9_once_committed(worker, broker, topics, fraction * total, 120))
        worker.start()
    assert all(k < total for k in kills), f"a kill came after the end: {kills} of {total}"

    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events, deadline_s=180))
    # as a read_committed subscriber sees them: exactly once, no copy of anything
    alerts = [
        orjson.loads(r.value)
        for r in asyncio.run(read_all(broker, topics.alerts, "read_committed"))
    ]
    windows = [
        orjson.loads(r.value)
        for r in asyncio.run(read_all(broker, topics.windows, "read_committed"))
    ]

    assert_same(strip(alerts), expected_alerts, "alert_id")
    assert_same(strip(windows), expected_windows, "window_id")
    assert len(expected_alerts) > 100 and len(expected_windows) > 500
    # the scenario exercises what must survive a kill: both spike detectors, goals, and
    # top-user summaries past their capacity (Space-Saving state)
    kinds = {(a["type"], a.get("metric")) for a in expected_alerts}
    assert {("spike", "likes"), ("spike", "coins"), ("goal_reached", "coins")} <= kinds
    ended = [a for a in expected_alerts if a["type"] == "stream_ended"]
    assert any(not a["top"]["exact"] for a in ended) and any(a["viewers"] for a in ended)
    dead = asyncio.run(read_all(broker, topics.dlq))
    sources = {dict(r.headers)["livepulse.source.offset"] for r in dead}
    assert len(sources) == len(MALFORMED)
