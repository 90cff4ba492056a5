"""One input partition's state and the batch step: records in, typed output records out.

No Faust or Kafka import: the worker's async layer fetches records, calls
:meth:`PartitionState.apply` with a whole fetch, publishes what it returns and checkpoints.
Every decision about a record (already applied before a restart? valid? late? what does
it cause?) is made here, so it is unit-tested without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from processor.contract import InvalidRecord, Reason, decode_event
from processor.core.alerts import Alert, Output, StreamEnded, WindowClosed, encode_output
from processor.core.checkpoint import EndOffsets, Record, SlicedCheckpoint
from processor.core.checkpoint import restore as restore_checkpoint
from processor.core.creators import PartitionTime
from processor.core.engine import Engine, EngineConfig
from processor.records import InputRecord, OutputRecord, dead_letter
from processor.settings import Settings
from processor.worker.tables import TableUpdate

log = logging.getLogger("livepulse.worker")

LATE_DETAIL = {
    Reason.LATE: "older than stream time minus the grace period",
    Reason.AFTER_END: "the stream has already ended",
}

# Event time may run ahead of the record's Kafka timestamp (producer clocks differ, a batch
# waits in a producer) but not by more than the skew limit: one event stamped years ahead
# would move its stream's time there, and every later event of the stream would be late.
# A record without a timestamp (-1) is not judged; LogAppendTime (the broker's clock) is
# judged like CreateTime. A limit of 0 turns the check off: no ``ts`` is that far ahead.
NO_SKEW_LIMIT = 1 << 62


def _future_detail(ts: int, record: InputRecord, skew: int) -> str:
    return (
        f"ts is {ts - record.timestamp} ms ahead of the record's Kafka timestamp "
        f"{record.timestamp} (limit {skew} ms, LIVEPULSE_MAX_FUTURE_SKEW_SECONDS)"
    )


@dataclass(frozen=True, slots=True)
class Routes:
    """Where each kind of record goes."""

    events_topic: str
    alerts_topic: str
    windows_topic: str
    dlq_topic: str
    state_topic: str
    max_record_bytes: int = 65_536
    # how far an event's ``ts`` may be ahead of its record's Kafka timestamp (0: no limit)
    max_future_skew_ms: int = 300_000
    # the tables (empty: not written): the stream table, and the creator-days agent's
    # input, whose partition count (0: unknown, by key, and no partition times written)
    # the worker learns: the events topic's, which the parts topic has too
    streams_topic: str = ""
    parts_topic: str = ""
    parts_partitions: int = 0
    # the tables are written with every n-th checkpoint (LIVEPULSE_TABLE_INTERVAL_SECONDS
    # over the commit interval): a stream's end with the checkpoint that holds it
    table_every: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Routes:
        return cls(
            settings.events_topic,
            settings.alerts_topic,
            settings.windows_topic,
            settings.dlq_topic,
            settings.state_topic,
            settings.max_record_bytes,
            settings.max_future_skew_seconds * 1_000,
            settings.streams_topic,
            settings.creator_parts_topic,
            table_every=max(1, round(settings.table_interval_seconds / settings.commit_interval)),
        )

    def output(self, output: Output, emitted_at: int) -> OutputRecord:
        topic = self.windows_topic if isinstance(output, WindowClosed) else self.alerts_topic
        return OutputRecord(topic, output.stream_id.encode(), encode_output(output, emitted_at))


@dataclass(slots=True)
class Applied:
    """What one batch (or one idle tick) produced, for the publisher and the metrics."""

    records: list[OutputRecord] = field(default_factory=list)  # to publish, in this order
    # each alert with the Kafka timestamp (ms) of the record that caused it; None when no
    # record did (idle decay), so no latency is observed for it
    alerts: list[tuple[Alert, int | None]] = field(default_factory=list)
    windows: int = 0
    events: dict[str, int] = field(default_factory=dict)  # valid, counted events by type
    invalid: dict[Reason, int] = field(default_factory=dict)  # dead letters by reason
    likes: int = 0
    gifts: int = 0
    coins: int = 0


@dataclass(slots=True)
class PartitionState:
    """One input partition's engine and where it stands in the input."""

    partition: int
    engine: Engine
    routes: Routes
    # offset of the last input record applied; records at or below it are skipped, however
    # they come again (a restart resumes at the committed offset, usually behind it)
    applied_offset: int = -1
    # after a restore: streams whose checkpoint records cover input past ``applied_offset`` (a
    # crash came in the middle of writing a checkpoint), and up to which offset
    ahead: dict[str, int] = field(default_factory=dict)
    ahead_until: int = -1  # the highest offset in ``ahead``
    # after a restore: streams in ``ahead`` that ended, (input offset they ended at, stream
    # id, when), ascending; each rejoins the memory of ended streams once the input passes
    # that offset, in line as it did before the crash
    pending_ends: list[tuple[int, str, int]] = field(default_factory=list)
    # the input offset each stream in the engine's memory of ended streams (or forgotten
    # by it since the last checkpoint) ended at: the engine knows no offsets, so its
    # stream_ended outputs are mapped to the offsets that caused them here
    end_offsets: EndOffsets = field(default_factory=dict)
    dirty: bool = False  # applied or ticked since the last checkpoint
    taking: SlicedCheckpoint | None = None  # a checkpoint being encoded
    tables: TableUpdate | None = None  # its table records
    # the partition time last written to the parts topic (None: none since it was taken)
    reported_ms: int | None = None
    # streams changed since the tables were last written, and checkpoints since then
    table_pending: set[str] = field(default_factory=set)
    table_skipped: int = 0

    def apply(self, records: Sequence[InputRecord], wall_ms: int) -> Applied:
        """Apply one fetch of this partition's records, in offset order.

        Records at or below ``applied_offset`` were applied before (before a restart: their
        effects are in the checkpoint and their outputs were acknowledged before it was
        written), so they are skipped whole, whatever the consumer's position did; and so
        are a stream's records up to what its own checkpoint record covers. Every other
        record is applied or dead-lettered, never both, never neither; one failing record
        goes to the dead-letter topic as ``processing_error`` and the batch goes on.
        """
        result = Applied()
        engine = self.engine
        routes = self.routes
        decode_limit = routes.max_record_bytes
        skew = routes.max_future_skew_ms or NO_SKEW_LIMIT
        events = result.events
        outputs: list[Output] = []
        out = result.records
        counted = engine.counted
        before = (counted.likes, counted.gifts, counted.coins)
        start = self.applied_offset
        for record in records:
            offset = record.offset
            if offset <= self.applied_offset:
                continue
            self.applied_offset = offset
            if self.ahead and (offset > self.ahead_until or self.pending_ends):
                self._catch_up(offset)
            decoded = decode_event(record.value, record.key, decode_limit)
            if isinstance(decoded, InvalidRecord):
                out.append(self._dead_letter(result, decoded, record))
                continue
            if self.ahead and offset <= self.ahead.get(decoded.stream_id, -1):
                continue  # already applied: its stream's own checkpoint record holds it
            if decoded.ts > record.timestamp + skew and record.timestamp >= 0:
                future = InvalidRecord(Reason.FUTURE, _future_detail(decoded.ts, record, skew))
                out.append(self._dead_letter(result, future, record))
                continue
            try:
                late = engine.apply(decoded, wall_ms, outputs)
            except Exception as exc:  # a bug for one record must not stop the partition
                log.exception(
                    "processing failed at %s[%d]@%d", routes.events_topic, self.partition, offset
                )
                outputs.clear()
                failure = InvalidRecord(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                out.append(self._dead_letter(result, failure, record))
                continue
            if late is not None:
                out.append(
                    self._dead_letter(result, InvalidRecord(late, LATE_DETAIL[late]), record)
                )
                continue
            kind = decoded.type
            events[kind] = events.get(kind, 0) + 1
            if outputs:
                self._route(result, outputs, wall_ms, record.timestamp, offset)
                outputs.clear()
        if self.applied_offset > start:
            self.dirty = True
            if self.pending_ends:
                self._catch_up(self.applied_offset + 1)
        result.likes = counted.likes - before[0]
        result.gifts = counted.gifts - before[1]
        result.coins = counted.coins - before[2]
        return result

    def _catch_up(self, offset: int) -> None:
        """Before applying ``offset``: streams that ended before it rejoin the memory of
        ended streams; once past every record that was ahead, no record is skipped again."""
        pending = self.pending_ends
        while pending and pending[0][0] < offset:
            end_offset, stream_id, at = pending.pop(0)
            self.end_offsets[stream_id] = end_offset
            self.engine.remember_end(stream_id, at)
        if offset > self.ahead_until:
            self.ahead.clear()

    def tick(self, wall_ms: int) -> Applied:
        """Idle decay: stream time follows the wall clock for streams that get nothing."""
        result = Applied()
        outputs = self.engine.tick(wall_ms)
        if outputs:
            self._route(result, outputs, wall_ms, None, self.applied_offset)
        if (
            outputs
            or self.engine.streams
            or (not self.dirty and self._time_to_report() is not None)
        ):
            self.dirty = True  # the next checkpoint records the tick: one small record
        return result

    def _time_to_report(self) -> PartitionTime | None:
        """The partition's time for the parts topic, if it is written there and moved
        since it was last (a partition with no event yet reports that once)."""
        routes = self.routes
        if not (routes.parts_topic and routes.parts_partitions):
            return None
        time_ms = self.engine.partition_time()
        if time_ms == self.reported_ms:
            return None
        # the parts topic has as many partitions as the events topic (StateStore sees to it)
        return PartitionTime(self.partition, routes.parts_partitions, time_ms)

    def _route(
        self,
        result: Applied,
        outputs: list[Output],
        emitted_at: int,
        caused_at: int | None,
        offset: int,
    ) -> None:
        """Add what the engine returned at input ``offset`` to ``result``."""
        routes = self.routes
        for output in outputs:
            result.records.append(routes.output(output, emitted_at))
            if isinstance(output, WindowClosed):
                result.windows += 1
            else:
                result.alerts.append((output, caused_at))
                if isinstance(output, StreamEnded):
                    self.end_offsets[output.stream_id] = offset

    def _dead_letter(
        self, result: Applied, invalid: InvalidRecord, record: InputRecord
    ) -> OutputRecord:
        result.invalid[invalid.reason] = result.invalid.get(invalid.reason, 0) + 1
        routes = self.routes
        return dead_letter(
            routes.dlq_topic,
            invalid,
            record.key,
            record.value,
            (routes.events_topic, self.partition, record.offset),
        )

    # -- checkpoints -------------------------------------------------------------------

    def begin_checkpoint(self) -> None:
        """Start a checkpoint of what changed so far, covering the input up to ``applied_offset``
        now; :meth:`encode_some` and :meth:`finish_checkpoint` complete it."""
        routes = self.routes
        engine = self.engine
        pending = self.table_pending
        pending |= engine.changed
        pending |= engine.moved
        engine.moved = set()
        time = None
        if self.table_skipped + 1 >= routes.table_every:  # the tables' turn: all of it
            streams, self.table_pending, self.table_skipped = pending, set(), 0
            # after every part it covers; only now, or a part not written yet could come
            # after a time that says it is over
            time = self._time_to_report()
        else:  # only the ends: their last parts and tombstones are not in the state
            streams = {stream_id for stream_id in pending if stream_id not in engine.streams}
            pending -= streams
            self.table_skipped += 1
        self.tables = TableUpdate(
            engine,
            routes.streams_topic,
            routes.parts_topic,
            routes.parts_partitions,
            time,
            streams,
        )
        self.taking = SlicedCheckpoint(self.engine, self.applied_offset, self.end_offsets)
        self.dirty = False

    def encode_some(self, budget: int) -> int:
        """Encode up to ``budget`` streams of the checkpoint under way; how many it did."""
        if self.taking is None:
            return 0
        if self.tables is not None:
            self.tables.encode(budget)
        return self.taking.encode(budget, self.applied_offset)

    def finish_checkpoint(self) -> tuple[list[OutputRecord], int]:
        """The records of the checkpoint under way and the input offset it covers: the
        table records of the streams it holds, then its state-topic records, the partition
        record last."""
        taking, self.taking = self.taking, None
        assert taking is not None, "no checkpoint under way"
        tables, self.tables = self.tables, None
        records = [] if tables is None else tables.finish()
        if tables is not None and tables.time is not None:
            self.reported_ms = tables.time.time_ms
        topic, partition = self.routes.state_topic, self.partition
        records += [
            OutputRecord(topic, key, value, (), partition)
            for key, value in taking.finish(self.applied_offset)
        ]
        return records, taking.offset

    def checkpoint(self) -> list[OutputRecord]:
        """A whole checkpoint at once: the state-topic records of what changed since the
        previous one, the partition record last; they cover the input up to ``applied_offset``."""
        self.begin_checkpoint()
        return self.finish_checkpoint()[0]

    @classmethod
    def restore(
        cls,
        partition: int,
        records: Iterable[Record],
        config: EngineConfig,
        routes: Routes,
        wall_ms: int,
    ) -> PartitionState:
        """The partition as its checkpoint records (in log order; none: a fresh start) left
        it. Raises :class:`~processor.core.checkpoint.SnapshotError` on a record that cannot be read."""
        cp = restore_checkpoint(records, config, wall_ms)
        return cls(
            partition,
            cp.engine,
            routes,
            applied_offset=cp.offset,
            ahead=cp.ahead,
            ahead_until=max(cp.ahead.values(), default=-1),
            pending_ends=cp.pending_ends,
            end_offsets=cp.end_offsets,
            # the tables may lag the state by up to ``table_every - 1`` checkpoints, and
            # which streams were not written yet is not in it: write them all again
            table_pending=set(cp.engine.streams) if routes.table_every > 1 else set(),
        )
