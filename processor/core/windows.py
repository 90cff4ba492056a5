"""Event-time window aggregation, pure and Kafka-free."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

NONE_OPEN = 2**62  # first_start of a TumblingTotals with no open window
# a ring's integer sizes, narrowest first, and the counts each holds
_SIZES = (("H", 0, 2**16), ("i", -(2**31), 2**31), ("q", -(2**63), 2**63))


def _narrowest(counts: list[int]) -> array[int]:
    """``counts`` in the narrowest ring that holds them (OverflowError beyond 64 bits)."""
    low, high = min(counts, default=0), max(counts, default=0)
    for typecode, least, limit in _SIZES:
        if least <= low and high < limit:
            return array(typecode, counts)
    raise OverflowError("a window count too big for 64 bits")


Row = tuple[int, int, int, int]  # bucket or window start, likes, gifts, coins


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

    def as_list(self) -> list[int]:
        return [self.likes, self.gifts, self.coins]


class SlidingTotals:
    """Totals over the trailing ``size_ms`` of event time, kept in ``step_ms`` buckets.

        At stream time ``t`` the window holds the buckets whose start lies in
        ``[floor(t/step)*step - size + step, floor(t/step)*step]``: the bucket containing ``t``
        and the ``size/step - 1`` before it. It is a hopping window of length ``size`` that
        advances by ``step``, so memory is bounded by ``size/step`` buckets per stream.

        The buckets are a fixed ring of ``n = size/step`` slots, bucket ``b`` in slot
        ``(b // step) % n``: one ``array`` of machine integers, likes in ``[0, n)``, gifts in
        ``[n, 2n)``, coins in ``[2n, 3n)``, 16-bit until a value needs 32, then 64 (widened once
    each: most buckets of most streams hold a few hundred likes and coins),
        and a bit mask of the slots holding a bucket that was added to, so an emptied bucket
        and a bucket never touched are told apart exactly. The window's totals are plain ints.
        A bucket ahead of the window (added before stream time reached it; the engine never
        does) waits in a small dict until the window reaches it.
    """

    __slots__ = (
        "ahead",
        "coins",
        "current_bucket",
        "gifts",
        "likes",
        "n",
        "ring",
        "size_ms",
        "step_ms",
        "used",
    )

    def __init__(self, size_ms: int, step_ms: int) -> None:
        if step_ms <= 0 or size_ms <= 0 or size_ms % step_ms:
            raise ValueError(f"size {size_ms} must be a positive multiple of {step_ms}")
        self.size_ms = size_ms
        self.step_ms = step_ms
        self.n = n = size_ms // step_ms
        self.current_bucket = -1
        self.likes = 0
        self.gifts = 0
        self.coins = 0
        self.ring = array("H", (0,)) * (3 * n)  # exactly 3n slots: no over-allocation
        self.used = 0  # bit i set: slot i holds a bucket of the window
        self.ahead: dict[int, list[int]] | None = None

    def __repr__(self) -> str:
        return (
            f"SlidingTotals({self.size_ms}, {self.step_ms}, current_bucket="
            f"{self.current_bucket}, totals={self.totals}, buckets={self.rows()})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlidingTotals):
            return NotImplemented
        return (self.size_ms, self.step_ms, self.current_bucket, self.rows()) == (
            other.size_ms,
            other.step_ms,
            other.current_bucket,
            other.rows(),
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    @property
    def totals(self) -> Totals:
        """The window's likes, gifts and coins (a copy)."""
        return Totals(self.likes, self.gifts, self.coins)

    @property
    def start_ms(self) -> int:
        """Start of the window (inclusive) at the current stream time."""
        return self.current_bucket - self.size_ms + self.step_ms

    @property
    def end_ms(self) -> int:
        """End of the window (exclusive) at the current stream time."""
        return self.current_bucket + self.step_ms

    def rows(self) -> list[Row]:
        """The buckets that were added to, oldest first: ``(start, likes, gifts, coins)``."""
        found: list[Row] = []
        used = self.used
        if used:
            step, n, ring = self.step_ms, self.n, self.ring
            current = self.current_bucket
            oldest = current - current % step - self.size_ms + step
            k = oldest // step % n  # the oldest bucket's slot; the others follow, wrapping
            while used:  # one turn per used slot
                bit = used & -used
                used ^= bit
                i = bit.bit_length() - 1
                found.append((oldest + (i - k) % n * step, ring[i], ring[n + i], ring[2 * n + i]))
            found.sort()
        if self.ahead:
            for start, (likes, gifts, coins) in sorted(self.ahead.items()):
                found.append((start, likes, gifts, coins))
        return found

    @property
    def dense(self) -> bool:
        """Whether so many buckets were added to (every one, or 16) that :meth:`packed`
        is the better copy: many times faster than :meth:`rows` (a fraction of a
        microsecond a row), and not larger (a count of a bucket is one to five bytes)."""
        return not self.ahead and self.used.bit_count() >= min(16, self.n)

    def between(self, start_ms: int, end_ms: int) -> Totals:
        """The totals of the window's buckets whose start is in ``[start_ms, end_ms)``."""
        found = Totals()
        step, n, ring = self.step_ms, self.n, self.ring
        first = max(start_ms - start_ms % step, self.current_bucket - self.size_ms + step)
        if start_ms % step:
            first += step
        for start in range(first, min(end_ms, self.current_bucket + step), step):
            i = start // step % n
            if self.used >> i & 1:
                found.likes += ring[i]
                found.gifts += ring[n + i]
                found.coins += ring[2 * n + i]
        if self.ahead:
            for start, (likes, gifts, coins) in self.ahead.items():
                if start_ms <= start < end_ms:
                    found.add(likes, gifts, coins)
        return found

    @property
    def buckets(self) -> dict[int, Totals]:
        """The buckets that were added to, by start, oldest first (a copy)."""
        return {start: Totals(likes, gifts, coins) for start, likes, gifts, coins in self.rows()}

    def slide_to(self, now_ms: int) -> Iterator[int]:
        """Move stream time forward to ``now_ms`` one expiring bucket at a time.

        Yields each stream time at which a non-empty bucket left the window, with the
        window positioned there, so a caller can see every value the window took.
        At most ``n`` slots are looked at, however far ``now_ms`` jumps.
        """
        step = self.step_ms
        bucket = now_ms - now_ms % step
        current = self.current_bucket
        if bucket <= current:
            return
        if self.ahead:
            yield from self._slide_with_ahead(bucket)
            return
        if self.used:
            size, n = self.size_ms, self.n
            first = current - current % step
            start = first - size + step
            last = min(first, bucket - size)  # buckets up to here leave the window
            while start <= last and self.used:
                i = start // step % n
                bit = 1 << i
                if self.used & bit:
                    self.used ^= bit
                    self._drop(i)
                    self.current_bucket = start + size
                    yield start + size
                start += step
        self.current_bucket = bucket

    def _drop(self, i: int) -> None:
        ring, n = self.ring, self.n
        self.likes -= ring[i]
        self.gifts -= ring[n + i]
        self.coins -= ring[2 * n + i]
        ring[i] = ring[n + i] = ring[2 * n + i] = 0

    def _slide_with_ahead(self, bucket: int) -> Iterator[int]:
        """:meth:`slide_to` when buckets wait ahead of the window (never in the engine)."""
        ahead = self.ahead
        assert ahead is not None
        size = self.size_ms
        expiring = sorted(row[0] for row in self.rows() if row[0] + size <= bucket)
        for start in expiring:
            values = ahead.pop(start, None)
            if values is None:
                i = start // self.step_ms % self.n
                self.used ^= 1 << i
                self._drop(i)
            else:
                self.likes -= values[0]
                self.gifts -= values[1]
                self.coins -= values[2]
            self.current_bucket = start + size
            yield start + size
        self.current_bucket = bucket
        for start in sorted(s for s in ahead if s <= bucket):  # reached: into the ring
            likes, gifts, coins = ahead.pop(start)
            self._store(start // self.step_ms % self.n, likes, gifts, coins)
        if not ahead:
            self.ahead = None

    def advance(self, now_ms: int) -> None:
        """Move stream time forward to ``now_ms``, dropping buckets that left the window."""
        for _ in self.slide_to(now_ms):
            pass

    def add(self, ts_ms: int, likes: int, gifts: int, coins: int) -> bool:
        """Count an event at ``ts_ms``; False (and nothing counted) if its bucket has expired.

        Call :meth:`advance` first: an event ahead of stream time is counted in its bucket
        but does not move the window.
        """
        step = self.step_ms
        bucket = ts_ms - ts_ms % step
        current = self.current_bucket
        if bucket > current:
            self._add_ahead(bucket, likes, gifts, coins)
            return True
        if bucket < current - self.size_ms + step:
            return False
        n = self.n
        i = bucket // step % n
        ring = self.ring
        # most events carry likes or gifts, not both: a metric at 0 costs one test
        if likes:
            try:
                ring[i] += likes
            except OverflowError:
                ring = self._widen(ring[i] + likes)
                ring[i] += likes
            self.likes += likes
        if gifts:
            try:
                ring[n + i] += gifts
            except OverflowError:
                ring = self._widen(ring[n + i] + gifts)
                ring[n + i] += gifts
            self.gifts += gifts
        if coins:
            try:
                ring[2 * n + i] += coins
            except OverflowError:
                ring = self._widen(ring[2 * n + i] + coins)
                ring[2 * n + i] += coins
            self.coins += coins
        bit = 1 << i
        if not self.used & bit:
            self.used |= bit
        return True

    def _widen(self, value: int) -> array[int]:
        """The ring wide enough for ``value``, from now on (16 bits, then 32, then 64;
        beyond 64 bits, OverflowError: no count of this domain comes near)."""
        sizes = [size[0] for size in _SIZES]
        for typecode, least, limit in _SIZES[sizes.index(self.ring.typecode) + 1 :]:
            if least <= value < limit:
                self.ring = array(typecode, self.ring)
                return self.ring
        raise OverflowError("a window count too big for 64 bits")

    def _store(self, i: int, likes: int, gifts: int, coins: int) -> None:
        """Set slot ``i`` (an empty one) to these counts."""
        n = self.n
        for at, value in ((i, likes), (n + i, gifts), (2 * n + i, coins)):
            try:
                self.ring[at] = value
            except OverflowError:
                self._widen(value)[at] = value
        self.used |= 1 << i

    def _add_ahead(self, bucket: int, likes: int, gifts: int, coins: int) -> None:
        if self.ahead is None:
            self.ahead = {}
        values = self.ahead.setdefault(bucket, [0, 0, 0])
        values[0] += likes
        values[1] += gifts
        values[2] += coins
        self.likes += likes
        self.gifts += gifts
        self.coins += coins

    def packed(self) -> tuple[int, list[int]]:
        """The ring as it is held: the mask of used slots and every slot's count (likes,
        then gifts, then coins); :meth:`unpack` reverses it. Copying the ring whole is what
        makes a checkpoint of a busy stream cheap, and small counts encode small."""
        if self.ahead:  # never in the engine; rows keep them
            raise ValueError("a window with buckets ahead of it cannot be packed")
        return self.used, self.ring.tolist()

    @classmethod
    def unpack(
        cls,
        size_ms: int,
        step_ms: int,
        current_bucket: int,
        used: int,
        counts: list[int],
        written: tuple[int, int] | None = None,
    ) -> SlidingTotals:
        """The window :meth:`packed` gave, at ``current_bucket``. ``written`` is the
        (size, step) it was packed under when they differ from these (the tier window
        setting changed between two runs): its buckets are then restored as rows are."""
        if written is not None and written != (size_ms, step_ms):
            old = cls.unpack(written[0], written[1], current_bucket, used, counts)
            return cls.restore(size_ms, step_ms, current_bucket, old.rows())
        window = cls(size_ms, step_ms)
        n = window.n
        if len(counts) != 3 * n or used >> n or current_bucket % step_ms:
            raise ValueError(f"a packed window of {len(counts)} counts, not {n} buckets")
        ring = _narrowest(counts)
        window.ring, window.used, window.current_bucket = ring, used, current_bucket
        window.likes = sum(ring[:n])
        window.gifts = sum(ring[n : 2 * n])
        window.coins = sum(ring[2 * n :])
        return window

    @classmethod
    def restore(
        cls, size_ms: int, step_ms: int, current_bucket: int, rows: list[Row]
    ) -> SlidingTotals:
        """The window at ``current_bucket`` holding ``rows`` (as :meth:`rows` gives them,
        in any order).

        Rows written under the same size and step restore exactly. Under another (the
        tier window setting changed between two runs) a row counts in the bucket holding
        its start, and one older than the window is left out: it would have expired.
        """
        window = cls(size_ms, step_ms)
        window.current_bucket = current_bucket
        n = window.n
        oldest = current_bucket - size_ms + step_ms
        starts = {row[0] for row in rows}
        if (
            not current_bucket % step_ms
            and len(starts) == len(rows)
            and all(oldest <= start <= current_bucket and not start % step_ms for start in starts)
        ):  # as this code writes them: each row to its own slot, in one go
            ring = window.ring
            used = likes_sum = gifts_sum = coins_sum = 0
            for start, likes, gifts, coins in rows:
                i = start // step_ms % n
                try:
                    ring[i], ring[n + i], ring[2 * n + i] = likes, gifts, coins
                except OverflowError:
                    ring = window._widen(max(likes, gifts, coins, key=abs))
                    ring[i], ring[n + i], ring[2 * n + i] = likes, gifts, coins
                used |= 1 << i
                likes_sum += likes
                gifts_sum += gifts
                coins_sum += coins
            window.used = used
            window.likes, window.gifts, window.coins = likes_sum, gifts_sum, coins_sum
            return window
        for start, likes, gifts, coins in rows:
            window.add(start, likes, gifts, coins)
        return window


class TumblingTotals:
    """Totals per aligned, non-overlapping window of ``size_ms``; only non-empty ones kept.

    A window ``[start, start + size)`` stays open for events until stream time reaches
    ``start + size + grace``; then :meth:`close_until` hands it out, once.

    The newest open window is plain ints (``start`` is NONE_OPEN when none is open); the
    older ones still open (within the grace period, so rarely more than one) wait in a
    small dict that exists only while they do.
    """

    __slots__ = ("coins", "first_start", "gifts", "likes", "older", "size_ms", "start")

    def __init__(self, size_ms: int) -> None:
        self.size_ms = size_ms
        self.first_start = NONE_OPEN  # the oldest open window's start, so a check is one compare
        self.start = NONE_OPEN
        self.likes = 0
        self.gifts = 0
        self.coins = 0
        self.older: dict[int, Totals] | None = None

    def __repr__(self) -> str:
        return f"TumblingTotals({self.size_ms}, open={self.rows()})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TumblingTotals):
            return NotImplemented
        return (self.size_ms, self.rows()) == (other.size_ms, other.rows())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def rows(self) -> list[Row]:
        """The open windows, oldest first: ``(start, likes, gifts, coins)``."""
        found: list[Row] = []
        if self.older:
            found.extend((s, t.likes, t.gifts, t.coins) for s, t in sorted(self.older.items()))
        if self.start != NONE_OPEN:
            found.append((self.start, self.likes, self.gifts, self.coins))
        return found

    @classmethod
    def restore(cls, size_ms: int, rows: list[Row]) -> TumblingTotals:
        """The open windows ``rows`` (as :meth:`rows` gives them, in any order); under
        another ``size_ms``, a row counts in the window holding its start."""
        tumbling = cls(size_ms)
        for start, likes, gifts, coins in rows:
            tumbling.add(start, likes, gifts, coins)
        return tumbling

    def add(self, ts_ms: int, likes: int, gifts: int, coins: int) -> None:
        start = ts_ms - ts_ms % self.size_ms
        if start == self.start:
            if likes:
                self.likes += likes
            if gifts:
                self.gifts += gifts
            if coins:
                self.coins += coins
        else:
            self._add_other(start, likes, gifts, coins)

    def _add_other(self, start: int, likes: int, gifts: int, coins: int) -> None:
        if start > self.start or self.start == NONE_OPEN:  # a newer window: the newest now
            if self.start != NONE_OPEN:
                if self.older is None:
                    self.older = {}
                self.older[self.start] = Totals(self.likes, self.gifts, self.coins)
            self.start, self.likes, self.gifts, self.coins = start, likes, gifts, coins
        else:
            if self.older is None:
                self.older = {}
            slot = self.older.get(start)
            if slot is None:
                self.older[start] = Totals(likes, gifts, coins)
            else:
                slot.add(likes, gifts, coins)
        if start < self.first_start:
            self.first_start = start

    def close_until(self, stream_time_ms: int, grace_ms: int) -> list[tuple[int, Totals]]:
        """Remove and return, oldest first, the windows closed at ``stream_time_ms``."""
        limit = stream_time_ms - grace_ms - self.size_ms
        if self.first_start > limit:
            return []
        return self._close(limit)

    def close_all(self) -> list[tuple[int, Totals]]:
        return self._close(NONE_OPEN - 1)

    def _close(self, limit: int) -> list[tuple[int, Totals]]:
        found: list[tuple[int, Totals]] = []
        older = self.older
        if older:  # every one of them is older than the newest
            for start in sorted(s for s in older if s <= limit):
                found.append((start, older.pop(start)))
            if not older:
                self.older = older = None
        if self.start <= limit:
            found.append((self.start, Totals(self.likes, self.gifts, self.coins)))
            self.start = NONE_OPEN
            self.likes = self.gifts = self.coins = 0
        self.first_start = min(older) if older else self.start
        return found
