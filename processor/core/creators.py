"""Creator days: what a creator's streams earned on one calendar day, and how long she was
live. Pure.

A creator goes live several times a day, on streams that may be on any partition. Each
partition reports its streams' parts of each day as :class:`StreamDay` records (the
stream's running figures for that day, re-keyed by creator through an internal topic);
:class:`CreatorDays` keeps the latest part of each stream and adds them up into one
:class:`CreatorDay` per creator and day. A part carries running figures, not increments,
so a part applied twice (a replay after a crash) changes nothing.

When is a day over? Each input partition also reports its partition time
(:class:`PartitionTime`, a watermark) to every partition of that topic, after its parts;
a day is over once the least of them has passed its midnight plus the grace.

Top gifters of the day are the stream parts' tracked gifters added up per user: exact
while each stream's session summary is exact (it tracked every user who gave or liked);
beyond, Space-Saving estimates whose error is at most, summed over her streams, each
session's coins divided by the number of users a stream tracks (a day's part is the
session's summary less its counts at midnight, so it carries the session's error).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from processor.core.contributors import top_gifters
from processor.core.tiers import Tier

CREATOR_DAY_VERSION = 1

GifterRow = tuple[str, int, int]  # user, coins, gifts


def _highest(tiers: Iterable[Tier]) -> Tier:
    return max(tiers, key=lambda tier: tier.rank)


class StreamDay(msgspec.Struct, frozen=True, array_like=True):
    """One stream's part of one calendar day, as its partition last saw it.

    ``live_from_ms``/``live_to_ms`` is the part of the session inside the day (its start
    or midnight, up to its stream time, its end, or the next midnight). ``gifters`` are
    every gifter the stream tracked that day (not only the top): what a merge needs.
    """

    creator_id: str
    day: str
    stream_id: str
    started_ms: int
    live_from_ms: int
    live_to_ms: int
    likes: int
    gifts: int
    coins: int
    peak_tier: Tier
    peak_viewers: int
    gifters: tuple[GifterRow, ...]
    exact: bool
    ended: bool
    stream_time_ms: int

    def newer_than(self, other: StreamDay) -> bool:
        """Whether this part supersedes ``other`` (the same stream and day): it went
        further in stream time, or as far and says more (the end, more counted)."""
        return (self.stream_time_ms, self.ended, self.likes + self.gifts) >= (
            other.stream_time_ms,
            other.ended,
            other.likes + other.gifts,
        )


NO_TIME = -1  # the partition time of an input partition that has had no event yet


class PartitionTime(msgspec.Struct, frozen=True, array_like=True):
    """How far event time has got on one input partition (a watermark), as its last
    checkpoint said: the largest event ts applied there, moved on by its idle clock.
    ``time_ms`` is :data:`NO_TIME` before its first event."""

    partition: int  # the input partition (of the events topic)
    partitions: int  # how many partitions the events topic has
    time_ms: int


class TopGifter(msgspec.Struct, frozen=True):
    user_id: str
    coins: int
    gifts: int


class CreatorDay(msgspec.Struct, frozen=True, kw_only=True):
    """A creator's day (topic ``live.creators``, key ``creator_id/day``): the record a
    compacted topic keeps the latest of."""

    v: int = CREATOR_DAY_VERSION
    creator_id: str
    day: str
    time_zone: str
    likes: int
    gifts: int
    coins: int
    creator_usd: float
    sessions: int  # sessions started that day
    streams: tuple[str, ...]  # every stream live that day, by id
    live_ms: int  # time live that day, overlapping sessions counted once
    minutes_live: int
    peak_tier: Tier
    peak_viewers: int
    top_gifters: tuple[TopGifter, ...]
    top_gifters_exact: bool
    final: bool  # the day is over for her: no stream of hers can add to it any more
    stream_time_ms: int  # how far her streams' time got

    @property
    def key(self) -> str:
        return creator_day_key(self.creator_id, self.day)


def creator_day_key(creator_id: str, day: str) -> str:
    return f"{creator_id}/{day}"


def live_ms(parts: list[StreamDay]) -> int:
    """Time covered by the parts' spans, overlaps counted once."""
    total = 0
    reach = None
    for start, end in sorted((p.live_from_ms, p.live_to_ms) for p in parts):
        if reach is None or start >= reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def merged_gifters(parts: list[StreamDay], n: int) -> tuple[bool, tuple[TopGifter, ...]]:
    """The ``n`` top gifters of the parts added up per user, most coins first and ties by
    user id; and whether every part was exact."""
    exact = all(part.exact for part in parts)
    rows = top_gifters((row for part in parts for row in part.gifters), n)
    return exact, tuple(TopGifter(user, coins, gifts) for user, coins, gifts in rows)


