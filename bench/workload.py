"""The two workloads, deterministic byte for byte, each pre-filled onto a topic and reused.

``heavy`` (the targets are judged on it): 10,000 streams, all live, whose shares of the
traffic are lognormal (sigma 1.6), users drawn from 100,000; 70% likes, 10% gifts (combos end
with ``repeat_end``), 15% comments, 5% joins. ``simulator``: the simulator's gentler events.
Records are keyed by stream id (murmur2 partitioning, as aiokafka's producer does); a topic's
name holds a hash of the parameters and the generator: a run reuses it while neither changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import accumulate
from typing import Any

from bench.common import ROOT, create_topics, delete_topics, end_offsets, produce, say
from processor.contract import encode_event
from processor.simulator.generator import SimulationConfig, generate

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the same events on every run
GENERATORS = {"simulator": ROOT / "processor" / "simulator" / "generator.py"}
USERS, SIGMA = 100_000, 1.6  # the heavy workload's
# (gift_id, name, coins, streakable): docs/domain.md's catalogue, weighted toward the cheap
GIFTS: tuple[tuple[int, str, int, bool], ...] = (
    (5655, "Rose", 1, True),
    (5487, "Finger Heart", 5, True),
    (5879, "Doughnut", 30, True),
    (7168, "Money Gun", 500, False),
    (5827, "Galaxy", 1_000, False),
    (6369, "Lion", 29_999, False),
    (7312, "Universe", 44_999, False),
)
GIFT_WEIGHTS = (60, 25, 10, 3, 1.5, 0.4, 0.1)
COMMENTS = ("wow", "hello from Lisbon!", "🔥🔥🔥", "can you say hi to my sister?", "gg")


@dataclass(frozen=True)
class Workload:
    """What is on a bench topic; ``rate`` is the generator's virtual events/s."""

    events: int
    streams: int
    partitions: int
    seed: int = 1
    rate: float = 10_000.0
    kind: str = "simulator"

    @classmethod
    def heavy(cls, events: int, streams: int = 10_000) -> Workload:
        return cls(events, streams, 8, seed=7, rate=5_000.0, kind="heavy")

    @property
    def topic(self) -> str:
        source = GENERATORS.get(self.kind, ROOT / "bench" / "workload.py").read_bytes()
        doc = {
            **asdict(self),
            "start_ms": START_MS,
            "generator": hashlib.sha256(source).hexdigest(),
        }
        digest = hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:12]
        return f"bench.{'events' if self.kind == 'simulator' else self.kind}.{digest}"

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """``(stream id, compact JSON)`` per event."""
        return heavy(self) if self.kind == "heavy" else records(self.simulation())

    def simulation(self, start_ms: int = START_MS, events: int | None = None) -> SimulationConfig:
        # end_streams=False: a slice of a continuous feed, every stream still live at the end
        config = {
            "streams": self.streams,
            "rate": self.rate,
            "seed": self.seed,
            "end_streams": False,
        }
        return SimulationConfig(start_ms=start_ms, max_events=events or self.events, **config)


def records(config: SimulationConfig) -> Iterator[tuple[bytes, bytes]]:
    for event in generate(config):
        yield event.stream_id.encode(), encode_event(event)


def heavy(w: Workload) -> Iterator[tuple[bytes, bytes]]:
    """The heavy workload's records: every stream starts first and none ends."""
    rng = random.Random(w.seed)
    cum = list(accumulate(rng.lognormvariate(0.0, SIGMA) for _ in range(w.streams)))
    like_totals = [0] * w.streams
    # an open combo per stream: [user, gift index, steps sent, steps it will have, streak id]
    combos: dict[int, list[Any]] = {}
    step_ms, n = 1000.0 / w.rate, 0

    def header(kind: str, k: int, ts: int) -> str:
        return (
            f'{{"v":1,"type":"{kind}","event_id":"h{n}","stream_id":"live-h{k}",'
            f'"creator_id":"creator-h{k}","ts":{ts}'
        )

    for k in range(min(w.streams, w.events)):
        ts = START_MS + int(n * step_ms)
        yield f"live-h{k}".encode(), (header("live_start", k, ts) + ',"title":"live"}').encode()
        n += 1
    for k in rng.choices(range(w.streams), cum_weights=cum, k=max(0, w.events - n)):
        ts, user, roll = START_MS + int(n * step_ms), rng.randrange(USERS), rng.random()
        if roll < 0.70:
            count = 1 + (n * 7 + k) % 15
            like_totals[k] += count + (count if n % 9 == 0 else 0)  # some like events lost
            tail = f',"user_id":"u{user}","count":{count},"total":{like_totals[k]}}}'
        elif roll < 0.80:
            combo = combos.get(k)
            if combo is None:
                (index,) = rng.choices(range(len(GIFTS)), weights=GIFT_WEIGHTS)
                steps = 1 + int(rng.expovariate(0.35)) if GIFTS[index][3] else 1
                combo = combos[k] = [user, index, 0, steps, f"s{n}"]
            combo[2] = sent = combo[2] + 1
            if end := sent >= combo[3]:
                del combos[k]
            gift_id, name, coins, streakable = GIFTS[combo[1]]
            tail = (
                f',"user_id":"u{combo[0]}","gift_id":{gift_id},"gift_name":"{name}","coins":'
                f'{coins},"repeat_count":{sent},"streakable":{"true" if streakable else "false"},'
                f'"streak_id":"{combo[4]}","repeat_end":{"true" if end else "false"}}}'
            )
        elif roll < 0.95:
            tail = f',"user_id":"u{user}","text":"{COMMENTS[n % len(COMMENTS)]}"}}'
        else:
            tail = f',"user_id":"u{user}"}}'
        kind = (
            "like" if roll < 0.7 else "gift" if roll < 0.8 else "comment" if roll < 0.95 else "join"
        )
        yield f"live-h{k}".encode(), (header(kind, k, ts) + tail).encode()
        n += 1


async def ensure_prefilled(bootstrap: str, workload: Workload) -> dict[str, Any]:
    """Fill ``workload.topic`` unless it holds the workload already."""
    topic = workload.topic
    ends = await end_offsets(bootstrap, topic)
    if sum(ends.values()) == workload.events and len(ends) == workload.partitions:
        say(f"reusing the pre-filled topic {topic}")
        return {"topic": topic, "reused": True}
    await delete_topics(bootstrap, topic)  # an incomplete one
    while await end_offsets(bootstrap, topic):
        await asyncio.sleep(0.2)
    await create_topics(bootstrap, [topic], workload.partitions)
    say(f"pre-filling {topic}: {workload}")
    started = time.monotonic()
    await produce(bootstrap, topic, workload.records())
    if (filled := sum((await end_offsets(bootstrap, topic)).values())) != workload.events:
        raise RuntimeError(f"prefill wrote {filled:,} records, not {workload.events:,}")
    return {"topic": topic, "reused": False, "prefill_s": round(time.monotonic() - started, 1)}
