"""The money view end to end: creator days and the stream table from events produced with
kcat, with the worker killed -9 in the middle and started again.

The scenario, worked out by hand (UTC; default thresholds, grace 10 s; the events topic has
4 partitions, 2 and 3 get no event):

- ``c-ana`` goes live twice, on two partitions. Stream ``a1`` (partition 0), 10:00-10:30:
  100 + 150 likes (running totals 100, 250), one 30-coin gift from u-1; it ends. Stream
  ``a2`` (partition 1) goes live at 23:50 and crosses midnight: 40 likes and u-2's
  500-coin gift before it, then 60 likes and u-1's two-step combo of 5 coins (its end
  counts 2 gifts, 10 coins) after it, and it ends at 00:20.
  2026-01-01: 250 + 40 = 290 likes, 2 gifts, 530 coins ($2.65), 2 sessions, live 30 + 10
  = 40 min, top gifters u-2 (500), u-1 (30); final (see "When 2026-01-01 is over").
  2026-01-02: 60 likes, 2 gifts, 10 coins ($0.05), no session started that day, live 20
  min (00:00-00:20), top gifter u-1 (10 coins, 2 gifts); not final: event time only got to
  00:20 of that day, and she may go live again.
- ``c-bob``: stream ``b1`` (partition 0), 12:00-12:10, 5 likes, u-3's 1,000 coins.
  2026-01-01: 5 likes, 1 gift, 1,000 coins ($5.00), 1 session, 10 min; final. She goes
  live again the next day, stream ``b2`` (partition 0), 00:30-00:40, nothing counted.
  2026-01-02: 1 session, 10 min; not final (the day is not over).
- ``c-cat``: stream ``c1`` (partition 1) goes live at 00:01 on 2026-01-02 and stays live:
  1,200 likes at 00:02 (tier moderate), 77 viewers at 00:03. Its day is not final, and its
  time live grows with the wall clock (idle time), so that figure is not asserted.

When 2026-01-01 is over: once every input partition's time (its latest event, moved on by
its idle clock) has passed midnight plus the grace; partitions 2 and 3, with no event, do
not hold it back. Before the kill, partition 0 is at 12:10 and partition 1 at 23:58 (plus
the seconds they idle): no day is final. After the restart, partition 0 is at 00:40 (b2)
and partition 1 at 00:20 (a2): the least, 00:20, is past 00:00:10, so both days of
2026-01-01 turn final (b1 and a1 ended, a2's part of that day is stamped 00:00:10).
Without b2, partition 0 would stay at 12:10 plus its idle seconds, and 2026-01-01 open:
nothing says partition 0 has no event of that afternoon still to come.

The stream table ends with tombstones for a1, b1, a2 and b2, and c1's row. The worker is
killed -9 after it committed everything before midnight, and the rest is produced while it
is down.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from processor.core.creators import NO_TIME, PartitionTime
from processor.schemas import CREATOR_DAY_SCHEMA, STREAM_SCHEMA
from processor.worker.creators import decode_time, is_watermark_key
from tests.integration.conftest import Topics, WorkerProcess, free_port
from tests.integration.kafka import kcat, read_all, wait_until_committed
from tests.support.events import T0, StreamScript

H = 3_600_000
MIN = 60_000
DEADLINE_S = 90.0


def scenario() -> dict[int, list[dict[str, Any]]]:
    """The events of each partition, in time order."""
    a1 = StreamScript("a1", creator_id="c-ana")
    a2 = StreamScript("a2", creator_id="c-ana")
    b1 = StreamScript("b1", creator_id="c-bob")
    b2 = StreamScript("b2", creator_id="c-bob")
    c1 = StreamScript("c1", creator_id="c-cat")
    p0 = [
        a1.start(T0 + 10 * H),
        a1.likes(T0 + 10 * H + 1 * MIN, 10, dropped=90),
        a1.gift(T0 + 10 * H + 5 * MIN, 30, 1, False, True, user="u-1"),
        a1.likes(T0 + 10 * H + 10 * MIN, 15, dropped=135),
        a1.end(T0 + 10 * H + 30 * MIN),
        b1.start(T0 + 12 * H),
        b1.likes(T0 + 12 * H + 1 * MIN, 5),
        b1.gift(T0 + 12 * H + 5 * MIN, 1_000, 1, False, True, user="u-3"),
        b1.end(T0 + 12 * H + 10 * MIN),
        # after midnight: partition 0's time passes it too (the module's docstring)
        b2.start(T0 + 24 * H + 30 * MIN),
        b2.end(T0 + 24 * H + 40 * MIN),
    ]
    midnight = T0 + 24 * H
    p1 = [
        a2.start(midnight - 10 * MIN),
        a2.likes(midnight - 5 * MIN, 10, dropped=30),
        a2.gift(midnight - 2 * MIN, 500, 1, False, True, user="u-2"),
        c1.start(midnight + 1 * MIN),
        c1.likes(midnight + 2 * MIN, 15, dropped=1_185),
        c1.viewers(midnight + 3 * MIN, 77),
        a2.likes(midnight + 5 * MIN, 10, dropped=50),
        *a2.combo(midnight + 6 * MIN, 5, 2, "combo-1", user="u-1"),
        a2.comment(midnight + 10 * MIN),
        a2.end(midnight + 20 * MIN),
    ]
    return {0: p0, 1: p1}


def creator_day(**fields: Any) -> dict[str, Any]:
    return {"v": 1, "time_zone": "UTC", "peak_tier": "low", "peak_viewers": 0} | fields


EXPECTED_DAYS = {
    "c-ana/2026-01-01": creator_day(
        creator_id="c-ana",
        day="2026-01-01",
        likes=290,
        gifts=2,
        coins=530,
        creator_usd=2.65,
        sessions=2,
        streams=["a1", "a2"],
        live_ms=40 * MIN,
        minutes_live=40,
        top_gifters=[
            {"user_id": "u-2", "coins": 500, "gifts": 1},
            {"user_id": "u-1", "coins": 30, "gifts": 1},
        ],
        top_gifters_exact=True,
        final=True,
        stream_time_ms=T0 + 24 * H + 10_000,  # a2's part, final as of midnight's grace
    ),
    "c-ana/2026-01-02": creator_day(
        creator_id="c-ana",
        day="2026-01-02",
        likes=60,
        gifts=2,
        coins=10,
        creator_usd=0.05,
        sessions=0,
        streams=["a2"],
        live_ms=20 * MIN,
        minutes_live=20,
        top_gifters=[{"user_id": "u-1", "coins": 10, "gifts": 2}],
        top_gifters_exact=True,
        final=False,  # event time got to 00:20: she may go live again that day
        stream_time_ms=T0 + 24 * H + 20 * MIN,
    ),
    "c-bob/2026-01-01": creator_day(
        creator_id="c-bob",
        day="2026-01-01",
        likes=5,
        gifts=1,
        coins=1_000,
        creator_usd=5.0,
        sessions=1,
        streams=["b1"],
        live_ms=10 * MIN,
        minutes_live=10,
        top_gifters=[{"user_id": "u-3", "coins": 1_000, "gifts": 1}],
        top_gifters_exact=True,
        final=True,
        stream_time_ms=T0 + 12 * H + 10 * MIN,
    ),
    "c-bob/2026-01-02": creator_day(
        creator_id="c-bob",
        day="2026-01-02",
        likes=0,
        gifts=0,
        coins=0,
        creator_usd=0.0,
        sessions=1,
        streams=["b2"],
        live_ms=10 * MIN,
        minutes_live=10,
        top_gifters=[],
        top_gifters_exact=True,
        final=False,  # b2 ended, but the day is not over: she may go live again
        stream_time_ms=T0 + 24 * H + 40 * MIN,
    ),
}
# c-cat's day, but for the figures idle time moves (time live, stream time)
EXPECTED_CAT = creator_day(
    creator_id="c-cat",
    day="2026-01-02",
    likes=1_200,
    gifts=0,
    coins=0,
    creator_usd=0.0,
    sessions=1,
    streams=["c1"],
    peak_tier="moderate",
    peak_viewers=77,
    top_gifters=[],
    top_gifters_exact=True,
    final=False,
)


def produce(broker: str, topic: str, events: dict[int, list[dict[str, Any]]]) -> None:
    """With kcat (librdkafka), each partition's events to that partition, keyed by stream."""
    for partition, batch in events.items():
        lines = b"".join(
            b"%s\t%s\n" % (e["stream_id"].encode(), json.dumps(e).encode()) for e in batch
        )
        # idempotence: a retried batch never overtakes another (per-stream order matters)
        kcat(
            "-b",
            broker,
            "-P",
            "-t",
            topic,
            "-p",
            str(partition),
            "-K",
            "\t",
            "-X",
            "enable.idempotence=true",
            stdin=lines,
        )


