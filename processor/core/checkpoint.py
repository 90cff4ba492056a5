"""Engine state as checkpoint records and back: one record per changed stream. Pure.

A partition's checkpoint is a set of keyed records for a compacted topic, so a checkpoint
costs what changed since the previous one, and restoring costs what is held:

- ``s:<stream id>``: one stream's state and the input offset it covers (the partition's
  last applied offset when it was written); a tombstone (no value) once the stream ends;
- ``e:<stream id>``: a stream that ended (when, and the offset that covers it), so a
  straggler event is an ``after_end`` dead letter; a tombstone once it leaves the
  engine's memory of ended streams;
- ``p``: the partition: the last applied input offset, its idle clock and its time
  (:meth:`Engine.partition_time`), written after the streams' records (see
  :meth:`SlicedCheckpoint.finish` for the order and why).

Every value is MessagePack with every field stored by name and a ``format`` number:
adding a field cannot shift the others, and a record of another format is refused with
a message, never misread. Bucket rows are fixed-length ``[start, likes, gifts, coins]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter

import msgspec

from processor.core.alerts import StreamEnded
from processor.core.contributors import Summary
from processor.core.creators import DayLedger, StreamDay
from processor.core.engine import Engine, EngineConfig, StreamState
from processor.core.panes import minutes_of, pack, seal, start_of, unseal
from processor.core.tiers import Tier
from processor.core.windows import Row, SlidingTotals, Totals, TumblingTotals

FORMAT_VERSION = 8
# formats a restore reads: 4 wrote windows as rows, kept no idle clocks and no tick time;
# 5 kept no downtime (it was 0: its idle clocks are wall clocks); 6 kept no calendar days;
# 7 kept no partition time (restored from the streams' latest events)
READ_FORMATS = (4, 5, 6, 7, FORMAT_VERSION)
PARTITION_KEY = b"p"
STREAM_PREFIX = b"s:"
ENDED_PREFIX = b"e:"


class SnapshotError(ValueError):
    """A checkpoint record that cannot be restored: of another format, or corrupt."""


class SummarySnapshot(msgspec.Struct, forbid_unknown_fields=True):
    """Who sent what over a span: a session, or one tumbling window (``start``)."""

    start: int
    exact: bool
    likers: dict[str, int]  # user -> likes
    gifters: dict[str, tuple[int, int]]  # user -> coins, gifts


class PackedWindow(msgspec.Struct, forbid_unknown_fields=True):
    """A tier window's ring as it is held (:meth:`SlidingTotals.packed`), and the window
    size and step it was written under."""

    size_ms: int
    step_ms: int
    used: int
    counts: list[int]  # likes of each slot, then gifts, then coins


class LedgerSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    """A stream's day ledger (format 7), from its first midnight on."""

    day: str
    day_start_ms: int
    day_end_ms: int
    base: tuple[int, int, int]  # likes, gifts, coins of the session when the day began
    base_gifters: list[tuple[str, int, int]]
    peaks: tuple[Tier, int, Tier, int]  # tier and viewers: the day's, then the next day's
    finished: list[StreamDay]  # days it finished, not handed out yet


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
    window: list[Row]  # its buckets as rows, unless ``packed`` holds them
    tumbling: list[Row]
    top: SummarySnapshot | None
    # the minutes of the tier window: format 5 as panes.PaneRecord arrays (a sealed one
    # copied as it is held), format 4 as SummarySnapshot maps
    panes: list[msgspec.Raw]
    viewers: tuple[int, int, int, int, int]  # ts, current, peak, sum, samples
    spikes: tuple[int, int]  # likes, coins detector: ARMED or the minute last fired/checked
    packed: PackedWindow | None = None  # a dense window: its ring whole (format 5)
    # the wall clock when max_event_ms was seen: where idle decay counts from (-1: format 4)
    seen_wall_ms: int = -1
    # calendar days (format 7; 0 and None before: recomputed from the session's start)
    day_turn_ms: int = 0
    ledger: LedgerSnapshot | None = None


class StreamRecord(msgspec.Struct, forbid_unknown_fields=True):
    format: int
    offset: int
    stream: StreamSnapshot


