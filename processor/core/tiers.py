"""Engagement tiers by likes, with hysteresis on the way down."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    """Engagement tiers, lowest first (docs/domain.md: low < 1,000 <= moderate < 10,000 <= high)."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]


TIERS: tuple[Tier, ...] = (Tier.LOW, Tier.MODERATE, Tier.HIGH)
_RANK = {tier: i for i, tier in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """Classifies a metric into a tier.

    Going up is immediate: a value at or above a tier's threshold is in that tier.
    Going down needs the value to fall below ``threshold * (1 - hysteresis)`` of the
    tier it is leaving, so a count hovering at a threshold does not flap.
    """

    name: str
    moderate: int = 1_000
    high: int = 10_000
    hysteresis: float = 0.10
    _thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _floors: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.moderate < self.high:
            raise ValueError(f"need 0 < moderate < high, got {self.moderate}, {self.high}")
        if not 0.0 <= self.hysteresis < 1.0:
            raise ValueError(f"hysteresis must be in [0, 1), got {self.hysteresis}")
        thresholds = (0, self.moderate, self.high)
        object.__setattr__(self, "_thresholds", thresholds)
        object.__setattr__(self, "_floors", tuple(t * (1.0 - self.hysteresis) for t in thresholds))

    def threshold(self, tier: Tier) -> int:
        """The value at which a stream enters ``tier``."""
        return self._thresholds[tier.rank]

    def band(self, tier: Tier) -> tuple[float, float]:
        """The values ``[low, high)`` for which a stream in ``tier`` stays in it."""
        rank = tier.rank
        low = self._floors[rank] if rank > 0 else -math.inf
        high = self._thresholds[rank + 1] if rank + 1 < len(TIERS) else math.inf
        return low, high

    def tier_for(self, value: int) -> Tier:
        """The tier of ``value`` ignoring hysteresis."""
        if value >= self.high:
            return Tier.HIGH
        if value >= self.moderate:
            return Tier.MODERATE
        return Tier.LOW

    def classify(self, value: int, current: Tier) -> Tier:
        """The tier of ``value`` for a stream that is in ``current`` now."""
        raw = self.tier_for(value)
        if raw.rank >= current.rank:
            return raw
        rank = current.rank
        while rank > 0 and value < self._floors[rank]:
            rank -= 1
        return TIERS[rank]
