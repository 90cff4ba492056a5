"""A session across midnight, split into its calendar days by event time. The scenario is
worked out by hand below: CONFIG's tier window is 60 s in 10 s steps, grace 10 s,
moderate from 100 window likes; days are UTC."""

from __future__ import annotations

from typing import Any

from processor.core import checkpoint
from processor.core.alerts import TierChanged
from processor.core.creators import StreamDay
from processor.core.engine import Engine
from processor.core.tiers import Tier
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_engine import CONFIG

M = T0 + 86_400_000  # 2026-01-02T00:00:00Z
S = 1_000


def run(engine: Engine, events: list[dict[str, Any]]) -> None:
    for event in events:
        engine.process(typed(event))


def before_and_after_midnight() -> tuple[StreamScript, list[dict[str, Any]]]:
    s = StreamScript("s-1", creator_id="c-1")
    gift = {"gift_id": 1, "gift_name": "g", "repeat_count": 1, "streakable": False}
    return s, [
        s.start(M - 90 * S),
        s.likes(M - 80 * S, 10, dropped=40),  # 50 likes, day 1
        s.viewers(M - 20 * S, 50),
        s.gift(M - 30 * S, 500, 1, False, True, user="u-1") | gift,  # 500 coins, day 1
        s.likes(M - 5 * S, 10, dropped=50),  # 60 likes, day 1
        s.likes(M + 3 * S, 15, dropped=85),  # 100 likes, day 2: 160 in the window: moderate
        s.viewers(M + 4 * S, 70),
        s.gift(M + 5 * S, 30, 1, False, True, user="u-2") | gift,  # 30 coins, day 2
    ]


def part(day: str, **fields: Any) -> StreamDay:
    values: dict[str, Any] = {
        "creator_id": "c-1",
        "day": day,
        "stream_id": "s-1",
        "started_ms": M - 90 * S,
        "exact": True,
        "ended": False,
    }
    return StreamDay(**(values | fields))


DAY1_SO_FAR = part(
    "2026-01-01",
    live_from_ms=M - 90 * S,
    live_to_ms=M,
    likes=110,
    gifts=1,
    coins=500,
    peak_tier=Tier.LOW,
    peak_viewers=50,
    gifters=(("u-1", 500, 1),),
    stream_time_ms=M + 5 * S,
)
DAY2_SO_FAR = part(
    "2026-01-02",
    live_from_ms=M,
    live_to_ms=M + 5 * S,
    likes=100,
    gifts=1,
    coins=30,
    peak_tier=Tier.MODERATE,
    peak_viewers=70,
    gifters=(("u-2", 30, 1),),
    stream_time_ms=M + 5 * S,
)


def test_within_midnights_grace_the_parts_say_where_each_count_went_so_far() -> None:
    engine = Engine(CONFIG)
    run(engine, before_and_after_midnight()[1])
    state = engine.streams["s-1"]
    assert engine.day_parts(state) == [DAY1_SO_FAR, DAY2_SO_FAR]
    assert state.ledger is not None and state.ledger.finished == []  # nothing closed yet
    assert engine.day_parts(state) == [DAY1_SO_FAR, DAY2_SO_FAR]  # and asking changes nothing


def test_a_late_like_of_the_old_day_counts_there_and_the_grace_over_closes_it() -> None:
    engine = Engine(CONFIG)
    s, events = before_and_after_midnight()
    late = s.likes(M - 2 * S, 5)  # 5 likes at 23:59:58, within the grace
    run(engine, [*events, late, s.comment(M + 12 * S)])
    assert engine.moved == {"s-1"}
    parts = engine.day_parts(engine.streams["s-1"])
    assert parts == [
        part(
            "2026-01-01",
            live_from_ms=M - 90 * S,
            live_to_ms=M,
            likes=115,
            gifts=1,
            coins=500,
            peak_tier=Tier.LOW,
            peak_viewers=50,
            gifters=(("u-1", 500, 1),),
            stream_time_ms=M + 10 * S,  # as of the end of midnight's grace
        ),
        part(
            "2026-01-02",
            live_from_ms=M,
            live_to_ms=M + 12 * S,
            likes=100,
            gifts=1,
            coins=30,
            peak_tier=Tier.MODERATE,
            peak_viewers=70,
            gifters=(("u-2", 30, 1),),
            stream_time_ms=M + 12 * S,
        ),
    ]
    assert engine.day_parts(engine.streams["s-1"]) == parts[1:]  # the closed day: once


