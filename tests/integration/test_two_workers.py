"""Two worker processes in one consumer group, each killed -9 once mid-input and restarted.

A killed worker's partitions are restored by whoever gets them next (the other worker or
its own restart) from the dead one's checkpoints, and a restarted worker rejoins and takes
partitions back: once de-duplicated by alert_id, the alerts must still be exact.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from processor.simulator.generator import SimulationConfig, generate
from tests.integration.conftest import (
    Topics,
    WorkerProcess,
    free_port,
    kill_test_env,
    new_topics,
)
from tests.integration.kafka import (
    committed_offsets,
    end_offsets,
    keyed,
    produce,
    read_all,
    wait_until_committed,
)
from tests.integration.scenario import (
    dedupe,
    expected_sessions,
    expected_tier_ids,
    group_members,
    restores,
    session_of,
)
from tests.support.events import T0, plain

PARTITIONS = 8
# 120 concurrent streams, each living ~90 s of event time before a new one takes its slot,
# so streams end all through the run (before, across and after the kills), and every one
# of them ends within the input: the generator closes every open stream (live_end) at the
# end. heat_sigma 0.5 (default 3.0: one stream would hold half of the input) and this seed
# spread the input evenly over the 8 partitions, so both workers have a share. 200,000
# events: a worker goes through ~100,000 events/s, and each kill must land while the
# killed worker still has records to process.
CONFIG = SimulationConfig(
    start_ms=T0,
    streams=120,
    rate=300.0,
    max_events=200_000,
    seed=1,
    heat_sigma=0.5,
    mean_lifetime_s=90.0,
)
DEADLINE_S = 60.0


@pytest.fixture
def topics(broker: str) -> Topics:
    return new_topics(broker, partitions=PARTITIONS)


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return kill_test_env(worker_env)


@pytest.fixture
def workers(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    """Two workers of one app id (one group), each with its own data dir and metrics port."""
    pair = []
    for name in ("a", "b"):
        port = free_port()
        env = worker_env | {
            "LIVEPULSE_DATA_DIR": str(tmp_path / f"worker-{name}"),
            "LIVEPULSE_METRICS_PORT": str(port),
        }
        pair.append(WorkerProcess(env, tmp_path / f"worker-{name}.log", port))
    a, b = pair
    assert a.metrics_port != b.metrics_port
    yield a, b
    for w in pair:  # only after a failure: the test stops both itself
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


async def run_scenario(
    broker: str,
    topics: Topics,
    a: WorkerProcess,
    b: WorkerProcess,
    ends: dict[TopicPartition, int],
) -> dict[str, Any]:
    """Drive the two workers through their crashes; returns what happened when.

    1. ``a`` starts alone and is killed -9 as soon as it has committed part of the input.
    2. ``a`` and ``b`` start at once. The group waits for the dead ``a``'s session to
       expire, so both join the same generation and start together on a backlog, each
       restoring the partitions it got from the killed ``a``'s checkpoints. (A worker
       started alone would race through the whole input before the other one joined.)
    3. Once every partition has moved on, ``b`` is killed -9; when the group notices,
       ``a`` takes over ``b``'s partitions from ``b``'s checkpoints.
    4. ``b`` starts again and rejoins: the partitions are split between the two again.
    """
    end = {tp.partition: offset for tp, offset in ends.items()}
    total = sum(end.values())
    every = set(end)
    timeline: dict[str, Any] = {}
    began = time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()

    async def wait_for(
        what: str, condition: Callable[[dict[str, set[int]], dict[int, int]], bool]
    ) -> tuple[dict[str, set[int]], dict[int, int]]:
        """Poll the group's members and committed offsets until ``condition`` holds."""
        give_up = time.monotonic() + DEADLINE_S
        while True:
            members = await group_members(admin, topics.app_id, topics.events)
            offsets = await committed_offsets(admin, topics.app_id, topics.events) or {}
            done = {tp.partition: offset for tp, offset in offsets.items()}
            if condition(members, done):
                break
            if time.monotonic() > give_up:
                raise AssertionError(f"timed out: {what}\n--- a:\n{a.log()}\n--- b:\n{b.log()}")
            await asyncio.sleep(0.02)
        timeline[what] = f"{time.monotonic() - began:.1f}s, {sum(done.values())}/{total} committed"
        return members, done

    def split_between_two(members: dict[str, set[int]], _: dict[int, int]) -> bool:
        parts = list(members.values())
        return len(parts) == 2 and all(parts) and set.union(*parts) == every

    def backlog(done: dict[int, int], partitions: set[int]) -> int:
        return sum(end[p] - done.get(p, 0) for p in partitions)

    try:
        a.start()
        await wait_for("a alone committed some", lambda _, done: sum(done.values()) > 0)
        assert a.stop(signal.SIGKILL) == -signal.SIGKILL
        a.start()
        b.start()
        members, at_split = await wait_for("a and b split the partitions", split_between_two)
        assert backlog(at_split, every) > 0, f"the input was done before both ran: {timeline}"

        def every_partition_moved_on(_: dict[str, set[int]], done: dict[int, int]) -> bool:
            return all(
                done.get(p, 0) > at_split.get(p, 0) or done.get(p, 0) >= end[p] for p in every
            )

        _, at_kill = await wait_for("every partition moved on", every_partition_moved_on)
        assert b.stop(signal.SIGKILL) == -signal.SIGKILL
        survivor, _ = await wait_for(
            "a owns every partition", lambda m, _: list(m.values()) == [every]
        )
        # b's partitions: those of the member that is not a (member ids survive rebalances)
        b_parts = set().union(*(parts for m, parts in members.items() if m not in survivor))
        timeline["b's partitions and their backlog when b was killed"] = {
            p: end[p] - at_kill.get(p, 0) for p in sorted(b_parts)
        }
        # Not a result but the scenario's point: b died with records still to process.
        assert backlog(at_kill, b_parts) > 0, f"b was killed after its work was done: {timeline}"
        b.start()
        await wait_for("b rejoined", split_between_two)
    finally:
        await admin.close()
    return timeline


