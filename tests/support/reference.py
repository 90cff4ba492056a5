"""An independent, brute-force model of what the worker must publish.

It keeps every counted contribution of a stream in a plain list and recomputes each
window's sums from it at every point where the engine keeps running sums; tiers, growth,
streak rules, grace, sessions and ids are re-derived from design.md and the README, so a
bug in the engine's incremental bookkeeping cannot hide in both. Idle decay (wall-clock
driven) is not modelled: scenarios that use this model end their streams or stay inside
their windows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from processor.core.engine import EngineConfig


@dataclass
class Params:
    window_ms: int = 600_000
    step_ms: int = 10_000
    tumbling_ms: int = 60_000
    grace_ms: int = 10_000
    moderate: int = 1_000
    high: int = 10_000
    hysteresis: float = 0.10
    session_moderate: int = 1_000
    session_high: int = 10_000
    usd_per_coin: float = 0.005


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
    counted: list[tuple[int, int, int, int]] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)


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
    return EngineConfig(
        tier_window_ms=p.window_ms,
        tier_step_ms=p.step_ms,
        tumbling_ms=p.tumbling_ms,
        grace_ms=p.grace_ms,
        moderate=p.moderate,
        high=p.high,
        hysteresis=p.hysteresis,
        session_moderate=p.session_moderate,
        session_high=p.session_high,
        usd_per_coin=p.usd_per_coin,
    )


def _id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def expected_outcome(events: list[dict[str, Any]], p: Params) -> Expected:
    streams: dict[str, _Stream] = {}
    ended: set[str] = set()
    out = Expected([], [], [], 0, 0, 0, {})

    def usd(coins: int) -> float:
        return round(coins * p.usd_per_coin, 4)

    def bucket(ts: int) -> int:
        return ts - ts % p.step_ms

    def window_at(s: _Stream, t: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        start = bucket(t) - p.window_ms + p.step_ms
        return start, [c for c in s.counted if start <= bucket(c[0]) <= bucket(t)]

    def tier_of(value: int, lo: int, hi: int) -> str:
        return "high" if value >= hi else "moderate" if value >= lo else "low"

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
                    "end": bucket(at) + p.step_ms,
                    "likes": sum(c[1] for c in inside),
                    "gifts": sum(c[2] for c in inside),
                    "coins": sum(c[3] for c in inside),
                    "creator_usd": usd(sum(c[3] for c in inside)),
                },
            }
        )

    def evaluate_window(sid: str, s: _Stream, at: int) -> None:
        value = sum(c[1] for c in window_at(s, at)[1])
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
        value = sum(c[1] for c in s.counted)
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

    def close_windows(sid: str, s: _Stream, closing: list[int]) -> None:
        for start in sorted(closing):
            inside = [c for c in s.counted if start <= c[0] < start + p.tumbling_ms]
            s.closed.add(start)
            coins = sum(c[3] for c in inside)
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
                        "likes": sum(c[1] for c in inside),
                        "gifts": sum(c[2] for c in inside),
                        "coins": coins,
                        "creator_usd": usd(coins),
                    },
                }
            )

    def open_windows(s: _Stream) -> set[int]:
        return {c[0] - c[0] % p.tumbling_ms for c in s.counted} - s.closed

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
            for b in sorted({bucket(c[0]) for c in s.counted}):
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

        likes = gifts = coins = 0
        if e["type"] == "live_start":
            s.total = 0 if s.total is None else s.total
            s.started = min(s.started, ts)
        if e["type"] == "like":
            if s.total is None:
                likes, s.total = min(e["count"], e["total"]), e["total"]
            elif e["total"] > s.total:
                likes, s.total = e["total"] - s.total, e["total"]
        if e["type"] == "gift" and (not e["streakable"] or e["repeat_end"]):
            gifts, coins = e["repeat_count"], e["repeat_count"] * e["coins"]
        if likes or gifts or coins:
            s.counted.append((ts, likes, gifts, coins))
            out.likes += likes
            out.gifts += gifts
            out.coins += coins
            evaluate_window(sid, s, s.time)
            evaluate_session(sid, s, s.time)
        if e["type"] == "live_end":
            close_windows(sid, s, list(open_windows(s)))
            total_coins = sum(c[3] for c in s.counted)
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
                        "likes": sum(c[1] for c in s.counted),
                        "gifts": sum(c[2] for c in s.counted),
                        "coins": total_coins,
                        "creator_usd": usd(total_coins),
                    },
                    "peak_tier": s.peak,
                    "final_tier": s.tier,
                }
            )
            del streams[sid]
            ended.add(sid)
    return out
