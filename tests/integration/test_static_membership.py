"""Static group membership (KIP-345): a worker killed -9 and restarted with the same
LIVEPULSE_GROUP_INSTANCE_ID gets its own partitions back at once, without a rebalance.

Two workers, ``w-a`` and ``w-b``, share the partitions with a 90 s session timeout:

1. Both start on the empty topic, share the partitions, and are killed -9: the group
   keeps both (dead) members and their partitions.
2. All of the input is produced, and both start again: each takes its own partitions
   back, so both begin on their share of the backlog at once.
3. ``w-a`` is killed -9 with records left on its partitions and restarted again.

What proves the static path, without measuring any time:

- every restarted process restores exactly the partitions its id held, and after step 2
  ``w-b`` restores nothing again: with the eager protocol every rebalance makes every
  member give up and restore all its partitions, so no rebalance reached it;
- the broker's view: ``w-b`` keeps its member id and partitions, and ``w-a``'s partitions
  belong to a new member id (the restarted process took the killed one's place);
- every alert is exact: each stream's ``stream_ended`` totals as computed from the input,
  and the ids of every other alert as one engine computes them.

The one use of time: every wait gives up after ``DEADLINE_S``, well under the session
timeout, so a restart that waited out the killed member's session fails the test.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

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
    ready_partitions,
    session_of,
)
from tests.support.events import T0, plain

PARTITIONS = 4
SESSION_TIMEOUT_S = 90
DEADLINE_S = 60.0  # < SESSION_TIMEOUT_S: waiting out the dead member's session fails
# test_two_workers' workload: streams start and end all through it, evenly spread
CONFIG = SimulationConfig(
    start_ms=T0,
    streams=120,
    rate=300.0,
    max_events=200_000,
    seed=1,
    heat_sigma=0.5,
    mean_lifetime_s=90.0,
)
RESTORED = re.compile(r"partition (\d+) restored at offset")


@pytest.fixture
def topics(broker: str) -> Topics:
    return new_topics(broker, partitions=PARTITIONS)


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, WorkerProcess]]:
    """Two workers of one group, static members ``w-a`` and ``w-b``."""
    pair = {}
    for name in ("w-a", "w-b"):
        port = free_port()
        env = kill_test_env(worker_env) | {
            "LIVEPULSE_GROUP_INSTANCE_ID": name,
            "LIVEPULSE_SESSION_TIMEOUT_SECONDS": str(SESSION_TIMEOUT_S),
            "LIVEPULSE_DATA_DIR": str(tmp_path / name),
            "LIVEPULSE_METRICS_PORT": str(port),
        }
        pair[name] = WorkerProcess(env, tmp_path / f"{name}.log", port)
    yield pair
    for w in pair.values():  # only after a failure: the test stops both itself
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def restored(log: str) -> list[int]:
    """The partitions a worker's log says it restored, in order."""
    return [int(p) for p in RESTORED.findall(log)]


def test_a_static_member_restarted_after_kill_9_gets_its_partitions_back_without_a_rebalance(
    broker: str, topics: Topics, workers: dict[str, WorkerProcess]
) -> None:
    events = plain(generate(CONFIG))
    sessions = expected_sessions(events)
    tier_ids = expected_tier_ids(events)
    assert len(sessions) > 300 and len(tier_ids) > 100
    a, b = workers["w-a"], workers["w-b"]
    seen = asyncio.run(run_scenario(broker, topics, a, b, keyed(events)))
    shares, back, after = seen["shares"], seen["back"], seen["after"]

    a_log, b_log = a.log_path.read_text(), b.log_path.read_text()
    # each restart restored the partitions its id held, and only those
    assert sorted(restored(a_log[seen["a_log_at_restart"] :])) == sorted(shares["a"]), a_log
    # no rebalance reached w-b: it restored nothing since it came back
    assert restored(b_log) == seen["b_restored"], b_log
    # the broker's view: w-b unchanged, w-a's partitions with the new process
    assert after[back["b_member"]] == shares["b"], after
    (new_a,) = set(after) - {back["b_member"]}
    assert new_a != back["a_member"] and after[new_a] == shares["a"], after

    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()
    assert a.exit_codes == [-signal.SIGKILL, -signal.SIGKILL, 0]
    assert b.exit_codes == [-signal.SIGKILL, 0]
    alerts = [orjson.loads(r.value) for r in asyncio.run(read_all(broker, topics.alerts))]
    unique = dedupe(alerts)
    assert {i for i, x in unique.items() if x["type"] != "stream_ended"} == tier_ids
    ended = [x for x in unique.values() if x["type"] == "stream_ended"]
    got = {e["stream_id"]: session_of(e) for e in ended}
    assert len(ended) == len(got) == len(sessions)
    wrong = {
        sid: (got.get(sid), sessions[sid]) for sid in sessions if got.get(sid) != sessions[sid]
    }
    assert not wrong, f"{len(wrong)} streams differ (got, expected): {list(wrong.items())[:3]}"
    assert not asyncio.run(read_all(broker, topics.dlq)), "valid input reached the dead letters"


