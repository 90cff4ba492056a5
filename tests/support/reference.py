"""An independent, brute-force model of what the worker must publish.

It keeps every counted contribution of a stream in a plain list and recomputes each
window's sums from it at every point where the engine keeps running sums; tiers, growth,
streak rules, grace, sessions and ids are re-derived from docs/domain.md and the README, so a
bug in the engine's incremental bookkeeping cannot hide in both. Idle decay (wall-clock
driven) is not modelled: scenarios that use this model end their streams or stay inside
their windows.

Top users, viewers, spikes and goals are re-derived from the README's engagement section the same
way: top users are recomputed by replaying a scope's contributions, in arrival order,
through a naive Space-Saving summary (a dict and a min() over it); spike baselines and the
re-arm test are recomputed from the contribution list at every evaluation.

Creator days (the README's money view) are cut from the sessions the model keeps
(``Expected.sessions``: each one's counted contributions, viewers samples and tier changes)
by :func:`expected_creator_days`, after the fact and with no day ledger: each field is the
plain sum, union or maximum over what fell in the day.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from processor.core.engine import EngineConfig

_ENGINE = EngineConfig()  # the settings' defaults
# the model's names of the engine's parameters, where they differ
_ENGINE_NAMES = {"window_ms": "tier_window_ms", "step_ms": "tier_step_ms"}


@dataclass
class Params:
    """The parameters the model follows; by default the worker's."""

    window_ms: int = _ENGINE.tier_window_ms
    step_ms: int = _ENGINE.tier_step_ms
    tumbling_ms: int = _ENGINE.tumbling_ms
    grace_ms: int = _ENGINE.grace_ms
    moderate: int = _ENGINE.moderate
    high: int = _ENGINE.high
    hysteresis: float = _ENGINE.hysteresis
    session_moderate: int = _ENGINE.session_moderate
    session_high: int = _ENGINE.session_high
    usd_per_coin: float = _ENGINE.usd_per_coin
    top_users: int = _ENGINE.top_users
    top_users_tracked: int = _ENGINE.top_users_tracked
    spike_ratio: float = _ENGINE.spike_ratio
    spike_rearm_ratio: float = _ENGINE.spike_rearm_ratio
    spike_min_likes: int = _ENGINE.spike_min_likes
    spike_min_coins: int = _ENGINE.spike_min_coins
    spike_history_ms: int = _ENGINE.spike_history_ms
    like_goals: tuple[int, ...] = _ENGINE.like_goals
    coin_goals: tuple[int, ...] = _ENGINE.coin_goals


class _Count(NamedTuple):
    """One event's contribution: room likes (growth of total), gifts, coins, and per user."""

    ts: int
    likes: int
    gifts: int
    coins: int
    user: str
    liked: int  # the like event's count, credited to its user (not the growth)
    time: int  # the stream's time once the event was taken


@dataclass
class _Detector:
    armed: bool = True
    checked: int | None = None  # the minute of the last re-arm check or fire


@dataclass
class _Stream:
    creator_id: str
    started: int
    time: int
    total: int | None = None
    tier: str = "low"
    peak: str = "low"
    session_tier: str = "low"
    transitions: int = 0
    session_transitions: int = 0
    counted: list[_Count] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)
    viewers: list[tuple[int, int]] = field(default_factory=list)  # (ts, count), arrival order
    spikes: dict[str, _Detector] = field(
        default_factory=lambda: {"likes": _Detector(), "coins": _Detector()}
    )
    stream_id: str = ""
    ended: bool = False
    # the window tier's changes: (stream time, from, to), in order
    tiers: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Expected:
    alerts: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    rejected: list[tuple[str, str]]  # (event_id, reason) of valid events not counted
    likes: int
    gifts: int
    coins: int
    events_by_type: dict[str, int]
    # every session as the model left it (ended or still live), in order of its first event
    sessions: list[_Stream] = field(default_factory=list)


RANK = {"low": 0, "moderate": 1, "high": 2}


