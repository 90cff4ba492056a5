"""The benchmark workloads, deterministic, pre-filled onto a topic once each.

``simulator``: the simulator's events (``processor/simulator/generator.py``), gentle: a
stream's users are few. ``heavy``: bench/heavy.py's platform-like records (10,000
lognormal streams, 100,000 users, all live), the one the targets are judged on. Records
are keyed by stream id and spread over the partitions by Kafka's default partitioner
(murmur2 of the key: aiokafka's producer, given a key).

The topic name carries a hash of everything that decides its content (the workload
parameters and the generator's source), so a later run reuses it when nothing changed and
fills a new one otherwise. ``.local/bench/workloads.json`` remembers how long each fill took.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing as mp
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.common import LOCAL, ROOT, create_topics, delete_topics, end_offsets, say

# A fixed virtual clock start: the same events, byte for byte, on every run.
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GENERATORS = {
    "simulator": ROOT / "processor" / "simulator" / "generator.py",
    "heavy": ROOT / "bench" / "heavy.py",
}
META_FILE = LOCAL / "workloads.json"
CHUNK = 5_000


@dataclass(frozen=True)
class Workload:
    """What is on a bench topic. ``rate`` is the generator's virtual events/s."""

    events: int
    streams: int
    partitions: int
    seed: int = 1
    rate: float = 10_000.0
    kind: str = "simulator"  # or "heavy" (its users and sigma are bench.heavy's defaults)

    @classmethod
    def heavy(cls, events: int, partitions: int = 8) -> Workload:
        from bench.heavy import Heavy

        h = Heavy(events=events)
        return cls(events, h.streams, partitions, h.seed, h.rate, "heavy")

    def config_hash(self) -> str:
        source = hashlib.sha256(GENERATORS[self.kind].read_bytes()).hexdigest()
        doc = json.dumps({**asdict(self), "start_ms": START_MS, "generator": source})
        return hashlib.sha256(doc.encode()).hexdigest()[:12]

    @property
    def topic(self) -> str:
        return f"bench.{'events' if self.kind == 'simulator' else self.kind}.{self.config_hash()}"

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        if self.kind == "heavy":
            from bench import heavy

            return heavy.records(
                heavy.Heavy(self.events, self.streams, seed=self.seed, rate=self.rate)
            )
        return records(self.simulation())

    def simulation(self, start_ms: int = START_MS, events: int | None = None) -> Any:
        from processor.simulator.generator import SimulationConfig

        # end_streams=False: a slice of a continuous feed, so every stream is still active
        # at the end (state per active stream is measured then).
        return SimulationConfig(
            start_ms=start_ms,
            streams=self.streams,
            rate=self.rate,
            max_events=self.events if events is None else events,
            seed=self.seed,
            end_streams=False,
        )


def records(config: Any) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` per event: key is the stream id, value the compact JSON."""
    from processor.contract import encode_event
    from processor.simulator.generator import generate

    for event in generate(config):
        yield event.stream_id.encode(), encode_event(event)


def _generate_into(conn: Connection, workload: Workload) -> None:
    """Child process: generate the events and send them in chunks through a pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    chunk: list[tuple[bytes, bytes]] = []
    for record in workload.records():
        chunk.append(record)
        if len(chunk) >= CHUNK:
            conn.send(chunk)
            chunk = []
    if chunk:
        conn.send(chunk)
    conn.send(None)
    conn.close()


def _load_meta() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(META_FILE.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _save_meta(meta: dict[str, Any]) -> None:
    META_FILE.parent.mkdir(parents=True, exist_ok=True)
    META_FILE.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


async def ensure_prefilled(bootstrap: str, workload: Workload, refill: bool) -> dict[str, Any]:
    """Fill ``workload.topic`` unless it already holds exactly this workload.

    Returns ``{"topic", "reused", "prefill_s", "records"}``; ``prefill_s`` is the time the
    fill took (now, or when the reused topic was filled).
    """
    topic = workload.topic
    meta = _load_meta()
    known = meta.get(topic)
    ends = await end_offsets(bootstrap, topic)
    complete = sum(ends.values()) == workload.events and len(ends) == workload.partitions
    if not refill and known and complete:
        say(
            f"reusing pre-filled topic {topic}: {workload.events:,} records "
            f"(filled in {known['prefill_s']:.0f}s on {known['filled_at']})"
        )
        return {
            "topic": topic,
            "reused": True,
            "prefill_s": known["prefill_s"],
            "records": workload.events,
        }
    if ends:
        say(f"topic {topic} is stale or incomplete ({sum(ends.values()):,} records); refilling")
        await delete_topics(bootstrap, [topic])
        await _wait_gone(bootstrap, topic)
    await create_topics(bootstrap, [topic], workload.partitions)
    elapsed = await _fill(bootstrap, workload)
    final = sum((await end_offsets(bootstrap, topic)).values())
    if final != workload.events:
        raise RuntimeError(f"prefill wrote {final:,} records, expected {workload.events:,}")
    meta[topic] = {
        "workload": asdict(workload),
        "prefill_s": round(elapsed, 1),
        "filled_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _save_meta(meta)
    return {"topic": topic, "reused": False, "prefill_s": elapsed, "records": final}


async def _wait_gone(bootstrap: str, topic: str) -> None:
    for _ in range(100):
        if not await end_offsets(bootstrap, topic):
            return
        await asyncio.sleep(0.2)


async def _fill(bootstrap: str, workload: Workload) -> float:
    """Generator in a child process (one core), aiokafka producer here (the other)."""
    say(
        f"pre-filling {workload.topic} ({workload.kind}): {workload.events:,} events, "
        f"{workload.streams:,} streams, {workload.partitions} partitions (generator in a child "
        "process, batched producer)"
    )
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_generate_into, args=(sender, workload), name="bench-generator")
    child.start()
    sender.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    loop = asyncio.get_running_loop()
    topic = workload.topic
    started = time.monotonic()
    sent = 0
    next_report = started + 3.0
    try:
        in_flight: list[asyncio.Future[Any]] = []
        while True:
            try:
                chunk = await loop.run_in_executor(None, receiver.recv)
            except EOFError:
                raise RuntimeError(f"the generator process died (exit {child.exitcode})") from None
            if chunk is None:
                break
            # Keep one chunk in flight while the next one is queued: bounded memory.
            previous, in_flight = in_flight, []
            for key, value in chunk:
                in_flight.append(await producer.send(topic, value, key=key))
            if previous:
                await asyncio.gather(*previous)
            sent += len(chunk)
            now = time.monotonic()
            if now >= next_report:
                rate = sent / (now - started)
                eta = (workload.events - sent) / rate if rate else 0.0
                say(
                    f"  prefill {sent:>11,}/{workload.events:,} ({100 * sent / workload.events:3.0f}%)"
                    f"  {rate:,.0f} ev/s  ETA {eta:,.0f}s"
                )
                next_report = now + 5.0
        await producer.flush()
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    elapsed = time.monotonic() - started
    say(f"prefill done: {sent:,} events in {elapsed:.1f}s ({sent / elapsed:,.0f} ev/s)")
    return elapsed
