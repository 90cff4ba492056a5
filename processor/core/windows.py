"""Event-time window aggregation, pure and Kafka-free."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

NONE_OPEN = 2**62  # first_start of a TumblingTotals with no open window


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

    def as_list(self) -> list[int]:
        return [self.likes, self.gifts, self.coins]


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

    def slide_to(self, now_ms: int) -> Iterator[int]:
        """Move stream time forward to ``now_ms`` one expiring bucket at a time.

        Yields each stream time at which a non-empty bucket left the window, with the
        window positioned there, so a caller can see every value the window took.
        """
        bucket = now_ms - now_ms % self.step_ms
        if bucket <= self.current_bucket:
            return
        expiring = sorted(b for b in self.buckets if b + self.size_ms <= bucket)
        for b in expiring:
            self.current_bucket = b + self.size_ms
            self.totals.subtract(self.buckets.pop(b))
            yield self.current_bucket
        self.current_bucket = bucket

    def advance(self, now_ms: int) -> None:
        """Move stream time forward to ``now_ms``, dropping buckets that left the window."""
        for _ in self.slide_to(now_ms):
            pass

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
            slot = self.buckets[bucket] = Totals(likes, gifts, coins)
        else:
            slot.likes += likes
            slot.gifts += gifts
            slot.coins += coins
        totals = self.totals
        totals.likes += likes
        totals.gifts += gifts
        totals.coins += coins
        return True


@dataclass(slots=True)
class TumblingTotals:
    """Totals per aligned, non-overlapping window of ``size_ms``; only non-empty ones kept.

    A window ``[start, start + size)`` stays open for events until stream time reaches
    ``start + size + grace``; then :meth:`close_until` hands it out, once.
    """

    size_ms: int
    open: dict[int, Totals] = field(default_factory=dict)
    first_start: int = NONE_OPEN  # the oldest open window's start, so a check is one compare

    def __post_init__(self) -> None:
        self.first_start = min(self.open, default=NONE_OPEN)

    def add(self, ts_ms: int, likes: int, gifts: int, coins: int) -> None:
        start = ts_ms - ts_ms % self.size_ms
        slot = self.open.get(start)
        if slot is None:
            self.open[start] = Totals(likes, gifts, coins)
            if start < self.first_start:
                self.first_start = start
        else:
            slot.likes += likes
            slot.gifts += gifts
            slot.coins += coins

    def close_until(self, stream_time_ms: int, grace_ms: int) -> list[tuple[int, Totals]]:
        """Remove and return, oldest first, the windows closed at ``stream_time_ms``."""
        limit = stream_time_ms - grace_ms - self.size_ms
        if self.first_start > limit:
            return []
        closed = sorted(start for start in self.open if start <= limit)
        found = [(start, self.open.pop(start)) for start in closed]
        self.first_start = min(self.open, default=NONE_OPEN)
        return found

    def close_all(self) -> list[tuple[int, Totals]]:
        closed = sorted(self.open)
        self.first_start = NONE_OPEN
        return [(start, self.open.pop(start)) for start in closed]
