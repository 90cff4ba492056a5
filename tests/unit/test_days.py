"""Calendar days of a time zone: which day an event time is in, and spans cut at midnight."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from processor.core.days import Calendar


def ms(text: str, zone: str = "UTC") -> int:
    """Epoch ms of a wall-clock time in ``zone`` (``2026-01-01 23:59:59.999``)."""
    tz = UTC if zone == "UTC" else ZoneInfo(zone)
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp() * 1000)


@pytest.mark.parametrize(
    ("zone", "wall", "day"),
    [
        ("UTC", "2026-01-01 00:00:00", "2026-01-01"),
        ("UTC", "2026-01-01 23:59:59.999", "2026-01-01"),
        ("UTC", "2026-01-02 00:00:00", "2026-01-02"),
        ("Asia/Tokyo", "2026-01-01 08:59:59", "2026-01-01"),  # 2025-12-31 23:59:59 UTC
        ("America/New_York", "2026-01-01 19:30:00", "2026-01-01"),  # 2026-01-02 00:30 UTC
    ],
    ids=["utc-midnight", "utc-last-ms", "utc-next-day", "tokyo-ahead", "new-york-behind"],
)
def test_an_event_time_is_in_its_zones_calendar_day(zone: str, wall: str, day: str) -> None:
    assert Calendar(zone).day_of(ms(wall, zone)) == day


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("UTC", "2026-03-08", 24),
        ("America/New_York", "2026-03-08", 23),  # clocks go forward at 02:00
        ("America/New_York", "2026-11-01", 25),  # and back at 02:00
        ("Asia/Kolkata", "2026-06-01", 24),
    ],
    ids=["utc", "new-york-spring-forward", "new-york-fall-back", "kolkata-half-hour"],
)
def test_a_day_lasts_as_long_as_its_zone_says(zone: str, day: str, hours: int) -> None:
    start, end = Calendar(zone).bounds(day)
    assert start == ms(f"{day} 00:00:00", zone)
    assert end - start == hours * 3_600_000


MIDNIGHT = ms("2026-01-02 00:00:00")


@pytest.mark.parametrize(
    ("from_ms", "to_ms", "parts"),
    [
        (MIDNIGHT - 60_000, MIDNIGHT - 1, [("2026-01-01", MIDNIGHT - 60_000, MIDNIGHT - 1)]),
        (
            MIDNIGHT - 60_000,
            MIDNIGHT + 90_000,
            [
                ("2026-01-01", MIDNIGHT - 60_000, MIDNIGHT),
                ("2026-01-02", MIDNIGHT, MIDNIGHT + 90_000),
            ],
        ),
        (MIDNIGHT - 60_000, MIDNIGHT, [("2026-01-01", MIDNIGHT - 60_000, MIDNIGHT)]),
        (MIDNIGHT, MIDNIGHT, [("2026-01-02", MIDNIGHT, MIDNIGHT)]),
        (
            MIDNIGHT - 1,
            MIDNIGHT + 86_400_000 + 1,
            [
                ("2026-01-01", MIDNIGHT - 1, MIDNIGHT),
                ("2026-01-02", MIDNIGHT, MIDNIGHT + 86_400_000),
                ("2026-01-03", MIDNIGHT + 86_400_000, MIDNIGHT + 86_400_000 + 1),
            ],
        ),
    ],
    ids=["inside-a-day", "across-midnight", "up-to-midnight", "empty", "three-days"],
)
def test_a_span_is_cut_at_every_midnight(
    from_ms: int, to_ms: int, parts: list[tuple[str, int, int]]
) -> None:
    assert Calendar().split(from_ms, to_ms) == parts


def test_an_unknown_zone_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="Mars/Olympus_Mons"):
        Calendar("Mars/Olympus_Mons")