def latest(broker: str, topic: str) -> dict[str, dict[str, Any] | None]:
    """The table a compacted topic holds for a read_committed reader: the last value of
    each key (None: a tombstone)."""
    records = asyncio.run(read_all(broker, topic, "read_committed"))
    return {
        r.key.decode(): None if r.value is None else json.loads(r.value)
        for r in sorted(records, key=lambda r: (r.partition, r.offset))
    }


def test_creator_days_and_the_stream_table_are_exact_across_a_kill_9(
    broker: str, topics: Topics, worker_env: dict[str, str], tmp_path: Path
) -> None:
    streams_topic, creators_topic = f"{topics.events}.streams", f"{topics.events}.creators"
    env = worker_env | {
        "LIVEPULSE_STREAMS_TOPIC": streams_topic,
        "LIVEPULSE_CREATORS_TOPIC": creators_topic,
        # frequent commits; a killed worker's partitions free after the shortest session
        "LIVEPULSE_COMMIT_INTERVAL_SECONDS": "0.5",
        # the tables with every checkpoint: what the kill leaves of them is then what the
        # checkpoint the restart resumes from holds (a2's row below)
        "LIVEPULSE_TABLE_INTERVAL_SECONDS": "0.5",
        "LIVEPULSE_SESSION_TIMEOUT_SECONDS": "6",
    }

    events = scenario()
    midnight = T0 + 24 * H
    before = {p: [e for e in batch if e["ts"] < midnight] for p, batch in events.items()}
    after = {p: [e for e in batch if e["ts"] >= midnight] for p, batch in events.items()}

    port = free_port()
    worker = WorkerProcess(env | {"LIVEPULSE_METRICS_PORT": str(port)}, tmp_path / "w.log", port)
    worker.start()
    try:
        produce(broker, topics.events, before)
        asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        produce(broker, topics.events, after)
        worker.start()
        asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))
        days = wait_for_days(broker, creators_topic, worker)
        table = latest(broker, streams_topic)
        assert worker.stop() == 0, worker.log()
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop(signal.SIGKILL)

    for key, expected in EXPECTED_DAYS.items():
        assert days[key] == expected, json.dumps([key, days[key]])
    cat = days["c-cat/2026-01-02"]
    assert cat is not None and cat["live_ms"] >= 2 * MIN  # live from 00:01, time at 00:03+
    moving = ("live_ms", "minutes_live", "stream_time_ms")
    assert {k: v for k, v in cat.items() if k not in moving} == EXPECTED_CAT
    assert set(days) == {*EXPECTED_DAYS, "c-cat/2026-01-02"}

    ended = ("a1", "b1", "a2", "b2")
    assert {k: table[k] for k in ended} == dict.fromkeys(ended)
    c1 = table["c1"]
    assert c1 is not None
    assert (c1["creator_id"], c1["tier"], c1["peak_tier"]) == ("c-cat", "moderate", "moderate")
    assert (c1["session"]["likes"], c1["session"]["coins"], c1["viewers"]["current"]) == (
        1_200,
        0,
        77,
    )
    assert set(table) == {*ended, "c1"}
    # a2 was live when the worker was killed: its row was committed with the checkpoint
    # the restart resumed from, and its tombstone came after (a1, b1 and b2 began and
    # ended within one commit interval: a tombstone is all a checkpoint has to say of them)
    records = asyncio.run(read_all(broker, streams_topic, "read_committed"))
    assert {r.key.decode() for r in records if r.value is None} == set(ended)
    assert {"a2", "c1"} <= {r.key.decode() for r in records if r.value is not None}
    # every record is what the published schemas say
    for topic, schema in ((streams_topic, STREAM_SCHEMA), (creators_topic, CREATOR_DAY_SCHEMA)):
        validator = Draft7Validator(json.loads(schema.read_text()))
        for record in asyncio.run(read_all(broker, topic, "read_committed")):
            if record.value is not None:
                errors = [e.message for e in validator.iter_errors(json.loads(record.value))]
                assert errors == [], (topic, record.key, errors)
    # every partition of the parts topic holds the latest time of each input partition:
    # at least its latest event's (0: b2's end, 1: a2's), none for the two with no event
    times: dict[tuple[int, int], PartitionTime] = {}
    parts_topic = f"{topics.app_id}.creator-parts"
    for record in asyncio.run(read_all(broker, parts_topic, "read_committed")):
        if record.key is not None and is_watermark_key(record.key) and record.value:
            time = decode_time(record.value)
            times[(record.partition, time.partition)] = time
    assert set(times) == {(p, i) for p in range(4) for i in range(4)}
    latest_event = {0: midnight + 40 * MIN, 1: midnight + 20 * MIN}
    for (_, i), time in times.items():
        assert time.partitions == 4
        if i in latest_event:
            assert time.time_ms >= latest_event[i], (i, time)
        else:
            assert time.time_ms == NO_TIME, (i, time)


def wait_for_days(
    broker: str, topic: str, worker: WorkerProcess
) -> dict[str, dict[str, Any] | None]:
    """The creator days once each day of the scenario reads as expected (the creator-days
    agent writes once per commit interval, after the worker's commit); at the deadline,
    whatever they are, for the asserts to show."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        days = latest(broker, topic)
        if all(days.get(k) == v for k, v in EXPECTED_DAYS.items()) and days.get("c-cat/2026-01-02"):
            return days
        if time.monotonic() > deadline:
            return days
        time.sleep(0.2)
