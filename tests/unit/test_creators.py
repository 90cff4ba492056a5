"""Creator days added up from their streams' parts: sums, time live, sessions, top gifters,
replays and the end of a day. Every expected figure below is worked out by hand."""

from __future__ import annotations

import pytest

from processor.core.creators import (
    NO_TIME,
    CreatorDays,
    PartitionTime,
    StreamDay,
    TopGifter,
    live_ms,
    merged_gifters,
)
from processor.core.tiers import Tier

MIN = 60_000
HOUR = 60 * MIN
DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY2 = DAY1 + 86_400_000  # 2026-01-02T00:00:00Z


def at(days: CreatorDays, time_ms: int, partitions: int = 1) -> CreatorDays:
    """Every input partition (``partitions`` of them) reports ``time_ms``."""
    for p in range(partitions):
        days.note_time(PartitionTime(p, partitions, time_ms))
    return days


def part(stream_id: str, **fields: object) -> StreamDay:
    values: dict[str, object] = {
        "creator_id": "c-1",
        "day": "2026-01-01",
        "stream_id": stream_id,
        "started_ms": DAY1,
        "live_from_ms": DAY1,
        "live_to_ms": DAY1,
        "likes": 0,
        "gifts": 0,
        "coins": 0,
        "peak_tier": Tier.LOW,
        "peak_viewers": 0,
        "gifters": (),
        "exact": True,
        "ended": False,
        "stream_time_ms": DAY1,
    }
    values.update(fields)
    return StreamDay(**values)  # type: ignore[arg-type]


# s-a: 10:00-11:00, ended; s-b: from 23:30, across midnight, its time already at 00:10
MORNING = part(
    "s-a",
    started_ms=DAY1 + 600 * MIN,
    live_from_ms=DAY1 + 600 * MIN,
    live_to_ms=DAY1 + 660 * MIN,
    likes=1_200,
    gifts=3,
    coins=35,
    peak_tier=Tier.MODERATE,
    peak_viewers=40,
    gifters=(("u-1", 30, 1), ("u-2", 5, 2)),
    ended=True,
    stream_time_ms=DAY1 + 660 * MIN,
)
LATE_NIGHT = part(
    "s-b",
    started_ms=DAY2 - 30 * MIN,
    live_from_ms=DAY2 - 30 * MIN,
    live_to_ms=DAY2,
    likes=300,
    gifts=1,
    coins=500,
    peak_viewers=90,
    gifters=(("u-1", 500, 1),),
    stream_time_ms=DAY2 + 10 * MIN,
)


def test_a_creators_day_adds_up_her_streams_on_any_partition() -> None:
    days = CreatorDays(grace_ms=10_000, usd_per_coin=0.005, top_gifters=5)
    assert days.apply(MORNING, DAY2) and days.apply(LATE_NIGHT, DAY2)
    at(days, DAY2 + 10 * MIN, partitions=2)
    (record,) = days.flush()
    assert record.key == "c-1/2026-01-01"
    assert (record.likes, record.gifts, record.coins, record.creator_usd) == (1_500, 4, 535, 2.675)
    assert (record.sessions, record.streams) == (2, ("s-a", "s-b"))
    assert (record.live_ms, record.minutes_live) == (90 * MIN, 90)
    assert (record.peak_tier, record.peak_viewers) == (Tier.MODERATE, 90)
    assert record.top_gifters == (TopGifter("u-1", 530, 2), TopGifter("u-2", 5, 2))
    assert record.top_gifters_exact
    # every input partition's time and s-b's are past midnight plus the grace; s-a ended
    assert record.final
    assert record.stream_time_ms == DAY2 + 10 * MIN
    assert days.days == {} and days.flush() == []


def test_a_session_from_the_day_before_is_time_live_but_not_a_session_started() -> None:
    after_midnight = part(
        "s-b",
        day="2026-01-02",
        started_ms=DAY2 - 30 * MIN,
        live_from_ms=DAY2,
        live_to_ms=DAY2 + 10 * MIN,
        likes=40,
        stream_time_ms=DAY2 + 10 * MIN,
    )
    days = CreatorDays()
    days.apply(after_midnight, DAY2 + 86_400_000)
    (record,) = days.flush()
    assert (record.day, record.sessions, record.minutes_live, record.final) == (
        "2026-01-02",
        0,
        10,
        False,
    )


