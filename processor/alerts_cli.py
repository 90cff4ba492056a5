"""``livepulse alerts``: print alerts from the alerts topic as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from processor.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="print alerts from live.alerts as they arrive",
        description="Subscribe to the alerts topic and print each alert (Ctrl-C to stop).",
        epilog="example: livepulse alerts --from-beginning --json | jq .to_tier",
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON records")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest retained alert"
    )
    parser.add_argument(
        "--since-ms",
        type=int,
        default=None,
        metavar="EPOCH_MS",
        help="start at the first alert published at or after this time",
    )
    parser.add_argument(
        "--max", type=int, default=None, metavar="N", help="exit after printing N alerts"
    )
    parser.set_defaults(handler=run_alerts)


def format_alert(alert: dict[str, Any]) -> str:
    """One readable line for a human watching the terminal."""
    when = datetime.fromtimestamp(alert["event_time"] / 1000, tz=UTC).strftime("%H:%M:%S")
    who = f"{alert['stream_id']} ({alert['creator_id']})"
    if alert["type"] == "stream_ended":
        s = alert["session"]
        minutes = alert["duration_ms"] / 60_000
        return (
            f"{when} ■ {who} ended ({alert['reason']}) after {minutes:.1f} min: "
            f"{s['likes']:,} likes, {s['gifts']:,} gifts, {s['coins']:,} coins "
            f"(~${s['creator_usd']:,.2f} to the creator), peak tier {alert['peak_tier']}"
        )
    if alert["type"] != "tier_changed":
        return orjson.dumps(alert).decode()
    if alert["policy"] == "session_likes":
        return f"{when} ★ {who} reached {alert['to_tier']}: {alert['value']:,} likes this session"
    arrow = "▲" if alert["direction"] == "up" else "▼"
    window = alert["window"]
    seconds = (window["end"] - window["start"]) // 1000
    return (
        f"{when} {arrow} {who} {alert['from_tier']} -> {alert['to_tier']}: "
        f"{alert['value']:,} likes in the last {seconds}s, {window['gifts']:,} gifts, "
        f"{window['coins']:,} coins (~${window['creator_usd']:,.2f} to the creator)"
    )


async def _seek_to_time(consumer: Any, since_ms: int) -> None:
    """Position every partition at its first record at or after ``since_ms``."""
    while not consumer.assignment():  # without a group, all partitions are assigned at once
        await asyncio.sleep(0.05)
    assigned = list(consumer.assignment())
    found = await consumer.offsets_for_times(dict.fromkeys(assigned, since_ms))
    for tp, at in found.items():
        if at is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, at.offset)


async def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker,
        group_id=None,
        auto_offset_reset="earliest" if args.from_beginning or args.since_ms else "latest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        print(f"livepulse alerts: cannot reach broker {settings.broker}: {exc}", file=sys.stderr)
        return 2
    printed = 0
    try:
        if settings.alerts_topic not in await consumer.topics():
            print(
                f"livepulse alerts: topic {settings.alerts_topic!r} does not exist", file=sys.stderr
            )
            return 2
        consumer.subscribe([settings.alerts_topic])
        if args.since_ms is not None:
            await _seek_to_time(consumer, args.since_ms)
        print(
            f"livepulse alerts: listening on {settings.alerts_topic!r} at {settings.broker}",
            file=sys.stderr,
            flush=True,
        )
        async for message in consumer:
            if args.json:
                line = message.value.decode("utf-8", "replace")
            else:
                try:
                    line = format_alert(orjson.loads(message.value))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    line = message.value.decode("utf-8", "replace")
            print(line, flush=True)
            printed += 1
            if args.max is not None and printed >= args.max:
                break
    finally:
        await consumer.stop()
    return 0


def run_alerts(args: argparse.Namespace, settings: Settings) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_consume(args, settings))
    return 130
