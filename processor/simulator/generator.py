"""Deterministic generator of contract-v1 live-stream events (pure: no Kafka, no wall clock).

Model (all randomness from one ``random.Random(seed)``; time is a virtual clock):

* **Clock.** Ticks are spaced ``1000 / rate`` ms from ``start_ms``; every tick emits one
  event of one stream, so ``rate`` is the total event rate. Per-stream ``viewers`` events
  (every ``viewers_interval_s``) and the ``live_start``/``live_end``/streak-closing events
  come on top. Timestamps are integer ms and never decrease.
* **Heat.** Each stream holds a stratified lognormal quantile ``z`` of N(0, 1): stream slot
  ``i`` of ``N`` draws ``z`` inside the ``i``-th ``1/N`` quantile band, so every seed gets the
  same heavy-tailed shape (a few hot streams, a long cold tail). A stream's share of ticks is
  proportional to ``exp(heat_sigma * z)``; its viewer median is
  ``viewers_median * exp(viewers_sigma * z)`` (median ~15, tail into the thousands). Hot rooms
  also have a larger share of like events and larger like batches (many tappers); cold rooms
  mostly see single likes, joins and comments.
* **Likes.** ``count`` is 1-15; ``total`` is the room's running total. A fraction
  ``like_drop`` of like events is dropped upstream: their counts still grow ``total``.
* **Gifts.** A fixed catalogue (:data:`GIFTS`), weights heavy-tailed. A streakable gift opens
  a combo: one event per step with growing ``repeat_count`` (``repeat_end`` false), then one
  closing event repeating the final ``repeat_count`` with ``repeat_end`` true; all share a
  ``streak_id``. Non-streakable gifts are one event (``repeat_count`` 1, ``repeat_end`` true).
  ``gifter_share`` of a room's users (the first ones of its pool) send ``gifter_gift_share``
  of its gifts.
* **Hype.** Each stream enters a hype burst every ``hype_every_s`` on average (exponential
  gaps), lasting ``hype_duration_s`` and multiplying its share of ticks (and its viewers) by
  ``hype_multiplier``. Bursts are reported, without changing the events, to an ``on_burst``
  callback of :func:`generate` (or collected by :func:`generate_with_bursts`) as
  :class:`Burst` records: the ground truth a spike detector can be scored against.
* **Users.** Each stream draws a fixed pool of user ids when it starts (about 6 per median
  viewer, 12 to 20,000) and every user event picks from it, so the same users like, comment
  and gift again over the stream's whole life. Its gifters are a fixed subset of that pool,
  so repeat gifters (and a stable top of gifters) are part of the model, not an accident.
* **Lifetime.** With ``mean_lifetime_s`` set, a stream ends after an exponential lifetime and
  a new stream (new ids, same heat band) starts in its place, keeping N concurrent.
* **Creators.** By default every stream is a new creator's. With ``creators`` set (at least
  ``streams``), a fixed pool of creators takes turns: each creator has her own heat (a
  stratified quantile over the pool) and her own fans (the user pool, so her gifters come
  back session after session); a stream that ends sends its creator to the back of the
  queue of those offline, and the creator offline longest starts the next stream. With a
  lifetime, every creator goes live again and again (about every
  ``creators / streams * mean_lifetime_s``): several sessions a day, and any session open at
  midnight (virtual time from ``start_ms``, or the wall clock in realtime) crosses it.
* **End.** When ``duration_s`` or ``max_events`` is reached and ``end_streams`` is set, every
  open streak is closed and every stream gets ``live_end`` (reason ``ended``, rarely
  ``suspended``); ``max_events`` then counts these closing events too.

Ids: ``event_id`` is ``"{seed}-{start_ms}-{n}"`` and ``stream_id`` is
``"live-{seed}-{start_ms}-{k}"``: deterministic for a config, and distinct between runs
started at different times.
"""

from __future__ import annotations

import heapq
import math
import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random
from statistics import NormalDist
from typing import Any, BinaryIO, TypeVar

import orjson

