"""A live stream's state: its memory, its checkpoint bytes, and the state writes (no broker).

:func:`memory`: 2,000 streams (a 600 s window in 10 s steps), each a like (one liker) and a
gift (one gifter) in every step, counts above 256; tracemalloc measures what the engine holds,
top users apart (what dropping them frees), then its full checkpoint. ``--full-top``: 200
streams, ``top_users_tracked`` distinct likers and gifters in every minute. ``--writes``: 50,000
streams with full windows, then for 20 s 100 of them get a like, an idle tick and a checkpoint
each second: the checkpoints' bytes per second, as lz4 sends them.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import msgspec
from aiokafka.codec import lz4_encode

from processor.contract import Event, Gift, Like, LiveStart, Viewers
from processor.core import checkpoint
from processor.core.engine import Engine, EngineConfig

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every step
LIKES, GIFTS = 300, 260  # a stream's, each step


def _header(k: int, n: int, ts: int) -> dict[str, Any]:
    ids = {"stream_id": f"live-1-{T0}-{k}", "creator_id": f"creator-{k}"}
    return {"v": 1, "event_id": f"e{n}", "ts": ts} | ids


def _pair(k: int, n: int, ts: int, who: tuple[str, str], total: int, gifts: int) -> Iterator[Event]:
    """A like (event ``n + 1``) and a gift (``n + 2``) of stream ``k``."""
    yield Like(**_header(k, n + 1, ts), user_id=who[0], count=15, total=total)
    gift = {"gift_id": 5655, "gift_name": "Finger Heart", "coins": 5, "streak_id": ""}
    gift |= {"repeat_count": gifts, "streakable": False, "repeat_end": True}
    yield Gift(**_header(k, n + 2, ts), user_id=who[1], **gift)


def _events(streams: int, config: EngineConfig) -> Iterator[Event]:
    """A ``live_start`` per stream, then a like and a gift per stream in every step."""
    yield from (LiveStart(**_header(k, k + 1, T0)) for k in range(streams))
    n, step = streams, config.tier_step_ms
    for b in range(config.tier_window_ms // step):
        for k in range(streams):
            # count 15: the like events in between were lost, ``total`` tells
            ts, total = T0 + b * step + k % step, LIKES * (b + 1)
            yield from _pair(k, n, ts, ("u1", "u2"), total, GIFTS + b % 5)
            n += 2


def _crowded_minutes(streams: int, config: EngineConfig) -> Iterator[Event]:
    """Every minute of the window (and so the session) with ``top_users_tracked``
    distinct likers and gifters per stream: every summary at capacity."""
    size, n = config.tumbling_ms, 0
    for k in range(streams):
        yield LiveStart(**_header(k, n + 1, T0))
        yield Viewers(**_header(k, n + 1, T0) | {"event_id": f"v{n + 1}"}, count=9_000)
        n, total = n + 1, 0
        for m in range(config.tier_window_ms // size + 1):
            for j in range(config.top_users_tracked):
                total += 15
                users = (f"liker-{k}-{m}-{j}", f"gifter-{k}-{m}-{j}")
                yield from _pair(k, n, T0 + m * size + j, users, total, GIFTS)
                n += 2


def _held(engine: Engine, events: Iterator[Event]) -> tuple[int, int, list[checkpoint.Record]]:
    """Bytes the engine holds after ``events``, how many of them are top users (dropped from
    the engine to measure them), and the engine's full checkpoint before the drop."""
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
        return held, before - tracemalloc.get_traced_memory()[0], records
    finally:
        tracemalloc.stop()


def top_users_at_capacity(streams: int = 200) -> dict[str, Any]:
    """Bytes of top users per stream with every summary at capacity (the worst case)."""
    config = EngineConfig()
    _, top_users, _ = _held(Engine(config), _crowded_minutes(streams, config))
    per_stream = round(top_users / streams, 1)
    return {
        "streams": streams,
        "tracked": config.top_users_tracked,
        "top_users_bytes_per_stream": per_stream,
    }


def memory(streams: int = 2_000) -> dict[str, Any]:
    """Bytes of memory and of checkpoint per stream with a full tier window."""
    config = EngineConfig()
    buckets, engine = config.tier_window_ms // config.tier_step_ms, Engine(config)
    held, top_users, records = _held(engine, _events(streams, config))
    docs = [msgspec.msgpack.decode(v)["stream"] for k, v in records if k.startswith(b"s:") and v]
    full = sum(
        len(d["window"]) == buckets or (d["packed"] or {}).get("used") == (1 << buckets) - 1
        for d in docs
    )
    if full != streams or len(engine.streams) != streams:
        raise RuntimeError(f"only {full} of {streams} streams have a full window")
    checkpoint = sum(len(v or b"") for k, v in records if k.startswith(b"s:"))
    return {
        "streams": streams,
        "buckets": buckets,
        "bytes_per_stream": round((held - top_users) / streams, 1),
        "top_users_bytes_per_stream": round(top_users / streams, 1),
        "snapshot_bytes_per_stream": round(checkpoint / streams, 1),
    }


def writes(streams: int = 50_000, active: int = 100, seconds: int = 20) -> dict[str, Any]:
    """State bytes per second while ``active`` of ``streams`` get a like every second."""
    config = EngineConfig()
    engine, size, step = Engine(config), config.tier_window_ms, config.tier_step_ms
    totals, outputs, n = [0] * streams, list[Any](), 0

    def event(k: int, ts: int, user_id: str = "") -> Like | LiveStart:
        nonlocal n
        n, ids = n + 1, {"stream_id": f"s{k}", "creator_id": f"c{k % 997}", "ts": ts}
        if not user_id:
            return LiveStart(v=1, event_id=f"e{n}", **ids)
        totals[k] += 3
        return Like(v=1, event_id=f"e{n}", **ids, user_id=user_id, count=3, total=totals[k])

    for k in range(streams):
        engine.apply(event(k, T0), T0, outputs)
    for b in range(size // step):  # a full window, the minute's liker a new user each minute
        ts = T0 + b * step
        for k in range(streams):
            engine.apply(event(k, ts, f"u{k}-{ts // 60_000}"), ts, outputs)
    outputs.clear()
    checkpoint.changes(engine, offset=n)  # the warm-up's checkpoint is not counted
    written = records = compressed = 0
    for second in range(1, seconds + 1):
        wall = T0 + size + second * 1_000
        for k in range(active):
            engine.apply(event(k, wall, f"u{k}"), wall, outputs)
        engine.tick(wall)
        outputs.clear()
        batch = checkpoint.changes(engine, offset=n)
        records += len(batch)
        raw = b"".join(key + (value or b"") for key, value in batch)
        written += len(raw)
        compressed += len(lz4_encode(raw))
    return {
        "streams": streams,
        "active": active,
        "seconds": seconds,
        "records_per_s": round(records / seconds, 1),
        "bytes_per_s": round(written / seconds),
        "lz4_bytes_per_s": round(compressed / seconds),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser("python -m bench.state", description=__doc__)
    parser.add_argument("--full-top", action="store_true", help="and the worst case of top users")
    parser.add_argument("--writes", action="store_true", help="and the state writes")
    args = parser.parse_args()
    result = memory() | ({"full_top": top_users_at_capacity()} if args.full_top else {})
    print(json.dumps(result | ({"writes": writes()} if args.writes else {}), indent=1))