def engine_config(p: Params) -> EngineConfig:
    """The engine configured like the model (only a mapping: no logic is shared)."""
    values = {_ENGINE_NAMES.get(f.name, f.name): getattr(p, f.name) for f in fields(p)}
    return EngineConfig(**values)


def _id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def space_saving(
    items: list[tuple[str, int, int]], capacity: int
) -> tuple[dict[str, tuple[int, int]], bool]:
    """Replay (user, value, extra) amounts through a Space-Saving summary of ``capacity``.

    A new user at a full summary replaces the entry with the smallest (value, user) and
    inherits its value and extra. Returns the summary and whether it stayed exact.
    """
    summary: dict[str, tuple[int, int]] = {}
    exact = True
    for user, value, extra in items:
        if user in summary:
            old_value, old_extra = summary[user]
            summary[user] = (old_value + value, old_extra + extra)
        elif len(summary) < capacity:
            summary[user] = (value, extra)
        else:
            victim = min(summary, key=lambda u: (summary[u][0], u))
            old_value, old_extra = summary.pop(victim)
            summary[user] = (old_value + value, old_extra + extra)
            exact = False
    return summary, exact


def expected_outcome(events: list[dict[str, Any]], p: Params) -> Expected:
    streams: dict[str, _Stream] = {}
    ended: set[str] = set()
    out = Expected([], [], [], 0, 0, 0, {})

    def usd(coins: int) -> float:
        return round(coins * p.usd_per_coin, 4)

    def bucket(ts: int) -> int:
        return ts - ts % p.step_ms

    def minute(ts: int) -> int:
        return ts - ts % p.tumbling_ms

    def window_at(s: _Stream, t: int) -> tuple[int, list[_Count]]:
        start = bucket(t) - p.window_ms + p.step_ms
        return start, [c for c in s.counted if start <= bucket(c.ts) <= bucket(t)]

    def tier_of(value: int, lo: int, hi: int) -> str:
        return "high" if value >= hi else "moderate" if value >= lo else "low"

    def top(panes: list[list[_Count]], start: int, end: int) -> dict[str, Any]:
        """The top users of a scope: per-user sums of each pane's own summaries."""
        likers: dict[str, int] = {}
        gifters: dict[str, tuple[int, int]] = {}
        exact = True
        for pane in panes:
            liked, liked_exact = space_saving(
                [(c.user, c.liked, 0) for c in pane if c.liked], p.top_users_tracked
            )
            gave, gave_exact = space_saving(
                [(c.user, c.coins, c.gifts) for c in pane if c.coins], p.top_users_tracked
            )
            exact = exact and liked_exact and gave_exact
            for user, (likes, _) in liked.items():
                likers[user] = likers.get(user, 0) + likes
            for user, (coins, gifts) in gave.items():
                was = gifters.get(user, (0, 0))
                gifters[user] = (was[0] + coins, was[1] + gifts)
        best_gifters = sorted(gifters.items(), key=lambda kv: (-kv[1][0], kv[0]))
        best_likers = sorted(likers.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "start": start,
            "end": end,
            "exact": exact,
            "gifters": [
                {"user_id": u, "coins": coins, "gifts": gifts}
                for u, (coins, gifts) in best_gifters[: p.top_users]
            ],
            "likers": [{"user_id": u, "likes": likes} for u, likes in best_likers[: p.top_users]],
        }

    def pane(s: _Stream, start: int) -> list[_Count]:
        return [c for c in s.counted if minute(c.ts) == start]

    def viewers(s: _Stream) -> dict[str, Any] | None:
        if not s.viewers:
            return None
        current_ts, current = s.viewers[0]
        for ts, count in s.viewers:
            if ts >= current_ts:  # ties: the later one in the partition
                current_ts, current = ts, count
        counts = [count for _, count in s.viewers]
        return {
            "current": current,
            "peak": max(counts),
            "average": round(sum(counts) / len(counts), 2),
        }

    def per_viewer(s: _Stream, amount: int) -> float | None:
        counts = [count for _, count in s.viewers]
        if not counts or sum(counts) == 0:
            return None
        return round(amount * len(counts) / sum(counts), 4)

    def alert(
        sid: str,
        s: _Stream,
        policy: str,
        seq: int,
        old: str,
        new: str,
        value: int,
        at: int,
        entry: int,
    ) -> None:
        start, inside = window_at(s, at)
        end = bucket(at) + p.step_ms
        panes = sorted({minute(c.ts) for c in s.counted})
        overlapping = [m for m in panes if start - p.tumbling_ms < m < end]
        out.alerts.append(
            {
                "v": 1,
                "alert_id": _id(sid, policy, seq, new, at),
                "type": "tier_changed",
                "stream_id": sid,
                "creator_id": s.creator_id,
                "policy": policy,
                "from_tier": old,
                "to_tier": new,
                "direction": "up" if RANK[new] > RANK[old] else "down",
                "value": value,
                "threshold": entry,
                "event_time": at,
                "window": {
                    "start": start,
                    "end": end,
                    "likes": sum(c.likes for c in inside),
                    "gifts": sum(c.gifts for c in inside),
                    "coins": sum(c.coins for c in inside),
                    "creator_usd": usd(sum(c.coins for c in inside)),
                },
                "top": top([pane(s, m) for m in overlapping], minute(start), end),
                "viewers": viewers(s),
            }
        )

    def evaluate_window(sid: str, s: _Stream, at: int) -> None:
        value = sum(c.likes for c in window_at(s, at)[1])
        new = tier_of(value, p.moderate, p.high)
        if RANK[new] < RANK[s.tier]:  # down: only below threshold * (1 - hysteresis)
            new = s.tier
            if new == "high" and value < p.high * (1 - p.hysteresis):
                new = "moderate"
            if new == "moderate" and value < p.moderate * (1 - p.hysteresis):
                new = "low"
        if new != s.tier:
            s.transitions += 1
            s.tiers.append((at, s.tier, new))
            up = RANK[new] > RANK[s.tier]
            entry = {"moderate": p.moderate, "high": p.high}[new if up else s.tier]
            alert(sid, s, "window_likes", s.transitions, s.tier, new, value, at, entry)
            s.tier = new
            if RANK[new] > RANK[s.peak]:
                s.peak = new

    def evaluate_session(sid: str, s: _Stream, at: int) -> None:
        value = sum(c.likes for c in s.counted)
        new = tier_of(value, p.session_moderate, p.session_high)
        if RANK[new] > RANK[s.session_tier]:
            s.session_transitions += 1
            entry = {"moderate": p.session_moderate, "high": p.session_high}[new]
            alert(
                sid,
                s,
                "session_likes",
                s.session_transitions,
                s.session_tier,
                new,
                value,
                at,
                entry,
            )
            s.session_tier = new

    def amount_of(metric: str, c: _Count) -> int:
        return c.likes if metric == "likes" else c.coins

    def evaluate_spike(sid: str, s: _Stream, metric: str, ts: int) -> None:
        """The spike rules of the spec, every sum recomputed from the contribution list."""
        start = minute(ts)
        if start != minute(s.time):
            return
        floor = p.spike_min_likes if metric == "likes" else p.spike_min_coins
        window_start, inside = window_at(s, s.time)
        value = sum(amount_of(metric, c) for c in s.counted if minute(c.ts) == start)
        base_start = max(window_start, bucket(s.started))
        span = start - base_start
        if value < floor or span < p.spike_history_ms:
            return  # below the floor nothing is evaluated, not even the re-arm check
        # span 0 (only when spike_history_ms is 0) leaves no baseline: the spec does not say;
        # read like its span_P <= 0 rule ("only by the floor"): baseline 0, threshold = floor
        base_sum = sum(amount_of(metric, c) for c in inside) - value
        baseline = base_sum * p.tumbling_ms / span if span else 0.0
        threshold = max(floor, p.spike_ratio * baseline)
        detector = s.spikes[metric]
        last = detector.checked
        if not detector.armed and last is not None and start > last:
            # re-arm if a minute since the one it fired (or last looked) in was calm
            for previous in range(last + p.tumbling_ms, start, p.tumbling_ms):
                in_previous = sum(
                    amount_of(metric, c)
                    for c in inside
                    if previous <= bucket(c.ts) < previous + p.tumbling_ms
                )
                calm = in_previous < floor
                span_previous = previous - base_start
                if not calm and span_previous > 0:
                    before = sum(amount_of(metric, c) for c in inside if bucket(c.ts) < previous)
                    baseline_previous = before * p.tumbling_ms / span_previous
                    calm = in_previous <= p.spike_rearm_ratio * baseline_previous
                if calm:
                    detector.armed = True
                    break
            detector.checked = start
        if detector.armed and value >= threshold:
            detector.armed = False
            detector.checked = start
            out.alerts.append(
                {
                    "v": 1,
                    "alert_id": _id(sid, "spike", metric, start),
                    "type": "spike",
                    "stream_id": sid,
                    "creator_id": s.creator_id,
                    "metric": metric,
                    "value": value,
                    "baseline": round(baseline, 2),
                    "baseline_minutes": round(span / 60_000, 2),
                    "ratio": round(value / baseline, 2) if baseline else None,
                    "threshold": round(threshold, 2),
                    "minute": {"start": start, "end": start + p.tumbling_ms},
                    "event_time": s.time,
                    "top": top([pane(s, start)], start, start + p.tumbling_ms),
                    "viewers": viewers(s),
                }
            )

    def evaluate_goals(sid: str, s: _Stream, metric: str, added: int) -> None:
        goals = p.like_goals if metric == "likes" else p.coin_goals
        after = sum(amount_of(metric, c) for c in s.counted)
        for goal in goals:
            if after - added < goal <= after:
                out.alerts.append(
                    {
                        "v": 1,
                        "alert_id": _id(sid, "goal", metric, goal),
                        "type": "goal_reached",
                        "stream_id": sid,
                        "creator_id": s.creator_id,
                        "metric": metric,
                        "goal": goal,
                        "value": after,
                        "event_time": s.time,
                        "viewers": viewers(s),
                    }
                )

    def close_windows(sid: str, s: _Stream, closing: list[int]) -> None:
        for start in sorted(closing):
            inside = [c for c in s.counted if start <= c.ts < start + p.tumbling_ms]
            s.closed.add(start)
            coins = sum(c.coins for c in inside)
            out.windows.append(
                {
                    "v": 1,
                    "type": "window_closed",
                    "window_id": f"{sid}@{start}",
                    "stream_id": sid,
                    "creator_id": s.creator_id,
                    "window": {
                        "start": start,
                        "end": start + p.tumbling_ms,
                        "likes": sum(c.likes for c in inside),
                        "gifts": sum(c.gifts for c in inside),
                        "coins": coins,
                        "creator_usd": usd(coins),
                    },
                }
            )

    def open_windows(s: _Stream) -> set[int]:
        # only room counts open a tumbling window; a like event without growth does not
        return {minute(c.ts) for c in s.counted if c.likes or c.gifts or c.coins} - s.closed

    for e in events:
        sid, ts = e["stream_id"], e["ts"]
        if sid not in streams:
            if sid in ended:
                out.rejected.append((e["event_id"], "after_end"))
                continue
            streams[sid] = _Stream(e["creator_id"], started=ts, time=ts, stream_id=sid)
            out.sessions.append(streams[sid])
        s = streams[sid]
        if ts > s.time:
            # every stream time at which a bucket leaves the window, then the event's time
            for b in sorted({bucket(c.ts) for c in s.counted}):
                if bucket(s.time) < b + p.window_ms <= bucket(ts):
                    evaluate_window(sid, s, b + p.window_ms)
            s.time = ts
            close_windows(
                sid, s, [w for w in open_windows(s) if w + p.tumbling_ms + p.grace_ms <= ts]
            )
        elif ts < s.time - p.grace_ms:
            out.rejected.append((e["event_id"], "late"))
            continue
        out.events_by_type[e["type"]] = out.events_by_type.get(e["type"], 0) + 1

        likes = gifts = coins = liked = 0
        if e["type"] == "live_start":
            s.total = 0 if s.total is None else s.total
            s.started = min(s.started, ts)
        if e["type"] == "viewers":
            s.viewers.append((ts, e["count"]))
        if e["type"] == "like":
            liked = e["count"]
            if s.total is None:
                likes, s.total = min(e["count"], e["total"]), e["total"]
            elif e["total"] > s.total:
                likes, s.total = e["total"] - s.total, e["total"]
        if e["type"] == "gift" and (not e["streakable"] or e["repeat_end"]):
            gifts, coins = e["repeat_count"], e["repeat_count"] * e["coins"]
        if likes or gifts or coins or liked:
            s.counted.append(_Count(ts, likes, gifts, coins, e.get("user_id", ""), liked, s.time))
        if likes or gifts or coins:
            out.likes += likes
            out.gifts += gifts
            out.coins += coins
            evaluate_window(sid, s, s.time)
            evaluate_session(sid, s, s.time)
            if likes:
                evaluate_spike(sid, s, "likes", ts)
            if coins:
                evaluate_spike(sid, s, "coins", ts)
            if likes:
                evaluate_goals(sid, s, "likes", likes)
            if coins:
                evaluate_goals(sid, s, "coins", coins)
        if e["type"] == "live_end":
            close_windows(sid, s, list(open_windows(s)))
            total_likes = sum(c.likes for c in s.counted)
            total_coins = sum(c.coins for c in s.counted)
            out.alerts.append(
                {
                    "v": 1,
                    "alert_id": _id(sid, "stream_ended", s.time),
                    "type": "stream_ended",
                    "stream_id": sid,
                    "creator_id": s.creator_id,
                    "reason": e["reason"],
                    "started_at": s.started,
                    "event_time": s.time,
                    "duration_ms": s.time - s.started,
                    "session": {
                        "likes": total_likes,
                        "gifts": sum(c.gifts for c in s.counted),
                        "coins": total_coins,
                        "creator_usd": usd(total_coins),
                    },
                    "peak_tier": s.peak,
                    "final_tier": s.tier,
                    "top": top([s.counted], s.started, s.time),
                    "viewers": viewers(s),
                    "likes_per_viewer": per_viewer(s, total_likes),
                    "coins_per_viewer": per_viewer(s, total_coins),
                }
            )
            s.ended = True
            del streams[sid]
            ended.add(sid)
    return out


