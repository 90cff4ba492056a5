"""The second agent: creator days from the stream parts re-keyed by creator.

Each partition of the events topic reports its streams' parts of each calendar day
(:class:`~processor.core.creators.StreamDay`, running figures) to an internal, compacted
topic, keyed ``creator/day/stream`` and partitioned by creator, so all of a creator's
streams meet in one partition whatever partitions they came from. This keeper consumes
that topic in its own consumer group; for each partition it owns it keeps a
:class:`~processor.core.creators.CreatorDays`, and once per commit interval writes the
days that changed to the creators topic (compacted, key ``creator/day``).

When a day is over is event time's call, and event time is the input partitions': with
each checkpoint, each input partition writes its partition time
(:class:`~processor.core.creators.PartitionTime`, key ``["watermark", <partition>]``) to
every partition of this topic, after its parts and in the same transaction. Each of the
keeper's partitions keeps the latest time of every input partition and goes by the least
of them, so a partition far ahead cannot close a day whose parts a lagging one has yet
to write, and a quiet caught-up partition's time goes on with its idle clock.

Why it is exact after ``kill -9`` without a checkpoint of its own: the internal topic is
its state. A part holds running figures, so the latest part of each stream and day is all
the keeper needs, which is what compaction keeps; on assignment it reads its partitions
from the beginning (``read_committed``: parts of a fenced or crashed worker's open
transaction never count) and writes every day again. A day written twice is the same
record, which a compacted table keeps once. When a day turns final the keeper writes
tombstones for its parts, so the topic holds only open days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import murmur2

from processor.core.creators import (
    CreatorDay,
    CreatorDays,
    PartitionTime,
    StreamDay,
    creator_day_key,
)
from processor.core.days import Calendar

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 200

_encode = msgspec.json.Encoder().encode
_part = msgspec.json.Decoder(StreamDay)
_time = msgspec.json.Decoder(PartitionTime)

WATERMARK = "watermark"


def part_key(creator_id: str, day: str, stream_id: str) -> bytes:
    """The parts topic's key: a JSON array, so no id can be mistaken for a separator."""
    return _encode((creator_id, day, stream_id))


_key = msgspec.json.Decoder(tuple[str, str, str])


def watermark_key(partition: int) -> bytes:
    """The key of input partition ``partition``'s time in the parts topic:
    ``["watermark", 3]``. A part key is an array of three strings, so it never ends in a
    number, and no creator id makes one of these."""
    return _encode((WATERMARK, partition))


def is_watermark_key(key: bytes) -> bool:
    return not key.endswith(b'"]')  # a part key's last element is a string