class EndedRecord(msgspec.Struct, forbid_unknown_fields=True):
    format: int
    offset: int
    ended_at: int
    # the input offset it ended at (-1: not recorded, from livepulse before it was)
    end_offset: int = -1


class PartitionRecord(msgspec.Struct, forbid_unknown_fields=True):
    format: int
    offset: int
    # the idle clock of the engine's last tick before the checkpoint (-1: none)
    ticked_ms: int = -1
    # the engine's downtime: its idle clocks are the wall clock minus this
    downtime_ms: int = 0
    # the partition's time (format 8; before, from the streams restored): its largest
    # event ts (-1: none), the idle clock when it was seen, the partition time (-1: none)
    event_ms: int = -1
    event_seen_ms: int = 0
    time_ms: int = -1


class _Format(msgspec.Struct):
    format: int


def _stream(s: StreamState) -> StreamSnapshot:
    window = s.window
    packed = None
    if window.dense:
        used, counts = window.packed()
        packed = PackedWindow(window.size_ms, window.step_ms, used, counts)
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
        current_bucket=window.current_bucket,
        window=[] if packed else window.rows(),
        tumbling=s.tumbling.rows(),
        top=None if s.top is None else _summary(s.started_ms, s.top),
        panes=_panes(s),
        viewers=(
            s.viewers_ts,
            s.viewers_current,
            s.viewers_peak,
            s.viewers_sum,
            s.viewers_samples,
        ),
        spikes=(s.likes_spike, s.coins_spike),
        packed=packed,
        seen_wall_ms=s.seen_wall_ms,
        day_turn_ms=s.day_turn_ms,
        ledger=None if s.ledger is None else _ledger(s.ledger),
    )


def _ledger(ledger: DayLedger) -> LedgerSnapshot:
    return LedgerSnapshot(
        day=ledger.day,
        day_start_ms=ledger.day_start_ms,
        day_end_ms=ledger.day_end_ms,
        base=(ledger.base_likes, ledger.base_gifts, ledger.base_coins),
        base_gifters=[(u, c, g) for u, (c, g) in ledger.base_gifters.items()],
        peaks=(
            ledger.peak_tier,
            ledger.peak_viewers,
            ledger.next_peak_tier,
            ledger.next_peak_viewers,
        ),
        finished=list(ledger.finished),
    )


def _restore_ledger(row: LedgerSnapshot) -> DayLedger:
    ledger = DayLedger(row.day, row.day_start_ms, row.day_end_ms)
    ledger.base_likes, ledger.base_gifts, ledger.base_coins = row.base
    ledger.base_gifters = {u: (c, g) for u, c, g in row.base_gifters}
    ledger.peak_tier, ledger.peak_viewers, ledger.next_peak_tier, ledger.next_peak_viewers = (
        row.peaks
    )
    ledger.finished = list(row.finished)
    return ledger


def _summary(start: int, summary: Summary) -> SummarySnapshot:
    # the summary's own dicts: encoded at once, so no copy is needed
    return SummarySnapshot(
        start,
        summary.exact,
        summary.liker_map(),
        summary.gifter_map(),
    )


def _panes(s: StreamState) -> list[msgspec.Raw]:
    found = minutes_of(s.sealed)
    if s.panes:
        found += (msgspec.Raw(seal(pane.start, pane)) for pane in s.panes)
    return found


def _restore_summary(row: SummarySnapshot, start: int = 0) -> Summary:
    return Summary.restore(row.exact, row.likers, row.gifters, start)


_v4_pane = msgspec.msgpack.Decoder(SummarySnapshot)


def _restore_panes(
    rows: list[msgspec.Raw], format: int, sealed_until: int
) -> tuple[list[Summary] | None, list[tuple[int, msgspec.Raw]]]:
    """The open minutes, and the sealed ones (those starting at ``sealed_until`` or
    before) as they were written, without decoding them."""
    panes: list[Summary] = []
    sealed: list[tuple[int, msgspec.Raw]] = []  # (start, the minute's record)
    for raw in rows:
        if format == 4:
            row = _v4_pane.decode(raw)
            panes.append(_restore_summary(row, row.start))
            continue
        start = start_of(raw)
        if start <= sealed_until:
            sealed.append((start, raw))  # packed again as it is
        else:
            panes.append(unseal(raw)[1])
    sealed.sort(key=itemgetter(0))
    panes.sort(key=attrgetter("start"))
    return panes or None, sealed