def expected_creator_days(
    events: list[dict[str, Any]], p: Params, time_zone: str = "UTC"
) -> dict[tuple[str, str], dict[str, Any]]:
    """Each creator day (``live.creators``, key (creator_id, ISO day)) as the README's money
    view defines it, once all ``events`` are in, by brute force from the model's sessions.

    The sessions, what each event counted and the tier changes are the model's own (above);
    what is new here is only the cutting into days, each field from the docs:

    - days are calendar days of ``time_zone`` (the zone's own rules) and a session is split
      at midnight *by event time*: a count, a viewers sample or a tier change belongs to the
      day holding its ts (its stream time, for a tier change), midnight itself to the new day;
    - a session is live from its start (``started_at``: its first event, or an earlier
      ``live_start``) to its stream time at its end (``stream_ended``'s ``event_time``, so
      ``duration_ms`` is its time live), or to its stream time now if it has not ended; it
      is one of the ``streams`` of every day that span touches, ``sessions`` counts it on
      the day its start is in, and ``live_ms`` is the length of the union of the streams'
      spans within the day ("overlapping sessions counted once"), ``minutes_live`` its
      whole minutes;
    - likes, gifts and coins are the day's contributions (docs/domain.md's growth and combo
      rules, as the model counts them), ``creator_usd`` is coins x the rate rounded to 4
      decimals (domain.md, *Money*);
    - ``peak_tier``: the highest window tier a stream of hers was in during the day: the
      tier in force at the start of her time live that day, and every tier entered at a
      stream time within it (a tier left at midnight was the old day's);
      ``peak_viewers``: the largest viewers sample of the day, 0 without any;
    - ``top_gifters``: the day's coins and gifts per user over all her streams, most coins
      first, ties by user id (README, *Top gifters and likers*), the ``top_users`` largest;
      ``top_gifters_exact``: each stream "tracked every gifter it had": a stream's gifters
      are tracked per session in a summary of ``top_users_tracked`` users, which is exact
      while it has seen no more distinct gifters than that, up to the day's end for that
      stream (midnight's grace over, or its end);
    - a day's part of a stream is done when no event of the day can count any more: its
      stream time at midnight + grace (an event more than the grace behind stream time is
      late). So ``stream_time_ms`` is how far her streams' time got, each counted up to
      that point, and ``final`` says the day is over for her: event time (the furthest
      stream time of any stream) is past midnight + grace, and every stream of hers that
      touched the day has ended or is past that too.

    Top gifters are the exact figures; where a summary was not exact the worker publishes
    Space-Saving estimates instead, which this model does not reproduce.
    """
    zone = ZoneInfo(time_zone)

    def day_of(ts: int) -> date:
        return datetime.fromtimestamp(ts / 1000, zone).date()

    def midnight(day: date) -> int:
        return int(datetime.combine(day, time(), tzinfo=zone).timestamp() * 1000)

    sessions = expected_outcome(events, p).sessions
    clock = max((s.time for s in sessions), default=-1)
    touched: dict[tuple[str, date], list[_Stream]] = {}
    for s in sessions:
        day = day_of(s.started)
        while midnight(day) <= s.time:  # every day its span [started, time] touches
            touched.setdefault((s.creator_id, day), []).append(s)
            day += timedelta(days=1)

    def tiers_within(s: _Stream, start: int, end: int) -> list[str]:
        """The tiers the stream was in from stream time ``start`` until ``end``."""
        tier = "low"
        for at, _, new in s.tiers:
            if at <= start:
                tier = new  # in force at the start
        return [tier] + [new for at, _, new in s.tiers if start < at < end]

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (creator_id, day), streams in sorted(touched.items()):
        start, end = midnight(day), midnight(day + timedelta(days=1))
        closes = end + p.grace_ms
        streams = sorted(streams, key=lambda s: (s.started, s.stream_id))
        counted = [c for s in streams for c in s.counted if start <= c.ts < end]
        coins = sum(c.coins for c in counted)

        spans = sorted((max(s.started, start), min(s.time, end)) for s in streams)
        live = 0
        reach = start
        for span_from, span_to in spans:  # the union's length
            live += max(0, span_to - max(span_from, reach))
            reach = max(reach, span_to)

        gifters: dict[str, tuple[int, int]] = {}
        for c in counted:
            if c.coins:
                held = gifters.get(c.user, (0, 0))
                gifters[c.user] = (held[0] + c.coins, held[1] + c.gifts)
        ranked = sorted(gifters.items(), key=lambda kv: (-kv[1][0], kv[0]))[: p.top_users]
        exact = all(
            len({c.user for c in s.counted if c.coins and c.time < closes}) <= p.top_users_tracked
            for s in streams
        )
        tiers = [tier for s in streams for tier in tiers_within(s, max(s.started, start), end)]
        out[(creator_id, day.isoformat())] = {
            "v": 1,
            "creator_id": creator_id,
            "day": day.isoformat(),
            "time_zone": time_zone,
            "likes": sum(c.likes for c in counted),
            "gifts": sum(c.gifts for c in counted),
            "coins": coins,
            "creator_usd": round(coins * p.usd_per_coin, 4),
            "sessions": sum(1 for s in streams if start <= s.started < end),
            "streams": [s.stream_id for s in streams],
            "live_ms": live,
            "minutes_live": live // 60_000,
            "peak_tier": max(tiers, key=RANK.__getitem__),
            "peak_viewers": max(
                (n for s in streams for ts, n in s.viewers if start <= ts < end), default=0
            ),
            "top_gifters": [{"user_id": user, "coins": c, "gifts": g} for user, (c, g) in ranked],
            "top_gifters_exact": exact,
            "final": clock >= closes and all(s.ended or s.time >= closes for s in streams),
            "stream_time_ms": max(min(s.time, closes) for s in streams),
        }
    return out
