"""Event-to-alert latency at a fixed offered load: a paced producer and an alert subscriber.

Run by the harness as ``python -m bench.latency`` (see ``--help``) against a running
``livepulse worker`` that reads ``--topic`` and publishes to ``--alerts-topic``.

The pacer writes the simulator's workload (fresh stream ids) at ``--rate`` events/s for
``--duration`` seconds, as ``key<TAB>json`` lines, into ``kcat -P`` (librdkafka, in C),
and stamps each event's ``ts`` with the wall clock (ms) at which it writes it. An upward ``tier_changed`` alert's
``event_time`` is the stream time of its transition, which for in-order events is the
``ts`` of the event that caused it, so

* ``end_to_end`` = when a ``read_uncommitted`` subscriber received the alert -
  ``event_time``: what a subscriber of the alerts topic sees (producer, broker, worker,
  broker again), before the worker's transaction commits;
* ``end_to_end_committed``: the same for a ``read_committed`` subscriber, which sees an
  alert once the transaction that holds it commits (with ``exactly_once``, up to a
  commit interval later);
* ``emitted`` = the alert's ``emitted_at`` - ``event_time``: up to the worker's publish.

Alerts caused during the first ``--warmup`` seconds are left out.

Whether the load generator kept pace: ``achieved_rate`` against ``offered_rate``, and
``ts_to_create_time``, each record's Kafka CreateTime (set by librdkafka when kcat hands
it the record) minus its ``ts``, read back from the events topic after the run. A large
p99 there means events waited in the load generator, not in the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

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


def _split(key: bytes, value: bytes, ts: int) -> tuple[bytes, bytes]:
    """``key<TAB>value<NL>`` as the bytes before and after the digits of its ``ts``."""
    marker = b'"ts":%d' % ts
    at = value.index(marker) + 5
    return key + b"\t" + value[:at], value[at + len(marker) - 5 :] + b"\n"


def _record_ts(value: bytes) -> int | None:
    at = value.find(b'"ts":')
    if at < 0:
        return None
    end = at + 5
    while value[end : end + 1].isdigit():
        end += 1
    return int(value[at + 5 : end]) if end > at + 5 else None


async def producer_lag(broker: str, topic: str, partitions: int, since_ms: float) -> dict[str, Any]:
    """Read the events topic back: each record's CreateTime - its ``ts`` (ms).

    CreateTime is stamped by the client (librdkafka) when kcat hands it the record, so
    this is the time an event waited in the pacer and the pipe before reaching the
    producer: load-generator lag, which the worker cannot see. Events stamped before
    ``since_ms`` (the warm-up) are left out.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    lags: list[float] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for tp, messages in batch.items():
                for m in messages:
                    ts = _record_ts(m.value)
                    if ts is not None and ts >= since_ms:
                        lags.append(float(m.timestamp - ts))
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return summary(lags)


async def subscribe(
    broker: str,
    topic: str,
    partitions: int,
    received: list[tuple[float, bytes]],
    isolation_level: str = "read_uncommitted",
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        isolation_level=isolation_level,
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
    prepared: list[tuple[bytes, bytes]] = []
    for key, value in records(workload.simulation(start_ms=start_ms, events=total)):
        prepared.append(_split(key, value, orjson.loads(value)["ts"]))

    received: list[tuple[float, bytes]] = []
    received_committed: list[tuple[float, bytes]] = []
    subscribers = [
        asyncio.create_task(subscribe(args.broker, args.alerts_topic, args.partitions, received)),
        asyncio.create_task(
            subscribe(
                args.broker,
                args.alerts_topic,
                args.partitions,
                received_committed,
                "read_committed",
            )
        ),
    ]
    # kcat (librdkafka, in C) produces; this process only paces and stamps ``ts``. A
    # Python client tops out well below the rates needed here on a small machine, and
    # events then wait in it for seconds after being stamped.
    kcat = shutil.which("kcat")
    if kcat is None:
        raise SystemExit("bench.latency needs kcat (make system-deps)")
    producer = await asyncio.create_subprocess_exec(
        kcat,
        "-P",
        "-q",
        "-b",
        args.broker,
        "-t",
        args.topic,
        "-K",
        "\t",
        "-X",
        "acks=1",
        "-X",
        "linger.ms=2",
        "-X",
        "queue.buffering.max.messages=1000000",
        "-X",
        "topic.partitioner=murmur2_random",  # the Java (and aiokafka) key partitioning
        stdin=asyncio.subprocess.PIPE,
    )
    assert producer.stdin is not None
    await asyncio.sleep(1.0)  # let the subscriber get its first (empty) fetch in
    behind_ms: list[float] = []  # per tick: how late the pacer wrote its due events
    try:
        t0 = time.time()
        sent = 0
        while sent < total:
            now = time.time()
            due = min(total, int((now - t0) * args.rate) + 1)
            stamp = b"%d" % int(now * 1000)
            behind_ms.append(max(0.0, (now - t0 - sent / args.rate) * 1000))
            producer.stdin.write(b"".join(pre + stamp + post for pre, post in prepared[sent:due]))
            sent = due
            await producer.stdin.drain()
            await asyncio.sleep(TICK_S)
        t_written = time.time()
        producer.stdin.close()
        code = await producer.wait()  # kcat flushes everything on end of input
        if code != 0:
            raise SystemExit(f"kcat exit {code}")
        t_end = time.time()
        # Drain: wait until no alert has arrived for a while.
        seen, quiet_since = len(received) + len(received_committed), time.time()
        while time.time() - quiet_since < args.drain and time.time() - t_end < 60:
            await asyncio.sleep(0.25)
            if len(received) + len(received_committed) != seen:
                seen, quiet_since = len(received) + len(received_committed), time.time()
    finally:
        for subscriber in subscribers:
            subscriber.cancel()
        await asyncio.gather(*subscribers, return_exceptions=True)
        if producer.returncode is None:
            producer.kill()
            await producer.wait()

    warm_ms = (t0 + args.warmup) * 1000

    def delays(arrivals: list[tuple[float, bytes]]) -> tuple[list[float], list[float], int]:
        """(end to end, up to the publish) of upward tier changes, and the alerts seen."""
        end_to_end: list[float] = []
        emitted: list[float] = []
        for at, value in arrivals:
            alert = orjson.loads(value)
            if alert.get("type") != "tier_changed" or alert.get("direction") != "up":
                continue
            if alert["event_time"] < warm_ms:
                continue
            end_to_end.append(at * 1000 - alert["event_time"])
            emitted.append(float(alert["emitted_at"] - alert["event_time"]))
        return end_to_end, emitted, len(arrivals)

    end_to_end, emitted, alerts = delays(received)
    end_to_end_committed, _, alerts_committed = delays(received_committed)
    lag = await producer_lag(args.broker, args.topic, args.partitions, warm_ms)
    return {
        "offered_rate": args.rate,
        "achieved_rate": round(total / (t_end - t0), 1),
        "written_rate": round(total / (t_written - t0), 1),
        "duration_s": round(t_end - t0, 2),
        "producer": "kcat (librdkafka), linger.ms=2, acks=1",
        "pacer_behind": summary(behind_ms),
        "ts_to_create_time": lag,
        "events": total,
        "alerts_received": alerts,
        "alerts_received_committed": alerts_committed,
        "end_to_end": summary(end_to_end),
        "end_to_end_committed": summary(end_to_end_committed),
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
