"""Creator days from the real pure pipeline against the brute-force reference model.

Events go through the worker's pure parts as the worker runs them: engines of two input
partitions (a stream's partition by Kafka's default partitioner of its id) take them in
batches; after each batch every engine is checkpointed the way the worker does it (a
``TableUpdate`` of its changed and moved streams, their day parts and the parts of the
streams that ended, encoded as on the parts topic, and the partition's time); the creator-
days keeper reads those records (by creator, two partitions) and flushes its days,
tombstoning the parts of a final day as it does. The last record written for each creator
and day must be, field for field, the one ``tests/support/reference.py`` derives from the
docs.

The traffic is the simulator's, with a pool of creators taking turns in the streams from
a few minutes before a midnight to a few minutes after it (so each has several sessions a
day, and those open at midnight cross it), in UTC and in zones whose midnight is not UTC's;
and a hand-made night of the edges the simulator does not reach: a creator live in two
streams at once, sessions ending or starting at midnight itself, late events within and
beyond midnight's grace, tiers left at or just before midnight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fastjsonschema
import msgspec
import pytest

from processor.contract import Event
from processor.core.creators import CreatorDays, PartitionTime
from processor.core.days import Calendar
from processor.core.engine import Engine
from processor.simulator.generator import SimulationConfig, generate
from processor.worker.creators import CreatorDaysKeeper, creator_partition, part_key
from processor.worker.tables import TableUpdate
from tests.support.events import StreamScript, plain, typed
from tests.support.reference import Params, engine_config, expected_creator_days

Key = tuple[str, str]  # creator id, day
Record = dict[str, Any]  # a creator-day record as its JSON object

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "creator-day.v1.schema.json"
PARTITIONS = 2
# Windows small enough that tiers move within the run and midnight's grace is over within
# it; goals off (the reference computes them for nothing here); summaries that track every
# user, so top gifters are exact and must be equal.
PARAMS = Params(
    window_ms=60_000,
    step_ms=10_000,
    tumbling_ms=20_000,
    grace_ms=10_000,
    moderate=100,
    high=600,
    top_users_tracked=100_000,
    like_goals=(),
    coin_goals=(),
)


def local_midnight(time_zone: str) -> int:
    """The first millisecond of 2026-01-01 in ``time_zone``."""
    return int(datetime(2026, 1, 1, tzinfo=ZoneInfo(time_zone)).timestamp() * 1000)


@dataclass(frozen=True)
class Case:
    time_zone: str
    seed: int
    streams: int
    batch: int  # events applied between two checkpoints


CASES = {
    "utc": Case("UTC", seed=5, streams=6, batch=97),
    # midnight at 18:30 UTC: not a whole hour of UTC
    "asia-kolkata": Case("Asia/Kolkata", seed=2, streams=8, batch=500),
    # a checkpoint after every event: parts written within midnight's grace are superseded
    "america-sao-paulo": Case("America/Sao_Paulo", seed=3, streams=6, batch=1),
}


@cache
def traffic(time_zone: str, seed: int, streams: int) -> tuple[Event, ...]:
    """2.5 minutes before the zone's midnight to 2.5 after: 1.5 creators per stream, each
    session about 25 s, so a creator goes live every ~40 s."""
    config = SimulationConfig(
        start_ms=local_midnight(time_zone) - 150_000,
        streams=streams,
        creators=streams * 3 // 2,
        rate=20,
        duration_s=300,
        seed=seed,
        mean_lifetime_s=25,
        heat_sigma=1.5,  # a milder tail than the default: the brute force is quadratic
    )
    return tuple(generate(config))


def publish_days(
    events: list[Event], params: Params, time_zone: str, batch: int
) -> dict[Key, Record]:
    """The last creator-day record written for each key, as a subscriber decodes it."""
    engines = [Engine(replace(engine_config(params), time_zone=time_zone)) for _ in range(2)]

    def make_days() -> CreatorDays:
        return CreatorDays(time_zone, params.grace_ms, params.usd_per_coin, params.top_users)

    keeper = CreatorDaysKeeper({}, "parts", "creators", "g", Calendar(time_zone), make_days, 1.0)
    for partition in range(PARTITIONS):
        keeper.days[partition] = make_days()
    written: dict[Key, Record] = {}
    for first in range(0, len(events), batch):
        for event in events[first : first + batch]:
            engines[creator_partition(event.stream_id, PARTITIONS)].process(event)
        for partition, engine in enumerate(engines):
            # a checkpoint: its table records and the partition's time, then its change
            # set cleared
            time = PartitionTime(partition, PARTITIONS, engine.partition_time())
            streams, engine.moved = engine.changed | engine.moved, set()
            update = TableUpdate(engine, "", "parts", PARTITIONS, time, streams)
            engine.changed = set()
            for record in update.finish():
                assert record.partition is not None
                keeper.take(record.partition, record.key, record.value)
        for partition, days in keeper.days.items():
            for day in days.flush():
                key = (day.creator_id, day.day)
                assert not written.get(key, {}).get("final"), f"{key} written after final"
                written[key] = msgspec.json.decode(msgspec.json.encode(day))
                if day.final:  # its parts' tombstones, read back
                    for stream_id in day.streams:
                        keeper.take(partition, part_key(day.creator_id, day.day, stream_id), None)
    return written


def assert_same_days(got: dict[Key, Record], expected: dict[Key, Record]) -> None:
    assert sorted(got) == sorted(expected)
    for key, record in expected.items():
        assert got[key] == record, key


@cache
def validator() -> Any:
    return fastjsonschema.compile(msgspec.json.decode(SCHEMA.read_bytes()))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_creators_taking_turns_across_midnight_get_the_reference_days(case: Case) -> None:
    events = traffic(case.time_zone, case.seed, case.streams)
    expected = expected_creator_days(plain(events), PARAMS, case.time_zone)
    got = publish_days(list(events), PARAMS, case.time_zone, case.batch)
    assert_same_days(got, expected)

    for record in got.values():
        validator()(record)
    # not vacuous: creators with several sessions in a day, sessions across midnight (a
    # stream in two days), days over and final and the new one still open, tiers and gifts
    days = {record["day"] for record in expected.values()}
    assert len(days) == 2
    several = {key[0] for key, record in expected.items() if record["sessions"] >= 2}
    assert len(several) >= 4
    first, second = (
        [record for record in expected.values() if record["day"] == day] for day in sorted(days)
    )
    across = {s for r in first for s in r["streams"]} & {s for r in second for s in r["streams"]}
    assert len(across) >= 3
    assert all(r["final"] for r in first)
    assert not any(r["final"] for r in second)  # its midnight is still to come
    assert {r["peak_tier"] for r in expected.values()} == {"low", "moderate", "high"}
    assert all(r["top_gifters_exact"] for r in expected.values())
    assert sum(1 for r in expected.values() if r["top_gifters"]) >= len(expected) // 2


def test_top_gifters_are_exact_wherever_the_flag_says_so() -> None:
    """With summaries of three users, some days' top gifters are estimates: every other
    field is still the reference's, and where the engine says its top gifters are exact,
    they are the reference's (the true sums), and the reference finds each of the day's
    streams tracked every gifter it had."""
    params = replace(PARAMS, top_users_tracked=3)
    case = CASES["utc"]
    events = traffic(case.time_zone, case.seed, case.streams)
    expected = expected_creator_days(plain(events), params, case.time_zone)
    got = publish_days(list(events), params, case.time_zone, case.batch)
    estimates = ("top_gifters", "top_gifters_exact")
    assert_same_days(
        {key: {f: v for f, v in r.items() if f not in estimates} for key, r in got.items()},
        {key: {f: v for f, v in r.items() if f not in estimates} for key, r in expected.items()},
    )
    flagged = [key for key, record in got.items() if record["top_gifters_exact"]]
    for key in flagged:
        assert got[key]["top_gifters"] == expected[key]["top_gifters"], key
        assert expected[key]["top_gifters_exact"], key
    # Not the converse: the engine's flag is its session summary's, which also turns
    # inexact when a stream's likers outnumber what it tracks, so it can say "estimates"
    # where every stream tracked every gifter (the reference's reading of the README).
    assert 0 < len(flagged) < len(got)  # both kinds are here


S = 1_000


def night_of_edges() -> list[dict[str, Any]]:
    """Three creators around midnight m, 2026-01-02T00:00Z, with PARAMS' 60 s tier window
    in 10 s steps, grace 10 s, moderate from 100 likes."""
    m = local_midnight("UTC") + 86_400_000
    gift = {"gift_id": 1, "gift_name": "g", "repeat_count": 1, "streakable": False}
    a = StreamScript("a", creator_id="c-1")  # moderate from 23:59:00; low at midnight itself
    b = StreamScript("b", creator_id="c-1")  # c-1 live twice at once, ends at midnight
    c = StreamScript("c", creator_id="c-1")  # starts at midnight, ends within its grace
    d = StreamScript("d", creator_id="c-2")  # moderate, low at 23:59:50 while silent
    e = StreamScript("e", creator_id="c-2")  # from after midnight's grace, low
    f = StreamScript("f", creator_id="c-3")  # across midnight, a late like within the grace
    events = [
        a.start(m - 120 * S),
        d.start(m - 70 * S),
        f.start(m - 90 * S),
        a.likes(m - 60 * S, 15, dropped=135),
        d.likes(m - 65 * S, 15, dropped=135),
        a.viewers(m - 50 * S, 30),
        b.start(m - 30 * S),
        b.gift(m - 20 * S, 100, 1, False, True, user="u-1") | gift,
        f.likes(m - 5 * S, 10, dropped=20),
        f.viewers(m, 12),  # midnight's: the new day's
        b.end(m),
        c.start(m),
        c.gift(m + 2 * S, 30, 1, False, True, user="u-1") | gift,
        f.likes(m + 3 * S, 5),
        a.comment(m + 5 * S),  # a's window slides past midnight within the grace
        f.likes(m - 2 * S, 4, dropped=1),  # late, within the grace: the old day's
        f.gift(m - 1 * S, 500, 1, False, True, user="u-2") | gift,
        c.end(m + 5 * S),
        f.likes(m + 15 * S, 6),
        f.gift(m - 6 * S, 1000, 1, False, True, user="u-3") | gift,  # beyond the grace: late
        e.start(m + 20 * S),
        a.likes(m + 25 * S, 3),
        d.end(m + 40 * S),
        e.likes(m + 45 * S, 15, dropped=20),
        a.end(m + 50 * S),
        e.end(m + 60 * S),
        f.end(m + 120 * S),
    ]
    return events


def test_a_night_of_edges_gets_the_reference_days() -> None:
    events = night_of_edges()
    expected = expected_creator_days(events, PARAMS)
    got = publish_days([typed(event) for event in events], PARAMS, "UTC", 1)
    assert_same_days(got, expected)
    # what the edges are for, as the reference sees them
    assert expected[("c-1", "2026-01-01")]["live_ms"] == 120 * S  # a and b overlap
    assert expected[("c-1", "2026-01-02")]["streams"] == ["a", "b", "c"]  # b for 0 ms
    assert expected[("c-1", "2026-01-02")]["sessions"] == 1  # c
    assert expected[("c-1", "2026-01-02")]["peak_tier"] == "low"  # a left moderate at m
    assert expected[("c-2", "2026-01-01")]["peak_tier"] == "moderate"  # d
    assert expected[("c-2", "2026-01-02")]["peak_tier"] == "low"  # d left it before m
    assert expected[("c-3", "2026-01-01")]["coins"] == 500  # u-2's late gift, not u-3's
    assert expected[("c-3", "2026-01-02")]["peak_viewers"] == 12
    assert all(r["final"] for key, r in expected.items() if key[1] == "2026-01-01")
