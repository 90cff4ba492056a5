"""What the engine publishes: alerts (alert contract v1) and closed tumbling windows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from processor.core.tiers import Tier

ALERT_VERSION = 1


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def alert_id(stream_id: str, policy: str, sequence: int, to_tier: str, event_time: int) -> str:
    """Deterministic id of a transition: the n-th transition of a stream under a policy.

    The same input replayed (after a restart, or by a second deployment) gives the same
    id, so subscribers can de-duplicate on it.
    """
    return _digest(stream_id, policy, sequence, to_tier, event_time)


def stream_ended_id(stream_id: str, ended_at: int) -> str:
    """Deterministic id of a stream's end."""
    return _digest(stream_id, "stream_ended", ended_at)


def spike_id(stream_id: str, metric: str, minute_start: int) -> str:
    """Deterministic id of a spike: at most one per stream, metric and minute."""
    return _digest(stream_id, "spike", metric, minute_start)


def goal_id(stream_id: str, metric: str, goal: int) -> str:
    """Deterministic id of a goal reached: once per stream, metric and goal."""
    return _digest(stream_id, "goal", metric, goal)


@dataclass(frozen=True, slots=True)
class Viewers:
    """A stream's viewer figures: the latest count, the peak and the mean of the counts."""

    current: int
    peak: int
    average: float

    def to_record(self) -> dict[str, Any]:
        return {"current": self.current, "peak": self.peak, "average": self.average}


def _viewers_record(viewers: Viewers | None) -> dict[str, Any] | None:
    return None if viewers is None else viewers.to_record()


@dataclass(frozen=True, slots=True)
class TopUsers:
    """The top gifters (user, coins, gifts) and likers (user, likes) of a span of event time.

    ``exact`` is False once a summary behind it had to evict a user (more distinct users than
    it tracks): the values are then Space-Saving estimates (README, "Top gifters and likers").
    """

    start: int
    end: int
    exact: bool
    gifters: tuple[tuple[str, int, int], ...]
    likers: tuple[tuple[str, int], ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "exact": self.exact,
            "gifters": [{"user_id": u, "coins": c, "gifts": g} for u, c, g in self.gifters],
            "likers": [{"user_id": u, "likes": n} for u, n in self.likers],
        }


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """A window's content: the trailing tier window at an alert, or a closed tumbling one."""

    start_ms: int
    end_ms: int
    likes: int
    gifts: int
    coins: int
    creator_usd: float

    def to_record(self) -> dict[str, Any]:
        return {
            "start": self.start_ms,
            "end": self.end_ms,
            "likes": self.likes,
            "gifts": self.gifts,
            "coins": self.coins,
            "creator_usd": self.creator_usd,
        }


@dataclass(frozen=True, slots=True)
class TierChanged:
    """A stream moved from one tier to another under a policy."""

    alert_id: str
    stream_id: str
    creator_id: str
    policy: str
    from_tier: Tier
    to_tier: Tier
    value: int
    threshold: int
    event_time: int
    window: WindowSnapshot
    top: TopUsers
    viewers: Viewers | None

    type: ClassVar[str] = "tier_changed"

    @property
    def direction(self) -> str:
        return "up" if self.to_tier.rank > self.from_tier.rank else "down"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        """The alert as the JSON object published on the alerts topic."""
        return {
            "v": ALERT_VERSION,
            "alert_id": self.alert_id,
            "type": self.type,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "policy": self.policy,
            "from_tier": str(self.from_tier),
            "to_tier": str(self.to_tier),
            "direction": self.direction,
            "value": self.value,
            "threshold": self.threshold,
            "event_time": self.event_time,
            "emitted_at": emitted_at,
            "window": self.window.to_record(),
            "top": self.top.to_record(),
            "viewers": _viewers_record(self.viewers),
        }


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """A stream's session is over: by ``live_end`` or by inactivity."""

    alert_id: str
    stream_id: str
    creator_id: str
    reason: str  # ended | suspended | inactive
    started_at: int
    event_time: int
    likes: int
    gifts: int
    coins: int
    creator_usd: float
    peak_tier: Tier
    final_tier: Tier
    top: TopUsers
    viewers: Viewers | None
    likes_per_viewer: float | None
    coins_per_viewer: float | None

    type: ClassVar[str] = "stream_ended"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        return {
            "v": ALERT_VERSION,
            "alert_id": self.alert_id,
            "type": self.type,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "reason": self.reason,
            "started_at": self.started_at,
            "event_time": self.event_time,
            "duration_ms": self.event_time - self.started_at,
            "emitted_at": emitted_at,
            "session": {
                "likes": self.likes,
                "gifts": self.gifts,
                "coins": self.coins,
                "creator_usd": self.creator_usd,
            },
            "peak_tier": str(self.peak_tier),
            "final_tier": str(self.final_tier),
            "top": self.top.to_record(),
            "viewers": _viewers_record(self.viewers),
            "likes_per_viewer": self.likes_per_viewer,
            "coins_per_viewer": self.coins_per_viewer,
        }


@dataclass(frozen=True, slots=True)
class Spike:
    """Likes or coins of a stream's current minute rose past ``ratio`` times its own baseline
    (and past an absolute floor)."""

    alert_id: str
    stream_id: str
    creator_id: str
    metric: str  # likes | coins
    value: int  # in the minute so far
    baseline: float  # per minute, over the tier window before the minute
    baseline_minutes: float  # how much history the baseline covers
    ratio: float | None  # value / baseline; None when the baseline is 0
    threshold: float  # the value the minute had to reach
    minute_start: int
    minute_end: int
    event_time: int
    top: TopUsers
    viewers: Viewers | None

    type: ClassVar[str] = "spike"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        return {
            "v": ALERT_VERSION,
            "alert_id": self.alert_id,
            "type": self.type,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_minutes": self.baseline_minutes,
            "ratio": self.ratio,
            "threshold": self.threshold,
            "minute": {"start": self.minute_start, "end": self.minute_end},
            "event_time": self.event_time,
            "emitted_at": emitted_at,
            "top": self.top.to_record(),
            "viewers": _viewers_record(self.viewers),
        }


@dataclass(frozen=True, slots=True)
class GoalReached:
    """A stream's session likes or coins reached one of the configured goals."""

    alert_id: str
    stream_id: str
    creator_id: str
    metric: str  # likes | coins
    goal: int
    value: int  # the session total just after it was reached
    event_time: int
    viewers: Viewers | None

    type: ClassVar[str] = "goal_reached"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        return {
            "v": ALERT_VERSION,
            "alert_id": self.alert_id,
            "type": self.type,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "metric": self.metric,
            "goal": self.goal,
            "value": self.value,
            "event_time": self.event_time,
            "emitted_at": emitted_at,
            "viewers": _viewers_record(self.viewers),
        }


@dataclass(frozen=True, slots=True)
class WindowClosed:
    """A tumbling window of one stream that will not change any more."""

    stream_id: str
    creator_id: str
    window: WindowSnapshot

    type: ClassVar[str] = "window_closed"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        return {
            "v": ALERT_VERSION,
            "type": self.type,
            "window_id": f"{self.stream_id}@{self.window.start_ms}",
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "emitted_at": emitted_at,
            "window": self.window.to_record(),
        }


Alert = TierChanged | StreamEnded | Spike | GoalReached
Output = TierChanged | StreamEnded | Spike | GoalReached | WindowClosed
