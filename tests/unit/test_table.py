"""The stream table's record: a stream's current state, worked out by hand below."""

from __future__ import annotations

from processor.core.engine import Engine
from processor.core.table import Figures, StreamRow, ViewerCounts, stream_row
from processor.core.tiers import Tier
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_engine import CONFIG  # 60 s tier window in 10 s steps, moderate at 100


def engine_after(events: list[dict[str, object]]) -> Engine:
    engine = Engine(CONFIG)
    for event in events:
        engine.process(typed(event))  # type: ignore[arg-type]
    return engine


def scenario() -> tuple[StreamScript, list[dict[str, object]]]:
    s = StreamScript("s-1", creator_id="c-1")
    return s, [
        s.start(T0),
        s.likes(T0 + 5_000, 10, dropped=40),  # 50 likes, in the bucket at T0
        s.gift(T0 + 20_000, 30, 1, False, True),  # 1 gift, 30 coins
        s.likes(T0 + 65_000, 15, dropped=85),  # 100 likes, in the minute at T0 + 60 s
        s.viewers(T0 + 66_000, 40),
        s.viewers(T0 + 67_000, 20),
    ]


def test_a_rows_figures_are_the_streams_window_minute_and_session() -> None:
    _, events = scenario()
    row = stream_row(engine_after(events).streams["s-1"], usd_per_coin=0.005)
    # stream time T0 + 67 s: the window is the six 10 s buckets [T0 + 10 s, T0 + 70 s)
    assert row == StreamRow(
        stream_id="s-1",
        creator_id="c-1",
        tier=Tier.MODERATE,  # 100 window likes
        peak_tier=Tier.MODERATE,
        window=Figures(T0 + 10_000, T0 + 70_000, 100, 1, 30, 0.15),
        minute=Figures(T0 + 60_000, T0 + 120_000, 100, 0, 0, 0.0),
        session=Figures(T0, T0 + 67_000, 150, 1, 30, 0.15),
        viewers=ViewerCounts(20, 40, 30.0),
        spikes=(),
        stream_time_ms=T0 + 67_000,
    )


def test_a_minute_with_nothing_counted_yet_and_an_emptied_window_show_zeros() -> None:
    s, events = scenario()
    engine = engine_after([*events, s.comment(T0 + 125_000)])
    row = stream_row(engine.streams["s-1"], usd_per_coin=0.005)
    assert row.window == Figures(T0 + 70_000, T0 + 130_000, 0, 0, 0, 0.0)
    assert row.minute == Figures(T0 + 120_000, T0 + 180_000, 0, 0, 0, 0.0)
    assert (row.tier, row.peak_tier) == (Tier.LOW, Tier.MODERATE)
    assert row.session.likes == 150


def test_a_spike_under_way_is_named_by_its_metric() -> None:
    _, events = scenario()
    state = engine_after(events).streams["s-1"]
    state.coins_spike = T0 + 60_000  # fired in that minute, not re-armed yet
    assert stream_row(state, 0.005).spikes == ("coins",)
    state.likes_spike = T0 + 60_000
    assert stream_row(state, 0.005).spikes == ("likes", "coins")


def test_a_silent_streams_row_is_rewritten_when_idle_time_changes_its_window_or_minute() -> None:
    """The idle clock moves a silent stream on; its row is written again (``moved``) when
    that changes what the row shows, not on every tick."""
    s = StreamScript("s-1", creator_id="c-1")
    engine = engine_after(  # processed at wall 0: stream time T0 + 75 s
        [s.start(T0), s.gift(T0 + 55_000, 30, 1, False, True), s.likes(T0 + 75_000, 10)]
    )
    engine.moved.clear()

    def row() -> StreamRow:
        return stream_row(engine.streams["s-1"], usd_per_coin=0.005)

    engine.tick(1_000)  # stream time T0 + 76 s: same buckets, same minute
    assert engine.moved == set()

    engine.tick(35_000)  # T0 + 110 s: the bucket at T0 + 50 s (the gift) leaves the window
    assert engine.moved == {"s-1"}
    assert row().window == Figures(T0 + 60_000, T0 + 120_000, 10, 0, 0, 0.0)
    assert row().minute == Figures(T0 + 60_000, T0 + 120_000, 10, 0, 0, 0.0)
    engine.moved.clear()

    engine.tick(44_000)  # T0 + 119 s: nothing leaves, the minute goes on
    assert engine.moved == set()

    engine.tick(45_000)  # T0 + 120 s: a new minute, nothing in it; the window keeps its likes
    assert engine.moved == {"s-1"}
    assert row().window == Figures(T0 + 70_000, T0 + 130_000, 10, 0, 0, 0.0)
    assert row().minute == Figures(T0 + 120_000, T0 + 180_000, 0, 0, 0, 0.0)
