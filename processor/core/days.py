"""Calendar days in a time zone, in epoch milliseconds. Pure.

A creator's day is a calendar day where the platform pays her (UTC unless configured):
a session is split at midnight by event time. Days follow the zone's rules, so a day
with a daylight-saving change is 23 or 25 hours long.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MS_PER_MINUTE = 60_000


class Calendar:
    """Maps event times to calendar days of one time zone, caching each day's bounds."""

    def __init__(self, zone: str = "UTC") -> None:
        self.zone = zone
        self._tz = ZoneInfo(zone)  # raises ZoneInfoNotFoundError for an unknown name
        self._bounds: dict[str, tuple[int, int]] = {}
        # the day looked up last: events come in time order, so it is nearly always it
        self._last = ("", 0, 0)

    def day_of(self, ts_ms: int) -> str:
        """The ISO date (``2026-01-01``) of the day holding ``ts_ms``."""
        day, start, end = self._last
        if start <= ts_ms < end:
            return day
        day = datetime.fromtimestamp(ts_ms / 1000, self._tz).date().isoformat()
        start, end = self.bounds(day)
        self._last = (day, start, end)
        return day

    def bounds(self, day: str) -> tuple[int, int]:
        """The first millisecond of ``day`` and the first of the next day."""
        held = self._bounds.get(day)
        if held is None:
            first = date.fromisoformat(day)
            held = (self._midnight(first), self._midnight(first + timedelta(days=1)))
            self._bounds[day] = held
        return held

    def _midnight(self, day: date) -> int:
        return int(datetime.combine(day, time(), tzinfo=self._tz).timestamp() * 1000)

    def split(self, from_ms: int, to_ms: int) -> list[tuple[str, int, int]]:
        """``[from_ms, to_ms)`` cut at every midnight: (day, from, to) for each day it
        touches, in order; one empty part for an empty span."""
        parts: list[tuple[str, int, int]] = []
        at = from_ms
        while True:
            day = self.day_of(at)
            end = self.bounds(day)[1]
            if to_ms <= end:
                parts.append((day, at, max(at, to_ms)))
                return parts
            parts.append((day, at, end))
            at = end
