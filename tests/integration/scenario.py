"""What the multi-worker scenarios share: the expected results, worked out from the input
alone, and what the broker says of the consumer group.

Expected results never come from running the worker: ``expected_sessions`` applies
docs/domain.md's like and gift rules to the input, and ``expected_tier_ids`` feeds the whole
input, in order, to one pure engine (the engine itself is checked against a brute-force
reference model in the unit tests).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from processor.core.alerts import GoalReached, Spike, TierChanged
from processor.core.engine import Engine, EngineConfig
from tests.integration.conftest import KILL_TEST_ENGINE, WorkerProcess
from tests.support.events import typed

READY = re.compile(r"ready: partitions \[([\d, ]*)\]")


def expected_tier_ids(
    events: list[dict[str, Any]], config: EngineConfig = KILL_TEST_ENGINE
) -> set[str]:
    """The ids of the alerts other than stream_ended (tier changes, spikes, goals) one
    engine computes from the whole input, in order.

    The worker runs one engine per partition, but every event of a stream is on one
    partition (key = stream_id) and the engine keeps each stream apart, so one engine fed
    everything in input order gives the same per-stream results.
    """
    return set(expected_tier_alerts(events, config))


def expected_tier_alerts(
    events: list[dict[str, Any]], config: EngineConfig = KILL_TEST_ENGINE
) -> dict[str, tuple[str, str, int]]:
    """``expected_tier_ids`` with what each id is: (type, stream id, event time)."""
    engine = Engine(config)
    return {
        output.alert_id: (output.type, output.stream_id, output.event_time)
        for event in events
        for output in engine.process(typed(event)).outputs
        if isinstance(output, TierChanged | Spike | GoalReached)
    }


def expected_sessions(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each stream's stream_ended must say, from docs/domain.md's rules alone.

    Likes are the growth of the room's running ``total``: the first like event of a stream
    whose live_start was not seen counts min(count, total), later ones the growth of the
    highest total seen. A gift counts only when it is not streakable or ends its streak,
    as repeat_count gifts worth coins x repeat_count.
    """
    sessions: dict[str, dict[str, Any]] = {}
    highest: dict[str, int] = {}  # highest like total seen (0 from live_start)
    for e in events:
        sid, kind, ts = e["stream_id"], e["type"], e["ts"]
        s = sessions.setdefault(
            sid,
            {
                "reason": None,
                "started_at": ts,
                "event_time": ts,
                "likes": 0,
                "gifts": 0,
                "coins": 0,
            },
        )
        # The inputs send each stream in time order and nothing after its live_end,
        # so neither lateness nor after_end applies to them.
        assert s["reason"] is None and ts >= s["event_time"], e
        s["event_time"] = ts
        if kind == "live_start":
            highest.setdefault(sid, 0)
            s["started_at"] = min(s["started_at"], ts)
        elif kind == "like":
            seen = highest.get(sid)
            s["likes"] += min(e["count"], e["total"]) if seen is None else max(0, e["total"] - seen)
            highest[sid] = e["total"] if seen is None else max(seen, e["total"])
        elif kind == "gift" and (not e["streakable"] or e["repeat_end"]):
            s["gifts"] += e["repeat_count"]
            s["coins"] += e["coins"] * e["repeat_count"]
        elif kind == "live_end":
            s["reason"] = e["reason"]
    assert all(s["reason"] for s in sessions.values()), "a stream does not end in the input"
    return sessions


def session_of(ended: dict[str, Any]) -> dict[str, Any]:
    """A stream_ended alert's fields that ``expected_sessions`` predicts."""
    return {
        "reason": ended["reason"],
        "started_at": ended["started_at"],
        "event_time": ended["event_time"],
        "likes": ended["session"]["likes"],
        "gifts": ended["session"]["gifts"],
        "coins": ended["session"]["coins"],
    }


def dedupe(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One alert per alert_id; every copy of an id must be the same alert but emitted_at."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        record = {k: v for k, v in record.items() if k != "emitted_at"}
        first = seen.setdefault(record["alert_id"], record)
        assert first == record, f"two different alerts share the id {record['alert_id']}"
    return seen


def duplicated_ids(records: list[dict[str, Any]]) -> dict[str, int]:
    """alert_id -> how many times it was read, for the ids read more than once."""
    return {i: n for i, n in Counter(r["alert_id"] for r in records).items() if n > 1}


def restores(*workers: WorkerProcess) -> str:
    """Each worker's partition restores, from its whole log."""
    lines = []
    for worker in workers:
        text = worker.log_path.read_text(errors="replace")
        lines += [
            f"{worker.log_path.stem}: {line}" for line in text.splitlines() if " restored " in line
        ]
    return "\n".join(lines)


async def group_members(admin: AIOKafkaAdminClient, group: str, topic: str) -> dict[str, set[int]]:
    """Each member's partitions of ``topic`` while the group is stable, as the broker says."""
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError as exc:  # e.g. the offsets topic is still being created
        if not exc.retriable:
            raise
        return {}
    (described,) = response.to_object()["groups"]
    if described["error_code"] or described["state"] != "Stable":
        return {}
    members = {}
    for member in described["members"]:
        raw = member["member_assignment"]
        assignment = ConsumerProtocolMemberAssignment.decode(raw).assignment if raw else []
        members[member["member_id"]] = {p for t, ps in assignment if t == topic for p in ps}
    return members


def ready_partitions(worker: WorkerProcess) -> set[int] | None:
    """The partitions ``/readyz`` says are assigned and restored; None while not ready."""
    url = f"http://127.0.0.1:{worker.metrics_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    match = READY.search(body)
    return {int(p) for p in match.group(1).split(",") if p.strip()} if match else None
