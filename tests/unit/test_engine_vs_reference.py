"""The incremental engine against the brute-force reference on generated scenarios."""

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from processor.core.alerts import WindowClosed
from processor.core.engine import Engine
from tests.support.events import T0, StreamScript, typed
from tests.support.reference import Expected, Params, engine_config, expected_outcome

# Small enough that tiers, spikes and goals all happen within a few dozen events: a
# "minute" of 20 s, a tier window of three minutes, spike floors of a few like events.
PARAMS = Params(
    window_ms=60_000,
    step_ms=10_000,
    tumbling_ms=20_000,
    grace_ms=15_000,
    moderate=50,
    high=200,
    hysteresis=0.2,
    session_moderate=150,
    session_high=600,
    top_users=3,
    top_users_tracked=6,  # >= the user pool: every summary stays exact
    spike_ratio=2.0,
    spike_rearm_ratio=1.2,
    spike_min_likes=40,
    spike_min_coins=30,
    spike_history_ms=20_000,
    like_goals=(100, 120, 400, 1_500),  # 100 and 120 close: one count can cross both
    coin_goals=(50, 60, 150, 600),
)
CONFIG = engine_config(PARAMS)  # test_checkpoint replays these scenarios too
# The same with room for only three of the six users: Space-Saving evicts and inherits.
EVICTING = replace(PARAMS, top_users=2, top_users_tracked=3)
USERS = [f"u{i}" for i in range(6)]

step = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(
        ["like", "like", "like", "stale", "gift", "combo", "comment", "start", "end", "viewers"]
    ),
    st.one_of(  # time jump, may go back: out-of-order and late events; or a burst
        st.integers(-25_000, 70_000), st.integers(0, 5_000)
    ),
    st.integers(1, 15),
    st.integers(0, 40),
    st.sampled_from(USERS),
)
Step = tuple[str, str, int, int, int, str]


def build(steps: list[Step]) -> list[dict[str, Any]]:
    scripts = {name: StreamScript(name) for name in "abc"}
    clock = dict.fromkeys("abc", T0)
    events: list[dict[str, Any]] = []
    for name, kind, jump, count, extra, user in steps:
        s = scripts[name]
        clock[name] = max(T0, clock[name] + jump)
        ts = clock[name]
        if kind == "like":
            events.append(s.likes(ts, count, dropped=extra, user=user))
        elif kind == "stale":  # no growth of total, yet the user is credited its count
            events.append(s.stale_likes(ts, count, behind=extra, user=user))
        elif kind == "gift":
            repeat = 1 + count % 3
            events.append(s.gift(ts, extra + 1, repeat, streakable=False, end=True, user=user))
        elif kind == "combo":
            streak = f"{name}{len(events)}"
            events.extend(s.combo(ts, coins=5, steps=count, streak=streak, user=user))
        elif kind == "comment":
            events.append(s.comment(ts))
        elif kind == "start":
            events.append(s.start(ts))
        elif kind == "viewers":
            events.append(s.viewers(ts, extra * count // 4))  # 0 sometimes, up to 150
        elif extra < 4:  # ends are rarer than other events, so sessions last
            events.append(s.end(ts))
    return events


def run_engine(events: list[dict[str, Any]], params: Params) -> Expected:
    """What the engine publishes, in the shape of the model's prediction."""
    engine = Engine(engine_config(params))
    got = Expected([], [], [], 0, 0, 0, {})
    for e in events:
        outcome = engine.process(typed(e))
        for output in outcome.outputs:
            record = output.to_record(emitted_at=0)
            del record["emitted_at"]
            (got.windows if isinstance(output, WindowClosed) else got.alerts).append(record)
        if outcome.late:
            got.rejected.append((e["event_id"], outcome.late))
    return got


def features(expected: Expected) -> set[str]:
    """Which engagement outputs a scenario exercises (to show the test is not vacuous)."""
    found = {a["type"] for a in expected.alerts}
    fired = Counter((a["stream_id"], a["metric"]) for a in expected.alerts if a["type"] == "spike")
    if fired and max(fired.values()) > 1:
        found.add("rearmed")
    reached = Counter(a["event_time"] for a in expected.alerts if a["type"] == "goal_reached")
    if reached and max(reached.values()) > 1:
        found.add("goals_at_once")
    for a in expected.alerts:
        top = a.get("top")
        if a["type"] == "stream_ended" and top and top["likers"] and top["gifters"]:
            found.add("ended_with_top")
        if top is not None and not top["exact"]:
            found.add("inexact")
        if a.get("likes_per_viewer") is not None:
            found.add("per_viewer")
        if a["type"] == "tier_changed" and a["viewers"] is not None:
            found.add("tier_with_viewers")
    return found


@pytest.mark.parametrize("params", [PARAMS, EVICTING], ids=["exact", "evicting"])
@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=30, max_size=120))
def test_engine_matches_reference(params: Params, steps: list[Step]) -> None:
    events = build(steps)
    expected = expected_outcome(events, params)
    for feature in sorted(features(expected)):
        event(feature)
    got = run_engine(events, params)
    assert got.alerts == expected.alerts
    assert got.windows == expected.windows
    assert got.rejected == expected.rejected


