from typing import Any

from processor.core.engine import Engine, EngineConfig
from processor.core.tiers import Tier
from tests.support.events import T0, StreamScript

CONFIG = EngineConfig(
    tier_window_ms=60_000,
    tier_step_ms=10_000,
    moderate=100,
    high=1_000,
    hysteresis=0.1,
    usd_per_coin=0.005,
)


def run(events: list[dict[str, Any]]) -> tuple[Engine, list[Any]]:
    engine = Engine(CONFIG)
    alerts = []
    for event in events:
        alerts.extend(engine.process(event).alerts)
    return engine, alerts


def test_likes_come_from_total_growth_and_cross_moderate() -> None:
    s = StreamScript("s1")
    events = [s.start(T0), s.likes(T0 + 1_000, 15), s.likes(T0 + 2_000, 15, dropped=60)]
    engine, alerts = run(events)
    assert alerts == []
    assert engine.streams["s1"].window.totals.likes == 90
    alerts.extend(engine.process(s.likes(T0 + 3_000, 10)).alerts)
    assert len(alerts) == 1
    record = alerts[0].to_record(emitted_at=123)
    assert record == {
        "v": 1,
        "alert_id": alerts[0].alert_id,
        "type": "tier_changed",
        "stream_id": "s1",
        "creator_id": "creator-1",
        "policy": "window_likes",
        "from_tier": "low",
        "to_tier": "moderate",
        "direction": "up",
        "value": 100,
        "threshold": 100,
        "event_time": T0 + 3_000,
        "emitted_at": 123,
        "window": {
            "start": T0 - 50_000,
            "end": T0 + 10_000,
            "likes": 100,
            "gifts": 0,
            "coins": 0,
            "creator_usd": 0.0,
        },
    }


def test_streak_counts_once_and_usd_is_estimated() -> None:
    s = StreamScript("s1")
    events = [
        s.start(T0),
        *s.combo(T0 + 1, coins=5, steps=4, streak="a"),
        s.gift(T0 + 2, 500, 1, False, True),
        s.likes(T0 + 3, 10, dropped=90),
    ]
    engine, alerts = run(events)
    window = engine.streams["s1"].window.totals
    assert (window.likes, window.gifts, window.coins) == (100, 5, 520)
    assert alerts[0].window.creator_usd == 2.6


def test_window_slide_downgrades_with_hysteresis_and_ids_are_deterministic() -> None:
    s = StreamScript("s1")
    events = [
        s.start(T0),
        s.likes(T0, 10, dropped=990),  # 1000 -> high
        s.likes(T0 + 30_000, 5, dropped=85),  # 1090 in window
        s.likes(T0 + 60_000, 1),  # bucket T0 left: 91 -> below 90? no: 91 >= 90 stays moderate
        s.likes(T0 + 90_000, 1),  # bucket T0+30s left: 2 -> low
    ]
    _, alerts = run(events)
    assert [(a.from_tier, a.to_tier, a.value, a.event_time) for a in alerts] == [
        (Tier.LOW, Tier.HIGH, 1_000, T0),
        (Tier.HIGH, Tier.MODERATE, 91, T0 + 60_000),
        (Tier.MODERATE, Tier.LOW, 2, T0 + 90_000),
    ]
    s2 = StreamScript("s1")
    replay = [
        s2.start(T0),
        s2.likes(T0, 10, dropped=990),
        s2.likes(T0 + 30_000, 5, dropped=85),
        s2.likes(T0 + 60_000, 1),
        s2.likes(T0 + 90_000, 1),
    ]
    _, again = run(replay)
    assert [a.alert_id for a in again] == [a.alert_id for a in alerts]
    assert len({a.alert_id for a in alerts}) == 3


def test_late_event_is_reported_and_not_counted() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    engine.process(s.start(T0 + 100_000))
    outcome = engine.process(s.gift(T0 + 10_000, 30, 1, False, True))
    assert outcome.late
    assert engine.streams["s1"].window.totals.coins == 0


def test_live_end_releases_state_and_tier_counts() -> None:
    a, b = StreamScript("a"), StreamScript("b")
    engine, _ = run([a.start(T0), b.start(T0), b.likes(T0 + 1, 10, dropped=90)])
    assert engine.tier_counts() == {Tier.LOW: 1, Tier.MODERATE: 1, Tier.HIGH: 0}
    engine.process(b.end(T0 + 2))
    assert list(engine.streams) == ["a"]


def test_non_counting_events_produce_nothing() -> None:
    s = StreamScript("s1")
    engine, alerts = run([s.start(T0), s.comment(T0 + 1), s.viewers(T0 + 2, 40)])
    assert alerts == []
    assert engine.streams["s1"].window.totals.likes == 0
