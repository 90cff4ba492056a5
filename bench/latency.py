"""Event-to-alert latency at a fixed offered load: a paced producer and two alert subscribers.

:func:`run` writes the simulator's events (fresh streams) at ``rate`` events/s into ``kcat
-P`` (librdkafka: a Python producer falls behind), stamping each ``ts`` with the wall clock
as it writes it, beside a worker that reads them. An upward ``tier_changed`` alert's
``event_time`` is the ``ts`` of the event that caused it, so: ``end_to_end`` (a
``read_uncommitted`` subscriber's arrival minus it), ``end_to_end_committed`` (the same,
``read_committed``: once the transaction that holds it commits) and ``emitted`` (its
``emitted_at`` minus it), after a warm-up. Whether the pacer kept up: ``achieved_rate``, and
``ts_to_create_time``, each record's Kafka CreateTime (set when kcat takes it) minus its ts.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import common
from bench.workload import Workload, records


def summary(values: list[float]) -> dict[str, Any]:
    """How many, the nearest-rank p50, p90 and p99, and the most of ``values`` (ms)."""
    ordered = sorted(values)
    n = len(ordered)
    ranks = {
        f"p{q}_ms": ordered[max(1, min(n, round(q / 100 * n + 0.5))) - 1] for q in (50, 90, 99)
    }
    return {"count": n} | (ranks | {"max_ms": ordered[-1]} if n else dict.fromkeys(ranks))


async def subscribe(load: dict[str, Any], how: str, seen: list[tuple[float, bytes]]) -> None:
    """Every alert from the start, with the time it arrived, until cancelled."""
    settings = {"fetch_max_wait_ms": 10, "isolation_level": how}
    consumer = AIOKafkaConsumer(bootstrap_servers=load["broker"], **settings)
    await consumer.start()
    try:
        topic = load["alerts_topic"]
        consumer.assign([TopicPartition(topic, p) for p in range(load["partitions"])])
        await consumer.seek_to_beginning()
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batch.values():
                seen.extend((now, m.value) for m in messages)
    finally:
        await consumer.stop()


async def producer_lag(load: dict[str, Any], since_ms: float) -> dict[str, Any]:
    """Each event's CreateTime minus its ``ts``: how long it waited in the load generator."""
    ends = await common.end_offsets(load["broker"], load["topic"])
    lags = []
    async for m in common.read(load["broker"], load["topic"], ends):
        if (ts := orjson.loads(m.value)["ts"]) >= since_ms:
            lags.append(float(m.timestamp - ts))
    return summary(lags)


def delays(arrivals: list[tuple[float, bytes]], since_ms: float) -> tuple[list[float], list[float]]:
    """End to end and up to the publish, of the upward tier changes after the warm-up."""
    alerts = [(at, orjson.loads(value)) for at, value in arrivals]
    ups = [(at, a) for at, a in alerts if a["type"] == "tier_changed" and a["direction"] == "up"]
    ups = [(at * 1000, a["emitted_at"], a["event_time"]) for at, a in ups]
    ups = [(at - t, float(emitted - t)) for at, emitted, t in ups if t >= since_ms]
    return [e for e, _ in ups], [e for _, e in ups]


async def run(load: dict[str, Any]) -> dict[str, Any]:
    """``load``: broker, topic, alerts_topic, partitions, rate, duration, streams, warmup."""
    rate, total = load["rate"], int(load["rate"] * load["duration"])
    workload = Workload(total, load["streams"], load["partitions"], seed=2)
    prepared = []  # each record as the bytes before and after its ts, stamped when sent
    for key, value in records(workload.simulation(int(time.time() * 1000), total)):
        ts = b"%d" % orjson.loads(value)["ts"]
        at = value.index(b'"ts":' + ts) + 5
        prepared.append((key + b"\t" + value[:at], value[at + len(ts) :] + b"\n"))
    arrivals: dict[str, list[tuple[float, bytes]]] = {"read_uncommitted": [], "read_committed": []}
    subscribers = [asyncio.create_task(subscribe(load, k, v)) for k, v in arrivals.items()]
    kcat = shutil.which("kcat")
    if kcat is None:
        raise RuntimeError("bench.latency needs kcat (make system-deps)")
    options = ["acks=1", "linger.ms=2", "queue.buffering.max.messages=1000000"]
    options.append("topic.partitioner=murmur2_random")  # as the Java client and aiokafka do
    argv = [kcat, "-P", "-q", "-b", load["broker"], "-t", load["topic"], "-K", "\t"]
    producer = await asyncio.create_subprocess_exec(
        *argv, *(f"-X{o}" for o in options), stdin=asyncio.subprocess.PIPE
    )
    assert producer.stdin is not None
    await asyncio.sleep(1.0)  # the subscribers' start and first (empty) fetches
    try:
        t0, sent = time.time(), 0
        while sent < total:
            now = time.time()
            due = min(total, int((now - t0) * rate) + 1)
            stamp = b"%d" % int(now * 1000)
            producer.stdin.write(b"".join(pre + stamp + post for pre, post in prepared[sent:due]))
            sent = due
            await producer.stdin.drain()
            await asyncio.sleep(0.005)
        producer.stdin.close()
        if await producer.wait():  # kcat flushes everything at the end of its input
            raise RuntimeError(f"kcat exit {producer.returncode}")
        t_end = seen_at = time.time()
        seen = 0
        while time.time() - seen_at < 3 and time.time() - t_end < 60:  # until 3 s without alerts
            await asyncio.sleep(0.25)
            if sum(map(len, arrivals.values())) != seen:
                seen, seen_at = sum(map(len, arrivals.values())), time.time()
    finally:
        for task in subscribers:
            task.cancel()
        await asyncio.gather(*subscribers, return_exceptions=True)
        if producer.returncode is None:
            producer.kill()
            await producer.wait()
    since_ms = (t0 + load["warmup"]) * 1000
    end_to_end, emitted = delays(arrivals["read_uncommitted"], since_ms)
    return {
        "offered_rate": rate,
        "achieved_rate": round(total / (t_end - t0), 1),
        "ts_to_create_time": await producer_lag(load, since_ms),
        "events": total,
        "alerts_received": len(arrivals["read_uncommitted"]),
        "end_to_end": summary(end_to_end),
        "end_to_end_committed": summary(delays(arrivals["read_committed"], since_ms)[0]),
        "emitted": summary(emitted),
    }