class CreatorDays:
    """The latest part of every stream of every creator's open days of one partition of
    the parts topic, added up on demand, and the latest time of every input partition.

    A day is final for a creator once it is over in event time: ``clock``, the least
    partition time of the input partitions (those with no event yet left out; -1 until
    every one has reported), has passed the day's end plus the grace period (until then
    she may go live again that day); and every stream of hers that touched it has ended
    or gone past that too. An input partition writes its time after its parts, so by
    then every part it wrote up to that time is here. The record is then written once
    more, marked final, and the day forgotten (remembered in ``finished``, so a
    straggling part cannot reopen it with partial figures).
    """

    def __init__(
        self,
        time_zone: str = "UTC",
        grace_ms: int = 10_000,
        usd_per_coin: float = 0.005,
        top_gifters: int = 5,
        finished_memory: int = 100_000,
    ) -> None:
        self.time_zone = time_zone
        self.grace_ms = grace_ms
        self.usd_per_coin = usd_per_coin
        self.top_gifters = top_gifters
        self.finished_memory = finished_memory
        # (creator, day) -> stream id -> its latest part
        self.days: dict[tuple[str, str], dict[str, StreamDay]] = {}
        # the next midnight of each open day (the part's own, so no calendar is needed)
        self.ends: dict[tuple[str, str], int] = {}
        self.finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.changed: set[tuple[str, str]] = set()
        # input partition -> its latest time; how many input partitions there are
        self.times: dict[int, int] = {}
        self.partitions = 0
        # how far event time has got on every input partition (-1: not known yet)
        self.clock = -1

    def apply(self, part: StreamDay, day_end_ms: int) -> bool:
        """Take a stream's part of a day whose next midnight is ``day_end_ms``; whether it
        changed anything (False for a replayed or older part, or a finished day)."""
        key = (part.creator_id, part.day)
        if key in self.finished:
            return False
        streams = self.days.get(key)
        if streams is None:
            streams = self.days[key] = {}
            self.ends[key] = day_end_ms
        held = streams.get(part.stream_id)
        if held is not None and (held == part or not part.newer_than(held)):
            return False
        streams[part.stream_id] = part
        self.changed.add(key)
        return True

    def note_time(self, time: PartitionTime) -> None:
        """Take an input partition's latest time, and work out the clock again."""
        if not 0 <= time.partition < time.partitions:
            return  # not a time livepulse writes
        self.times[time.partition] = time.time_ms
        self.partitions = max(self.partitions, time.partitions)
        if len(self.times) < self.partitions:
            self.clock = -1  # not heard from every input partition yet
            return
        self.clock = min((t for t in self.times.values() if t != NO_TIME), default=-1)

    def newest_day(self) -> str | None:
        """The latest calendar day any open day is of: today, in event time."""
        return max((day for _, day in self.days), default=None)

    def coins_on(self, day: str) -> dict[str, int]:
        """Coins of each creator with an open ``day``."""
        return {
            creator: sum(p.coins for p in streams.values())
            for (creator, on), streams in self.days.items()
            if on == day
        }

    def is_final(self, key: tuple[str, str]) -> bool:
        """Whether the day is over (``clock`` past its end plus the grace) and every
        stream of hers that touched it has ended or gone past that."""
        closes = self.ends[key] + self.grace_ms
        if self.clock < closes:
            return False
        return all(p.ended or p.stream_time_ms >= closes for p in self.days[key].values())

    def record(self, key: tuple[str, str]) -> CreatorDay:
        """The creator's day as the parts held now say."""
        parts = sorted(self.days[key].values(), key=lambda p: (p.started_ms, p.stream_id))
        creator_id, day = key
        coins = sum(p.coins for p in parts)
        exact, top = merged_gifters(parts, self.top_gifters)
        time_live = live_ms(parts)
        return CreatorDay(
            creator_id=creator_id,
            day=day,
            time_zone=self.time_zone,
            likes=sum(p.likes for p in parts),
            gifts=sum(p.gifts for p in parts),
            coins=coins,
            creator_usd=round(coins * self.usd_per_coin, 4),
            # a session started that day is live from its start, not from midnight
            sessions=sum(1 for p in parts if p.started_ms >= p.live_from_ms),
            streams=tuple(p.stream_id for p in parts),
            live_ms=time_live,
            minutes_live=time_live // 60_000,
            peak_tier=_highest(p.peak_tier for p in parts),
            peak_viewers=max(p.peak_viewers for p in parts),
            top_gifters=top,
            top_gifters_exact=exact,
            final=self.is_final(key),
            stream_time_ms=max(p.stream_time_ms for p in parts),
        )

    def flush(self) -> list[CreatorDay]:
        """The records of every day that changed since the last flush, and of every day
        that became final (then forgotten), by key."""
        out: list[CreatorDay] = []
        for key in sorted(self.changed | {k for k in self.days if self.is_final(k)}):
            record = self.record(key)
            out.append(record)
            if record.final:
                self._finish(key)
        self.changed.clear()
        return out

    def close(self, key: tuple[str, str]) -> None:
        """Forget a day known to be final (its record was written as such before)."""
        self.days.pop(key, None)
        self.ends.pop(key, None)
        self.changed.discard(key)
        self._finish(key)

    def _finish(self, key: tuple[str, str]) -> None:
        self.days.pop(key, None)
        self.ends.pop(key, None)
        self.finished[key] = None
        while len(self.finished) > self.finished_memory:
            self.finished.popitem(last=False)


