"""State writes per second while a few of many streams receive events (no broker).

One partition's engine holds ``--streams`` live streams, each with a full tier window and
a liker in every minute of it. Then, for ``--seconds`` of wall clock, ``--active`` of them
get a like event every second; the worker's idle tick runs every second and a checkpoint
is taken every second (the default commit interval), as the worker does. The checkpoint
records' bytes per second are the state writes: what a worker sends to the state topic
while most streams are quiet; reported as encoded, and compressed as the worker's producer
sends them (lz4 by default: each checkpoint's records compressed together, as one batch).

  python -m bench.state_writes                 # 50,000 streams, 100 active, 20 s
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from aiokafka.codec import lz4_encode

from processor.contract import Like, LiveStart
from processor.core import checkpoint
from processor.core.engine import Engine, EngineConfig

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TARGET_BYTES_PER_S = 100 * 1024


def measure(streams: int = 50_000, active: int = 100, seconds: int = 20) -> dict[str, Any]:
    config = EngineConfig()
    engine = Engine(config)
    size, step = config.tier_window_ms, config.tier_step_ms
    ids = [(f"s{k}", f"c{k % 997}") for k in range(streams)]
    totals = dict.fromkeys(range(streams), 0)
    outputs: list[Any] = []
    n = 0
    for stream_id, creator_id in ids:
        n += 1
        event = LiveStart(v=1, event_id=f"e{n}", stream_id=stream_id, creator_id=creator_id, ts=T0)
        engine.apply(event, T0, outputs)

    def like(k: int, ts: int, user_id: str) -> Like:
        nonlocal n
        n += 1
        totals[k] += 3
        stream_id, creator_id = ids[k]
        return Like(
            v=1,
            event_id=f"e{n}",
            stream_id=stream_id,
            creator_id=creator_id,
            ts=ts,
            user_id=user_id,
            count=3,
            total=totals[k],
        )

    # a full window: a like in every bucket, the minute's liker a new user each minute
    for b in range(size // step):
        ts = T0 + b * step
        for k in range(streams):
            engine.apply(like(k, ts, f"u{k}-{ts // 60_000}"), ts, outputs)
    outputs.clear()
    checkpoint.changes(engine, offset=n)  # the warm-up's checkpoint is not counted
    wall = T0 + size
    written = records = compressed = 0
    for second in range(1, seconds + 1):
        wall = T0 + size + second * 1_000
        for k in range(active):
            engine.apply(like(k, wall, f"u{k}"), wall, outputs)
        engine.tick(wall)
        outputs.clear()
        batch = checkpoint.changes(engine, offset=n)
        records += len(batch)
        raw = b"".join(key + (value or b"") for key, value in batch)
        written += len(raw)
        compressed += len(lz4_encode(raw))
    per_s = compressed / seconds
    return {
        "streams": streams,
        "active": active,
        "seconds": seconds,
        "records_per_s": round(records / seconds, 1),
        "bytes_per_s": round(written / seconds),
        "lz4_bytes_per_s": round(per_s),
        "target_bytes_per_s": TARGET_BYTES_PER_S,
        "met": per_s <= TARGET_BYTES_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=50_000)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.streams, args.active, args.seconds)
    if args.json:
        print(json.dumps(result))
        return
    verdict = "met" if result["met"] else "MISSED"
    print(
        f"state writes, {result['active']} of {result['streams']:,} streams active: "
        f"{result['lz4_bytes_per_s'] / 1024:,.1f} KB/s with lz4 "
        f"({result['bytes_per_s'] / 1024:,.1f} KB/s encoded) in {result['records_per_s']:,.0f} "
        f"records/s (target <= {TARGET_BYTES_PER_S // 1024} KB/s: {verdict})"
    )


if __name__ == "__main__":
    main()
