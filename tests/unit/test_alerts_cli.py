from typing import Any

import pytest

from processor.alerts_cli import format_alert

BASE = {
    "v": 1,
    "alert_id": "a" * 32,
    "stream_id": "s1",
    "creator_id": "c1",
    "event_time": 1_767_225_661_000,
    "emitted_at": 0,
}
WINDOW = {
    "start": 1_767_225_070_000,
    "end": 1_767_225_670_000,
    "likes": 10_000,
    "gifts": 8,
    "coins": 507,
    "creator_usd": 2.535,
}


@pytest.mark.parametrize(
    ("alert", "line"),
    [
        (
            BASE
            | {
                "type": "tier_changed",
                "policy": "window_likes",
                "from_tier": "moderate",
                "to_tier": "high",
                "direction": "up",
                "value": 10_000,
                "threshold": 10_000,
                "window": WINDOW,
            },
            "00:01:01 ▲ s1 (c1) moderate -> high: 10,000 likes in the last 600s, 8 gifts, "
            "507 coins (~$2.54 to the creator)",
        ),
        (
            BASE
            | {
                "type": "tier_changed",
                "policy": "window_likes",
                "from_tier": "high",
                "to_tier": "low",
                "direction": "down",
                "value": 0,
                "threshold": 10_000,
                "window": WINDOW | {"likes": 0},
            },
            "00:01:01 ▼ s1 (c1) high -> low: 0 likes in the last 600s, 8 gifts, "
            "507 coins (~$2.54 to the creator)",
        ),
        (
            BASE
            | {
                "type": "tier_changed",
                "policy": "session_likes",
                "from_tier": "low",
                "to_tier": "moderate",
                "direction": "up",
                "value": 1_004,
                "threshold": 1_000,
                "window": WINDOW,
            },
            "00:01:01 ★ s1 (c1) reached moderate: 1,004 likes this session",
        ),
        (
            BASE
            | {
                "type": "stream_ended",
                "reason": "ended",
                "started_at": 0,
                "duration_ms": 90_000,
                "peak_tier": "high",
                "final_tier": "low",
                "session": {"likes": 10_000, "gifts": 9, "coins": 1_007, "creator_usd": 5.035},
            },
            "00:01:01 ■ s1 (c1) ended (ended) after 1.5 min: 10,000 likes, 9 gifts, 1,007 coins "
            "(~$5.04 to the creator), peak tier high",
        ),
    ],
)
def test_alert_lines(alert: dict[str, Any], line: str) -> None:
    assert format_alert(alert) == line


# --- spike, goal_reached, and top / viewers on the existing types -------------------------

MINUTE = {"start": 1_767_225_660_000, "end": 1_767_225_720_000}  # 00:01:00 - 00:02:00
TOP: dict[str, Any] = {
    "start": 1_767_225_060_000,
    "end": 1_767_225_670_000,
    "exact": True,
    "gifters": [
        {"user_id": "u1", "coins": 500, "gifts": 3},
        {"user_id": "u2", "coins": 300, "gifts": 1},
        {"user_id": "u3", "coins": 30, "gifts": 1},
        {"user_id": "u4", "coins": 5, "gifts": 5},
    ],
    "likers": [{"user_id": "u9", "likes": 1_200}, {"user_id": "u1", "likes": 45}],
}
VIEWERS: dict[str, Any] = {"current": 1_040, "peak": 1_355, "average": 941.5}
TIER_CHANGED: dict[str, Any] = BASE | {
    "type": "tier_changed",
    "policy": "window_likes",
    "from_tier": "moderate",
    "to_tier": "high",
    "direction": "up",
    "value": 10_000,
    "threshold": 10_000,
    "window": WINDOW,
}
SPIKE: dict[str, Any] = BASE | {
    "type": "spike",
    "metric": "coins",
    "value": 3_400,
    "baseline": 210.5,
    "baseline_minutes": 9.17,
    "ratio": 16.15,
    "threshold": 631.5,
    "minute": MINUTE,
    "top": TOP | {"start": MINUTE["start"], "end": MINUTE["end"]},
    "viewers": VIEWERS,
}
STREAM_ENDED: dict[str, Any] = BASE | {
    "type": "stream_ended",
    "reason": "ended",
    "started_at": 0,
    "duration_ms": 90_000,
    "peak_tier": "high",
    "final_tier": "low",
    "session": {"likes": 10_000, "gifts": 9, "coins": 1_007, "creator_usd": 5.035},
    "top": TOP,
    "viewers": VIEWERS,
    "likes_per_viewer": 10.6213,
    "coins_per_viewer": 1.0696,
}
ENDED_LINE = (
    "00:01:01 ■ s1 (c1) ended (ended) after 1.5 min: 10,000 likes, 9 gifts, 1,007 coins "
    "(~$5.04 to the creator), peak tier high"
)
TIER_LINE = (
    "00:01:01 ▲ s1 (c1) moderate -> high: 10,000 likes in the last 600s, 8 gifts, "
    "507 coins (~$2.54 to the creator)"
)


