"""A non-Python client proves the contract: kcat produces events and reads the alerts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from jsonschema import Draft7Validator

from processor.contract import ALERT_SCHEMA
from tests.integration.conftest import Topics, WorkerProcess
from tests.integration.kafka import kcat, wait_until_committed
from tests.support.events import T0, StreamScript
from tests.support.reference import Params, expected_outcome


def test_events_from_kcat_give_schema_valid_alerts_read_by_kcat(
    broker: str, topics: Topics, worker: WorkerProcess
) -> None:
    s = StreamScript("kcat-stream", "creator-k")
    events: list[dict[str, Any]] = [
        s.start(T0),
        s.likes(T0 + 1_000, 15, dropped=985),  # 1,000: moderate
        *s.combo(T0 + 2_000, coins=1, steps=5, streak="r"),
        s.gift(T0 + 3_000, 44_999, 1, streakable=False, end=True),
        s.likes(T0 + 4_000, 15, dropped=8_985),  # 10,000: high
    ]
    lines = b"".join(b"%s\t%s\n" % (e["stream_id"].encode(), orjson.dumps(e)) for e in events)
    kcat("-b", broker, "-P", "-t", topics.events, "-K", "\t", stdin=lines)
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    out = kcat(
        "-b", broker, "-C", "-t", topics.alerts, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"
    )
    rows = [line.split(b"\t", 1) for line in out.splitlines()]
    alerts = [json.loads(value) for _, value in rows]
    assert [key for key, _ in rows] == [b"kcat-stream"] * 4

    validator = Draft7Validator(json.loads(ALERT_SCHEMA.read_text()))
    for alert in alerts:
        assert list(validator.iter_errors(alert)) == []
    assert [(a["policy"], a["from_tier"], a["to_tier"], a["value"]) for a in alerts] == [
        ("window_likes", "low", "moderate", 1_000),
        ("session_likes", "low", "moderate", 1_000),
        ("window_likes", "moderate", "high", 10_000),
        ("session_likes", "moderate", "high", 10_000),
    ]
    assert alerts[2]["window"]["coins"] == 5 + 44_999
    assert alerts[2]["window"]["creator_usd"] == 225.02
    expected = expected_outcome(events, Params()).alerts
    assert [{k: v for k, v in a.items() if k != "emitted_at"} for a in alerts] == expected
