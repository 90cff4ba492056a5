"""Spikes, top users, viewers and goals: hand-worked scenarios against the engine."""

import json
from typing import Any

from jsonschema import Draft7Validator

from processor.contract import ALERT_SCHEMA
from processor.core import checkpoint
from processor.core.alerts import GoalReached, Liker, Spike, StreamEnded, WindowClosed
from processor.core.engine import ARMED, Engine, EngineConfig
from tests.support.events import T0, StreamScript, typed

# a 20 s "minute", so a spike scenario fits in a few of them
CONFIG = EngineConfig(
    tier_window_ms=60_000,
    tier_step_ms=10_000,
    tumbling_ms=20_000,
    grace_ms=10_000,
    moderate=10_000,
    high=100_000,
    session_moderate=10_000,
    session_high=100_000,
    spike_ratio=2.0,
    spike_rearm_ratio=1.0,
    spike_min_likes=10,
    spike_min_coins=10,
    spike_history_ms=20_000,
)
VALIDATOR = Draft7Validator(json.loads(ALERT_SCHEMA.read_text()))


def by(user: str, event: dict[str, Any]) -> dict[str, Any]:
    return event | {"user_id": user}


def gift(s: StreamScript, ts: int, user: str, coins: int) -> dict[str, Any]:
    return by(user, s.gift(ts, coins, 1, streakable=False, end=True))


def alerts(engine: Engine, events: list[dict[str, Any]]) -> list[Any]:
    found = []
    for event in events:
        for output in engine.process(typed(event)).outputs:
            if not isinstance(output, WindowClosed):
                VALIDATOR.validate(output.to_record(0))
                found.append(output)
    return found


def test_a_coin_spike_fires_once_per_minute_and_rearms_after_a_calm_minute() -> None:
    """Minutes of 20 s; baseline = coins in the window before the minute, per minute.

    | minute (s) | coins                 | window before it | span  | baseline | threshold | alert |
    | 0-20       | 5 (a)                 |                  | 0     |          |           | no history |
    | 20-40      | 5 (b)                 | 5                | 20 s  | 5.0      | 10        | 5 < floor |
    | 40-60      | 6 (c), 4 (a), 20 (a)  | 10               | 40 s  | 5.0      | 10        | at 6+4 = 10 |
    | 60-80      | 12 (b)                | 40               | 60 s  | 13.33    |           | disarmed: 40-60 (30) not calm |
    | 80-100     | -                     |                  |       |          |           |  |
    | 100-120    | 50 (d)                | 12 (window from 50 s) | 50 s | 4.8 | 10      | 80-100 (0) calm: fires |
    """
    s = StreamScript("s")
    engine = Engine(CONFIG)
    assert alerts(engine, [s.start(T0), gift(s, T0 + 1_000, "a", 5)]) == []
    assert alerts(engine, [gift(s, T0 + 21_000, "b", 5), gift(s, T0 + 41_000, "c", 6)]) == []
    (spike,) = alerts(engine, [gift(s, T0 + 42_000, "a", 4)])
    assert isinstance(spike, Spike)
    assert spike.to_record(7) == {
        "v": 1,
        "alert_id": spike.alert_id,
        "type": "spike",
        "stream_id": "s",
        "creator_id": "creator-1",
        "metric": "coins",
        "value": 10,
        "baseline": 5.0,
        "baseline_minutes": 0.67,
        "ratio": 2.0,
        "threshold": 10.0,
        "minute": {"start": T0 + 40_000, "end": T0 + 60_000},
        "event_time": T0 + 42_000,
        "emitted_at": 7,
        "top": {
            "start": T0 + 40_000,
            "end": T0 + 60_000,
            "exact": True,
            "gifters": [
                {"user_id": "c", "coins": 6, "gifts": 1},
                {"user_id": "a", "coins": 4, "gifts": 1},
            ],
            "likers": [],
        },
        "viewers": None,
    }
    assert alerts(engine, [gift(s, T0 + 45_000, "a", 20)]) == []  # once per minute
    assert alerts(engine, [gift(s, T0 + 61_000, "b", 12)]) == []  # still hot before
    assert engine.streams["s"].coins_spike == T0 + 60_000
    (again,) = alerts(engine, [gift(s, T0 + 101_000, "d", 50)])
    assert isinstance(again, Spike)
    assert (again.value, again.baseline, again.ratio, again.threshold) == (50, 4.8, 10.42, 10.0)
    assert again.baseline_minutes == 0.83 and again.minute.start == T0 + 100_000
    assert again.alert_id != spike.alert_id


