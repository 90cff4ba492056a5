"""Top gifters and likers in bounded memory: Space-Saving summaries. Pure.

A :class:`Summary` tracks at most ``capacity`` users per metric (the capacity is passed
in, not stored, so a stream's many summaries cost no extra field). While it has seen at
most ``capacity`` distinct users it is exact. A new user arriving at a full summary takes
the place of the entry with the smallest ``(value, user_id)`` and inherits its value
(Metwally, Agrawal, El Abbadi, "Efficient computation of frequent and top-k elements in
data streams", 2005): every value is then an overestimate by at most ``N / capacity``
(``N`` the summary's total), and every user whose true amount exceeds ``N / capacity`` is
in it. The summary says it is no longer exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heapify, heappop, heappush, heapreplace

LikerRow = tuple[str, int]  # user, likes
GifterRow = tuple[str, int, int]  # user, coins, gifts


class Summary:
    """Likes per user and coins (with gift counts) per user over some span of event time."""

    __slots__ = (
        "_gifter_heap",
        "_liker_heap",
        "exact",
        "gifter",
        "gifter_coins",
        "gifter_gifts",
        "gifters",
        "liker",
        "liker_likes",
        "likers",
        "start",
    )

    def __init__(self, start: int = 0) -> None:
        self.start = start  # where its span of event time starts (a minute's start, or 0)
        # Most summaries (a minute of a small stream) see one liker and one gifter: held
        # in fields, they cost no dict (184 B each, and a tuple per gifter). The dicts
        # take over from the second distinct user on.
        self.liker: str | None = None
        self.liker_likes = 0
        self.gifter: str | None = None
        self.gifter_coins = 0
        self.gifter_gifts = 0
        self.likers: dict[str, int] | None = None
        self.gifters: dict[str, tuple[int, int]] | None = None  # user -> (coins, gifts)
        self.exact = True
        # once a summary is full, a min-heap of (value, user) finds the entry to evict in
        # O(log n) instead of a scan: every change pushes, stale entries are skipped when
        # popped (their value is no longer the user's) and the heap is rebuilt when they
        # pile up. Not part of the state: rebuilt from the dict when needed.
        self._liker_heap: list[tuple[int, str]] | None = None
        self._gifter_heap: list[tuple[int, str]] | None = None

    def __repr__(self) -> str:
        return (
            f"Summary(start={self.start}, exact={self.exact}, likers={self.liker_map()}, "
            f"gifters={self.gifter_map()})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return (self.start, self.exact, self.liker_rows(), self.gifter_rows()) == (
            other.start,
            other.exact,
            other.liker_rows(),
            other.gifter_rows(),
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def like(self, user: str, likes: int, capacity: int) -> None:
        """Attribute ``likes`` to ``user``."""
        likers = self.likers
        if likers is None:
            first = self.liker
            if first is None:
                self.liker = user
                self.liker_likes = likes
                return
            if first == user:
                self.liker_likes += likes
                return
            self.likers = likers = {first: self.liker_likes}
            self.liker = None
            self.liker_likes = 0
        held = likers.get(user)
        if held is not None:
            likers[user] = held = held + likes
            heap = self._liker_heap
            if heap is not None:
                if len(heap) > 2 * capacity + 16:
                    self._liker_heap = heap = [(v, u) for u, v in likers.items()]
                    heapify(heap)
                else:
                    heappush(heap, (held, user))
        elif len(likers) < capacity:
            likers[user] = likes
        else:
            heap = self._liker_heap
            if heap is None:
                self._liker_heap = heap = [(v, u) for u, v in likers.items()]
                heapify(heap)
            while True:  # the least (value, user) still current; stale entries go
                least, victim = heap[0]
                if likers.get(victim) == least:
                    break
                heappop(heap)
            del likers[victim]
            likers[user] = held = least + likes
            heapreplace(heap, (held, user))  # one sift instead of a pop and a push
            self.exact = False

    def gift(self, user: str, coins: int, gifts: int, capacity: int) -> None:
        """Attribute ``coins`` from ``gifts`` gifts to ``user``."""
        gifters = self.gifters
        if gifters is None:
            first = self.gifter
            if first is None:
                self.gifter = user
                self.gifter_coins = coins
                self.gifter_gifts = gifts
                return
            if first == user:
                self.gifter_coins += coins
                self.gifter_gifts += gifts
                return
            self.gifters = gifters = {first: (self.gifter_coins, self.gifter_gifts)}
            self.gifter = None
            self.gifter_coins = self.gifter_gifts = 0
        held = gifters.get(user)
        if held is not None:
            gifters[user] = held = (held[0] + coins, held[1] + gifts)
            heap = self._gifter_heap
            if heap is not None:
                if len(heap) > 2 * capacity + 16:
                    self._gifter_heap = heap = [(v[0], u) for u, v in gifters.items()]
                    heapify(heap)
                else:
                    heappush(heap, (held[0], user))
        elif len(gifters) < capacity:
            gifters[user] = (coins, gifts)
        else:
            heap = self._gifter_heap
            if heap is None:
                self._gifter_heap = heap = [(v[0], u) for u, v in gifters.items()]
                heapify(heap)
            while True:
                least, victim = heap[0]
                found = gifters.get(victim)
                if found is not None and found[0] == least:
                    break
                heappop(heap)
            old_coins, old_gifts = gifters.pop(victim)
            gifters[user] = (old_coins + coins, old_gifts + gifts)
            heapreplace(heap, (old_coins + coins, user))
            self.exact = False

    def liker_map(self) -> dict[str, int]:
        """Likes per tracked liker (the summary's own dict while it has one: do not change it)."""
        if self.likers is not None:
            return self.likers
        return {} if self.liker is None else {self.liker: self.liker_likes}

    def gifter_map(self) -> dict[str, tuple[int, int]]:
        """(coins, gifts) per tracked gifter (the summary's own dict while it has one)."""
        if self.gifters is not None:
            return self.gifters
        if self.gifter is None:
            return {}
        return {self.gifter: (self.gifter_coins, self.gifter_gifts)}

    def liker_rows(self) -> list[LikerRow]:
        """Every tracked liker, sorted by user."""
        return sorted(self.liker_map().items())

    def gifter_rows(self) -> list[GifterRow]:
        """Every tracked gifter, sorted by user."""
        return sorted((u, c, g) for u, (c, g) in self.gifter_map().items())

    @classmethod
    def restore(
        cls,
        exact: bool,
        likers: dict[str, int],
        gifters: dict[str, tuple[int, int]],
        start: int = 0,
    ) -> Summary:
        """A summary holding these likers and gifters (taken over, not copied)."""
        summary = cls(start)
        summary.exact = exact
        if len(likers) == 1:
            ((summary.liker, summary.liker_likes),) = likers.items()
        elif likers:
            summary.likers = likers
        if len(gifters) == 1:
            ((summary.gifter, (summary.gifter_coins, summary.gifter_gifts)),) = gifters.items()
        elif gifters:
            summary.gifters = gifters
        return summary


def top_gifters(rows: Iterable[GifterRow], n: int) -> list[GifterRow]:
    """The ``n`` top gifters of ``rows`` (user, coins, gifts) added up per user, most
    coins first and ties by user id."""
    gifts: dict[str, list[int]] = {}
    for user, coins, count in rows:
        held = gifts.get(user)
        if held is None:
            gifts[user] = [coins, count]
        else:
            held[0] += coins
            held[1] += count
    return sorted(((u, c, g) for u, (c, g) in gifts.items()), key=lambda r: (-r[1], r[0]))[:n]


def top(summaries: Iterable[Summary], n: int) -> tuple[bool, list[GifterRow], list[LikerRow]]:
    """The ``n`` top gifters (by coins) and likers (by likes) of the summaries added up per
    user, largest first and ties by user id; and whether every summary was exact."""
    exact = True
    likes: dict[str, int] = {}
    gifter_rows: list[GifterRow] = []
    for summary in summaries:
        exact = exact and summary.exact
        for user, value in summary.liker_map().items():
            likes[user] = likes.get(user, 0) + value
        gifter_rows.extend((u, c, g) for u, (c, g) in summary.gifter_map().items())
    likers = sorted(likes.items(), key=lambda item: (-item[1], item[0]))[:n]
    return exact, top_gifters(gifter_rows, n), likers
