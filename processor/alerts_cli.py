"""``livepulse alerts``: print alerts from the alerts topic as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

import msgspec

from processor.contract import encode
from processor.core.alerts import ALERT_TYPES
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


_DECODER: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])


def format_alert(alert: dict[str, Any]) -> str:
    """One readable line for a human watching the terminal: the alert type's own ``line()``
    (``processor/core/alerts.py``), or the JSON of a type this version does not know.

    Fields added to the contract after v1's first release (``top``, ``viewers``, the per-viewer
    ratios) are optional here: an older alert, read with ``--from-beginning``, prints without
    them. Raises :class:`msgspec.ValidationError` for a record its type's Struct rejects.
    """
    kind = ALERT_TYPES.get(alert.get("type", ""))
    if kind is None:
        return encode(alert).decode()
    return msgspec.convert(alert, kind).line()


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
                    line = format_alert(_DECODER.decode(message.value))
                except (msgspec.DecodeError, RecursionError, UnicodeDecodeError, TypeError):
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
