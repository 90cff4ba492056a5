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

Top gifters and likers are measured apart, as what they add per stream: each
stream above has one liker and one gifter (its session summary and one per minute of the
window); the tier-window state is what remains once they are dropped; the target is for
the two together. ``--full-top`` measures the worst case too: every minute of the window and the
session with ``top_users_tracked`` distinct likers and as many gifters.

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

from processor.contract import Event, Gift, Like, LiveStart, Viewers
from processor.core import checkpoint
from processor.core.engine import Engine, EngineConfig

TARGET_BYTES = 2_048  # memory per active stream: full tier window, a liker and a gifter a minute
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


def _crowded_minutes(streams: int, config: EngineConfig) -> Iterator[Event]:
    """Every minute of the tier window (and so the session) with ``top_users_tracked``
    distinct likers and gifters per stream: every summary at capacity."""
    size = config.tumbling_ms
    minutes = config.tier_window_ms // size + 1
    users = config.top_users_tracked
    n = 0
    for k in range(streams):
        stream_id, creator_id = f"live-1-{T0}-{k}", f"creator-{k}"
        n += 1
        yield LiveStart(v=1, event_id=f"e{n}", stream_id=stream_id, creator_id=creator_id, ts=T0)
        yield Viewers(
            v=1, event_id=f"v{n}", stream_id=stream_id, creator_id=creator_id, ts=T0, count=9_000
        )
        total = 0
        for m in range(minutes):
            for j in range(users):
                ts = T0 + m * size + j
                total += 15
                n += 1
                yield Like(
                    v=1,
                    event_id=f"e{n}",
                    stream_id=stream_id,
                    creator_id=creator_id,
                    ts=ts,
                    user_id=f"liker-{k}-{m}-{j}",
                    count=15,
                    total=total,
                )
                n += 1
                yield Gift(
                    v=1,
                    event_id=f"e{n}",
                    stream_id=stream_id,
                    creator_id=creator_id,
                    ts=ts,
                    user_id=f"gifter-{k}-{m}-{j}",
                    gift_id=5655,
                    gift_name="Finger Heart",
                    coins=5,
                    repeat_count=GIFTS,
                    streakable=False,
                    streak_id="",
                    repeat_end=True,
                )


def _held(engine: Engine, events: Iterator[Event]) -> tuple[int, int, list[checkpoint.Record]]:
    """Bytes the engine holds after ``events``, how many of them are top users (dropped
    from the engine to measure them), and the engine's full checkpoint before the drop."""
    outputs: list[Any] = []
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            engine.apply(event, 0, outputs)
            outputs.clear()
        engine.changed.clear()  # a checkpoint's bookkeeping, not per-stream state
        engine.counted.likes = engine.counted.gifts = engine.counted.coins = 0
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        records = checkpoint.full(engine, 0)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for state in engine.streams.values():
            state.top = state.panes = state.sealed = None
        gc.collect()
        top_users = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return held, top_users, records


def measure_full_top(streams: int = 200, config: EngineConfig | None = None) -> dict[str, Any]:
    """Bytes of top users per stream when every summary is at capacity (the worst case)."""
    config = config or EngineConfig()
    engine = Engine(config)
    minutes = config.tier_window_ms // config.tumbling_ms + 1
    _, top_users, _ = _held(engine, _crowded_minutes(streams, config))
    return {
        "streams": streams,
        "tracked": config.top_users_tracked,
        "summaries_per_stream": 1 + minutes,
        "top_users_bytes_per_stream": round(top_users / streams, 1),
    }


def _full_windows(records: list[tuple[bytes, bytes | None]], buckets: int) -> int:
    """How many stream checkpoint records hold ``buckets`` non-empty buckets."""
    docs = [msgspec.msgpack.decode(v)["stream"] for k, v in records if k.startswith(b"s:") and v]
    return sum(
        1
        for doc in docs
        if len(doc["window"]) == buckets or (doc["packed"] or {}).get("used") == (1 << buckets) - 1
    )


def measure(streams: int = 2_000, config: EngineConfig | None = None) -> dict[str, Any]:
    """Bytes of memory and of snapshot per stream with a full tier window."""
    config = config or EngineConfig()
    buckets = config.tier_window_ms // config.tier_step_ms
    engine = Engine(config)
    held, top_users, records = _held(engine, _events(streams, config))
    full = _full_windows(records, buckets)
    stream_bytes = sum(len(v or b"") for k, v in records if k.startswith(b"s:"))
    if full != streams or len(engine.streams) != streams:
        raise RuntimeError(f"only {full} of {streams} streams have a full window")
    per_stream = (held - top_users) / streams
    return {
        "streams": streams,
        "buckets": buckets,
        "bytes_per_stream": round(per_stream, 1),
        "top_users_bytes_per_stream": round(top_users / streams, 1),
        "target_bytes": TARGET_BYTES,
        "met": per_stream + top_users / streams <= TARGET_BYTES,
        "snapshot_bytes_per_stream": round(stream_bytes / streams, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--full-top",
        action="store_true",
        help="also measure top users with every summary at capacity (200 streams)",
    )
    args = parser.parse_args()
    result = measure(args.streams)
    if args.full_top:
        result["full_top"] = measure_full_top()
    if args.json:
        print(json.dumps(result))
        return
    verdict = "met" if result["met"] else "MISSED"
    print(
        f"state memory per stream, full {result['buckets']}-bucket window "
        f"({result['streams']} streams): {result['bytes_per_stream']:,.0f} B"
    )
    total = result["bytes_per_stream"] + result["top_users_bytes_per_stream"]
    print(
        f"top gifters and likers, one of each per minute: "
        f"+{result['top_users_bytes_per_stream']:,.0f} B per stream, {total:,.0f} B in all "
        f"(target <= {result['target_bytes']:,} B: {verdict})"
    )
    print(f"snapshot bytes per stream: {result['snapshot_bytes_per_stream']:,.0f} B")
    if "full_top" in result:
        full = result["full_top"]
        print(
            f"top gifters and likers, {full['tracked']} of each in every one of "
            f"{full['summaries_per_stream']:.0f} summaries (worst case): "
            f"+{full['top_users_bytes_per_stream']:,.0f} B per stream"
        )


if __name__ == "__main__":
    main()
