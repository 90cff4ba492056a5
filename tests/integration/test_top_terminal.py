"""``livepulse top`` in a real terminal (tmux): started against a real broker, its screen
read, keys pressed, a table record changed under it, and quit with ``q``.

The records are written here, by hand, to fresh stream-table and creator-day topics, so
every figure on the screen is one this test chose.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from processor.core.creators import CreatorDay, TopGifter
from processor.core.table import Figures, StreamRow, ViewerCounts
from processor.core.tiers import Tier
from tests.integration.kafka import create_topics

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000
DEADLINE_S = 30.0


def stream(stream_id: str, minute_coins: int, window_likes: int, viewers: int) -> StreamRow:
    return StreamRow(
        stream_id=stream_id,
        creator_id=f"creator-{stream_id}",
        tier=Tier.HIGH if window_likes >= 10_000 else Tier.MODERATE,
        peak_tier=Tier.HIGH,
        window=Figures(T0, T0 + 600_000, window_likes, 3, 7 * minute_coins, 0.0),
        minute=Figures(T0 + 540_000, T0 + 600_000, 10, 1, minute_coins, 0.0),
        session=Figures(T0, T0 + 600_000, window_likes, 3, 9 * minute_coins, 0.0),
        viewers=ViewerCounts(viewers, viewers, float(viewers)),
        spikes=("coins",) if minute_coins >= 1_000 else (),
        stream_time_ms=T0 + 600_000,
    )


def creator(creator_id: str, coins: int) -> CreatorDay:
    return CreatorDay(
        creator_id=creator_id,
        day="2026-01-01",
        time_zone="UTC",
        likes=4_000,
        gifts=12,
        coins=coins,
        creator_usd=round(coins * 0.005, 4),
        sessions=2,
        streams=("a", "b"),
        live_ms=5_400_000,
        minutes_live=90,
        peak_tier=Tier.HIGH,
        peak_viewers=900,
        top_gifters=(TopGifter("whale-1", coins - 100, 3),),
        top_gifters_exact=True,
        final=False,
        stream_time_ms=T0 + 600_000,
    )


async def produce(broker: str, records: list[tuple[str, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


class Terminal:
    """A tmux server of the test's own, one session of fixed size running one command."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"livepulse-top-{uuid.uuid4().hex[:8]}"
        shell = " ".join(shlex.quote(part) for part in command)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # the exit status stays on screen once the command is done
        # (COLUMNS and LINES of the test's own process would fix rich's size)
        script = f"env -u COLUMNS -u LINES {exports} {shell}; echo livepulse-top-exit=$?; sleep 120"
        self.tmux(
            "new-session", "-d", "-s", "top", "-x", "150", "-y", "45", "-c", str(ROOT), script
        )

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "top", key)

    def wait_for(self, what: str, found: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            screen = self.screen()
            if found(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the screen never showed {what}; it shows:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


def rows_in_order(screen: str, names: list[str]) -> bool:
    """Whether the stream rows named appear on screen in this order."""
    lines = [line for line in screen.splitlines() if line.startswith("│ ")]
    positions = []
    for name in names:
        at = [i for i, line in enumerate(lines) if line.startswith(f"│ {name} ")]
        if not at:
            return False
        positions.append(at[0])
    return positions == sorted(positions)


@pytest.fixture
def terminal_topics(broker: str) -> Iterator[dict[str, str]]:
    run = uuid.uuid4().hex[:8]
    topics = {k: f"t{run}.{k}" for k in ("streams", "creators", "alerts")}
    asyncio.run(create_topics(broker, list(topics.values()), 2))
    yield topics


def test_top_shows_the_tables_follows_keys_and_updates_and_quits_on_q(
    broker: str, terminal_topics: dict[str, str]
) -> None:
    assert shutil.which("tmux"), "tmux not found: run `make system-deps`"
    t = terminal_topics
    encode = msgspec.json.encode
    asyncio.run(
        produce(
            broker,
            [
                (t["streams"], b"alpha", encode(stream("alpha", 1_500, 200, 40))),
                (t["streams"], b"bravo", encode(stream("bravo", 30, 12_000, 900))),
                (t["streams"], b"charlie", encode(stream("charlie", 400, 800, 5))),
                (t["streams"], b"delta", encode(stream("delta", 9_999, 1, 1))),
                (t["streams"], b"delta", None),  # delta ended: a tombstone
                (t["creators"], b"c-1/2026-01-01", encode(creator("creator-one", 5_300))),
                (t["creators"], b"c-2/2026-01-01", encode(creator("creator-two", 800))),
                (
                    t["alerts"],
                    b"alpha",
                    b'{"type":"some_future_alert","stream_id":"alpha","note":"kept raw"}',
                ),
            ],
        )
    )
    env = {
        "LIVEPULSE_BROKER": broker,
        "LIVEPULSE_STREAMS_TOPIC": t["streams"],
        "LIVEPULSE_CREATORS_TOPIC": t["creators"],
        "LIVEPULSE_ALERTS_TOPIC": t["alerts"],
        "TERM": "xterm-256color",
        "PATH": os.environ["PATH"],
    }
    term = Terminal([sys.executable, "-m", "processor.cli", "top"], env)
    try:
        screen = term.wait_for(
            "three streams by coins this minute",
            lambda s: (
                "live streams: 3, top 10 by coins this minute" in s
                and rows_in_order(s, ["alpha", "charlie", "bravo"])
            ),
        )
        assert "delta" not in screen  # its tombstone removed it
        assert "⚡ coins" in screen  # alpha's spike
        assert "top creators by coins, 2026-01-01" in screen
        assert rows_in_order(screen, ["creator-one", "creator-two"])
        assert "whale-1 (5,200)" in screen
        assert '"note":"kept raw"' in screen  # an alert it cannot format, shown as it is

        term.press("l")
        term.wait_for(
            "the streams by window likes",
            lambda s: "by window likes" in s and rows_in_order(s, ["bravo", "charlie", "alpha"]),
        )
        term.press("v")
        term.wait_for(
            "the streams by viewers",
            lambda s: "by viewers" in s and rows_in_order(s, ["bravo", "alpha", "charlie"]),
        )
        # the table changes under it: charlie's viewers jump, bravo ends
        asyncio.run(
            produce(
                broker,
                [
                    (t["streams"], b"charlie", encode(stream("charlie", 400, 800, 5_000))),
                    (t["streams"], b"bravo", None),
                ],
            )
        )
        term.wait_for(
            "charlie first and bravo gone",
            lambda s: "live streams: 2," in s and rows_in_order(s, ["charlie", "alpha"]),
        )
        term.press("q")
        screen = term.wait_for("the exit status", lambda s: "livepulse-top-exit=" in s)
        assert "livepulse-top-exit=0" in screen
    finally:
        term.close()
