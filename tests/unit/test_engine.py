from typing import Any

from processor.core.alerts import StreamEnded, TierChanged, WindowClosed
from processor.core.engine import Engine, EngineConfig
from processor.core.tiers import Tier
from tests.support.events import T0, StreamScript, typed

CONFIG = EngineConfig(
    tier_window_ms=60_000,
    tier_step_ms=10_000,
    tumbling_ms=60_000,
    grace_ms=10_000,
    moderate=100,
    high=1_000,
    hysteresis=0.1,
    session_moderate=500,
    session_high=5_000,
    inactivity_ms=300_000,
    usd_per_coin=0.005,
)


def run(engine: Engine, events: list[dict[str, Any]], wall: int = 0) -> list[Any]:
    outputs = []
    for event in events:
        outputs.extend(engine.process(typed(event), wall).outputs)
    return outputs


def tier_changes(outputs: list[Any], policy: str = "window_likes") -> list[TierChanged]:
    return [o for o in outputs if isinstance(o, TierChanged) and o.policy == policy]


def test_likes_come_from_total_growth_and_cross_moderate() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    events = [s.start(T0), s.likes(T0 + 1_000, 15), s.likes(T0 + 2_000, 15, dropped=60)]
    assert run(engine, events) == []
    assert engine.streams["s1"].window.totals.likes == 90
    (alert,) = run(engine, [s.likes(T0 + 3_000, 10)])
    assert alert.to_record(emitted_at=123) == {
        "v": 1,
        "alert_id": alert.alert_id,
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
        # likes sent by each user are their events' counts (15 + 15 + 10), not the growth
        "top": {
            "start": T0 - 60_000,
            "end": T0 + 10_000,
            "exact": True,
            "gifters": [],
            "likers": [{"user_id": "u-1", "likes": 40}],
        },
        "viewers": None,
    }


def test_streak_counts_once_and_usd_is_estimated() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    outputs = run(
        engine,
        [
            s.start(T0),
            *s.combo(T0 + 1, coins=5, steps=4, streak="a"),
            s.gift(T0 + 2, 500, 1, False, True),
            s.likes(T0 + 3, 10, dropped=90),
        ],
    )
    window = engine.streams["s1"].window.totals
    assert (window.likes, window.gifts, window.coins) == (100, 5, 520)
    assert tier_changes(outputs)[0].window.creator_usd == 2.6


def test_tier_decays_at_the_exact_bucket_expiry_with_hysteresis() -> None:
    s = StreamScript("s1")
    events = [
        s.start(T0),
        s.likes(T0, 10, dropped=990),  # 1000 -> high
        s.likes(T0 + 30_000, 5, dropped=85),  # 1090 in window
        # at T0+60s bucket T0 leaves: 90 >= 90 stays moderate, this like makes 91
        s.likes(T0 + 60_000, 1),
        # the jump passes T0+90s where bucket T0+30s leaves: 1 -> low, there, not at +95s
        s.likes(T0 + 95_000, 1),
    ]
    outputs = run(Engine(CONFIG), events)
    assert [(a.from_tier, a.to_tier, a.value, a.event_time) for a in tier_changes(outputs)] == [
        (Tier.LOW, Tier.HIGH, 1_000, T0),
        (Tier.HIGH, Tier.MODERATE, 90, T0 + 60_000),
        (Tier.MODERATE, Tier.LOW, 1, T0 + 90_000),
    ]
    again = run(Engine(CONFIG), events)
    assert [o.alert_id for o in again if isinstance(o, TierChanged)] == [
        o.alert_id for o in outputs if isinstance(o, TierChanged)
    ]


def test_out_of_order_within_grace_counts_and_later_is_late() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    run(engine, [s.start(T0 + 100_000)])
    assert engine.process(typed(s.gift(T0 + 90_000, 30, 1, False, True))).late is None
    assert engine.process(typed(s.gift(T0 + 89_999, 30, 1, False, True))).late == "late"
    assert engine.streams["s1"].window.totals.coins == 30


