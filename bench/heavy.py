"""The platform-like workload: many heavy-tailed streams, a large user base, all live at once.

What a real platform looks like and the simulator's gentle bench does not: 10,000 streams
whose shares of the traffic are lognormal (sigma 1.6: most streams small, a few huge), user
ids drawn uniformly from 100,000, so the huge streams have thousands of distinct users
each; 70% likes with running room totals, 10% gifts (streakable ones in combos that end with
``repeat_end``), 15% comments and 5% joins. Every stream starts before the first other
event and none ends, so all of them are live (and held in state) to the end.

Deterministic: the same parameters give the same records, byte for byte. Event time moves
at ``rate`` events per second of virtual time. The records are plain JSON built from
templates, so generating a million takes a couple of seconds.

  python -m bench.heavy --events 20 --streams 3        # print a few records
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, as the simulator's bench workload

# (gift_id, name, coins, streakable): the catalogue of docs/domain.md, weighted toward the cheap
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
class Heavy:
    """The workload's parameters (the defaults are the issue's platform-like workload)."""

    events: int = 2_000_000
    streams: int = 10_000
    users: int = 100_000
    sigma: float = 1.6
    rate: float = 5_000.0  # events per second of event time
    seed: int = 7

    @property
    def name(self) -> str:
        return (
            f"heavy-{self.events}-{self.streams}s-{self.users}u-"
            f"sigma{self.sigma}-r{self.rate:g}-seed{self.seed}"
        )


def records(w: Heavy) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` per event, key the stream id: ``w.events`` records in all."""
    rng = random.Random(w.seed)
    ids = [f"live-h{k}" for k in range(w.streams)]
    creators = [f"creator-h{k}" for k in range(w.streams)]
    weights = [rng.lognormvariate(0.0, w.sigma) for _ in range(w.streams)]
    cum = list(accumulate(weights))
    like_totals = [0] * w.streams
    # an open combo per stream: [user, gift index, steps sent, steps it will have, streak id]
    combos: dict[int, list[object]] = {}
    step_ms = 1000.0 / w.rate
    n = 0

    def header(kind: str, k: int, ts: int) -> str:
        return (
            f'{{"v":1,"type":"{kind}","event_id":"h{n}","stream_id":"{ids[k]}",'
            f'"creator_id":"{creators[k]}","ts":{ts}'
        )

    for k in range(min(w.streams, w.events)):
        ts = START_MS + int(n * step_ms)
        yield ids[k].encode(), (header("live_start", k, ts) + ',"title":"live"}').encode()
        n += 1
    streams = rng.choices(range(w.streams), cum_weights=cum, k=max(0, w.events - n))
    for k in streams:
        ts = START_MS + int(n * step_ms)
        user = rng.randrange(w.users)
        roll = rng.random()
        if roll < 0.70:
            count = 1 + (n * 7 + k) % 15
            like_totals[k] += count + (count if n % 9 == 0 else 0)  # some like events lost
            tail = f',"user_id":"u{user}","count":{count},"total":{like_totals[k]}}}'
            value = header("like", k, ts) + tail
        elif roll < 0.80:
            value = header("gift", k, ts) + _gift(rng, combos, k, user, n)
        elif roll < 0.95:
            text = COMMENTS[n % len(COMMENTS)]
            value = header("comment", k, ts) + f',"user_id":"u{user}","text":"{text}"}}'
        else:
            value = header("join", k, ts) + f',"user_id":"u{user}"}}'
        yield ids[k].encode(), value.encode()
        n += 1


def _gift(rng: random.Random, combos: dict[int, list[object]], k: int, user: int, n: int) -> str:
    combo = combos.get(k)
    if combo is None:
        (index,) = rng.choices(range(len(GIFTS)), weights=GIFT_WEIGHTS)
        steps = 1 + int(rng.expovariate(0.35)) if GIFTS[index][3] else 1
        combo = [user, index, 0, steps, f"s{n}"]
        combos[k] = combo
    combo[2] = sent = int(combo[2]) + 1  # type: ignore[call-overload]
    end = sent >= int(combo[3])  # type: ignore[call-overload]
    if end:
        del combos[k]
    gift_id, name, coins, streakable = GIFTS[int(combo[1])]  # type: ignore[call-overload]
    return (
        f',"user_id":"u{combo[0]}","gift_id":{gift_id},"gift_name":"{name}","coins":{coins},'
        f'"repeat_count":{sent},"streakable":{"true" if streakable else "false"},'
        f'"streak_id":"{combo[4]}","repeat_end":{"true" if end else "false"}}}'
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    for key, value in records(Heavy(args.events, args.streams, args.users)):
        sys.stdout.buffer.write(key + b"\t" + value + b"\n")


if __name__ == "__main__":
    main()