from processor.contract import (
    Comment,
    Event,
    EventBase,
    Follow,
    Gift,
    Join,
    Like,
    LiveEnd,
    LiveStart,
    Share,
    Viewers,
    encode_event,
)

MIN_TS_MS = 1_000_000_000_000
MAX_TS_MS = 9_999_999_999_999


@dataclass(frozen=True, slots=True)
class CatalogueGift:
    """One entry of the gift catalogue (what a ``gift`` event sends)."""

    gift_id: int
    name: str
    coins: int
    streakable: bool
    weight: float


GIFTS: tuple[CatalogueGift, ...] = (
    CatalogueGift(5655, "Rose", 1, True, 42.0),
    CatalogueGift(5269, "TikTok", 1, True, 14.0),
    CatalogueGift(5827, "Ice Cream Cone", 1, True, 12.0),
    CatalogueGift(5487, "Finger Heart", 5, True, 14.0),
    CatalogueGift(5879, "Doughnut", 30, True, 9.0),
    CatalogueGift(5660, "Hand Hearts", 100, True, 4.0),
    CatalogueGift(7168, "Money Gun", 500, False, 1.6),
    CatalogueGift(11046, "Galaxy", 1000, False, 0.8),
    CatalogueGift(6369, "Lion", 29999, False, 0.05),
    CatalogueGift(7312, "Universe", 44999, False, 0.02),
)

COMMENTS: tuple[str, ...] = (
    "hi!",
    "hello from Brazil 🇧🇷",
    "love this song",
    "🔥🔥🔥",
    "first time here",
    "can you say hi to me?",
    "what game is this?",
    "lol",
    "❤️❤️",
    "you're so good at this",
    "where are you from?",
    "tap tap tap",
    "goal: 10k likes!",
    "thanks for the follow",
    "who else is here from the FYP?",
    "W stream",
    "play it again 🙏",
    "good night everyone",
    "😂😂😂",
    "how old are you?",
    "rose for the host 🌹",
    "let's gooo",
    "this is so relaxing",
    "ok but the outfit though",
)

_TITLE_MOODS = ("Late night", "Sunday", "Chill", "Crazy", "Cozy", "Morning", "Epic", "Lazy")
_TITLE_TOPICS = (
    "gaming session",
    "Q&A",
    "cooking stream",
    "karaoke",
    "study with me",
    "dance practice",
    "art stream",
    "music jam",
    "just chatting",
    "fishing trip",
)


@dataclass(frozen=True, slots=True)
class Burst:
    """One hype burst of one stream: its share of ticks (and its viewers) were multiplied by
    ``multiplier`` for the events with ``start_ms <= ts < end_ms``.

    ``cut`` is true when the burst was cut short by its stream ending (a turnover, or the end
    of the run) before its drawn duration was over.
    """

    stream_id: str
    start_ms: int
    end_ms: int
    multiplier: float
    cut: bool = False


BurstCallback = Callable[[Burst], None]

