"""The table records of a checkpoint: what the stream table (``live.streams``) and the
creator-days agent (the internal parts topic) learn of the streams that changed.

They are written with the partition's checkpoint, in its transaction: a table record is
visible exactly when the state it comes from is durable, so after a crash the tables are
rewritten from the restored state, never from work that was lost. Both topics are
compacted and their records are running figures, so a record written again is harmless.

After its parts, a checkpoint writes the partition's time to every partition of the parts
topic (when it moved since the last one): the creator-days agent goes by the least time
of all input partitions, and finds it after the parts it covers.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from processor.core.creators import PartitionTime, StreamDay
from processor.core.engine import Engine
from processor.core.table import stream_row
from processor.records import OutputRecord
from processor.worker.creators import (
    creator_partition,
    encode_part,
    encode_time,
    part_key,
    watermark_key,
)

_encode = msgspec.json.Encoder().encode


class TableUpdate:
    """One checkpoint's table records, encoded a slice of streams at a time."""

    def __init__(
        self,
        engine: Engine,
        streams_topic: str,
        parts_topic: str,
        parts_partitions: int,
        time: PartitionTime | None,
        streams: Iterable[str],
    ) -> None:
        self.engine = engine
        self.streams_topic = streams_topic
        self.parts_topic = parts_topic
        self.parts_partitions = parts_partitions
        # the partition's time, written last to every parts partition (None: not now)
        self.time = time
        # the streams to write (PartitionState.begin_checkpoint picks them), taken before
        # the checkpoint takes (and clears) the engine's change set
        self.todo = list(streams)
        self.ended_parts, engine.ended_parts = engine.ended_parts, []
        self.records: list[OutputRecord] = []

    def encode(self, budget: int) -> int:
        """Encode up to ``budget`` streams as they are now; how many it did."""
        engine = self.engine
        step = self.todo[-budget:] if budget > 0 else []
        del self.todo[len(self.todo) - len(step) :]
        usd = engine.config.usd_per_coin
        for stream_id in step:
            state = engine.streams.get(stream_id)
            if state is None:  # ended: its parts are in ended_parts
                if self.streams_topic:
                    self.records.append(OutputRecord(self.streams_topic, stream_id.encode(), None))
                continue
            if self.streams_topic:
                row = _encode(stream_row(state, usd))
                self.records.append(OutputRecord(self.streams_topic, stream_id.encode(), row))
            self._parts(engine.day_parts(state))
        return len(step)

    def _parts(self, parts: list[StreamDay]) -> None:
        if not self.parts_topic:
            return
        for part in parts:
            partition = (
                creator_partition(part.creator_id, self.parts_partitions)
                if self.parts_partitions
                else None
            )
            self.records.append(
                OutputRecord(
                    self.parts_topic,
                    part_key(part.creator_id, part.day, part.stream_id),
                    encode_part(part),
                    (),
                    partition,
                )
            )

    def finish(self) -> list[OutputRecord]:
        """Every record of the update: the streams left to encode, then the last parts of
        the streams that ended, then the partition's time."""
        self.encode(len(self.todo))
        self._parts(self.ended_parts)
        self.ended_parts = []
        time = self.time
        if time is not None and self.parts_topic and self.parts_partitions:
            key, value = watermark_key(time.partition), encode_time(time)
            self.records += [
                OutputRecord(self.parts_topic, key, value, (), to)
                for to in range(self.parts_partitions)
            ]
        return self.records
