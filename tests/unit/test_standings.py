"""The streams' standings the gauges show: top streams, coins in the trailing minute."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from processor.core.standings import minute_coins, top_minute_coins, top_streams, top_values
from tests.support.events import T0, StreamScript
from tests.unit.test_metrics import engine_with


class State(NamedTuple):
    stream_id: str
    likes: int


def test_top_streams_is_bounded_ordered_and_skips_zeros() -> None:
    streams = [State(f"s{i:03d}", (i * 7) % 13) for i in range(200)]
    top = top_streams(streams, 10, lambda s: s.likes)
    want = sorted(((s.stream_id, s.likes) for s in streams if s.likes), key=lambda x: (-x[1], x[0]))
    assert top == want[:10]
    assert top[:3] == [("s011", 12), ("s024", 12), ("s037", 12)]
    assert top_streams(streams[:1], 10, lambda s: s.likes) == []


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("seed", range(5))
def test_top_minute_coins_equals_summing_every_stream(k: int, seed: int) -> None:
    """The pruned scan gives what summing every stream's minute gives, ties included."""
    import random

    rng = random.Random(seed)
    engines = []
    for part in range(3):
        events = []
        for i in range(30):
            s = StreamScript(f"p{part}s{i:02d}")
            for step in range(rng.randrange(4)):  # some gifts an old minute, some this one
                ts = T0 + rng.choice([1_000, 30_000, 100_000, 130_000]) + step
                events.append(s.gift(ts, rng.choice([1, 5, 5, 30]), 1, False, True))
            events.append(s.likes(T0 + 131_000, 1))
        engines.append(engine_with(events))
    every = (
        (state.stream_id, minute_coins(state, engine.config.tumbling_ms))
        for engine in engines
        for state in engine.streams.values()
    )
    assert top_minute_coins(engines, k) == top_values(every, k)
