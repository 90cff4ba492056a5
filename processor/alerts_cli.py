"""``livepulse alerts``: print alerts from the alerts topic as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from processor.kafka_client import BrokerUnavailable, check_broker, client_options
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
    """One readable line for a human watching the terminal.

    Fields added to the contract after v1's first release (``top``, ``viewers``, the per-viewer
    ratios) are optional here: an older alert, read with ``--from-beginning``, prints without
    them.
    """
    when = datetime.fromtimestamp(alert["event_time"] / 1000, tz=UTC).strftime("%H:%M:%S")
    who = f"{alert['stream_id']} ({alert['creator_id']})"
    kind = alert["type"]
    if kind == "stream_ended":
        s = alert["session"]
        minutes = alert["duration_ms"] / 60_000
        line = (
            f"{when} ■ {who} ended ({alert['reason']}) after {minutes:.1f} min: "
            f"{s['likes']:,} likes, {s['gifts']:,} gifts, {s['coins']:,} coins "
            f"(~${s['creator_usd']:,.2f} to the creator), peak tier {alert['peak_tier']}"
        )
        return line + _top_brief(alert.get("top")) + _session_viewers(alert)
    if kind == "spike":
        return _spike_line(alert, when, who)
    if kind == "goal_reached":
        metric = alert["metric"]
        return (
            f"{when} ◎ {who} reached its goal of {alert['goal']:,} {metric}: "
            f"{alert['value']:,} {metric} this session" + _current_viewers(alert)
        )
    if kind != "tier_changed":
        return orjson.dumps(alert).decode()
    extra = _top_brief(alert.get("top")) + _current_viewers(alert)
    if alert["policy"] == "session_likes":
        return (
            f"{when} ★ {who} reached {alert['to_tier']}: {alert['value']:,} likes this session"
            + extra
        )
    arrow = "▲" if alert["direction"] == "up" else "▼"
    window = alert["window"]
    seconds = (window["end"] - window["start"]) // 1000
    return (
        f"{when} {arrow} {who} {alert['from_tier']} -> {alert['to_tier']}: "
        f"{alert['value']:,} likes in the last {seconds}s, {window['gifts']:,} gifts, "
        f"{window['coins']:,} coins (~${window['creator_usd']:,.2f} to the creator)" + extra
    )


# How many of a spike's top contributors its line names.
SPIKE_CONTRIBUTORS = 3


def _num(x: float) -> str:
    """A count or a rounded float as a reader wants it: 1,234 / 210.5 / 16.15 / 0.0042."""
    if float(x).is_integer():
        return f"{int(x):,}"
    if abs(x) < 1:
        return f"{x:.2g}"  # 0.0042, not 0.00
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _spike_line(alert: dict[str, Any], when: str, who: str) -> str:
    metric = alert["metric"]
    minute = datetime.fromtimestamp(alert["minute"]["start"] / 1000, tz=UTC).strftime("%H:%M")
    ratio = alert["ratio"]
    versus = (
        f"{_num(ratio)}x the baseline of {_num(alert['baseline'])}/min"
        if ratio is not None
        else "from a baseline of 0/min"
    )
    line = (
        f"{when} ⚡ {who} {metric} spike: {alert['value']:,} {metric} in the minute from "
        f"{minute}, {versus} over {_num(alert['baseline_minutes'])} min"
    )
    top = alert.get("top")
    if top:
        approx = "" if top["exact"] else "~"
        if metric == "coins":
            named = [f"{g['user_id']} ({approx}{g['coins']:,})" for g in top["gifters"]]
            label = "top gifter"
        else:
            named = [f"{u['user_id']} ({approx}{u['likes']:,})" for u in top["likers"]]
            label = "top liker"
        named = named[:SPIKE_CONTRIBUTORS]
        if named:
            line += f"; {label}{'s' if len(named) > 1 else ''} " + ", ".join(named)
    return line + _current_viewers(alert)


def _top_brief(top: dict[str, Any] | None) -> str:
    """'; top gifter u1 (500 coins), top liker u2 (120 likes)': the first of each, if any;
    values marked ~ when the summaries behind them are estimates."""
    if not top:
        return ""
    approx = "" if top["exact"] else "~"
    parts = []
    if top["gifters"]:
        g = top["gifters"][0]
        parts.append(f"top gifter {g['user_id']} ({approx}{g['coins']:,} coins)")
    if top["likers"]:
        u = top["likers"][0]
        parts.append(f"top liker {u['user_id']} ({approx}{u['likes']:,} likes)")
    return "; " + ", ".join(parts) if parts else ""


def _current_viewers(alert: dict[str, Any]) -> str:
    viewers = alert.get("viewers")
    return f"; {viewers['current']:,} viewers" if viewers else ""


def _session_viewers(alert: dict[str, Any]) -> str:
    viewers = alert.get("viewers")
    if not viewers:
        return ""
    line = f"; viewers peak {viewers['peak']:,}, avg {_num(viewers['average'])}"
    likes, coins = alert.get("likes_per_viewer"), alert.get("coins_per_viewer")
    if likes is not None and coins is not None:
        line += f", {_num(likes)} likes and {_num(coins)} coins per viewer"
    return line


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

    try:
        await check_broker(settings)
    except BrokerUnavailable as exc:
        print(f"livepulse alerts: cannot connect to Kafka broker at {exc}", file=sys.stderr)
        return 2
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=None,
        auto_offset_reset="earliest" if args.from_beginning or args.since_ms else "latest",
        enable_auto_commit=False,
        # only alerts whose transaction committed: each exactly once, none of a worker
        # that crashed or was fenced mid-transaction
        isolation_level="read_committed",
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
    # Ctrl-C stops it even when it was started with SIGINT ignored (a non-interactive
    # shell's background job, as `make run` started from a script is): Python keeps an
    # inherited "ignore" instead of installing its own handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_consume(args, settings))
    return 130