Gifters = dict[str, tuple[int, int]]  # user -> (coins, gifts)


def _minus(a: Gifters, b: Gifters) -> Gifters:
    """Per user, ``a`` less ``b``; users left with nothing dropped."""
    out: Gifters = {}
    for user, (coins, gifts) in a.items():
        less = b.get(user)
        if less is not None:
            coins, gifts = coins - less[0], gifts - less[1]
        if coins > 0 or gifts > 0:
            out[user] = (coins, gifts)
    return out


def day_part(
    creator_id: str,
    day: str,
    stream_id: str,
    started_ms: int,
    live: tuple[int, int],
    figures: tuple[int, int, int],
    peaks: tuple[Tier, int],
    gifters: Gifters,
    exact: bool,
    ended: bool,
    stream_time_ms: int,
) -> StreamDay:
    """A stream's part of ``day``: live ``live`` (from, to), its likes, gifts and coins
    that day, its peak tier and viewers, and its gifters that day."""
    return StreamDay(
        creator_id,
        day,
        stream_id,
        started_ms,
        live[0],
        live[1],
        figures[0],
        figures[1],
        figures[2],
        peaks[0],
        peaks[1],
        tuple(sorted((u, c, g) for u, (c, g) in gifters.items())),
        exact,
        ended,
        stream_time_ms,
    )