def _restore_stream(
    row: StreamSnapshot, format: int, config: EngineConfig, wall_ms: int
) -> StreamState:
    size, step, packed = config.tier_window_ms, config.tier_step_ms, row.packed
    try:
        if packed is None:
            window = SlidingTotals.restore(size, step, row.current_bucket, row.window)
        else:
            written = (packed.size_ms, packed.step_ms)
            window = SlidingTotals.unpack(
                size, step, row.current_bucket, packed.used, packed.counts, written
            )
        sealed_until = row.stream_time_ms - config.grace_ms - config.tumbling_ms
        panes, sealed = _restore_panes(row.panes, format, sealed_until)
    except (OverflowError, ValueError) as exc:  # not a window or a minute this code wrote
        raise SnapshotError(f"stream {row.stream_id!r}: corrupt checkpoint record: {exc}") from None
    return StreamState(
        stream_id=row.stream_id,
        creator_id=row.creator_id,
        window=window,
        tumbling=TumblingTotals.restore(config.tumbling_ms, row.tumbling),
        started_ms=row.started_ms,
        stream_time_ms=row.stream_time_ms,
        max_event_ms=row.max_event_ms,
        seen_wall_ms=wall_ms if row.seen_wall_ms < 0 else row.seen_wall_ms,
        like_total=row.like_total,
        tier=row.tier,
        peak_tier=row.peak_tier,
        session_tier=row.session_tier,
        transitions=row.transitions,
        session_transitions=row.session_transitions,
        session=Totals(*row.session),
        top=None if row.top is None else _restore_summary(row.top),
        panes=panes,
        sealed=pack([data for _, data in sealed]),
        sealed_from=sealed[0][0] if sealed else 0,
        viewers_ts=row.viewers[0],
        viewers_current=row.viewers[1],
        viewers_peak=row.viewers[2],
        viewers_sum=row.viewers[3],
        viewers_samples=row.viewers[4],
        likes_spike=row.spikes[0],
        coins_spike=row.spikes[1],
        day_turn_ms=row.day_turn_ms,
        ledger=None if row.ledger is None else _restore_ledger(row.ledger),
    )


_encoder = msgspec.msgpack.Encoder()

Record = tuple[bytes, bytes | None]  # key, value (None: a tombstone)

# The input offset each ended stream ended at (the engine keeps no offsets: the partition
# layer records them), for the streams in the engine's memory of ended streams and those
# it forgot since a checkpoint last looked; -1 where it is not known.
EndOffsets = dict[str, int]


# ended_at of a marker for a stream that ended and was already forgotten (written by
# livepulse before markers kept when and where every stream ended)
GONE = -1


