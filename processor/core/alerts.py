"""Alert events (alert contract v1) and their deterministic ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from processor.core.tiers import Tier

ALERT_VERSION = 1


def alert_id(stream_id: str, policy: str, sequence: int, to_tier: str, event_time: int) -> str:
    """Deterministic id of a transition: the n-th transition of a stream under a policy.

    The same input replayed (after a restart, or by a second deployment) gives the same
    id, so subscribers can de-duplicate on it.
    """
    key = f"{stream_id}\x1f{policy}\x1f{sequence}\x1f{to_tier}\x1f{event_time}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """The trailing window's content at the moment of an alert."""

    start_ms: int
    end_ms: int
    likes: int
    gifts: int
    coins: int
    creator_usd: float


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

    type = "tier_changed"

    @property
    def direction(self) -> str:
        return "up" if self.to_tier.rank > self.from_tier.rank else "down"

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        """The alert as the JSON object published on the alerts topic."""
        w = self.window
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
            "window": {
                "start": w.start_ms,
                "end": w.end_ms,
                "likes": w.likes,
                "gifts": w.gifts,
                "coins": w.coins,
                "creator_usd": w.creator_usd,
            },
        }
