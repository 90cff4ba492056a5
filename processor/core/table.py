"""The stream table: each live stream's current state as one record (topic ``live.streams``,
keyed by stream id, compacted: read like a table). Pure.

A service that needs to know where every stream stands now (a recommender boosting
``high`` streams, a moderation tool watching spikes) reads the topic's latest record per
key instead of replaying the alerts; a stream's end is a tombstone (a null value).
"""

from __future__ import annotations

import msgspec

from processor.core.engine import ARMED, StreamState
from processor.core.tiers import Tier

STREAM_ROW_VERSION = 1


class Figures(msgspec.Struct, frozen=True):
    """Likes, gifts and coins of a span of event time (``start``..``end``, ms)."""

    start: int
    end: int
    likes: int
    gifts: int
    coins: int
    creator_usd: float


class ViewerCounts(msgspec.Struct, frozen=True):
    current: int
    peak: int
    average: float


class StreamRow(msgspec.Struct, frozen=True, kw_only=True):
    """A stream's current state."""

    v: int = STREAM_ROW_VERSION
    stream_id: str
    creator_id: str
    tier: Tier
    peak_tier: Tier
    window: Figures  # the trailing tier window
    minute: Figures  # the tumbling window (minute) of the stream time
    session: Figures  # since the stream went live
    viewers: ViewerCounts | None
    spikes: tuple[str, ...]  # metrics ("likes", "coins") with a spike under way
    stream_time_ms: int


def stream_row(state: StreamState, usd_per_coin: float) -> StreamRow:
    """The table record of a stream as its state stands."""
    window = state.window
    minute = state.tumbling
    session = state.session
    viewers = None
    if state.viewers_samples:
        viewers = ViewerCounts(
            state.viewers_current,
            state.viewers_peak,
            round(state.viewers_sum / state.viewers_samples, 2),
        )
    spikes = tuple(
        metric
        for metric, detector in (("likes", state.likes_spike), ("coins", state.coins_spike))
        if detector != ARMED
    )
    size = minute.size_ms
    minute_start = state.stream_time_ms - state.stream_time_ms % size
    current = minute.start == minute_start  # else nothing counted in it yet
    return StreamRow(
        stream_id=state.stream_id,
        creator_id=state.creator_id,
        tier=state.tier,
        peak_tier=state.peak_tier,
        window=_figures(
            window.start_ms, window.end_ms, window.likes, window.gifts, window.coins, usd_per_coin
        ),
        minute=_figures(
            minute_start,
            minute_start + size,
            minute.likes if current else 0,
            minute.gifts if current else 0,
            minute.coins if current else 0,
            usd_per_coin,
        ),
        session=_figures(
            state.started_ms,
            state.stream_time_ms,
            session.likes,
            session.gifts,
            session.coins,
            usd_per_coin,
        ),
        viewers=viewers,
        spikes=spikes,
        stream_time_ms=state.stream_time_ms,
    )


def _figures(
    start: int, end: int, likes: int, gifts: int, coins: int, usd_per_coin: float
) -> Figures:
    return Figures(start, end, likes, gifts, coins, round(coins * usd_per_coin, 4))