class SlicedCheckpoint:
    """One checkpoint of an engine, encoded a slice of streams at a time between batches,
    so no single step holds the event loop for all of them.

    It covers the input up to ``offset`` (the engine's position when it began): the
    partition record says so. A stream encoded later, after more input was applied, gets
    the offset it was encoded at; a restore treats it as ahead of the partition record and
    skips its records up to there. A stream that ended before the checkpoint began gets its
    tombstone and marker at ``offset``; one that ended while it was being encoded gets them
    at the offset where it was found ended (the marker also of a stream the memory of ended
    streams has already forgotten), so its records up to there are never applied twice.
    Changes made meanwhile land in the engine's fresh change sets: the next checkpoint.

    ``end_offsets`` says where each ended stream ended; the checkpoint drops the entries of
    the streams it leaves forgotten.
    """

    def __init__(self, engine: Engine, offset: int, end_offsets: EndOffsets | None = None) -> None:
        self.engine = engine
        self.offset = offset
        self.end_offsets: EndOffsets = {} if end_offsets is None else end_offsets
        # the idle time the streams saw by ``offset``: no tick may come before finish()
        self.ticked_ms = engine.ticked_ms
        self.downtime_ms = engine.downtime_ms
        # and the partition's time by then (looked at before the change set is cleared)
        self.time_ms = engine.partition_time()
        self.event = (engine.event_ms, engine.event_seen_ms)
        self.todo = list(engine.changed)
        self.gone_before = {sid for sid in self.todo if sid not in engine.streams}
        self.forgotten = engine.forgotten
        engine.changed = set()
        engine.forgotten = {}
        self.records: list[Record] = []
        self.ended: dict[str, int] = {}  # stream id -> the offset its end is covered at

    def encode(self, budget: int, offset: int) -> int:
        """Encode up to ``budget`` streams as they are now, covering input up to
        ``offset``; returns how many were encoded."""
        engine, out = self.engine, self.records
        step = self.todo[-budget:] if budget > 0 else []
        del self.todo[len(self.todo) - len(step) :]
        for stream_id in step:
            state = engine.streams.get(stream_id)
            if state is not None:
                record = StreamRecord(FORMAT_VERSION, offset, _stream(state))
                out.append((STREAM_PREFIX + stream_id.encode(), _encoder.encode(record)))
            else:
                self.ended[stream_id] = self.offset if stream_id in self.gone_before else offset
        return len(step)

    def finish(self, offset: int) -> list[Record]:
        """The checkpoint's records: streams, ended streams' markers, then their state
        tombstones, the partition record, and last the markers of forgotten streams.

        The order is what makes a checkpoint cut short by a crash safe: a stream's state
        is removed only after its marker is written, so its records are never applied
        again as a new session; a forgotten stream's marker goes only once the partition
        record covers where it ended (a crash before that restores it, as the offset
        restored from held it; one after, and a restore trims the memory of ended
        streams as the engine would have).
        """
        self.encode(len(self.todo), offset)
        engine, out, end_offsets = self.engine, self.records, self.end_offsets
        ended = self.ended
        if ended:
            # markers in the order the streams ended: forgotten ones are the oldest
            for stream_id, covered in ended.items():
                if stream_id not in engine.ended:  # ended and already forgotten
                    at = engine.forgotten.get(stream_id)
                    if at is None:
                        at = self.forgotten.get(stream_id)
                    if at is None:
                        at = GONE
                        end_offsets[stream_id] = -1
                    out.append(_marker(stream_id, covered, at, end_offsets.get(stream_id, -1)))
                    engine.forgotten[stream_id] = at  # removed next time
            for stream_id, ended_at in engine.ended.items():
                found_at = ended.get(stream_id)
                if found_at is not None:
                    end_offset = end_offsets.get(stream_id, -1)
                    out.append(_marker(stream_id, found_at, ended_at, end_offset))
            for stream_id in ended:
                out.append((STREAM_PREFIX + stream_id.encode(), None))
        record = PartitionRecord(
            FORMAT_VERSION, self.offset, self.ticked_ms, self.downtime_ms, *self.event, self.time_ms
        )
        out.append((PARTITION_KEY, _encoder.encode(record)))
        for stream_id in self.forgotten:
            if stream_id not in engine.ended and stream_id not in ended:
                out.append((ENDED_PREFIX + stream_id.encode(), None))
        # where the streams left forgotten ended is needed no more
        for stream_id in (*self.forgotten, *ended):
            if stream_id not in engine.ended and stream_id not in engine.forgotten:
                end_offsets.pop(stream_id, None)
        return out


def _marker(stream_id: str, covered: int, ended_at: int, end_offset: int) -> Record:
    marker = EndedRecord(FORMAT_VERSION, covered, ended_at, end_offset)
    return ENDED_PREFIX + stream_id.encode(), _encoder.encode(marker)


def changes(engine: Engine, offset: int, end_offsets: EndOffsets | None = None) -> list[Record]:
    """The records of one checkpoint of what changed since the previous one, taken at
    once (streams first, the partition record last), covering input up to ``offset``.
    Clears the engine's change sets."""
    return SlicedCheckpoint(engine, offset, end_offsets).finish(offset)