def test_generated_scenarios_exercise_spikes_goals_and_top_users() -> None:
    """A good share of the generated scenarios has spikes, goals and top users to compare."""
    seen: Counter[str] = Counter()

    @settings(max_examples=200, derandomize=True, database=None, phases=[Phase.generate])
    @given(st.lists(step, min_size=30, max_size=120))
    def sample(steps: list[Step]) -> None:
        seen["scenarios"] += 1
        seen.update(features(expected_outcome(build(steps), EVICTING)))

    sample()
    share = {k: v / seen["scenarios"] for k, v in seen.items()}
    for feature in ["spike", "goal_reached", "inexact", "tier_with_viewers"]:
        assert share.get(feature, 0) >= 0.5, (feature, share)
    for feature in ["ended_with_top", "per_viewer", "rearmed", "goals_at_once"]:
        assert share.get(feature, 0) >= 0.15, (feature, share)


def test_spike_goal_and_eviction_scenario() -> None:
    """A hand-worked stream: spikes, a re-arm, goals, tiers and an evicting session top.

    The numbers below were worked out by hand from the spec, so the model itself is checked
    here before the engine is compared with it.
    """
    s = StreamScript("solo")
    events = [
        s.start(T0),
        s.viewers(T0, 10),
        s.likes(T0 + 1_000, 5, user="u0"),  # minute 0: no history yet, nothing evaluated
        s.likes(T0 + 6_000, 5, user="u1"),
        s.likes(T0 + 21_000, 5, user="u2"),  # minute 1: baseline 10/min, threshold 40
        s.likes(T0 + 26_000, 5, user="u3"),
        s.viewers(T0 + 40_000, 30),
        s.likes(T0 + 41_000, 15, dropped=85, user="u5"),  # minute 2: 100 likes, spike
        s.gift(T0 + 42_000, 60, 1, streakable=False, end=True, user="u2"),  # coins spike
        s.likes(T0 + 61_000, 10, user="u0"),  # minute 3: minute 2 was not calm: disarmed
        s.likes(T0 + 81_000, 15, dropped=85, user="u1"),  # minute 4: 3 calm, re-armed
        s.end(T0 + 90_000),
    ]
    expected = expected_outcome(events, EVICTING)
    summary = [
        (a["type"], a.get("policy") or a.get("metric"), a.get("to_tier") or a.get("goal"))
        for a in expected.alerts
    ]
    assert summary == [
        ("tier_changed", "window_likes", "moderate"),
        ("spike", "likes", None),
        ("goal_reached", "likes", 100),
        ("goal_reached", "likes", 120),  # 20 -> 120 crosses both
        ("spike", "coins", None),
        ("goal_reached", "coins", 50),
        ("goal_reached", "coins", 60),
        ("tier_changed", "window_likes", "high"),
        ("tier_changed", "session_likes", "moderate"),
        ("spike", "likes", None),
        ("stream_ended", None, None),
    ]
    spikes = [a for a in expected.alerts if a["type"] == "spike"]
    numbers = ["value", "baseline", "baseline_minutes", "ratio", "threshold", "event_time"]
    assert [[a[k] for k in numbers] for a in spikes] == [
        [100, 10.0, 0.67, 10.0, 40, T0 + 41_000],
        [60, 0.0, 0.67, None, 30, T0 + 42_000],
        [100, 44.0, 0.83, 2.27, 88.0, T0 + 81_000],
    ]
    assert spikes[1]["top"] == {
        "start": T0 + 40_000,
        "end": T0 + 60_000,
        "exact": True,
        "gifters": [{"user_id": "u2", "coins": 60, "gifts": 1}],
        "likers": [{"user_id": "u5", "likes": 15}],  # the event's count, not the growth
    }
    assert spikes[0]["viewers"] == {"current": 30, "peak": 30, "average": 20.0}
    high = expected.alerts[7]
    assert high["top"] == {  # panes 20 s..80 s of the window [30 s, 90 s)
        "start": T0 + 20_000,
        "end": T0 + 90_000,
        "exact": True,
        "gifters": [{"user_id": "u2", "coins": 60, "gifts": 1}],
        "likers": [{"user_id": "u1", "likes": 15}, {"user_id": "u5", "likes": 15}],
    }
    ended = expected.alerts[-1]
    assert ended["top"] == {  # u0 u1 u2 u3 u5 u0 u1 through three slots
        "start": T0,
        "end": T0 + 90_000,
        "exact": False,
        "gifters": [{"user_id": "u2", "coins": 60, "gifts": 1}],
        "likers": [{"user_id": "u1", "likes": 25}, {"user_id": "u5", "likes": 20}],
    }
    assert ended["viewers"] == {"current": 30, "peak": 30, "average": 20.0}
    assert (ended["likes_per_viewer"], ended["coins_per_viewer"]) == (11.5, 3.0)
    got = run_engine(events, EVICTING)
    assert got.alerts == expected.alerts
    assert got.windows == expected.windows


