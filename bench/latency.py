"""Event-to-alert latency at a fixed offered load: a paced producer and an alert subscriber.

Run by the harness as ``python -m bench.latency`` (see ``--help``) against a running
``livepulse worker`` that reads ``--topic`` and publishes to ``--alerts-topic``.

The producer sends the simulator's workload (fresh stream ids) at exactly ``--rate``
events/s for ``--duration`` seconds, and stamps each event's ``ts`` with the wall clock
(ms) at which it is handed to the producer. An upward ``tier_changed`` alert's
``event_time`` is the stream time of its transition, which for in-order events is the
``ts`` of the event that caused it, so

* ``end_to_end`` = when the subscriber received the alert - ``event_time``: what a
  subscriber of the alerts topic sees (producer, broker, worker, broker again);
* ``emitted`` = the alert's ``emitted_at`` - ``event_time``: up to the worker's publish.

Alerts caused during the first ``--warmup`` seconds are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import quiet_kafka_logs
from bench.workload import Workload, records

TICK_S = 0.005


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else None,
    }


def _restamp(value: bytes, old_ts: int, new_ts: int) -> bytes:
    return value.replace(b'"ts":%d' % old_ts, b'"ts":%d' % new_ts, 1)


async def subscribe(
    broker: str, topic: str, partitions: int, received: list[tuple[float, bytes]]
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batch.values():
                received.extend((now, m.value) for m in messages)
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet_kafka_logs()
    total = int(args.rate * args.duration)
    workload = Workload(
        events=total, streams=args.streams, partitions=args.partitions, seed=args.seed
    )
    start_ms = int(time.time() * 1000)  # fresh stream ids, never seen by the worker
    prepared: list[tuple[bytes, bytes, int]] = []
    for key, value in records(workload.simulation(start_ms=start_ms, events=total)):
        ts = orjson.loads(value)["ts"]
        prepared.append((key, value, ts))

    received: list[tuple[float, bytes]] = []
    subscriber = asyncio.create_task(
        subscribe(args.broker, args.alerts_topic, args.partitions, received)
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.broker, acks=1, linger_ms=1)
    await producer.start()
    await asyncio.sleep(1.0)  # let the subscriber get its first (empty) fetch in
    try:
        t0 = time.time()
        sent = 0
        while sent < total:
            now = time.time()
            due = min(total, int((now - t0) * args.rate) + 1)
            now_ms = int(now * 1000)
            while sent < due:
                key, value, ts = prepared[sent]
                await producer.send(args.topic, _restamp(value, ts, now_ms), key=key)
                sent += 1
            await asyncio.sleep(TICK_S)
        await producer.flush()
        t_end = time.time()
        # Drain: wait until no alert has arrived for a while.
        seen, quiet_since = len(received), time.time()
        while time.time() - quiet_since < args.drain and time.time() - t_end < 60:
            await asyncio.sleep(0.25)
            if len(received) != seen:
                seen, quiet_since = len(received), time.time()
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
        await producer.stop()

    warm_ms = (t0 + args.warmup) * 1000
    end_to_end: list[float] = []
    emitted: list[float] = []
    alerts = 0
    for at, value in received:
        alert = orjson.loads(value)
        alerts += 1
        if alert.get("type") != "tier_changed" or alert.get("direction") != "up":
            continue
        if alert["event_time"] < warm_ms:
            continue
        end_to_end.append(at * 1000 - alert["event_time"])
        emitted.append(float(alert["emitted_at"] - alert["event_time"]))
    return {
        "offered_rate": args.rate,
        "achieved_rate": round(total / (t_end - t0), 1),
        "duration_s": round(t_end - t0, 2),
        "events": total,
        "alerts_received": alerts,
        "end_to_end": summary(end_to_end),
        "emitted": summary(emitted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True, help="the worker's events topic")
    parser.add_argument("--alerts-topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="offered events/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start")
    parser.add_argument("--drain", type=float, default=3.0, help="quiet seconds that end it")
    parser.add_argument("--result", required=True, help="JSON file to write")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    with open(args.result, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