def creator_partition(creator_id: str, partitions: int) -> int:
    """The internal topic's partition of a creator: Kafka's default partitioner (murmur2)
    applied to the creator id, so any client can find her partition."""
    hashed: int = murmur2(creator_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def encode_part(part: StreamDay) -> bytes:
    return _encode(part)


def decode_part(value: bytes) -> StreamDay:
    return _part.decode(value)


def encode_time(time: PartitionTime) -> bytes:
    return _encode(time)


def decode_time(value: bytes) -> PartitionTime:
    return _time.decode(value)


class CreatorDaysKeeper:
    """Consumes the stream parts, keeps each owned partition's creator days, writes them."""

    def __init__(
        self,
        client_options: dict[str, Any],
        parts_topic: str,
        creators_topic: str,
        group_id: str,
        calendar: Calendar,
        make_days: Callable[[], CreatorDays],
        interval_s: float,
    ) -> None:
        self.client_options = client_options
        self.parts_topic = parts_topic
        self.creators_topic = creators_topic
        self.group_id = group_id
        self.calendar = calendar
        self.make_days = make_days
        self.interval_s = interval_s
        self.days: dict[int, CreatorDays] = {}
        self.written = 0  # creator-day records written, for metrics and tests
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        # how a fetch's records of one partition reach :meth:`take_all`: at once, or
        # through the app's agent (create_app sets it)
        self.hand: Callable[[int, list[Any]], Awaitable[None]] = self._take_now

    async def _take_now(self, partition: int, records: list[Any]) -> None:
        self.take_all(partition, records)

    def take_all(self, partition: int, records: list[Any]) -> None:
        """Apply one fetch's records (aiokafka ConsumerRecords) of one partition."""
        for record in records:
            self.take(partition, record.key, record.value)

    def take(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the parts topic: a stream's part, or an input partition's
        time. A tombstone is only ever written for a final day's part: read back (a
        restore before compaction), it closes the day again."""
        days = self.days.get(partition)
        if days is None:
            return  # not ours any more
        if key is not None and is_watermark_key(key):
            if value is not None:
                try:
                    days.note_time(decode_time(value))
                except msgspec.DecodeError as exc:
                    log.warning("partition time in partition %d not readable: %s", partition, exc)
            return
        if value is None:
            if key is not None:
                with contextlib.suppress(msgspec.DecodeError):
                    creator_id, day, _ = _key.decode(key)
                    days.close((creator_id, day))
            return
        try:
            part = decode_part(value)
        except msgspec.DecodeError as exc:  # only livepulse writes this topic
            log.warning("creator part in partition %d not readable: %s", partition, exc)
            return
        days.apply(part, self.calendar.bounds(part.day)[1])

    def top_creators(self, k: int) -> tuple[str | None, list[tuple[str, int]]]:
        """The newest day of the days it keeps, and its ``k`` top creators by coins (most
        first, ties by creator id)."""
        day = max((d for days in self.days.values() if (d := days.newest_day())), default=None)
        if day is None:
            return None, []
        coins: dict[str, int] = {}
        for days in self.days.values():
            coins.update(days.coins_on(day))
        ranked = sorted(coins.items(), key=lambda item: (-item[1], item[0]))[:k]
        return day, ranked

    async def flush(self) -> None:
        """Write every day that changed; tombstone the parts of the days that turned final."""
        producer = self.producer
        assert producer is not None
        sent: list[Awaitable[Any]] = []
        for partition, days in list(self.days.items()):
            for record in days.flush():
                sent.append(await self._send_day(producer, record))
                if record.final:
                    for stream_id in record.streams:
                        key = part_key(record.creator_id, record.day, stream_id)
                        sent.append(
                            await producer.send(
                                self.parts_topic, None, key=key, partition=partition
                            )
                        )
        if sent:
            await asyncio.gather(*sent)

    async def _send_day(self, producer: AIOKafkaProducer, record: CreatorDay) -> Awaitable[Any]:
        self.written += 1
        key = creator_day_key(record.creator_id, record.day).encode()
        delivered: Awaitable[Any] = await producer.send(
            self.creators_topic, _encode(record), key=key
        )
        return delivered

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` is set: consume, and flush once per interval."""
        keeper = self

        class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                if keeper.producer is not None:
                    await keeper.flush()
                for tp in revoked:
                    keeper.days.pop(tp.partition, None)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                for tp in assigned:
                    keeper.days[tp.partition] = keeper.make_days()
                consumer = keeper.consumer
                if assigned and consumer is not None:
                    await consumer.seek_to_beginning(*assigned)

        self.producer = AIOKafkaProducer(**self.client_options, acks="all")
        self.consumer = AIOKafkaConsumer(
            **self.client_options,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await self.producer.start()
        try:
            await self.consumer.start()
            self.consumer.subscribe([self.parts_topic], listener=Rebalance())
            loop = asyncio.get_running_loop()
            next_flush = loop.time() + self.interval_s
            while not stopping.is_set():
                fetched = await self.consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
                for tp, records in fetched.items():
                    await self.hand(tp.partition, records)
                if loop.time() >= next_flush:
                    await self.flush()
                    next_flush = loop.time() + self.interval_s
            await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            await self.producer.stop()