def full(engine: Engine, offset: int, end_offsets: Mapping[str, int] | None = None) -> list[Record]:
    """Every record of the engine's state (what a compacted topic holds after changes())."""
    out: list[Record] = [
        (
            STREAM_PREFIX + sid.encode(),
            _encoder.encode(StreamRecord(FORMAT_VERSION, offset, _stream(s))),
        )
        for sid, s in engine.streams.items()
    ]
    ends = end_offsets or {}
    out += [_marker(sid, offset, at, ends.get(sid, -1)) for sid, at in engine.ended.items()]
    for state in engine.streams.values():  # whatever the change set says
        engine.note_event_time(state)
    time_ms = engine.partition_time()
    partition = PartitionRecord(
        FORMAT_VERSION,
        offset,
        engine.ticked_ms,
        engine.downtime_ms,
        engine.event_ms,
        engine.event_seen_ms,
        time_ms,
    )
    out.append((PARTITION_KEY, _encoder.encode(partition)))
    return out


@dataclass(slots=True)
class Checkpoint:
    """What a partition's checkpoint records restore.

    ``offset`` is the last input offset the whole partition covers. ``ahead`` holds the
    streams (and ended streams) whose records cover more than that: a crash came after
    they were written and before the partition record was; their records up to the
    offset given are already in their state.
    """

    engine: Engine
    offset: int
    ahead: dict[str, int] = field(default_factory=dict)
    # streams that ended after ``offset`` (their markers are ahead): (the input offset
    # they ended at, stream id, when), in that order; a replay puts each back in the
    # memory of ended streams once it passes that offset, where the engine had it
    pending_ends: list[tuple[int, str, int]] = field(default_factory=list)
    # where the streams the engine remembers as ended (or forgot) ended
    end_offsets: EndOffsets = field(default_factory=dict)


def _decode(value: bytes, kind: type[msgspec.Struct], what: str) -> msgspec.Struct:
    try:
        found = msgspec.msgpack.decode(value, type=_Format).format
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{what}: not a livepulse checkpoint record: {exc}") from None
    if found not in READ_FORMATS:
        raise SnapshotError(
            f"{what}: checkpoint format {found!r}; this version reads formats "
            f"{', '.join(map(str, READ_FORMATS))}"
        )
    try:
        return msgspec.msgpack.decode(value, type=kind)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{what}: corrupt checkpoint record: {exc}") from None


def latest(records: Iterable[Record]) -> Iterator[Record]:
    """The last value of each key, in the order of those last writes (tombstones drop)."""
    last: dict[bytes, bytes | None] = {}
    for key, value in records:
        last.pop(key, None)  # re-inserted last: the order of the latest writes
        last[key] = value
    return ((k, v) for k, v in last.items() if v is not None)


