"""Builders for contract-v1 events, so scenarios read like what happened."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from processor.contract import Event, to_event

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every window step used


def typed(event: dict[str, Any]) -> Event:
    """The contract Struct of an event dict built here; raises if the dict breaks the contract."""
    return to_event(event)


def plain(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events (the simulator's Structs) as the JSON objects of their records: the dicts the
    builders here make, and the reference models read."""
    return [msgspec.to_builtins(event) for event in events]


@dataclass
class StreamScript:
    """Events of one live stream; ``like_total`` tracks the room's running total."""

    stream_id: str
    creator_id: str = "creator-1"
    like_total: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _base(self, kind: str, ts: int, user: str | None = "u-1") -> dict[str, Any]:
        event: dict[str, Any] = {
            "v": 1,
            "event_id": f"{self.stream_id}-{next(self._ids)}",
            "type": kind,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "ts": ts,
        }
        if user is not None:
            event["user_id"] = user
        return event

    def start(self, ts: int) -> dict[str, Any]:
        return self._base("live_start", ts, user=None) | {"title": "hello"}

    def likes(self, ts: int, count: int, dropped: int = 0, user: str = "u-1") -> dict[str, Any]:
        """A like event of ``count``; ``dropped`` likes happened in events never delivered."""
        self.like_total += dropped + count
        return self._base("like", ts, user) | {"count": count, "total": self.like_total}

    def stale_likes(self, ts: int, count: int, behind: int, user: str = "u-1") -> dict[str, Any]:
        """A like event delivered out of order: its ``total`` is ``behind`` below the room's."""
        return self._base("like", ts, user) | {
            "count": count,
            "total": max(0, self.like_total - behind),
        }

    def gift(
        self,
        ts: int,
        coins: int,
        repeat: int,
        streakable: bool,
        end: bool,
        streak: str = "s1",
        user: str = "u-1",
    ) -> dict[str, Any]:
        return self._base("gift", ts, user) | {
            "gift_id": 5655,
            "gift_name": "Rose" if coins == 1 else "Gift",
            "coins": coins,
            "repeat_count": repeat,
            "streakable": streakable,
            "streak_id": streak,
            "repeat_end": end,
        }

    def combo(
        self, ts: int, coins: int, steps: int, streak: str, user: str = "u-1"
    ) -> list[dict[str, Any]]:
        """A streak of one user: one event per step, then the repeat_end event."""
        events = [self.gift(ts, coins, i, True, False, streak, user) for i in range(1, steps + 1)]
        events.append(self.gift(ts, coins, steps, True, True, streak, user))
        return events

    def comment(self, ts: int, text: str = "hi") -> dict[str, Any]:
        return self._base("comment", ts) | {"text": text}

    def join(self, ts: int, user: str = "u-1") -> dict[str, Any]:
        return self._base("join", ts, user)

    def viewers(self, ts: int, count: int) -> dict[str, Any]:
        return self._base("viewers", ts, user=None) | {"count": count}

    def end(self, ts: int) -> dict[str, Any]:
        return self._base("live_end", ts, user=None) | {"reason": "ended"}
