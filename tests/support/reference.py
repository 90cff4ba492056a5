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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

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


@dataclass
class Expected:
    alerts: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    rejected: list[tuple[str, str]]  # (event_id, reason) of valid events not counted
    likes: int
    gifts: int
    coins: int
    events_by_type: dict[str, int]


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
            streams[sid] = _Stream(e["creator_id"], started=ts, time=ts)
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
            s.counted.append(_Count(ts, likes, gifts, coins, e.get("user_id", ""), liked))
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
            del streams[sid]
            ended.add(sid)
    return out
