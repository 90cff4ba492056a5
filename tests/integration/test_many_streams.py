"""50,000 live streams in one partition: checkpoint, kill -9, restore, exact totals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.integration.conftest import (
    Topics,
    WorkerProcess,
    kill_9_once_committed,
    kill_test_env,
    new_topics,
)
from tests.integration.kafka import (
    committed_total,
    end_offsets,
    keyed,
    produce,
    read_all,
    wait_until_committed,
)
from tests.support.events import T0, StreamScript

STREAMS = 50_000
KILL_AT = 0.5  # of the input committed


@pytest.fixture
def topics(broker: str) -> Topics:
    return new_topics(broker, partitions=1)


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return kill_test_env(worker_env)


def phases() -> Iterator[list[dict[str, Any]]]:
    """Every stream's events, one step for all streams at a time, so all 50,000 are live
    at once: start; 5 likes; 5 more after 5 dropped (the room total is 15); a 5-coin gift;
    a 3-step Rose combo; the end."""
    scripts = [StreamScript(f"s{i:05d}", f"c{i % 997}") for i in range(STREAMS)]
    yield [s.start(T0) for s in scripts]
    yield [s.likes(T0 + 1_000, 5) for s in scripts]
    yield [s.likes(T0 + 2_000, 5, dropped=5) for s in scripts]
    yield [s.gift(T0 + 3_000, 5, 1, streakable=False, end=True) for s in scripts]
    for step in range(1, 4):
        yield [s.gift(T0 + 4_000, 1, step, streakable=True, end=False, streak="r") for s in scripts]
    yield [s.gift(T0 + 4_000, 1, 3, streakable=True, end=True, streak="r") for s in scripts]
    yield [s.end(T0 + 5_000) for s in scripts]


def test_fifty_thousand_streams_in_one_partition_survive_kill_9_exactly(
    broker: str, topics: Topics, unstarted_worker: WorkerProcess
) -> None:
    worker = unstarted_worker
    records = [record for phase in phases() for record in keyed(phase)]
    asyncio.run(produce(broker, topics.events, records))
    total = sum(asyncio.run(end_offsets(broker, topics.events)).values())
    assert total == STREAMS * 9

    worker.start()
    done = kill_9_once_committed(worker, broker, topics, KILL_AT * total)
    assert done < total - STREAMS, f"the kill came after every stream had ended: {done}"
    worker.start()
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events, deadline_s=240))

    log = worker.log_path.read_text(errors="replace")
    restored = re.findall(
        r"partition 0 restored at offset (-?\d+): (\d+) streams, (\d+) ended, from (\d+) records",
        log,
    )
    assert len(restored) == 2, worker.log()
    offset, streams, ended_streams, read = map(int, restored[1])
    # The checkpoint covers at least what was committed; every stream has a record. (The
    # worker may have applied far more than it committed when it was killed, even ended
    # streams: those come back ahead of the checkpoint, as ended or gone.)
    assert offset + 1 >= done and read >= STREAMS and streams + ended_streams > 0

    ended: dict[str, dict[str, Any]] = {}
    for record in asyncio.run(read_all(broker, topics.alerts)):
        alert = orjson.loads(record.value)
        if alert["type"] == "stream_ended":
            del alert["emitted_at"]
            assert ended.setdefault(alert["stream_id"], alert) == alert  # copies are equal
    assert len(ended) == STREAMS
    # worked out by hand from phases(): likes are the room total's growth (15), gifts are
    # counted once per combo (1 + 3 items), coins 5 + 3 x 1
    sessions = {sid: alert["session"] for sid, alert in ended.items()}
    assert {orjson.dumps(s) for s in sessions.values()} == {
        orjson.dumps({"likes": 15, "gifts": 4, "coins": 8, "creator_usd": 0.04})
    }
    assert asyncio.run(read_all(broker, topics.dlq)) == []
    assert asyncio.run(committed_total(broker, topics.app_id, topics.events)) == total
