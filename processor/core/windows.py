"""Event-time window aggregation, pure and Kafka-free."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Totals:
    """Likes, gifts and coins accumulated over some span of event time."""

    likes: int = 0
    gifts: int = 0
    coins: int = 0

    def add(self, likes: int, gifts: int, coins: int) -> None:
        self.likes += likes
        self.gifts += gifts
        self.coins += coins

    def subtract(self, other: Totals) -> None:
        self.likes -= other.likes
        self.gifts -= other.gifts
        self.coins -= other.coins


@dataclass(slots=True)
class SlidingTotals:
    """Totals over the trailing ``size_ms`` of event time, kept in ``step_ms`` buckets.

    At stream time ``t`` the window holds the buckets whose start lies in
    ``[floor(t/step)*step - size + step, floor(t/step)*step]``: the bucket containing ``t``
    and the ``size/step - 1`` before it. It is a hopping window of length ``size`` that
    advances by ``step``, so memory is bounded by ``size/step`` buckets per stream.
    """

    size_ms: int
    step_ms: int
    totals: Totals = field(default_factory=Totals)
    buckets: dict[int, Totals] = field(default_factory=dict)
    current_bucket: int = -1

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or self.size_ms <= 0 or self.size_ms % self.step_ms:
            raise ValueError(f"size {self.size_ms} must be a positive multiple of {self.step_ms}")

    @property
    def start_ms(self) -> int:
        """Start of the window (inclusive) at the current stream time."""
        return self.current_bucket - self.size_ms + self.step_ms

    @property
    def end_ms(self) -> int:
        """End of the window (exclusive) at the current stream time."""
        return self.current_bucket + self.step_ms

    def advance(self, now_ms: int) -> None:
        """Move stream time forward to ``now_ms``, dropping buckets that left the window."""
        bucket = now_ms - now_ms % self.step_ms
        if bucket <= self.current_bucket:
            return
        self.current_bucket = bucket
        start = self.start_ms
        expired = [b for b in self.buckets if b < start]
        for b in expired:
            self.totals.subtract(self.buckets.pop(b))

    def add(self, ts_ms: int, likes: int, gifts: int, coins: int) -> bool:
        """Count an event at ``ts_ms``; False (and nothing counted) if its bucket has expired.

        Call :meth:`advance` first: an event ahead of stream time is counted in its bucket
        but does not move the window.
        """
        bucket = ts_ms - ts_ms % self.step_ms
        if bucket < self.start_ms:
            return False
        slot = self.buckets.get(bucket)
        if slot is None:
            slot = self.buckets[bucket] = Totals()
        slot.add(likes, gifts, coins)
        self.totals.add(likes, gifts, coins)
        return True