class DayLedger:
    """One stream's account of the calendar day its time is in.

    The stream's session figures keep running across midnight; the ledger holds what they
    were when the current day began (``base_*``), so the day's figures are the session's
    less those. When the stream's time passes midnight plus the grace period (no event of
    the old day can count any more), :meth:`close_day` hands the old day's part to
    ``finished`` and moves the base to midnight. Peaks seen at a time past midnight before
    then wait in ``next_*``.
    """

    __slots__ = (
        "base_coins",
        "base_gifters",
        "base_gifts",
        "base_likes",
        "day",
        "day_end_ms",
        "day_start_ms",
        "finished",
        "next_peak_tier",
        "next_peak_viewers",
        "peak_tier",
        "peak_viewers",
    )

    def __init__(self, day: str, day_start_ms: int, day_end_ms: int) -> None:
        self.day = day
        self.day_start_ms = day_start_ms
        self.day_end_ms = day_end_ms
        self.base_likes = self.base_gifts = self.base_coins = 0
        self.base_gifters: Gifters = {}
        self.peak_tier = Tier.LOW
        self.peak_viewers = 0
        self.next_peak_tier = Tier.LOW
        self.next_peak_viewers = 0
        self.finished: list[StreamDay] = []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DayLedger):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def copy(self) -> DayLedger:
        """A ledger with the same account (the finished parts not copied)."""
        twin = DayLedger(self.day, self.day_start_ms, self.day_end_ms)
        twin.base_likes, twin.base_gifts, twin.base_coins = (
            self.base_likes,
            self.base_gifts,
            self.base_coins,
        )
        twin.base_gifters = self.base_gifters
        twin.peak_tier, twin.peak_viewers = self.peak_tier, self.peak_viewers
        twin.next_peak_tier, twin.next_peak_viewers = self.next_peak_tier, self.next_peak_viewers
        return twin

    def note_tier(self, from_tier: Tier, to_tier: Tier, at_ms: int) -> None:
        """A tier change at stream time ``at_ms``. Past midnight, the tier it leaves
        counts too: the first such change leaves the tier the stream had at midnight. A
        change at midnight itself leaves a tier the stream had only before it: the old
        day's (which has it already), not the new day's."""
        if at_ms > self.day_end_ms:
            self.next_peak_tier = _highest((self.next_peak_tier, from_tier, to_tier))
        elif at_ms == self.day_end_ms:
            self.next_peak_tier = _highest((self.next_peak_tier, to_tier))
        else:
            self.peak_tier = _highest((self.peak_tier, to_tier))

    def note_viewers(self, count: int, ts_ms: int) -> None:
        if ts_ms >= self.day_end_ms:
            self.next_peak_viewers = max(self.next_peak_viewers, count)
        else:
            self.peak_viewers = max(self.peak_viewers, count)

    def part(
        self,
        creator_id: str,
        stream_id: str,
        started_ms: int,
        session: tuple[int, int, int],
        gifters: Gifters,
        exact: bool,
        stream_time_ms: int,
        ended: bool,
    ) -> StreamDay:
        """The current day's part, from the session's figures (likes, gifts, coins) and
        gifters now."""
        likes, gifts, coins = session
        mine = _minus(gifters, self.base_gifters) if self.base_gifters else gifters
        return day_part(
            creator_id,
            self.day,
            stream_id,
            started_ms,
            (
                max(started_ms, self.day_start_ms),
                max(min(stream_time_ms, self.day_end_ms), self.day_start_ms),
            ),
            (likes - self.base_likes, gifts - self.base_gifts, coins - self.base_coins),
            (self.peak_tier, self.peak_viewers),
            mine,
            exact,
            ended,
            stream_time_ms,
        )

    def close_day(
        self,
        creator_id: str,
        stream_id: str,
        started_ms: int,
        session: tuple[int, int, int],
        after: tuple[int, int, int],
        gifters: Gifters,
        gifters_after: Gifters,
        exact: bool,
        stream_time_ms: int,
        tier: Tier,
        next_day: tuple[str, int, int],
    ) -> None:
        """Finish the current day: ``after`` and ``gifters_after`` are what the session
        counted at or after midnight (the stream's windows still hold it all); ``tier``
        the stream's tier now, reached at or after midnight."""
        before = (session[0] - after[0], session[1] - after[1], session[2] - after[2])
        gifters_before = _minus(gifters, gifters_after) if gifters_after else gifters
        self.finished.append(
            self.part(
                creator_id,
                stream_id,
                started_ms,
                before,
                gifters_before,
                exact,
                max(stream_time_ms, self.day_end_ms),
                False,
            )
        )
        self.base_likes, self.base_gifts, self.base_coins = before
        self.base_gifters = gifters_before
        self.day, self.day_start_ms, self.day_end_ms = next_day
        self.peak_tier = _highest((self.next_peak_tier, tier))
        self.peak_viewers = self.next_peak_viewers
        self.next_peak_tier, self.next_peak_viewers = Tier.LOW, 0
