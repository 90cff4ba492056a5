"""Engine state to bytes and back, for checkpoints. Pure (orjson only).

A snapshot holds every stream of one input partition, the offset of the last input
record applied to it, and the outputs produced since the previous snapshot (so a crash
between publishing them and checkpointing cannot lose them: they are published again,
with the same ids, on restore).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from processor.core.engine import Engine, EngineConfig, StreamState
from processor.core.tiers import Tier
from processor.core.windows import SlidingTotals, Totals, TumblingTotals

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a partition's snapshot restores."""

    engine: Engine
    offset: int
    pending: list[Any]


def _totals(items: dict[int, Totals]) -> list[list[int]]:
    return [[start, t.likes, t.gifts, t.coins] for start, t in items.items()]


def _stream(s: StreamState) -> list[Any]:
    return [
        s.stream_id,
        s.creator_id,
        s.started_ms,
        s.stream_time_ms,
        s.max_event_ms,
        s.like_total,
        str(s.tier),
        str(s.peak_tier),
        str(s.session_tier),
        s.transitions,
        s.session_transitions,
        s.session.as_list(),
        s.window.current_bucket,
        _totals(s.window.buckets),
        _totals(s.tumbling.open),
    ]


class SnapshotWriter:
    """Encodes one engine's snapshots, re-encoding only the streams changed since the last.

    A checkpoint runs at every offset commit; most streams of a busy partition change
    between two, but many quiet ones do not, and their encoded form is reused.
    """

    def __init__(self) -> None:
        self.fragments: dict[str, bytes] = {}

    def encode(self, engine: Engine, offset: int, pending: list[Any]) -> bytes:
        fragments = self.fragments
        for stream_id in engine.changed:
            state = engine.streams.get(stream_id)
            if state is None:
                fragments.pop(stream_id, None)
            else:
                fragments[stream_id] = orjson.dumps(_stream(state))
        engine.changed.clear()
        return self._assemble(engine, offset, pending)

    def _assemble(self, engine: Engine, offset: int, pending: list[Any]) -> bytes:
        return b"".join(
            (
                b'{"format":%d,"offset":%d,"streams":[' % (FORMAT_VERSION, offset),
                b",".join(self.fragments.values()),
                b'],"ended":',
                orjson.dumps(list(engine.ended.items())),
                b',"pending":',
                orjson.dumps(pending),
                b"}",
            )
        )


def encode(engine: Engine, offset: int, pending: list[Any]) -> bytes:
    """Serialize one partition's engine in full (leaves ``engine.changed`` alone)."""
    writer = SnapshotWriter()
    writer.fragments = {sid: orjson.dumps(_stream(s)) for sid, s in engine.streams.items()}
    return writer._assemble(engine, offset, pending)


def _buckets(rows: list[list[int]]) -> dict[int, Totals]:
    return {start: Totals(likes, gifts, coins) for start, likes, gifts, coins in rows}


def decode(data: bytes, config: EngineConfig, wall_ms: int) -> Checkpoint:
    """Rebuild an engine; idle clocks restart at ``wall_ms``."""
    doc = orjson.loads(data)
    if doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported snapshot format {doc.get('format')!r}")
    engine = Engine(config)
    for row in doc["streams"]:
        (
            stream_id,
            creator_id,
            started,
            stream_time,
            max_event,
            like_total,
            tier,
            peak,
            session_tier,
            transitions,
            session_transitions,
            session,
            current_bucket,
            buckets,
            tumbling,
        ) = row
        window = SlidingTotals(config.tier_window_ms, config.tier_step_ms)
        window.current_bucket = current_bucket
        window.buckets = _buckets(buckets)
        for t in window.buckets.values():
            window.totals.add(t.likes, t.gifts, t.coins)
        engine.streams[stream_id] = StreamState(
            stream_id=stream_id,
            creator_id=creator_id,
            window=window,
            tumbling=TumblingTotals(config.tumbling_ms, _buckets(tumbling)),
            started_ms=started,
            stream_time_ms=stream_time,
            max_event_ms=max_event,
            seen_wall_ms=wall_ms,
            like_total=like_total,
            tier=Tier(tier),
            peak_tier=Tier(peak),
            session_tier=Tier(session_tier),
            transitions=transitions,
            session_transitions=session_transitions,
            session=Totals(*session),
        )
    for stream_id, at in doc["ended"]:
        engine.ended[stream_id] = at
    engine.changed.update(engine.streams)  # a new writer has none of them encoded yet
    return Checkpoint(engine, doc["offset"], doc["pending"])