@pytest.mark.parametrize(
    ("stream_time_ms", "ended", "clock", "final"),
    [
        (DAY2 - 1, False, DAY2 - 1, False),
        (DAY2 + 9_999, False, DAY2 + 9_999, False),  # within the grace: a late event counts
        (DAY2 + 10_000, False, DAY2 + 10_000, True),
        (DAY2 - 1, True, DAY2 - 1, False),  # every stream ended, but she may go live again
        (DAY2 - 1, True, DAY2 + 10_000, True),
        (DAY2 + HOUR, False, DAY2 + 9_999, False),  # her stream is past, not every input
        (DAY2 + 9_999, False, DAY2 + HOUR, False),  # the input is past, her stream is not
    ],
    ids=[
        "before-midnight",
        "within-grace",
        "grace-over",
        "ended-day-not-over",
        "ended-day-over",
        "input-within-grace",
        "stream-within-grace",
    ],
)
def test_a_day_is_final_once_the_input_and_every_stream_are_done_with_it(
    stream_time_ms: int, ended: bool, clock: int, final: bool
) -> None:
    days = at(CreatorDays(grace_ms=10_000), clock)
    days.apply(MORNING, DAY2)
    days.apply(part("s-b", stream_time_ms=stream_time_ms, ended=ended), DAY2)
    (record,) = days.flush()
    assert record.final is final


@pytest.mark.parametrize(
    ("times", "clock"),
    [
        ([], -1),
        ([(0, 3, DAY1), (2, 3, DAY2)], -1),  # partition 1 not heard from
        ([(0, 3, DAY1), (1, 3, DAY2), (2, 3, DAY2)], DAY1),
        ([(0, 3, DAY1), (1, 3, DAY2), (2, 3, DAY2), (0, 3, DAY2 + 1)], DAY2),  # latest counts
        ([(0, 2, NO_TIME), (1, 2, DAY2)], DAY2),
        ([(0, 2, NO_TIME), (1, 2, NO_TIME)], -1),
        ([(0, 1, DAY2), (1, 2, DAY2)], DAY2),
        ([(0, 2, DAY2), (1, 2, DAY2), (2, 3, DAY2)], DAY2),
        ([(0, 2, DAY2), (1, 2, DAY2), (3, 4, DAY2)], -1),  # now 4, and 2 not heard from
        ([(0, 1, DAY2), (1, 1, DAY1), (-1, 1, DAY1)], DAY2),  # no such input partitions
    ],
    ids=[
        "none",
        "one-missing",
        "the-least",
        "latest-per-partition",
        "no-time-left-out",
        "no-time-anywhere",
        "count-grows-heard-all",
        "count-grows-third-heard",
        "count-grows-one-missing",
        "out-of-range-ignored",
    ],
)
def test_the_clock_is_the_least_time_once_every_input_partition_reported(
    times: list[tuple[int, int, int]], clock: int
) -> None:
    days = CreatorDays()
    for partition, partitions, time_ms in times:
        days.note_time(PartitionTime(partition, partitions, time_ms))
    assert days.clock == clock


def test_a_replayed_or_older_part_changes_nothing_and_a_finished_day_stays_closed() -> None:
    days = CreatorDays()
    early = part("s-b", likes=10, stream_time_ms=DAY2 - 5 * MIN)
    later = part("s-b", likes=25, stream_time_ms=DAY2 - 2 * MIN)
    assert days.apply(later, DAY2)
    assert not days.apply(later, DAY2)  # replayed
    assert not days.apply(early, DAY2)  # older
    (record,) = days.flush()
    assert record.likes == 25 and not record.final
    assert days.flush() == []  # nothing changed since
    assert days.apply(part("s-b", likes=30, ended=True, stream_time_ms=DAY2 - MIN), DAY2)
    (record,) = days.flush()
    assert (record.likes, record.final) == (30, False)  # the day is not over yet
    # a part of another creator past midnight plus the grace says nothing of the input
    other = part("s-z", creator_id="c-2", day="2026-01-02", stream_time_ms=DAY2 + 10 * MIN)
    days.apply(other, DAY2 + 86_400_000)
    assert [(r.key, r.final) for r in days.flush()] == [("c-2/2026-01-02", False)]
    # the input partitions' time does
    at(days, DAY2 + 10 * MIN)
    (record,) = days.flush()
    assert (record.key, record.likes, record.final) == ("c-1/2026-01-01", 30, True)
    assert not days.apply(part("s-c", likes=99, stream_time_ms=DAY2 - MIN), DAY2)
    assert days.flush() == []


@pytest.mark.parametrize(
    ("spans", "expected_minutes"),
    [
        ([(0, 10)], 10),
        ([(0, 10), (20, 30)], 20),
        ([(0, 10), (5, 15)], 15),
        ([(0, 30), (5, 15)], 30),
        ([(20, 30), (0, 10), (5, 25)], 30),
        ([(0, 10), (10, 20)], 20),
    ],
    ids=["one", "apart", "overlapping", "nested", "unsorted-chain", "touching"],
)
def test_time_live_counts_overlapping_sessions_once(
    spans: list[tuple[int, int]], expected_minutes: int
) -> None:
    parts = [
        part(f"s-{i}", live_from_ms=a * MIN, live_to_ms=b * MIN) for i, (a, b) in enumerate(spans)
    ]
    assert live_ms(parts) == expected_minutes * MIN


