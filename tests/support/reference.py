"""An independent, brute-force model of what the worker must publish.

It recomputes each window from the full list of counted contributions instead of
keeping running sums, and re-derives tiers, growth, streak rules and alert ids from
design.md, so a bug in the engine's incremental bookkeeping cannot hide in both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Params:
    window_ms: int = 600_000
    step_ms: int = 10_000
    moderate: int = 1_000
    high: int = 10_000
    hysteresis: float = 0.10
    usd_per_coin: float = 0.005


@dataclass
class _Stream:
    creator_id: str
    time: int = 0
    total: int | None = None
    tier: str = "low"
    transitions: int = 0
    counted: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class Expected:
    alerts: list[dict[str, Any]]
    late_event_ids: list[str]
    likes: int
    gifts: int
    coins: int
    events_by_type: dict[str, int]


RANK = {"low": 0, "moderate": 1, "high": 2}


def expected_outcome(events: list[dict[str, Any]], p: Params) -> Expected:
    streams: dict[str, _Stream] = {}
    alerts: list[dict[str, Any]] = []
    late: list[str] = []
    likes_sum = gifts_sum = coins_sum = 0
    by_type: dict[str, int] = {}

    def entry(tier: str) -> int:
        return {"low": 0, "moderate": p.moderate, "high": p.high}[tier]

    for e in events:
        s = streams.setdefault(e["stream_id"], _Stream(e["creator_id"]))
        s.time = max(s.time, e["ts"])
        current_bucket = s.time // p.step_ms * p.step_ms
        start = current_bucket - p.window_ms + p.step_ms
        likes = gifts = coins = 0
        if e["type"] == "live_start" and s.total is None:
            s.total = 0
        if e["type"] == "like":
            if s.total is None:
                likes = min(e["count"], e["total"])
                s.total = e["total"]
            elif e["total"] > s.total:
                likes = e["total"] - s.total
                s.total = e["total"]
        if e["type"] == "gift" and (not e["streakable"] or e["repeat_end"]):
            gifts, coins = e["repeat_count"], e["repeat_count"] * e["coins"]
        if e["type"] == "live_end":
            del streams[e["stream_id"]]
            by_type["live_end"] = by_type.get("live_end", 0) + 1
            continue
        if likes or gifts or coins:
            if e["ts"] // p.step_ms * p.step_ms < start:
                late.append(e["event_id"])
                continue
            s.counted.append((e["ts"], likes, gifts, coins))
            likes_sum += likes
            gifts_sum += gifts
            coins_sum += coins
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1

        inside = [c for c in s.counted if c[0] // p.step_ms * p.step_ms >= start]
        value = sum(c[1] for c in inside)
        if value >= p.high:
            new = "high"
        elif value >= p.moderate:
            new = "moderate"
        else:
            new = "low"
        if RANK[new] < RANK[s.tier]:
            # going down: leave a tier only below threshold * (1 - hysteresis)
            new = s.tier
            if new == "high" and value < p.high * (1 - p.hysteresis):
                new = "moderate"
            if new == "moderate" and value < p.moderate * (1 - p.hysteresis):
                new = "low"
        if new == s.tier:
            continue
        s.transitions += 1
        up = RANK[new] > RANK[s.tier]
        key = f"{e['stream_id']}\x1fwindow_likes\x1f{s.transitions}\x1f{new}\x1f{s.time}"
        w_coins = sum(c[3] for c in inside)
        alerts.append(
            {
                "v": 1,
                "alert_id": hashlib.sha256(key.encode()).hexdigest()[:32],
                "type": "tier_changed",
                "stream_id": e["stream_id"],
                "creator_id": s.creator_id,
                "policy": "window_likes",
                "from_tier": s.tier,
                "to_tier": new,
                "direction": "up" if up else "down",
                "value": value,
                "threshold": entry(new if up else s.tier),
                "event_time": s.time,
                "window": {
                    "start": start,
                    "end": current_bucket + p.step_ms,
                    "likes": value,
                    "gifts": sum(c[2] for c in inside),
                    "coins": w_coins,
                    "creator_usd": round(w_coins * p.usd_per_coin, 4),
                },
            }
        )
        s.tier = new
    return Expected(alerts, late, likes_sum, gifts_sum, coins_sum, by_type)
