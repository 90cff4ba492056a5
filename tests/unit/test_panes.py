"""Closed minutes of top users are sealed into bytes, unsealed only when an alert needs them."""

from __future__ import annotations

import pytest

from processor.core import panes
from processor.core.contributors import Summary
from processor.core.engine import Engine
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_engine import CONFIG  # 60 s tier window, 60 s minutes, 10 s grace

MINUTE = 60_000


def summary(likers: dict[str, int], gifters: dict[str, tuple[int, int]], exact: bool) -> Summary:
    return Summary.restore(exact, dict(likers), dict(gifters), T0)


@pytest.mark.parametrize(
    ("likers", "gifters", "exact"),
    [
        ({}, {}, True),
        ({"ann": 15}, {}, True),
        ({}, {"bob": (44_999, 1)}, True),
        ({"ann": 3, "bob": 2**40}, {"cy": (2**33, 7), "ann": (1, 1)}, False),
    ],
)
def test_a_sealed_minute_unseals_to_the_same_summary(
    likers: dict[str, int], gifters: dict[str, tuple[int, int]], exact: bool
) -> None:
    sealed = panes.seal(T0, summary(likers, gifters, exact))
    assert panes.start_of(sealed) == T0
    assert panes.unseal(sealed) == (T0, summary(likers, gifters, exact))


def test_a_minute_is_sealed_once_its_events_would_be_late_and_dropped_once_out_of_the_window() -> (
    None
):
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    for event in (s.start(T0), s.likes(T0 + 1_000, 5, user="ann")):
        engine.process(typed(event))
    state = engine.streams["s1"]
    assert [pane.start for pane in state.panes or ()] == [T0] and state.sealed is None
    engine.process(typed(s.likes(T0 + MINUTE + 9_999, 1, user="bob")))  # within the grace
    assert [pane.start for pane in state.panes or ()] == [T0, T0 + MINUTE] and state.sealed is None
    engine.process(typed(s.likes(T0 + MINUTE + 10_000, 1, user="bob")))  # minute T0 closes
    assert [pane.start for pane in state.panes or ()] == [T0 + MINUTE]
    assert [panes.unseal(data)[0] for data in panes.minutes_of(state.sealed)] == [T0]
    assert engine.process(typed(s.likes(T0 + 59_000, 1))).late == "late"  # as sealing assumed
    engine.process(typed(s.likes(T0 + 2 * MINUTE + 10_000, 1, user="cy")))
    # the tier window [T0 + 70 s, T0 + 130 s) no longer overlaps minute T0
    assert [panes.start_of(data) for data in panes.minutes_of(state.sealed)] == [T0 + MINUTE]