def test_session_policy_goes_up_only_and_windows_close_after_grace() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    outputs = run(engine, [s.start(T0), s.likes(T0 + 1_000, 10, dropped=490)])
    assert [(a.from_tier, a.to_tier) for a in tier_changes(outputs, "session_likes")] == [
        (Tier.LOW, Tier.MODERATE)
    ]
    # window [T0, T0+60s) closes when stream time reaches T0+70s
    outputs = run(engine, [s.comment(T0 + 69_999)])
    assert [o for o in outputs if isinstance(o, WindowClosed)] == []
    outputs = run(engine, [s.comment(T0 + 70_000)])
    assert [o.window.likes for o in outputs if isinstance(o, WindowClosed)] == [500]
    assert tier_changes(outputs, "session_likes") == []


def test_live_end_reports_the_session_and_releases_state() -> None:
    a, b = StreamScript("a"), StreamScript("b")
    engine = Engine(CONFIG)
    run(
        engine,
        [
            a.start(T0),
            b.start(T0),
            b.likes(T0 + 1, 10, dropped=90),
            *b.combo(T0 + 2, coins=1, steps=3, streak="r"),
        ],
    )
    assert engine.tier_counts() == {Tier.LOW: 1, Tier.MODERATE: 1, Tier.HIGH: 0}
    outputs = run(engine, [b.end(T0 + 30_000)])
    window, ended = outputs
    assert isinstance(window, WindowClosed) and window.window.likes == 100
    assert isinstance(ended, StreamEnded)
    assert ended.to_record(0) | {"alert_id": ""} == {
        "v": 1,
        "alert_id": "",
        "type": "stream_ended",
        "stream_id": "b",
        "creator_id": "creator-1",
        "reason": "ended",
        "started_at": T0,
        "event_time": T0 + 30_000,
        "duration_ms": 30_000,
        "emitted_at": 0,
        "session": {"likes": 100, "gifts": 3, "coins": 3, "creator_usd": 0.015},
        "peak_tier": "moderate",
        "final_tier": "moderate",
        "top": {
            "start": T0,
            "end": T0 + 30_000,
            "exact": True,
            "gifters": [{"user_id": "u-1", "coins": 3, "gifts": 3}],
            "likers": [{"user_id": "u-1", "likes": 10}],
        },
        "viewers": None,
        "likes_per_viewer": None,
        "coins_per_viewer": None,
    }
    assert list(engine.streams) == ["a"]
    assert engine.process(typed(b.likes(T0 + 31_000, 5))).late == "after_end"


def test_idle_stream_decays_and_ends_on_the_wall_clock() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    wall = 5_000_000
    run(engine, [s.start(T0), s.likes(T0 + 1_000, 10, dropped=490)], wall)
    assert engine.tick(wall + 58_999) == []
    (decay,) = engine.tick(wall + 59_000)  # stream time T0+60s: bucket T0 leaves
    assert isinstance(decay, TierChanged)
    assert (decay.to_tier, decay.value, decay.event_time) == (Tier.LOW, 0, T0 + 60_000)
    outputs = engine.tick(wall + 1_000_000)
    assert [type(o) for o in outputs] == [WindowClosed, StreamEnded]
    ended = outputs[1]
    assert isinstance(ended, StreamEnded)
    assert (ended.reason, ended.event_time, ended.peak_tier) == (
        "inactive",
        T0 + 1_000 + 300_000,
        Tier.MODERATE,
    )
    assert engine.streams == {}


def test_non_counting_events_produce_nothing() -> None:
    s = StreamScript("s1")
    engine = Engine(CONFIG)
    assert run(engine, [s.start(T0), s.comment(T0 + 1), s.viewers(T0 + 2, 40)]) == []
    assert engine.streams["s1"].window.totals.likes == 0
