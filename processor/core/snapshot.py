"""Engine state to bytes and back, for checkpoints. Pure (msgspec only).

A snapshot holds every stream of one input partition, the offset of the last input
record applied to it, and the outputs produced since the previous snapshot (so a crash
between publishing them and checkpointing cannot lose them: they are published again,
with the same ids, on restore).

Format 2 is MessagePack with every field stored by name (a map per struct), and a
``format`` number first: adding a field cannot shift the others, and a snapshot of
another format is refused with a message, never misread. Bucket rows are fixed-length
``[start, likes, gifts, coins]`` tuples: a row of another length fails to decode.
Format 1 (JSON, positional stream rows, livepulse before the batched worker) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from processor.core.engine import Engine, EngineConfig, StreamState
from processor.core.tiers import Tier
from processor.core.windows import Row, SlidingTotals, Totals, TumblingTotals

FORMAT_VERSION = 2

T = TypeVar("T")


class SnapshotError(ValueError):
    """A snapshot that cannot be restored: of another format, or corrupt."""


class StreamSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    """One stream's state, every field by name."""

    stream_id: str
    creator_id: str
    started_ms: int
    stream_time_ms: int
    max_event_ms: int
    like_total: int | None
    tier: Tier
    peak_tier: Tier
    session_tier: Tier
    transitions: int
    session_transitions: int
    session: tuple[int, int, int]
    current_bucket: int
    window: list[Row]
    tumbling: list[Row]


class PartitionSnapshot(msgspec.Struct, Generic[T], forbid_unknown_fields=True):
    """One partition's snapshot. ``T`` is the pending-output type (the caller's)."""

    format: int
    offset: int
    streams: list[StreamSnapshot]
    ended: list[tuple[str, int]]
    pending: list[T]


class _Format(msgspec.Struct):
    format: int


class _Encoded(msgspec.Struct, Generic[T]):
    """The encoding side of :class:`PartitionSnapshot`: streams already encoded."""

    format: int
    offset: int
    streams: list[msgspec.Raw]
    ended: list[tuple[str, int]]
    pending: list[T]


@dataclass(frozen=True, slots=True)
class Checkpoint(Generic[T]):
    """What a partition's snapshot restores."""

    engine: Engine
    offset: int
    pending: list[T]


def _stream(s: StreamState) -> StreamSnapshot:
    return StreamSnapshot(
        stream_id=s.stream_id,
        creator_id=s.creator_id,
        started_ms=s.started_ms,
        stream_time_ms=s.stream_time_ms,
        max_event_ms=s.max_event_ms,
        like_total=s.like_total,
        tier=s.tier,
        peak_tier=s.peak_tier,
        session_tier=s.session_tier,
        transitions=s.transitions,
        session_transitions=s.session_transitions,
        session=(s.session.likes, s.session.gifts, s.session.coins),
        current_bucket=s.window.current_bucket,
        window=s.window.rows(),
        tumbling=s.tumbling.rows(),
    )


_encoder = msgspec.msgpack.Encoder()


class SnapshotWriter:
    """Encodes one engine's snapshots, re-encoding only the streams changed since the last.

    A checkpoint runs at every offset commit; most streams of a busy partition change
    between two, but many quiet ones do not, and their encoded form is reused.
    """

    def __init__(self) -> None:
        self.fragments: dict[str, msgspec.Raw] = {}

    def encode(self, engine: Engine, offset: int, pending: list[T]) -> bytes:
        fragments = self.fragments
        for stream_id in engine.changed:
            state = engine.streams.get(stream_id)
            if state is None:
                fragments.pop(stream_id, None)
            else:
                fragments[stream_id] = msgspec.Raw(_encoder.encode(_stream(state)))
        engine.changed.clear()
        return self._assemble(engine, offset, pending)

    def _assemble(self, engine: Engine, offset: int, pending: list[T]) -> bytes:
        return _encoder.encode(
            _Encoded(
                FORMAT_VERSION,
                offset,
                list(self.fragments.values()),
                list(engine.ended.items()),
                pending,
            )
        )


def encode(engine: Engine, offset: int, pending: list[T]) -> bytes:
    """Serialize one partition's engine in full (leaves ``engine.changed`` alone)."""
    writer = SnapshotWriter()
    writer.fragments = {
        sid: msgspec.Raw(_encoder.encode(_stream(s))) for sid, s in engine.streams.items()
    }
    return writer._assemble(engine, offset, pending)


def decode(data: bytes, config: EngineConfig, wall_ms: int, pending: type[T]) -> Checkpoint[T]:
    """Rebuild an engine; idle clocks restart at ``wall_ms``. ``pending`` is the type of
    the pending outputs. Raises :class:`SnapshotError` on another format or bad bytes."""
    if data[:1] == b"{":
        raise SnapshotError(
            "snapshot format 1 (JSON, written by livepulse before the batched worker) is no "
            f"longer read; this version reads format {FORMAT_VERSION}"
        )
    try:
        found = msgspec.msgpack.decode(data, type=_Format).format
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not a livepulse snapshot: {exc}") from None
    if found != FORMAT_VERSION:
        raise SnapshotError(
            f"unsupported snapshot format {found!r}; this version reads format {FORMAT_VERSION}"
        )
    try:
        doc = msgspec.msgpack.decode(data, type=PartitionSnapshot[pending])  # type: ignore[valid-type]
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"corrupt snapshot (format {found}): {exc}") from None
    engine = Engine(config)
    for row in doc.streams:
        try:
            window = SlidingTotals.restore(
                config.tier_window_ms, config.tier_step_ms, row.current_bucket, row.window
            )
        except OverflowError as exc:  # a count beyond 64 bits: not one this code wrote
            raise SnapshotError(f"corrupt snapshot (format {found}): {exc}") from None
        tumbling = TumblingTotals.restore(config.tumbling_ms, row.tumbling)
        engine.streams[row.stream_id] = StreamState(
            stream_id=row.stream_id,
            creator_id=row.creator_id,
            window=window,
            tumbling=tumbling,
            started_ms=row.started_ms,
            stream_time_ms=row.stream_time_ms,
            max_event_ms=row.max_event_ms,
            seen_wall_ms=wall_ms,
            like_total=row.like_total,
            tier=row.tier,
            peak_tier=row.peak_tier,
            session_tier=row.session_tier,
            transitions=row.transitions,
            session_transitions=row.session_transitions,
            session=Totals(*row.session),
        )
    for stream_id, at in doc.ended:
        engine.ended[stream_id] = at
    engine.changed.update(engine.streams)  # a new writer has none of them encoded yet
    return Checkpoint(engine, doc.offset, doc.pending)