_VIEWERS = 0
_HYPE_ON = 1
_HYPE_OFF = 2
_LIFE_END = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """Parameters of one simulated run; the same config always yields the same events."""

    start_ms: int
    streams: int = 20
    rate: float = 500.0
    duration_s: float | None = None
    max_events: int | None = None
    seed: int = 1
    end_streams: bool = True
    mean_lifetime_s: float | None = None
    heat_sigma: float = 3.0
    viewers_median: float = 15.0
    viewers_sigma: float = 2.2
    viewers_interval_s: float = 5.0
    like_drop: float = 0.10
    hype_every_s: float = 600.0
    hype_duration_s: tuple[float, float] = (60.0, 240.0)
    hype_multiplier: tuple[float, float] = (3.0, 5.0)
    gifter_share: float = 0.20
    gifter_gift_share: float = 0.80
    suspended_share: float = 0.03
    creators: int | None = None

    def __post_init__(self) -> None:
        checks: tuple[tuple[bool, str], ...] = (
            (MIN_TS_MS <= self.start_ms <= MAX_TS_MS, "start_ms must be epoch milliseconds"),
            (self.streams >= 1, "streams must be >= 1"),
            (self.rate > 0, "rate must be > 0"),
            (self.duration_s is None or self.duration_s > 0, "duration_s must be > 0"),
            (self.max_events is None or self.max_events >= 0, "max_events must be >= 0"),
            (self.mean_lifetime_s is None or self.mean_lifetime_s > 0, "mean_lifetime_s > 0"),
            (self.heat_sigma >= 0 and self.viewers_sigma >= 0, "sigmas must be >= 0"),
            (self.viewers_median > 0, "viewers_median must be > 0"),
            (self.viewers_interval_s > 0, "viewers_interval_s must be > 0"),
            (0 <= self.like_drop < 1, "like_drop must be in [0, 1)"),
            (self.hype_every_s > 0, "hype_every_s must be > 0"),
            (0 < self.hype_duration_s[0] <= self.hype_duration_s[1], "bad hype_duration_s"),
            (0 < self.hype_multiplier[0] <= self.hype_multiplier[1], "bad hype_multiplier"),
            (0 < self.gifter_share <= 1 and 0 <= self.gifter_gift_share <= 1, "bad gifters"),
            (0 <= self.suspended_share <= 1, "suspended_share must be in [0, 1]"),
            (
                self.creators is None or self.creators >= self.streams,
                "creators must be >= streams (a creator is live in one stream at a time)",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class _Stream:
    __slots__ = (
        "c_comment",
        "c_follow",
        "c_gift",
        "c_join",
        "c_like",
        "creator_id",
        "gen",
        "gifters",
        "heat",
        "hype_start",
        "like_k",
        "mult",
        "streaks",
        "stream_id",
        "total",
        "users",
        "viewers",
    )

    def __init__(
        self,
        stream_id: str,
        creator_id: str,
        z: float,
        gen: int,
        config: SimulationConfig,
        rng: Random,
        users: list[str] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.creator_id = creator_id
        self.gen = gen
        self.heat = math.exp(config.heat_sigma * z)
        self.mult = 1.0
        self.hype_start = -1  # ts at which the open hype burst began; -1: none open
        self.total = 0
        self.viewers = config.viewers_median * math.exp(config.viewers_sigma * z)
        if users is None:
            pool = max(12, min(20_000, int(self.viewers * 6)))
            users = [f"u{rng.randrange(100_000_000):08d}" for _ in range(pool)]
        self.users = users
        self.gifters = users[: max(1, int(len(users) * config.gifter_share))]
        p_like = min(0.70, max(0.12, 0.25 + 0.15 * z))
        self.like_k = min(12.0, max(1.0, 8.0 - 2.5 * z))
        rest = 1.0 - p_like
        self.c_like = p_like
        self.c_comment = p_like + rest * 0.40
        self.c_join = self.c_comment + rest * 0.30
        self.c_gift = self.c_join + rest * 0.17
        self.c_follow = self.c_gift + rest * 0.08
        self.streaks: list[list[Any]] = []


class _Creator:
    """A creator of the pool (``SimulationConfig.creators``): her heat and, once she has
    gone live, her fans."""

    __slots__ = ("creator_id", "users", "z")

    def __init__(self, creator_id: str, z: float) -> None:
        self.creator_id = creator_id
        self.z = z
        self.users: list[str] | None = None


E = TypeVar("E", bound=EventBase)


def _event(kind: type[E], stream: _Stream, event_id: str, ts: int, **fields: Any) -> E:
    """An event of ``kind`` of ``stream``: the contract's header, then ``fields``."""
    return kind(
        v=1,
        event_id=event_id,
        stream_id=stream.stream_id,
        creator_id=stream.creator_id,
        ts=ts,
        **fields,
    )


def generate(config: SimulationConfig, on_burst: BurstCallback | None = None) -> Iterator[Event]:
    """Yield the run's events (the contract's Structs) in non-decreasing ``ts`` order (see
    the module docstring).

    ``on_burst`` (optional) is called with every hype burst, once it is over: when the burst
    ends, when its stream ends, or when the run stops (``end_ms`` is then the last tick's ts
    + 1). Calls come in the order bursts end and never change the events.
    """
    rng = Random(config.seed)
    rand = rng.random
    expo = rng.expovariate
    uniform = rng.uniform
    run = f"{config.seed}-{config.start_ms}"
    prefix = run + "-"
    start_ms = config.start_ms
    step_ms = 1000.0 / config.rate
    end_ms = math.inf if config.duration_s is None else start_ms + config.duration_s * 1000.0
    limit = math.inf if config.max_events is None else config.max_events
    end_streams = config.end_streams
    close_cost = 1 if end_streams else 0
    like_drop = config.like_drop
    gifter_p = config.gifter_gift_share
    viewers_ms = config.viewers_interval_s * 1000.0
    hype_gap = config.hype_every_s * 1000.0
    lifetime = None if config.mean_lifetime_s is None else config.mean_lifetime_s * 1000.0
    gift_cum = _cumulative([g.weight for g in GIFTS])
    gift_total = gift_cum[-1]
    gift_cum[-1] = math.inf
    gifts = GIFTS
    comments = COMMENTS
    n_comments = len(comments)

    n = 0
    started = 0
    seq = 0
    pending = 0
    heap: list[tuple[float, int, int, int, int]] = []

    n_streams = config.streams
    if config.max_events is not None:
        n_streams = min(n_streams, config.max_events // (1 + close_cost))
    if n_streams <= 0:
        return
    order = list(range(config.streams))
    rng.shuffle(order)
    bands = order[:n_streams]
    inv_cdf = NormalDist().inv_cdf

    def band_z(slot: int) -> float:
        return inv_cdf((bands[slot] + uniform(0.2, 0.8)) / config.streams)

    # The creator pool (config.creators): the live one of each slot, and those offline,
    # longest offline first.
    live: list[_Creator] = []
    offline: deque[_Creator] = deque()
    if config.creators is not None:
        pool_order = list(range(config.creators))
        rng.shuffle(pool_order)
        for number, band in enumerate(pool_order):
            z = inv_cdf((band + uniform(0.2, 0.8)) / config.creators)
            offline.append(_Creator(f"c{config.seed}-{number:05d}", z))

    def schedule(at: float, kind: int, slot: int, gen: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, seq, kind, slot, gen))

    def open_stream(slot: int, t: int) -> tuple[_Stream, Event]:
        nonlocal started, n
        stream_id = f"live-{run}-{started}"
        if config.creators is None:
            creator_id = f"c{rng.randrange(1_000_000):06d}"
            stream = _Stream(stream_id, creator_id, band_z(slot), started, config, rng)
        else:
            creator = offline.popleft()
            if slot < len(live):
                live[slot] = creator
            else:
                live.append(creator)
            stream = _Stream(
                stream_id, creator.creator_id, creator.z, started, config, rng, creator.users
            )
            creator.users = stream.users
        started += 1
        schedule(t + uniform(0.0, viewers_ms), _VIEWERS, slot, stream.gen)
        schedule(t + expo(1.0) * hype_gap, _HYPE_ON, slot, stream.gen)
        if lifetime is not None:
            schedule(t + expo(1.0) * lifetime, _LIFE_END, slot, stream.gen)
        title = f"{rng.choice(_TITLE_MOODS)} {rng.choice(_TITLE_TOPICS)}"
        event = _event(LiveStart, stream, prefix + str(n), t, title=title)
        n += 1
        return stream, event

    def burst_over(stream: _Stream, t: int, cut: bool) -> None:
        if stream.hype_start >= 0:
            if on_burst is not None:
                on_burst(Burst(stream.stream_id, stream.hype_start, t, stream.mult, cut))
            stream.hype_start = -1

    def close_stream(stream: _Stream, t: int) -> Iterator[Event]:
        nonlocal n
        burst_over(stream, t + 1, True)  # events at t (streak closes, live_end) are in it
        for sid, gift, user, count in stream.streaks:
            yield _gift_event(stream, prefix + str(n), t, user, gift, count, sid, True)
            n += 1
        stream.streaks.clear()
        reason = "suspended" if rand() < config.suspended_share else "ended"
        yield _event(LiveEnd, stream, prefix + str(n), t, reason=reason)
        n += 1

    streams: list[_Stream] = []
    for slot in range(n_streams):
        stream, event = open_stream(slot, start_ms)
        streams.append(stream)
        yield event
    if end_streams:
        pending = n_streams

    cum: list[float] = []
    total_w = 0.0

    def reweigh() -> None:
        nonlocal cum, total_w
        cum = _cumulative([s.heat * s.mult for s in streams])
        total_w = cum[-1]
        cum[-1] = math.inf

    reweigh()
    next_due = heap[0][0]
    tick = 0
    last_t = start_ms
    while True:
        t = start_ms + int(tick * step_ms)
        if t >= end_ms:
            break
        room = limit - n - pending
        if room <= 0:
            break
        tick += 1
        last_t = t
        if t >= next_due:
            dirty = False
            while heap and heap[0][0] <= t:
                _, _, kind, slot, gen = heapq.heappop(heap)
                stream = streams[slot]
                if gen != stream.gen:
                    continue
                if kind == _VIEWERS:
                    if limit - n - pending <= 0:
                        continue
                    count = int(stream.viewers * stream.mult * rng.lognormvariate(0.0, 0.25))
                    yield _event(Viewers, stream, prefix + str(n), t, count=count)
                    n += 1
                    schedule(t + viewers_ms, _VIEWERS, slot, gen)
                elif kind == _HYPE_ON:
                    stream.mult = uniform(*config.hype_multiplier)
                    stream.hype_start = t
                    schedule(t + uniform(*config.hype_duration_s) * 1000.0, _HYPE_OFF, slot, gen)
                    dirty = True
                elif kind == _HYPE_OFF:
                    burst_over(stream, t, False)
                    stream.mult = 1.0
                    schedule(t + expo(1.0) * hype_gap, _HYPE_ON, slot, gen)
                    dirty = True
                elif limit - n - pending >= 3:
                    pending -= len(stream.streaks) * close_cost
                    yield from close_stream(stream, t)
                    if live:
                        offline.append(live[slot])
                    streams[slot], event = open_stream(slot, t)
                    yield event
                    dirty = True
                else:
                    schedule(t + 1000.0, _LIFE_END, slot, gen)
            if dirty:
                reweigh()
            next_due = heap[0][0] if heap else math.inf
            room = limit - n - pending
            if room <= 0:
                break

        stream = streams[bisect_right(cum, rand() * total_w)]
        event_id = prefix + str(n)
        r = rand()
        if r < stream.c_like or room < 2:
            k = stream.like_k
            total = stream.total
            while rand() < like_drop:
                total += 1 + int(rand() ** k * 15)
            count = 1 + int(rand() ** k * 15)
            total += count
            stream.total = total
            users = stream.users
            user = users[int(rand() * len(users))]
            yield _event(Like, stream, event_id, t, user_id=user, count=count, total=total)
        elif r < stream.c_comment:
            users = stream.users
            user = users[int(rand() * len(users))]
            text = comments[int(rand() * n_comments)]
            yield _event(Comment, stream, event_id, t, user_id=user, text=text)
        elif r < stream.c_join:
            users = stream.users
            yield _event(Join, stream, event_id, t, user_id=users[int(rand() * len(users))])
        elif r < stream.c_gift:
            streaks = stream.streaks
            if streaks and (len(streaks) >= 3 or rand() < 0.8):
                streak = streaks[int(rand() * len(streaks))]
                sid, gift, user, count = streak
                if rand() < 0.35 / (1.0 + 0.05 * count):
                    streaks.remove(streak)
                    pending -= close_cost
                    yield _gift_event(stream, event_id, t, user, gift, count, sid, True)
                else:
                    count += 1 if rand() < 0.85 else 2
                    streak[3] = count
                    yield _gift_event(stream, event_id, t, user, gift, count, sid, False)
            else:
                gift = gifts[bisect_right(gift_cum, rand() * gift_total)]
                pool = stream.gifters if rand() < gifter_p else stream.users
                user = pool[int(rand() * len(pool))]
                if gift.streakable:
                    streaks.append([event_id, gift, user, 1])
                    pending += close_cost
                    yield _gift_event(stream, event_id, t, user, gift, 1, event_id, False)
                else:
                    yield _gift_event(stream, event_id, t, user, gift, 1, event_id, True)
        else:
            users = stream.users
            user = users[int(rand() * len(users))]
            if r < stream.c_follow:
                yield _event(Follow, stream, event_id, t, user_id=user)
            else:
                yield _event(Share, stream, event_id, t, user_id=user)
        n += 1

    if end_streams:
        for stream in streams:
            yield from close_stream(stream, last_t)
    else:
        for stream in streams:
            burst_over(stream, last_t + 1, True)


def generate_with_bursts(config: SimulationConfig) -> tuple[list[Event], list[Burst]]:
    """All events of a run and all its hype bursts (ordered by start, then stream id)."""
    bursts: list[Burst] = []
    events = list(generate(config, bursts.append))
    bursts.sort(key=lambda b: (b.start_ms, b.stream_id))
    return events, bursts


def _gift_event(
    stream: _Stream,
    event_id: str,
    t: int,
    user: str,
    gift: CatalogueGift,
    repeat_count: int,
    streak_id: str,
    repeat_end: bool,
) -> Gift:
    return _event(
        Gift,
        stream,
        event_id,
        t,
        user_id=user,
        gift_id=gift.gift_id,
        gift_name=gift.name,
        coins=gift.coins,
        repeat_count=repeat_count,
        streakable=gift.streakable,
        streak_id=streak_id,
        repeat_end=repeat_end,
    )


def _cumulative(weights: Iterable[float]) -> list[float]:
    out: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def write_ndjson(events: Iterable[Event], path: str | Path) -> int:
    """Write events one JSON object per line to ``path`` (``-``: stdout); return the count."""
    if str(path) == "-":
        return _write_lines(events, sys.stdout.buffer)
    with open(path, "wb", buffering=1 << 20) as fh:
        return _write_lines(events, fh)


def _write_lines(events: Iterable[Event], fh: BinaryIO) -> int:
    write = fh.write
    n = 0
    for event in events:
        write(encode_event(event) + b"\n")
        n += 1
    fh.flush()
    return n


def read_ndjson(path: str | Path) -> Iterator[bytes]:
    """Yield each non-blank line of ``path`` (``-``: stdin) as raw bytes, without its newline."""
    if str(path) == "-":
        yield from _read_lines(sys.stdin.buffer)
        return
    with open(path, "rb", buffering=1 << 20) as fh:
        yield from _read_lines(fh)


def _read_lines(fh: BinaryIO) -> Iterator[bytes]:
    for line in fh:
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if line.strip():
            yield line


def record_key(line: bytes) -> bytes | None:
    """The Kafka key (``stream_id``, UTF-8) of a raw line, or None if it has none or is not JSON."""
    return record_key_and_ts(line)[0]


def record_key_and_ts(line: bytes) -> tuple[bytes | None, int | None]:
    """``(key, ts)`` of a raw line; either is None when missing or malformed. Never raises."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    sid = obj.get("stream_id")
    ts = obj.get("ts")
    key = sid.encode() if isinstance(sid, str) and sid else None
    return key, ts if type(ts) is int else None


__all__ = [
    "COMMENTS",
    "GIFTS",
    "Burst",
    "BurstCallback",
    "CatalogueGift",
    "SimulationConfig",
    "generate",
    "generate_with_bursts",
    "read_ndjson",
    "record_key",
    "record_key_and_ts",
    "write_ndjson",
]