def test_the_minute_after_a_spike_stays_quiet_without_a_calm_minute_between() -> None:
    """Minute 9 spikes at 80. Minute 10 reaches 255 >= 220, but re-arming needs a calm
    minute after the one that fired and before this one: there is none (the spike's own
    minute never counts, however it ends), so minute 10 publishes nothing."""
    params = replace(PARAMS, spike_rearm_ratio=1.5, like_goals=(), coin_goals=())
    s = StreamScript("rearm")
    events = [
        s.start(T0),
        s.comment(T0 + 181_000),  # stream time enters minute 9 (M = 20 s)
        s.likes(T0 + 175_000, 10, dropped=90),  # 100 likes in minute 8, reordered
        s.likes(T0 + 182_000, 10, dropped=70),  # 80 >= max(40, 2 * 40): spike, disarmed
        s.likes(T0 + 185_000, 10, dropped=30),  # minute 9 ends at 120
        s.likes(T0 + 201_000, 5),  # minute 10, first evaluation: the re-arm check
        s.likes(T0 + 211_000, 15, dropped=235),  # 255 >= 220, but still disarmed
    ]
    expected = expected_outcome(events, params)
    spikes = [(a["value"], a["event_time"]) for a in expected.alerts if a["type"] == "spike"]
    assert spikes == [(80, T0 + 182_000)]
    assert run_engine(events, params).alerts == expected.alerts


def test_a_calm_minute_below_the_floor_rearms() -> None:
    """Minute 1 spikes. Minutes 2 and 3 stay below the floor while they are current, so
    nothing is evaluated in them (minute 3 reaches 45 only with late likes). Minute 4's 50
    likes evaluate: the re-arm check looks at every minute since the spike, finds minute 2
    calm (5 < 40) and re-arms, and 50 >= max(40, 2 * 20) spikes. Checking only the minute
    just before (minute 3, not calm with its late likes) would miss it."""
    params = replace(PARAMS, like_goals=(), coin_goals=())
    s = StreamScript("calm")
    events = [
        s.start(T0),
        s.likes(T0 + 1_000, 10),  # minute 0: no history
        s.likes(T0 + 21_000, 15, dropped=45),  # minute 1: 60 >= 40, spike
        s.likes(T0 + 41_000, 5),  # minute 2: below the floor, nothing evaluated
        s.likes(T0 + 61_000, 5),  # minute 3: likewise
        s.comment(T0 + 81_000),
        s.likes(T0 + 75_000, 15, dropped=25),  # 40 more in minute 3, late: not evaluated
        s.likes(T0 + 82_000, 15, dropped=35),  # minute 4: 50 >= max(40, 2 * 20): spike
    ]
    expected = expected_outcome(events, params)
    spikes = [(a["value"], a["event_time"]) for a in expected.alerts if a["type"] == "spike"]
    assert spikes == [(60, T0 + 21_000), (50, T0 + 82_000)]
    assert run_engine(events, params).alerts == expected.alerts


def test_no_required_history_does_not_divide_by_zero() -> None:
    """spike_history_seconds = 0 is a valid setting; a stream that starts on a minute's
    first bucket then has span 0 in its first minute: no baseline yet, so baseline 0, the
    threshold is the floor and the ratio null (the README's rule)."""
    params = replace(PARAMS, spike_history_ms=0)
    s = StreamScript("eager")
    events = [s.start(T0), s.likes(T0 + 1_000, 15, dropped=40)]
    expected = expected_outcome(events, params)
    spikes = [a for a in expected.alerts if a["type"] == "spike"]
    assert [(a["value"], a["baseline"], a["ratio"], a["threshold"]) for a in spikes] == [
        (55, 0.0, None, 40)
    ]
    assert run_engine(events, params).alerts == expected.alerts