async def run_scenario(
    broker: str,
    topics: Topics,
    a: WorkerProcess,
    b: WorkerProcess,
    records: list[tuple[bytes | None, bytes]],
) -> dict[str, Any]:
    """Steps 1 to 3 of the module's doc; returns what the group and the logs said."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()

    async def wait_for(what: str, condition: Callable[[], Awaitable[Any]]) -> Any:
        give_up = time.monotonic() + DEADLINE_S
        while not (found := await condition()):
            if time.monotonic() > give_up:
                raise AssertionError(f"timed out: {what}\n--- a:\n{a.log()}\n--- b:\n{b.log()}")
            await asyncio.sleep(0.02)
        return found

    async def committed() -> dict[int, int]:
        offsets = await committed_offsets(admin, topics.app_id, topics.events) or {}
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def both_ready() -> dict[str, Any] | None:
        """Both ready, each with the partitions the broker gives one of the two members."""
        members = await group_members(admin, topics.app_id, topics.events)
        a_parts, b_parts = [await asyncio.to_thread(ready_partitions, w) for w in (a, b)]
        if len(members) != 2 or not a_parts or not b_parts:
            return None
        owner = {frozenset(parts): member for member, parts in members.items()}
        if {frozenset(a_parts), frozenset(b_parts)} != set(owner):
            return None
        return {
            "a": a_parts,
            "b": b_parts,
            "a_member": owner[frozenset(a_parts)],
            "b_member": owner[frozenset(b_parts)],
        }

    def log_size(worker: WorkerProcess) -> int:
        return len(worker.log_path.read_text())

    seen: dict[str, Any] = {}
    try:
        # 1. the two ids take their shares, on the empty topic, and die
        a.start()
        b.start()
        seen["shares"] = shares = await wait_for("both ready with a share", both_ready)
        for w in (a, b):
            assert w.stop(signal.SIGKILL) == -signal.SIGKILL

        # 2. all of the input before the workers run again, so no partition is caught up
        # before its streams end and the idle clock cannot move stream time
        await produce(broker, topics.events, records)
        ends = {tp.partition: n for tp, n in (await end_offsets(broker, topics.events)).items()}
        assert sum(ends.values()) == len(records) and all(ends.values()), ends
        at = {w.log_path: log_size(w) for w in (a, b)}
        a.start()
        b.start()
        seen["back"] = back = await wait_for("both back with their shares", both_ready)
        assert (back["a"], back["b"]) == (shares["a"], shares["b"])
        for w, partitions in ((a, shares["a"]), (b, shares["b"])):
            again = restored(w.log_path.read_text()[at[w.log_path] :])
            assert sorted(again) == sorted(partitions), w.log()
        seen["b_restored"] = restored(b.log_path.read_text())

        # 3. w-a killed -9 with a backlog on its partitions, and restarted
        async def a_moved_on() -> bool:
            return any(done > 0 for p, done in (await committed()).items() if p in shares["a"])

        await wait_for("w-a's partitions moved on", a_moved_on)
        assert a.stop(signal.SIGKILL) == -signal.SIGKILL
        at_kill = await committed()
        backlog = sum(ends[p] - at_kill.get(p, 0) for p in shares["a"])
        # not a result but the scenario's point: the restarted w-a has records to process
        assert backlog > 0, f"w-a was killed after its work was done: {at_kill} of {ends}"
        seen["a_log_at_restart"] = log_size(a)
        a.start()
        await wait_until_committed(broker, topics.app_id, topics.events, DEADLINE_S)
        seen["after"] = await group_members(admin, topics.app_id, topics.events)
    finally:
        await admin.close()
    return seen