@pytest.mark.parametrize(
    ("alert", "line"),
    [
        (
            SPIKE,
            "00:01:01 ⚡ s1 (c1) coins spike: 3,400 coins in the minute from 00:01, "
            "16.15x the baseline of 210.5/min over 9.17 min; "
            "top gifters u1 (500), u2 (300), u3 (30); 1,040 viewers",
        ),
        (
            SPIKE
            | {
                "metric": "likes",
                "value": 12_500,
                "baseline": 0.0,
                "baseline_minutes": 3.0,
                "ratio": None,
                "threshold": 500.0,
                "top": SPIKE["top"] | {"exact": False},
                "viewers": None,
            },
            "00:01:01 ⚡ s1 (c1) likes spike: 12,500 likes in the minute from 00:01, "
            "from a baseline of 0/min over 3 min; top likers u9 (~1,200), u1 (~45)",
        ),
        (
            SPIKE | {"top": SPIKE["top"] | {"gifters": [SPIKE["top"]["gifters"][0]]}},
            "00:01:01 ⚡ s1 (c1) coins spike: 3,400 coins in the minute from 00:01, "
            "16.15x the baseline of 210.5/min over 9.17 min; top gifter u1 (500); "
            "1,040 viewers",
        ),
        (
            BASE
            | {
                "type": "goal_reached",
                "metric": "likes",
                "goal": 5_000,
                "value": 5_012,
                "viewers": VIEWERS,
            },
            "00:01:01 ◎ s1 (c1) reached its goal of 5,000 likes: 5,012 likes this session; "
            "1,040 viewers",
        ),
        (
            BASE
            | {
                "type": "goal_reached",
                "metric": "coins",
                "goal": 10_000,
                "value": 10_499,
                "viewers": None,
            },
            "00:01:01 ◎ s1 (c1) reached its goal of 10,000 coins: 10,499 coins this session",
        ),
        (
            TIER_CHANGED | {"top": TOP, "viewers": VIEWERS},
            TIER_LINE + "; top gifter u1 (500 coins), top liker u9 (1,200 likes); 1,040 viewers",
        ),
        (
            TIER_CHANGED
            | {
                "top": TOP | {"exact": False, "gifters": []},
                "viewers": None,
            },
            TIER_LINE + "; top liker u9 (~1,200 likes)",
        ),
        (
            TIER_CHANGED | {"top": TOP | {"gifters": [], "likers": []}, "viewers": None},
            TIER_LINE,
        ),
        (
            TIER_CHANGED
            | {"policy": "session_likes", "value": 1_004, "top": TOP, "viewers": VIEWERS},
            "00:01:01 ★ s1 (c1) reached high: 1,004 likes this session; top gifter u1 "
            "(500 coins), top liker u9 (1,200 likes); 1,040 viewers",
        ),
        (
            STREAM_ENDED,
            ENDED_LINE + "; top gifter u1 (500 coins), top liker u9 (1,200 likes); "
            "viewers peak 1,355, avg 941.5, 10.62 likes and 1.07 coins per viewer",
        ),
        (
            STREAM_ENDED
            | {
                "viewers": {"current": 0, "peak": 0, "average": 0.0},
                "likes_per_viewer": None,
                "coins_per_viewer": None,
            },
            ENDED_LINE + "; top gifter u1 (500 coins), top liker u9 (1,200 likes); "
            "viewers peak 0, avg 0",
        ),
        (
            STREAM_ENDED
            | {
                "top": TOP | {"gifters": [], "likers": []},
                "viewers": {"current": 3, "peak": 4, "average": 3.5},
                "likes_per_viewer": 0.0043,
                "coins_per_viewer": 0.0,
            },
            ENDED_LINE + "; viewers peak 4, avg 3.5, 0.0043 likes and 0 coins per viewer",
        ),
        (
            STREAM_ENDED | {"viewers": None, "likes_per_viewer": None, "coins_per_viewer": None},
            ENDED_LINE + "; top gifter u1 (500 coins), top liker u9 (1,200 likes)",
        ),
    ],
)
def test_spike_goal_and_top_user_alert_lines(alert: dict[str, Any], line: str) -> None:
    assert format_alert(alert) == line
    assert "\n" not in line


def test_an_unknown_alert_type_prints_as_json() -> None:
    alert = BASE | {"type": "something_new", "x": 1}
    assert format_alert(alert).startswith('{"v":1,')