def test_no_spike_below_the_floor_without_history_or_in_an_earlier_minute() -> None:
    s = StreamScript("s")
    engine = Engine(CONFIG)
    # a big first minute: no history yet
    assert alerts(engine, [s.start(T0), gift(s, T0 + 1_000, "a", 500)]) == []
    # 9 coins after 20 s of nothing but history: under the floor of 10
    quiet = Engine(CONFIG)
    events = [s.start(T0), gift(s, T0 + 1_000, "a", 1), gift(s, T0 + 41_000, "a", 9)]
    assert alerts(quiet, events) == []
    # a late gift of the previous minute does not make the current one spike
    late = Engine(CONFIG)
    events = [s.start(T0), gift(s, T0 + 1_000, "a", 1), s.comment(T0 + 42_000)]
    assert alerts(late, [*events, gift(s, T0 + 39_000, "a", 100)]) == []
    assert late.streams["s"].coins_spike == ARMED


def test_a_likes_spike_names_the_minute_s_likers() -> None:
    s = StreamScript("s")
    engine = Engine(CONFIG)
    history = [s.start(T0), by("a", s.likes(T0 + 1_000, 2)), by("b", s.likes(T0 + 25_000, 2))]
    assert alerts(engine, history) == []
    surge = [by("a", s.likes(T0 + 41_000, 5)), by("c", s.likes(T0 + 42_000, 3, dropped=4))]
    (spike,) = alerts(engine, surge)
    # likes are the growth of the room total (5 + 7 = 12); likers their own counts (5, 3)
    assert isinstance(spike, Spike) and spike.metric == "likes"
    assert (spike.value, spike.baseline, spike.threshold) == (12, 2.0, 10.0)
    assert spike.top.likers == (Liker("a", 5), Liker("c", 3))


def test_stream_ended_carries_session_top_users_and_viewer_figures() -> None:
    s = StreamScript("s")
    engine = Engine(CONFIG)
    events = [
        s.start(T0),
        s.viewers(T0 + 1_000, 10),
        s.viewers(T0 + 5_000, 30),
        s.viewers(T0 + 3_000, 20),  # older than the latest: not current, still in the mean
        by("a", s.likes(T0 + 6_000, 15)),
        by("b", s.likes(T0 + 7_000, 5, dropped=10)),
        *(by("b", e) for e in s.combo(T0 + 8_000, coins=5, steps=3, streak="k")),
        gift(s, T0 + 9_000, "c", 1),
        s.end(T0 + 10_000),
    ]
    *_, ended = alerts(engine, events)
    assert isinstance(ended, StreamEnded)
    record = ended.to_record(0)
    assert record["session"]["likes"] == 30 and record["session"]["coins"] == 16
    assert record["viewers"] == {"current": 30, "peak": 30, "average": 20.0}
    assert (record["likes_per_viewer"], record["coins_per_viewer"]) == (1.5, 0.8)
    assert record["top"] == {
        "start": T0,
        "end": T0 + 10_000,
        "exact": True,
        "gifters": [
            {"user_id": "b", "coins": 15, "gifts": 3},
            {"user_id": "c", "coins": 1, "gifts": 1},
        ],
        "likers": [{"user_id": "a", "likes": 15}, {"user_id": "b", "likes": 5}],
    }


def test_goals_fire_once_each_in_ascending_order() -> None:
    config = EngineConfig(like_goals=(100, 200, 1_000), coin_goals=(50,))
    s = StreamScript("s")
    engine = Engine(config)
    events = [s.start(T0), s.viewers(T0, 7), s.likes(T0 + 1, 10, dropped=80)]
    assert alerts(engine, events) == []
    reached = alerts(engine, [s.likes(T0 + 2, 10, dropped=150), gift(s, T0 + 3, "a", 60)])
    assert [(g.metric, g.goal, g.value) for g in reached if isinstance(g, GoalReached)] == [
        ("likes", 100, 250),
        ("likes", 200, 250),
        ("coins", 50, 60),
    ]
    assert alerts(engine, [s.likes(T0 + 4, 10), gift(s, T0 + 5, "a", 60)]) == []
    assert reached[0].to_record(0)["viewers"] == {"current": 7, "peak": 7, "average": 7.0}


def test_everything_new_comes_back_from_a_checkpoint() -> None:
    s = StreamScript("s")
    engine = Engine(CONFIG)
    events = [
        s.start(T0),
        s.viewers(T0 + 1_000, 12),
        gift(s, T0 + 1_000, "a", 5),
        by("b", s.likes(T0 + 2_000, 3)),
        gift(s, T0 + 21_000, "b", 5),
        gift(s, T0 + 41_000, "c", 10),  # a spike: the detector is disarmed
    ]
    assert len(alerts(engine, events)) == 1
    restored = checkpoint.restore(checkpoint.changes(engine, 5), CONFIG, 0).engine
    assert restored.streams == engine.streams
    rest = [gift(s, T0 + 45_000, "a", 99), s.viewers(T0 + 50_000, 3), s.end(T0 + 70_000)]
    assert [a.to_record(0) for a in alerts(restored, rest)] == [
        a.to_record(0) for a in alerts(engine, rest)
    ]