def test_two_workers_each_killed_9_and_restarted_give_exact_alerts(
    broker: str, topics: Topics, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    events = plain(generate(CONFIG))
    sessions = expected_sessions(events)
    tier_ids = expected_tier_ids(events)
    assert len(sessions) > 300 and len(tier_ids) > 100
    # All input goes in before the workers start. Producing while they run would let a
    # caught-up partition's idle clock move stream time ahead of events still to come
    # (README: stream time follows the wall clock on caught-up partitions), and then the
    # result would depend on timing instead of being one exact answer. With a backlog on
    # every partition until its end, no partition is caught up before its streams ended.
    asyncio.run(produce(broker, topics.events, keyed(events)))
    ends = asyncio.run(end_offsets(broker, topics.events))
    assert len(ends) == PARTITIONS and all(ends.values()), ends
    total = sum(ends.values())
    assert total == len(events)

    a, b = workers
    timeline = asyncio.run(run_scenario(broker, topics, a, b, ends))
    print("timeline:", timeline)

    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events, deadline_s=120))
    alive = [w.proc is not None and w.proc.poll() is None for w in (a, b)]
    assert alive == [True, True], f"a worker died:\n{a.log()}\n{b.log()}"
    stopping = time.monotonic()
    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()
    print(f"both stopped in {time.monotonic() - stopping:.1f}s")
    assert a.exit_codes == [-signal.SIGKILL, 0] and b.exit_codes == [-signal.SIGKILL, 0]

    alerts = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.alerts))]
    try:
        unique = dedupe(alerts)
    except AssertionError as exc:  # which worker restored what, and when: where to look
        raise AssertionError(f"{exc}\n{restores(a, b)}\ntimeline: {timeline}") from None
    by_type = Counter(alert["type"] for alert in unique.values())
    assert set(by_type) == {"tier_changed", "stream_ended", "spike", "goal_reached"}, by_type
    # (2) every transition, exactly, once de-duplicated
    got_tier_ids = {i for i, alert in unique.items() if alert["type"] != "stream_ended"}
    assert got_tier_ids == tier_ids, (
        f"missing {len(tier_ids - got_tier_ids)}, unexpected {len(got_tier_ids - tier_ids)}"
    )
    # (3) one stream_ended per stream: no stream ended twice with different contents
    ended = [alert for alert in unique.values() if alert["type"] == "stream_ended"]
    twice = [sid for sid, n in Counter(e["stream_id"] for e in ended).items() if n > 1]
    assert not twice, f"streams with two different stream_ended: {twice[:5]}"
    # (1) session totals equal the input's, for every stream
    got = {e["stream_id"]: session_of(e) for e in ended}
    assert got.keys() == sessions.keys()
    wrong = {sid: (got[sid], sessions[sid]) for sid in sessions if got[sid] != sessions[sid]}
    assert not wrong, f"{len(wrong)} streams differ (got, expected), e.g. {list(wrong.items())[:3]}"
    print(f"{len(alerts)} alerts, {len(unique)} distinct")
    assert not asyncio.run(read_all(broker, topics.dlq)), "valid input reached the dead letters"