@pytest.mark.parametrize(
    ("gifters", "exact", "n", "expected"),
    [
        ([(("u-1", 5, 1),), (("u-1", 7, 2),)], [True, True], 5, (True, [("u-1", 12, 3)])),
        (
            [(("u-b", 10, 1), ("u-a", 3, 3)), (("u-a", 7, 1),)],
            [True, True],
            5,
            (True, [("u-a", 10, 4), ("u-b", 10, 1)]),  # a tie on coins: by user id
        ),
        (
            [(("u-1", 9, 1), ("u-2", 8, 1), ("u-3", 1, 1)), (("u-3", 2, 1),)],
            [True, False],
            2,
            (False, [("u-1", 9, 1), ("u-2", 8, 1)]),
        ),
    ],
    ids=["same-user-two-streams", "tie-by-user", "top-n-and-inexact"],
)
def test_top_gifters_of_a_day_add_up_each_users_coins_over_her_streams(
    gifters: list[tuple[tuple[str, int, int], ...]],
    exact: list[bool],
    n: int,
    expected: tuple[bool, list[tuple[str, int, int]]],
) -> None:
    parts = [
        part(f"s-{i}", gifters=g, exact=e)
        for i, (g, e) in enumerate(zip(gifters, exact, strict=True))
    ]
    is_exact, top = merged_gifters(parts, n)
    assert (is_exact, [(t.user_id, t.coins, t.gifts) for t in top]) == expected


def test_a_streams_ledger_splits_its_session_at_midnight() -> None:
    """s-b goes live at 23:30: 300 likes, 1 gift of 500 coins (u-1) before midnight, 40
    likes and u-2's 30 coins after it by the time its time passes midnight plus the grace;
    then 60 more likes and u-2's second gift (30 coins) by 00:10."""
    from processor.core.creators import DayLedger

    ledger = DayLedger("2026-01-01", DAY1, DAY2)
    ledger.note_viewers(90, DAY2 - 20 * MIN)
    ledger.note_tier(Tier.LOW, Tier.MODERATE, DAY2 - 10 * MIN)
    ledger.note_viewers(120, DAY2 + 2 * MIN)  # after midnight: the next day's
    ledger.note_tier(Tier.MODERATE, Tier.HIGH, DAY2 + 3 * MIN)
    identity = ("c-1", "s-b", DAY2 - 30 * MIN)
    ledger.close_day(
        *identity,
        session=(340, 2, 530),
        after=(40, 1, 30),
        gifters={"u-1": (500, 1), "u-2": (30, 1)},
        gifters_after={"u-2": (30, 1)},
        exact=True,
        stream_time_ms=DAY2 + 4 * MIN,
        tier=Tier.HIGH,
        next_day=("2026-01-02", DAY2, DAY2 + 86_400_000),
    )
    assert ledger.finished == [
        part(
            "s-b",
            started_ms=DAY2 - 30 * MIN,
            live_from_ms=DAY2 - 30 * MIN,
            live_to_ms=DAY2,
            likes=300,
            gifts=1,
            coins=500,
            peak_tier=Tier.MODERATE,
            peak_viewers=90,
            gifters=(("u-1", 500, 1),),
            stream_time_ms=DAY2 + 4 * MIN,
        )
    ]
    today = ledger.part(
        *identity,
        session=(400, 3, 560),
        gifters={"u-1": (500, 1), "u-2": (60, 2)},
        exact=True,
        stream_time_ms=DAY2 + 10 * MIN,
        ended=True,
    )
    assert today == part(
        "s-b",
        day="2026-01-02",
        started_ms=DAY2 - 30 * MIN,
        live_from_ms=DAY2,
        live_to_ms=DAY2 + 10 * MIN,
        likes=100,
        gifts=2,
        coins=60,
        peak_tier=Tier.HIGH,
        peak_viewers=120,
        gifters=(("u-2", 60, 2),),
        ended=True,
        stream_time_ms=DAY2 + 10 * MIN,
    )
    # added up by the creator's side, the two days are the session
    days = at(CreatorDays(), DAY2 + 10 * MIN)
    days.apply(ledger.finished[0], DAY2)
    days.apply(today, DAY2 + 86_400_000)
    first, second = days.flush()
    assert (first.likes + second.likes, first.coins + second.coins) == (400, 560)
    assert (first.sessions, second.sessions, first.minutes_live, second.minutes_live) == (
        1,
        0,
        30,
        10,
    )
    assert first.final and not second.final  # the second day is not over yet