def test_a_stream_ending_within_the_grace_hands_out_both_days_as_ended() -> None:
    engine = Engine(CONFIG)
    s, events = before_and_after_midnight()
    run(engine, [*events, s.end(M + 6 * S)])
    day1, day2 = engine.ended_parts
    assert (day1.day, day1.likes, day1.coins, day1.ended) == ("2026-01-01", 110, 500, True)
    assert (day2.day, day2.likes, day2.coins, day2.ended) == ("2026-01-02", 100, 30, True)


def test_a_session_within_one_day_is_one_part_of_its_session_figures() -> None:
    engine = Engine(CONFIG)
    _, events = before_and_after_midnight()
    run(engine, events[:5])  # up to 23:59:55
    (only,) = engine.day_parts(engine.streams["s-1"])
    assert (only.day, only.likes, only.coins, only.live_to_ms) == (
        "2026-01-01",
        110,
        500,
        M - 5 * S,
    )
    assert engine.streams["s-1"].ledger is None  # no ledger before a midnight


def test_the_day_ledger_comes_back_from_a_checkpoint() -> None:
    engine = Engine(CONFIG)
    s, events = before_and_after_midnight()
    run(engine, [*events, s.comment(M + 12 * S)])
    restored = checkpoint.restore(checkpoint.changes(engine, 9), CONFIG, 0).engine
    assert restored.streams == engine.streams
    assert restored.day_parts(restored.streams["s-1"]) == engine.day_parts(engine.streams["s-1"])


def tier_changes(engine: Engine, events: list[dict[str, Any]]) -> list[tuple[Tier, Tier, int]]:
    return [
        (output.from_tier, output.to_tier, output.event_time)
        for event in events
        for output in engine.process(typed(event)).outputs
        if isinstance(output, TierChanged)
    ]


def test_a_tier_left_at_midnight_itself_was_the_old_days_not_the_new_days() -> None:
    """150 likes at 23:59:00 make the stream moderate; their bucket leaves the 60 s window
    at stream time 00:00:00 exactly, so the stream is low from midnight on: the new day
    never saw it moderate (midnight belongs to the new day, as a count at 00:00:00 would)."""
    engine = Engine(CONFIG)
    s = StreamScript("s-1", creator_id="c-1")
    events = [s.start(M - 70 * S), s.likes(M - 60 * S, 15, dropped=135), s.end(M + 40 * S)]
    changes = tier_changes(engine, events)
    assert changes == [(Tier.LOW, Tier.MODERATE, M - 60 * S), (Tier.MODERATE, Tier.LOW, M)]
    day1, day2 = engine.ended_parts
    assert (day1.day, day1.peak_tier) == ("2026-01-01", Tier.MODERATE)
    assert (day2.day, day2.live_from_ms, day2.peak_tier) == ("2026-01-02", M, Tier.LOW)


def test_a_tier_left_before_midnight_while_the_stream_was_silent_was_the_old_days() -> None:
    """150 likes at 23:58:55 (bucket 23:58:50) make the stream moderate; it is silent until
    00:00:40, past midnight's grace, so its window slides only then, but that bucket left it
    at 23:59:50: the stream was low all the new day, though the old day closes (at 00:00:10)
    before the window slides on to 00:00:40."""
    engine = Engine(CONFIG)
    s = StreamScript("s-1", creator_id="c-1")
    events = [s.start(M - 70 * S), s.likes(M - 65 * S, 15, dropped=135), s.end(M + 40 * S)]
    changes = tier_changes(engine, events)
    assert changes == [(Tier.LOW, Tier.MODERATE, M - 65 * S), (Tier.MODERATE, Tier.LOW, M - 10 * S)]
    day1, day2 = engine.ended_parts
    assert (day1.day, day1.peak_tier) == ("2026-01-01", Tier.MODERATE)
    assert (day2.day, day2.live_from_ms, day2.peak_tier) == ("2026-01-02", M, Tier.LOW)