def restore(records: Iterable[Record], config: EngineConfig, wall_ms: int) -> Checkpoint:
    """Rebuild a partition's engine from its checkpoint records in log order (a compacted
    topic's content, older versions and tombstones included), with what idle time did by
    the last checkpoint's tick recomputed; idle clocks go on at ``wall_ms`` from where that
    tick left them (downtime is not idle time). Raises :class:`SnapshotError` on a record
    of another format or corrupt."""
    engine = Engine(config)
    end_offsets: EndOffsets = {}
    offset = ticked_ms = -1
    states: dict[str, StreamRecord] = {}
    markers: dict[str, EndedRecord] = {}
    for key, value in latest(records):
        assert value is not None
        if key == PARTITION_KEY:
            partition = _decode(value, PartitionRecord, "partition record")
            assert isinstance(partition, PartitionRecord)
            offset, ticked_ms = partition.offset, partition.ticked_ms
            engine.downtime_ms = partition.downtime_ms
            engine.event_ms, engine.event_seen_ms = partition.event_ms, partition.event_seen_ms
            engine.partition_ms = partition.time_ms
        elif key.startswith(STREAM_PREFIX):
            stream_id = key[len(STREAM_PREFIX) :].decode()
            record = _decode(value, StreamRecord, f"stream {stream_id!r}")
            assert isinstance(record, StreamRecord)
            states[stream_id] = record
        elif key.startswith(ENDED_PREFIX):
            stream_id = key[len(ENDED_PREFIX) :].decode()
            marker = _decode(value, EndedRecord, f"ended stream {stream_id!r}")
            assert isinstance(marker, EndedRecord)
            markers[stream_id] = marker
        else:
            shown = key[:40].decode(errors="replace")
            if key.isdigit():
                raise SnapshotError(
                    f"a whole-partition snapshot (key {shown!r}, format 2, written by livepulse "
                    f"before per-stream checkpoints); this version reads format {FORMAT_VERSION}"
                )
            raise SnapshotError(f"unknown checkpoint record key {shown!r}")
    covered: dict[str, int] = {}
    ended: list[tuple[int, int, str, int]] = []  # end offset, log order, stream, when
    for order, (stream_id, found) in enumerate(markers.items()):
        state = states.get(stream_id)
        at, end_offset = found.ended_at, found.end_offset
        if state is not None and state.offset > found.offset:
            # a new session after the end was forgotten: the state is newer, and the
            # marker's tombstone was cut short by a crash; the next checkpoint writes it
            engine.forgotten[stream_id] = at
            end_offsets[stream_id] = end_offset
            continue
        covered[stream_id] = found.offset
        if at != GONE:  # GONE: forgotten, from livepulse before markers kept the time
            ended.append((end_offset, order, stream_id, at))
    # a format 4 stream kept no idle clock: it restarts now (at the tick, shifted to now)
    unknown_seen = wall_ms - engine.downtime_ms if ticked_ms < 0 else ticked_ms
    for stream_id, state in states.items():
        if stream_id in covered:
            # ended after this state was written, and a crash came before its tombstone
            continue
        restored = _restore_stream(state.stream, state.format, config, unknown_seen)
        engine.age_panes(restored)  # as the engine holds them (format 4 sealed none)
        engine.streams[stream_id] = restored
        # the partition's time: from the streams alone before format 8, and a stream
        # written after the partition record (ahead) may have gone further
        engine.note_event_time(restored)
        covered[stream_id] = state.offset
    # The memory of ended streams as it was at ``offset``: the last ``ended_memory`` to end
    # by then (older markers whose tombstones a crash cut short are forgotten again).
    ended.sort()
    pending = [(end, sid, at) for end, _, sid, at in ended if end > offset]
    by_offset = [row for row in ended if row[0] <= offset]
    forget = len(by_offset) - config.ended_memory
    for end_offset, _, stream_id, at in by_offset:
        if forget > 0:
            engine.forgotten[stream_id] = at
            forget -= 1
        else:
            engine.ended[stream_id] = at
        end_offsets[stream_id] = end_offset
    for stream_id in _recompute_idle_time(engine, ticked_ms, wall_ms):
        end_offsets[stream_id] = -1  # ended by idle time: where in the input is not known
    ahead = {sid: at for sid, at in covered.items() if at > offset}
    return Checkpoint(engine, offset, ahead, pending, end_offsets)


def _recompute_idle_time(engine: Engine, ticked_ms: int, wall_ms: int) -> list[str]:
    """Redo what idle time did to the streams by the checkpoint's last tick: a checkpoint
    writes a stream only when events changed it, and what the tick published then is not
    published again. Then the idle clocks go on from where that tick left them, at
    ``wall_ms``: the time the worker was down is added to the engine's downtime, so it
    does not count as idle, as in a run that never stopped (the input a worker finds
    waiting after a restart is the events of that time). The streams' own clocks are
    left as written: a stream the next checkpoints do not rewrite is restored again the
    same way, however many restores come. Returns the streams that idle time ended."""
    if ticked_ms < 0:
        return []
    changed = set(engine.changed)
    outputs = engine.tick(ticked_ms + engine.downtime_ms)  # the uninterrupted run's tick, again
    engine.changed = changed
    engine.downtime_ms += max(0, wall_ms - engine.downtime_ms - ticked_ms)
    return [output.stream_id for output in outputs if isinstance(output, StreamEnded)]
