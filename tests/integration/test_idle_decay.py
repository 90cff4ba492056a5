"""Stream time follows the wall clock when nothing arrives: tiers decay, windows close,
sessions end, with no further event on the stream or its partition."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from tests.integration.conftest import Topics, WorkerProcess
from tests.integration.kafka import keyed, produce, read_all
from tests.support.events import T0, StreamScript

WINDOW_MS, STEP_MS, TUMBLING_MS, GRACE_MS, INACTIVE_MS = 6_000, 2_000, 4_000, 2_000, 12_000


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return worker_env | {
        "LIVEPULSE_TIER_WINDOW_SECONDS": str(WINDOW_MS // 1000),
        "LIVEPULSE_TIER_STEP_SECONDS": str(STEP_MS // 1000),
        "LIVEPULSE_TUMBLING_WINDOW_SECONDS": str(TUMBLING_MS // 1000),
        "LIVEPULSE_GRACE_SECONDS": str(GRACE_MS // 1000),
        "LIVEPULSE_INACTIVITY_TIMEOUT_SECONDS": str(INACTIVE_MS // 1000),
    }


def wait_for_alert(broker: str, topic: str, kind: str, deadline_s: float = 90) -> list[Any]:
    """Poll the alerts topic until an alert of ``kind`` is there (or the deadline passes)."""
    give_up = time.monotonic() + deadline_s
    while True:
        alerts = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topic))]
        if any(a["type"] == kind for a in alerts) or time.monotonic() > give_up:
            return alerts
        time.sleep(0.5)


@pytest.mark.parametrize("upstream", ["plain", "transactional"])
def test_silent_stream_decays_closes_windows_and_ends(
    broker: str, topics: Topics, worker: WorkerProcess, upstream: str
) -> None:
    # transactional: the events partition ends with a commit marker, past the last event
    s = StreamScript("quiet", "creator-q")
    start = T0 + 1_000
    events = [
        s.start(start),
        s.likes(start + 500, 10, dropped=990),  # 1,000: moderate
        s.gift(start + 700, 30, 2, streakable=False, end=True),
    ]
    txn = f"{topics.events}-upstream" if upstream == "transactional" else None
    asyncio.run(produce(broker, topics.events, keyed(events), transactional_id=txn))

    alerts = wait_for_alert(broker, topics.alerts, "stream_ended")

    def summary(a: dict[str, Any]) -> tuple[Any, ...]:
        if a["type"] == "stream_ended":
            return (
                "ended",
                a["reason"],
                a["event_time"] - T0,
                a["duration_ms"],
                a["session"]["likes"],
                a["peak_tier"],
                a["final_tier"],
            )
        return (a["policy"], a["from_tier"], a["to_tier"], a["value"], a["event_time"] - T0)

    # the likes are in bucket T0+0s; it leaves the 6 s window when stream time reaches
    # T0+6s. The session ends 12 s of stream time after the last event (T0+1.7s).
    assert [summary(a) for a in alerts] == [
        ("window_likes", "low", "moderate", 1_000, 1_500),
        ("session_likes", "low", "moderate", 1_000, 1_500),
        ("window_likes", "moderate", "low", 0, 6_000),
        ("ended", "inactive", 13_700, 12_700, 1_000, "moderate", "low"),
    ]
    windows = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.windows))]
    # tumbling [T0, T0+4s) closes at stream time T0+6s (end + grace), by the idle clock
    assert [
        (w["window"]["start"] - T0, w["window"]["likes"], w["window"]["coins"]) for w in windows
    ] == [(0, 1_000, 60)]
