"""Memory and snapshot bytes per active stream with a full tier window (no broker).

Builds ``--streams`` streams in one :class:`~processor.core.engine.Engine` (default
:class:`~processor.core.engine.EngineConfig`: a 600 s tier window in 10 s steps, so 60
buckets) by feeding it events, stream time advancing for all streams together: every
stream gets a ``live_start``, then a like and a gift in each of the 60 buckets, so every
bucket of every window is non-empty (300 likes and 260+ gifts a bucket: a busy stream,
and counts that are not cached small ints). ``tracemalloc`` measures what the engine holds once
the events are gone: each :class:`~processor.core.engine.StreamState` with its window,
tumbling totals and session, its entry in ``Engine.streams``, and the stream and creator
id strings (the engine itself and its empty bookkeeping are created before the baseline).
Then the partition's snapshot is encoded in full and its size divided by the streams.

Run ``python -m bench.state_memory``; :func:`measure` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import msgspec

from processor.contract import Event, Gift, Like, LiveStart
from processor.core import snapshot
from processor.core.engine import Engine, EngineConfig

TARGET_BYTES = 2_048  # issue 9: memory per active stream with a full tier window
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every step
# per stream and bucket: above 256, so no count is one of CPython's cached small ints
LIKES = 300
GIFTS = 260


def _events(streams: int, config: EngineConfig) -> Iterator[Event]:
    """A ``live_start`` per stream, then a like and a gift per stream in every bucket."""
    step = config.tier_step_ms
    buckets = config.tier_window_ms // step
    ids = [(f"live-1-{T0}-{k}", f"creator-{k}") for k in range(streams)]
    n = 0
    for stream_id, creator_id in ids:
        n += 1
        yield LiveStart(v=1, event_id=f"e{n}", stream_id=stream_id, creator_id=creator_id, ts=T0)
    for b in range(buckets):
        for k, (stream_id, creator_id) in enumerate(ids):
            ts = T0 + b * step + k % step
            n += 1
            yield Like(
                v=1,
                event_id=f"e{n}",
                stream_id=stream_id,
                creator_id=creator_id,
                ts=ts,
                user_id="u1",
                count=15,  # the like events in between were dropped: ``total`` tells
                total=LIKES * (b + 1),
            )
            n += 1
            yield Gift(
                v=1,
                event_id=f"e{n}",
                stream_id=stream_id,
                creator_id=creator_id,
                ts=ts,
                user_id="u2",
                gift_id=5655,
                gift_name="Finger Heart",
                coins=5,
                repeat_count=GIFTS + b % 5,
                streakable=False,
                streak_id="",
                repeat_end=True,
            )


def _full_windows(records: list[tuple[bytes, bytes | None]], buckets: int) -> int:
    """How many stream checkpoint records hold ``buckets`` non-empty buckets."""
    docs = [msgspec.msgpack.decode(v) for k, v in records if k.startswith(b"s:") and v]
    return sum(1 for doc in docs if len(doc["stream"]["window"]) == buckets)


def measure(streams: int = 2_000, config: EngineConfig | None = None) -> dict[str, Any]:
    """Bytes of memory and of snapshot per stream with a full tier window."""
    config = config or EngineConfig()
    buckets = config.tier_window_ms // config.tier_step_ms
    engine = Engine(config)
    outputs: list[Any] = []
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for event in _events(streams, config):
            engine.apply(event, 0, outputs)
            outputs.clear()
        engine.changed.clear()  # a checkpoint's bookkeeping, not per-stream state
        engine.counted.likes = engine.counted.gifts = engine.counted.coins = 0
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    records = snapshot.full(engine, 0)
    full = _full_windows(records, buckets)
    stream_bytes = sum(len(v or b"") for k, v in records if k.startswith(b"s:"))
    if full != streams or len(engine.streams) != streams:
        raise RuntimeError(f"only {full} of {streams} streams have a full window")
    per_stream = held / streams
    return {
        "streams": streams,
        "buckets": buckets,
        "bytes_per_stream": round(per_stream, 1),
        "target_bytes": TARGET_BYTES,
        "met": per_stream <= TARGET_BYTES,
        "snapshot_bytes_per_stream": round(stream_bytes / streams, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = measure(args.streams)
    if args.json:
        print(json.dumps(result))
        return
    verdict = "met" if result["met"] else "MISSED"
    print(
        f"state memory per stream, full {result['buckets']}-bucket window "
        f"({result['streams']} streams): {result['bytes_per_stream']:,.0f} B "
        f"(target <= {result['target_bytes']:,} B: {verdict})"
    )
    print(f"snapshot bytes per stream: {result['snapshot_bytes_per_stream']:,.0f} B")


if __name__ == "__main__":
    main()
