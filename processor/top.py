"""``livepulse top``: a live terminal view of the stream table, creators' days and alerts.

It reads the compacted ``live.streams`` and ``live.creators`` topics from their start (the
latest record per key is the table; a tombstone removes a stream) and the newest alerts,
with any Kafka client's settings, and redraws once a second: the top streams by coins in
the current minute, by window likes or by viewers (``c``, ``l``, ``v`` switch), today's top
creators by coins, and the latest alerts. ``q`` or Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from processor.core.creators import CreatorDay
from processor.core.table import StreamRow

REFRESH_S = 1.0
ROWS = 10
ALERT_LINES = 8
ASSIGNMENT_WAIT_S = 3.0  # for the topics' partitions, before the first screen
SORTS: dict[str, tuple[str, Callable[[StreamRow], tuple[int, ...]]]] = {
    "c": ("coins this minute", lambda r: (r.minute.coins, r.window.coins)),
    "l": ("window likes", lambda r: (r.window.likes, r.session.likes)),
    "v": ("viewers", lambda r: (r.viewers.current if r.viewers else 0, r.window.likes)),
}
TIER_STYLE = {"low": "dim", "moderate": "yellow", "high": "bold green"}

_streams = msgspec.json.Decoder(StreamRow)
_creators = msgspec.json.Decoder(CreatorDay)


@dataclass
class Board:
    """What the view shows, kept from the records read so far."""

    format_alert: Callable[[dict[str, Any]], str] = lambda alert: orjson.dumps(alert).decode()
    sort: str = "c"
    streams: dict[str, StreamRow] = field(default_factory=dict)
    creators: dict[str, CreatorDay] = field(default_factory=dict)
    alerts: deque[str] = field(default_factory=lambda: deque(maxlen=ALERT_LINES))
    unreadable: int = 0

    def take_stream(self, key: bytes | None, value: bytes | None) -> None:
        """A record of the stream table: the stream's state, or its end (no value)."""
        if key is None:
            return
        if value is None:
            self.streams.pop(key.decode(), None)
            return
        try:
            row = _streams.decode(value)
        except msgspec.DecodeError:
            self.unreadable += 1
            return
        self.streams[row.stream_id] = row

    def take_creator(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            day = _creators.decode(value)
        except msgspec.DecodeError:
            self.unreadable += 1
            return
        self.creators[day.key] = day

    def take_alert(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            self.alerts.append(self.format_alert(orjson.loads(value)))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.alerts.append(value.decode("utf-8", "replace"))

    def press(self, key: str) -> bool:
        """Handle a key; False when it means quit."""
        if key in ("q", "Q", "\x03"):
            return False
        if key.lower() in SORTS:
            self.sort = key.lower()
        return True

    def top_streams(self) -> list[StreamRow]:
        key = SORTS[self.sort][1]
        rows = sorted(self.streams.values(), key=lambda r: r.stream_id)
        return sorted(rows, key=key, reverse=True)[:ROWS]

    def today(self) -> str | None:
        """The newest day any creator record is for: today, in event time."""
        return max((d.day for d in self.creators.values()), default=None)

    def top_creators(self) -> list[CreatorDay]:
        today = self.today()
        days = sorted(
            (d for d in self.creators.values() if d.day == today), key=lambda d: d.creator_id
        )
        return sorted(days, key=lambda d: d.coins, reverse=True)[:ROWS]

    def render(self) -> RenderableType:
        label = SORTS[self.sort][0]
        streams = Table(
            title=f"live streams: {len(self.streams):,}, top {ROWS} by {label}",
            title_justify="left",
            expand=True,
        )
        for name, justify in (
            ("stream", "left"),
            ("creator", "left"),
            ("tier", "left"),
            ("coins/min", "right"),
            ("window likes", "right"),
            ("window coins", "right"),
            ("session coins", "right"),
            ("viewers", "right"),
            ("spike", "left"),
        ):
            streams.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for r in self.top_streams():
            streams.add_row(
                r.stream_id,
                r.creator_id,
                Text(str(r.tier), style=TIER_STYLE.get(str(r.tier), "")),
                f"{r.minute.coins:,}",
                f"{r.window.likes:,}",
                f"{r.window.coins:,}",
                f"{r.session.coins:,}",
                f"{r.viewers.current:,}" if r.viewers else "-",
                "⚡ " + ",".join(r.spikes) if r.spikes else "",
            )
        creators = Table(
            title=f"top creators by coins, {self.today() or 'no creator day yet'}",
            title_justify="left",
            expand=True,
        )
        for name, justify in (
            ("creator", "left"),
            ("coins", "right"),
            ("~USD", "right"),
            ("gifts", "right"),
            ("likes", "right"),
            ("sessions", "right"),
            ("min live", "right"),
            ("peak tier", "left"),
            ("top gifter", "left"),
        ):
            creators.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for d in self.top_creators():
            gifter = d.top_gifters[0] if d.top_gifters else None
            creators.add_row(
                d.creator_id + (" ✓" if d.final else ""),
                f"{d.coins:,}",
                f"{d.creator_usd:,.2f}",
                f"{d.gifts:,}",
                f"{d.likes:,}",
                str(d.sessions),
                f"{d.minutes_live:,}",
                str(d.peak_tier),
                f"{gifter.user_id} ({gifter.coins:,})" if gifter else "-",
            )
        alerts = Text("\n".join(self.alerts) if self.alerts else "(no alert yet)", no_wrap=True)
        keys = Text(
            "keys: c coins/min · l window likes · v viewers · q quit"
            + (f"   ({self.unreadable} unreadable records)" if self.unreadable else ""),
            style="dim",
        )
        return Group(streams, creators, Text("latest alerts", style="bold"), alerts, keys)


@contextlib.contextmanager
def keys_pressed(on_key: Callable[[str], None]) -> Iterator[None]:
    """Call ``on_key`` for each key pressed on the terminal, unbuffered (no Enter needed)."""
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()
    tty.setcbreak(fd)
    loop.add_reader(fd, lambda: on_key(os.read(fd, 1).decode("utf-8", "replace")))
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def watch(
    client_options: dict[str, Any],
    topics: dict[str, str],
    board: Board,
    refresh_s: float = REFRESH_S,
) -> None:
    """Read the tables and alerts into ``board`` and redraw it until a quit key or stop."""
    from aiokafka import AIOKafkaConsumer

    # without a group, a subscription is assigned every partition of the topics that
    # exist, and those made later (the worker creates the tables when it starts)
    consumer = AIOKafkaConsumer(
        *topics.values(),
        **client_options,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    quit_pressed = asyncio.Event()
    try:
        loop = asyncio.get_running_loop()
        waited_until = loop.time() + ASSIGNMENT_WAIT_S
        while not consumer.assignment() and loop.time() < waited_until:
            await asyncio.sleep(0.05)
        alerts = [tp for tp in consumer.assignment() if tp.topic == topics["alerts"]]
        if alerts:  # the last few alerts of each partition, not all of them
            for tp, end in (await consumer.end_offsets(alerts)).items():
                consumer.seek(tp, max(0, end - ALERT_LINES))

        def on_key(key: str) -> None:
            if not board.press(key):
                quit_pressed.set()

        with keys_pressed(on_key), Live(board.render(), auto_refresh=False, screen=True) as live:
            next_draw = loop.time()
            while not quit_pressed.is_set():
                fetched = await consumer.getmany(timeout_ms=100, max_records=10_000)
                for tp, records in fetched.items():
                    for record in records:
                        if tp.topic == topics["streams"]:
                            board.take_stream(record.key, record.value)
                        elif tp.topic == topics["creators"]:
                            board.take_creator(record.value)
                        else:
                            board.take_alert(record.value)
                if loop.time() >= next_draw or quit_pressed.is_set():
                    live.update(board.render(), refresh=True)
                    next_draw = loop.time() + refresh_s
    finally:
        await consumer.stop()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "top",
        help="a live terminal view: top streams, today's top creators, the latest alerts",
        description=(
            "Watch live.streams, live.creators and live.alerts in the terminal, redrawn every "
            "second. Keys: c (coins this minute), l (window likes), v (viewers) sort the "
            "streams; q or Ctrl-C quits."
        ),
    )
    parser.add_argument(
        "--sort", choices=sorted(SORTS), default="c", help="first sort key (default c)"
    )
    parser.set_defaults(handler=run_top)


def run_top(args: argparse.Namespace, settings: Any) -> int:
    from processor.alerts_cli import format_alert
    from processor.kafka_client import BrokerUnavailable, check_broker, client_options

    signal.signal(signal.SIGINT, signal.default_int_handler)
    board = Board(format_alert=format_alert, sort=args.sort)
    topics = {
        "streams": settings.streams_topic,
        "creators": settings.creators_topic,
        "alerts": settings.alerts_topic,
    }

    async def main() -> int:
        try:
            await check_broker(settings)
        except BrokerUnavailable as exc:
            print(f"livepulse top: cannot connect to Kafka broker at {exc}", file=sys.stderr)
            return 2
        await watch(client_options(settings), topics, board)
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 0
