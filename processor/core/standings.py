"""Where the streams a worker holds stand, for its gauges: how many, in which tier, how far
their time is, and which are the hottest. Pure: read from the engines' state, on a timer.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter

from processor.core.engine import Engine, StreamState
from processor.core.tiers import Tier

Ranked = list[tuple[str, int]]  # (stream_id, value), the largest value first


@dataclass(frozen=True, slots=True)
class Standings:
    """The streams of one or more engines at one moment."""

    active: int  # streams with state
    by_tier: dict[Tier, int]  # active streams by current tier
    newest_stream_time_ms: int | None  # of any active stream (None: there is none)
    top_likes: Ranked  # by windowed likes
    top_coins: Ranked  # by windowed coins
    top_coins_per_minute: Ranked  # by coins in the trailing minute (:func:`minute_coins`)


def standings(engines: Engine | Iterable[Engine], k: int) -> Standings:
    """The standings of the streams of ``engines`` (the worker's engine, or its engines, one
    per partition), with the ``k`` hottest streams by each measure."""
    group = [engines] if isinstance(engines, Engine) else list(engines)
    streams = [state for engine in group for state in engine.streams.values()]
    counts = [engine.tier_counts() for engine in group]
    return Standings(
        active=len(streams),
        by_tier={tier: sum(c[tier] for c in counts) for tier in Tier},
        newest_stream_time_ms=max((state.stream_time_ms for state in streams), default=None),
        top_likes=top_streams(streams, k, _window_likes),
        top_coins=top_streams(streams, k, _window_coins),
        top_coins_per_minute=top_minute_coins(group, k),
    )


def top_streams(
    streams: Iterable[StreamState], k: int, value: Callable[[StreamState], int]
) -> Ranked:
    """The ``k`` streams with the largest positive ``value``, as (stream_id, value).

    Order: value descending, then stream_id ascending (so ties rank the same way on every
    refresh and every worker). Streams whose value is 0 are left out: an idle stream is not
    one of the hottest. O(n log k), one pass over the streams.
    """
    return top_values(((s.stream_id, value(s)) for s in streams), k)


def top_values(values: Iterable[tuple[str, int]], k: int) -> Ranked:
    """:func:`top_streams` over (stream_id, value) pairs already computed."""
    ranked = heapq.nsmallest(k, ((-v, stream_id) for stream_id, v in values if v > 0))
    return [(stream_id, -negated) for negated, stream_id in ranked]


def _window_likes(state: StreamState) -> int:
    return state.window.likes


def _window_coins(state: StreamState) -> int:
    return state.window.coins


def minute_coins(state: StreamState, minute_ms: int) -> int:
    """Coins in the stream's trailing ``minute_ms`` of stream time: the window's buckets from
    the current one back over one tumbling window (the spike detector's "minute")."""
    window = state.window
    end = window.current_bucket + window.step_ms
    return window.between(end - minute_ms, end).coins


def top_minute_coins(engines: Iterable[Engine], k: int) -> Ranked:
    """:func:`top_values` of every stream's :func:`minute_coins`, summing buckets for as few
    streams as it can: a stream's minute lies inside its tier window, so its minute's coins
    are at most its window's. Streams are tried in order of window coins, and once the
    ``k`` best minutes beat the next stream's whole window, none after it can enter (the
    refresh runs every 2 s over up to 100k streams; summing all of them cost more than
    the rest of the refresh)."""
    candidates = sorted(
        (
            (state.window.coins, state, engine.config.tumbling_ms)
            for engine in engines
            for state in engine.streams.values()
            if state.window.coins
        ),
        key=itemgetter(0),
        reverse=True,
    )
    best: list[int] = []  # a min-heap of the k best minute values found so far
    found: list[tuple[str, int]] = []
    for window_coins, state, minute_ms in candidates:
        if len(best) == k and window_coins < best[0]:
            break  # its minute, and every later stream's, is below the k-th best
        value = minute_coins(state, minute_ms)
        if value:
            found.append((state.stream_id, value))
            if len(best) < k:
                heapq.heappush(best, value)
            elif value > best[0]:
                heapq.heapreplace(best, value)
    return top_values(found, k)
