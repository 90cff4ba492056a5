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
