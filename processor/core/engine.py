"""Per-stream state and the engine that turns validated events into alerts.

Pure: no Kafka, no Faust, no clock. The Faust layer feeds it events in partition order
and publishes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processor.core.alerts import TierChanged, WindowSnapshot, alert_id
from processor.core.rules import gift_value, like_growth
from processor.core.tiers import Tier, TierPolicy
from processor.core.windows import SlidingTotals, Totals

WINDOW_LIKES_POLICY = "window_likes"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine needs from the settings."""

    tier_window_ms: int = 600_000
    tier_step_ms: int = 10_000
    moderate: int = 1_000
    high: int = 10_000
    hysteresis: float = 0.10
    usd_per_coin: float = 0.005


@dataclass(slots=True)
class StreamState:
    """Everything the engine remembers about one live stream."""

    stream_id: str
    creator_id: str
    window: SlidingTotals
    like_total: int | None = None
    stream_time_ms: int = 0
    tier: Tier = Tier.LOW
    transitions: int = 0
    session: Totals = field(default_factory=Totals)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one event produced."""

    alerts: tuple[TierChanged, ...] = ()
    late: bool = False
    likes: int = 0
    gifts: int = 0
    coins: int = 0


NOTHING = Outcome()
LATE = Outcome(late=True)


class Engine:
    """Keeps windowed like and gift counts per stream and detects tier changes."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.policy = TierPolicy(
            WINDOW_LIKES_POLICY, config.moderate, config.high, config.hysteresis
        )
        self.streams: dict[str, StreamState] = {}

    def _state(self, event: dict[str, Any]) -> StreamState:
        stream_id: str = event["stream_id"]
        state = self.streams.get(stream_id)
        if state is None:
            state = StreamState(
                stream_id=stream_id,
                creator_id=event["creator_id"],
                window=SlidingTotals(self.config.tier_window_ms, self.config.tier_step_ms),
            )
            self.streams[stream_id] = state
        return state

    def tier_counts(self) -> dict[Tier, int]:
        """How many active streams are in each tier."""
        counts = dict.fromkeys(Tier, 0)
        for state in self.streams.values():
            counts[state.tier] += 1
        return counts

    def process(self, event: dict[str, Any]) -> Outcome:
        """Apply one contract-valid event; return the alerts it causes."""
        kind = event["type"]
        state = self._state(event)
        ts: int = event["ts"]
        if ts > state.stream_time_ms:
            state.stream_time_ms = ts
            state.window.advance(ts)

        likes = gifts = coins = 0
        if kind == "like":
            likes, state.like_total = like_growth(state.like_total, event["count"], event["total"])
        elif kind == "gift":
            gifts, coins = gift_value(event)
        elif kind == "live_start":
            if state.like_total is None:
                state.like_total = 0
        elif kind == "live_end":
            del self.streams[state.stream_id]
            return NOTHING

        if likes or gifts or coins:
            if not state.window.add(ts, likes, gifts, coins):
                return LATE
            state.session.add(likes, gifts, coins)

        alert = self._evaluate(state)
        if alert is None:
            if likes or gifts or coins:
                return Outcome(likes=likes, gifts=gifts, coins=coins)
            return NOTHING
        return Outcome(alerts=(alert,), likes=likes, gifts=gifts, coins=coins)

    def _evaluate(self, state: StreamState) -> TierChanged | None:
        value = state.window.totals.likes
        new_tier = self.policy.classify(value, state.tier)
        if new_tier is state.tier:
            return None
        old_tier, state.tier = state.tier, new_tier
        state.transitions += 1
        totals = state.window.totals
        entered = new_tier if new_tier.rank > old_tier.rank else old_tier
        return TierChanged(
            alert_id=alert_id(
                state.stream_id, self.policy.name, state.transitions, new_tier, state.stream_time_ms
            ),
            stream_id=state.stream_id,
            creator_id=state.creator_id,
            policy=self.policy.name,
            from_tier=old_tier,
            to_tier=new_tier,
            value=value,
            threshold=self.policy.threshold(entered),
            event_time=state.stream_time_ms,
            window=WindowSnapshot(
                start_ms=state.window.start_ms,
                end_ms=state.window.end_ms,
                likes=totals.likes,
                gifts=totals.gifts,
                coins=totals.coins,
                creator_usd=round(totals.coins * self.config.usd_per_coin, 4),
            ),
        )
