"""``livepulse top``'s board: what it keeps of the tables and alerts, how it sorts, and what
its screen says (rendered by rich into text, as a terminal would show it)."""

from __future__ import annotations

import msgspec
from rich.console import Console

from processor.core.creators import CreatorDay, TopGifter
from processor.core.table import Figures, StreamRow, ViewerCounts
from processor.core.tiers import Tier
from processor.top import Board

T0 = 1_767_225_600_000


def row(stream_id: str, minute_coins: int, window_likes: int, viewers: int | None) -> bytes:
    return msgspec.json.encode(
        StreamRow(
            stream_id=stream_id,
            creator_id=f"c-{stream_id}",
            tier=Tier.HIGH if window_likes >= 10_000 else Tier.LOW,
            peak_tier=Tier.HIGH,
            window=Figures(T0, T0 + 600_000, window_likes, 1, 2 * minute_coins, 0.0),
            minute=Figures(T0, T0 + 60_000, window_likes // 10, 1, minute_coins, 0.0),
            session=Figures(T0, T0 + 60_000, window_likes, 1, 3 * minute_coins, 0.0),
            viewers=None if viewers is None else ViewerCounts(viewers, viewers, float(viewers)),
            spikes=("coins",) if minute_coins > 1_000 else (),
            stream_time_ms=T0 + 60_000,
        )
    )


def creator_day(creator_id: str, day: str, coins: int) -> bytes:
    return msgspec.json.encode(
        CreatorDay(
            creator_id=creator_id,
            day=day,
            time_zone="UTC",
            likes=10,
            gifts=2,
            coins=coins,
            creator_usd=coins * 0.005,
            sessions=2,
            streams=("s-1", "s-2"),
            live_ms=5_400_000,
            minutes_live=90,
            peak_tier=Tier.MODERATE,
            peak_viewers=90,
            top_gifters=(TopGifter("u-1", coins, 2),),
            top_gifters_exact=True,
            final=False,
            stream_time_ms=T0,
        )
    )


def filled() -> Board:
    board = Board()
    board.take_stream(b"a", row("a", minute_coins=500, window_likes=100, viewers=7))
    board.take_stream(b"b", row("b", minute_coins=5_000, window_likes=20, viewers=None))
    board.take_stream(b"c", row("c", minute_coins=50, window_likes=12_000, viewers=900))
    board.take_stream(b"d", row("d", minute_coins=1, window_likes=1, viewers=1))
    board.take_stream(b"d", None)  # ended: a tombstone
    board.take_creator(creator_day("c-old", "2025-12-31", 99_999))
    board.take_creator(creator_day("c-1", "2026-01-01", 530))
    board.take_creator(creator_day("c-2", "2026-01-01", 1_200))
    return board


def test_each_key_sorts_the_streams_and_a_tombstone_removes_one() -> None:
    board = filled()
    order = {}
    for key in "clv":
        assert board.press(key)
        order[key] = [r.stream_id for r in board.top_streams()]
    assert order == {"c": ["b", "a", "c"], "l": ["c", "a", "b"], "v": ["c", "a", "b"]}
    assert not board.press("q")


def test_todays_top_creators_are_the_newest_days_by_coins() -> None:
    board = filled()
    assert board.today() == "2026-01-01"
    assert [d.creator_id for d in board.top_creators()] == ["c-2", "c-1"]


def test_an_unreadable_record_is_counted_not_fatal_and_alerts_keep_the_newest() -> None:
    board = filled()
    board.take_stream(b"x", b"not json")
    board.take_creator(b"{}")
    for i in range(20):
        board.take_alert(b'{"n": %d}' % i)
    assert board.unreadable == 2
    assert list(board.alerts) == [f'{{"n":{i}}}' for i in range(12, 20)]


def test_the_screen_shows_streams_creators_and_keys() -> None:
    console = Console(record=True, width=150, color_system=None)
    console.print(filled().render())
    screen = console.export_text()
    assert "live streams: 3, top 10 by coins this minute" in screen
    assert "top creators by coins, 2026-01-01" in screen
    lines = screen.splitlines()
    first = next(line for line in lines if "│ b " in line or line.startswith("│ b"))
    assert "5,000" in first and "⚡ coins" in first
    assert any("c-2" in line and "1,200" in line and "u-1 (1,200)" in line for line in lines)
    assert "keys: c coins/min · l window likes · v viewers · q quit" in screen
    assert "(2 unreadable" not in screen
