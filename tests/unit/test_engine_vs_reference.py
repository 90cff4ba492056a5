"""The incremental engine against the brute-force reference on generated scenarios."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.alerts import WindowClosed
from processor.core.engine import Engine
from tests.support.events import T0, StreamScript, typed
from tests.support.reference import Params, engine_config, expected_outcome

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
)
CONFIG = engine_config(PARAMS)

step = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["like", "like", "like", "gift", "combo", "comment", "start", "end"]),
    st.integers(-25_000, 70_000),  # time jump, may go back: out-of-order and late events
    st.integers(1, 15),
    st.integers(0, 40),
)


def build(steps: list[tuple[str, str, int, int, int]]) -> list[dict[str, Any]]:
    scripts = {name: StreamScript(name) for name in "abc"}
    clock = dict.fromkeys("abc", T0)
    events: list[dict[str, Any]] = []
    for name, kind, jump, count, extra in steps:
        s = scripts[name]
        clock[name] = max(T0, clock[name] + jump)
        ts = clock[name]
        if kind == "like":
            events.append(s.likes(ts, count, dropped=extra))
        elif kind == "gift":
            events.append(s.gift(ts, extra + 1, 1, streakable=False, end=True))
        elif kind == "combo":
            events.extend(s.combo(ts, coins=5, steps=count, streak=f"{name}{len(events)}"))
        elif kind == "comment":
            events.append(s.comment(ts))
        elif kind == "start":
            events.append(s.start(ts))
        elif extra < 4:  # ends are rarer than other events, so sessions last
            events.append(s.end(ts))
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=30, max_size=120))
def test_engine_matches_reference(steps: list[tuple[str, str, int, int, int]]) -> None:
    events = build(steps)
    engine = Engine(CONFIG)
    alerts, windows, rejected = [], [], []
    for event in events:
        outcome = engine.process(typed(event))
        for output in outcome.outputs:
            record = output.to_record(emitted_at=0)
            del record["emitted_at"]
            (windows if isinstance(output, WindowClosed) else alerts).append(record)
        if outcome.late:
            rejected.append((event["event_id"], outcome.late))
    expected = expected_outcome(events, PARAMS)
    assert alerts == expected.alerts
    assert windows == expected.windows
    assert rejected == expected.rejected
