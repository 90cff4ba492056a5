"""The creator-days keeper's record handling, without a broker: parts in, tombstones of
final days close them again on a restore, and the input partitions' times say when a day
is over."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest
from aiokafka.partitioner import DefaultPartitioner

from processor.core.creators import NO_TIME, CreatorDays, PartitionTime, StreamDay
from processor.core.days import Calendar
from processor.worker.creators import (
    CreatorDaysKeeper,
    creator_partition,
    decode_time,
    encode_part,
    encode_time,
    is_watermark_key,
    part_key,
    watermark_key,
)
from tests.unit.test_creators import DAY1, DAY2, LATE_NIGHT, MORNING


def keeper() -> CreatorDaysKeeper:
    k = CreatorDaysKeeper({}, "parts", "creators", "g", Calendar("UTC"), CreatorDays, 1.0)
    k.days[3] = CreatorDays()
    return k


def test_parts_of_an_owned_partition_count_and_others_are_ignored() -> None:
    k = keeper()
    k.take(3, part_key("c-1", "2026-01-01", "s-a"), encode_part(MORNING))
    k.take(5, part_key("c-1", "2026-01-01", "s-b"), encode_part(LATE_NIGHT))  # not ours
    (record,) = k.days[3].flush()
    assert (record.streams, record.coins, record.final) == (("s-a",), 35, False)


def test_a_tombstone_read_back_closes_its_day_so_a_restore_does_not_rewrite_it() -> None:
    k = keeper()
    for part in (MORNING, LATE_NIGHT):
        k.take(3, part_key(part.creator_id, part.day, part.stream_id), encode_part(part))
    k.take(3, part_key("c-1", "2026-01-01", "s-a"), None)  # the day was final before
    k.take(3, part_key("c-1", "2026-01-01", "s-b"), None)
    assert k.days[3].flush() == []
    assert not k.days[3].apply(LATE_NIGHT, DAY2)  # and stays closed


def test_a_creators_partition_is_kafkas_default_partitioner_of_her_id() -> None:
    partitions = list(range(8))
    for creator in ("c-1", "c-0042", "creator-ü"):
        expected = DefaultPartitioner()(creator.encode(), partitions, partitions)
        assert creator_partition(creator, 8) == expected


def test_the_top_creators_are_those_of_the_newest_day_over_its_partitions() -> None:
    k = keeper()
    k.days[5] = CreatorDays()
    k.take(3, part_key("c-1", "2026-01-01", "s-a"), encode_part(MORNING))  # 35 coins
    late = msgspec.structs.replace(LATE_NIGHT, day="2026-01-02", coins=40)
    k.take(3, part_key("c-1", "2026-01-02", "s-b"), encode_part(late))
    other = msgspec.structs.replace(late, creator_id="c-2", stream_id="s-x", coins=90)
    k.take(5, part_key("c-2", "2026-01-02", "s-x"), encode_part(other))
    assert k.top_creators(5) == ("2026-01-02", [("c-2", 90), ("c-1", 40)])
    assert k.top_creators(1) == ("2026-01-02", [("c-2", 90)])
    assert keeper().top_creators(5) == (None, [])


# -- event time: the input partitions' times ------------------------------------------

HOUR = 3_600_000
CLOSES = DAY2 + 10_000  # 2026-01-01 is over: midnight plus the grace


def report(k: CreatorDaysKeeper, input_partition: int, partitions: int, time_ms: int) -> None:
    """Input partition ``input_partition`` of ``partitions`` writes its time to partition 3."""
    time = PartitionTime(input_partition, partitions, time_ms)
    k.take(3, watermark_key(input_partition), encode_time(time))


def send(k: CreatorDaysKeeper, part: StreamDay) -> None:
    k.take(3, part_key(part.creator_id, part.day, part.stream_id), encode_part(part))


def finals(k: CreatorDaysKeeper) -> list[tuple[str, tuple[str, ...], int, bool]]:
    return [(r.key, r.streams, r.coins, r.final) for r in k.days[3].flush()]


def test_a_lagging_input_partition_holds_the_day_open_until_its_time_passes() -> None:
    """Input partition 0 is far ahead (next day, 05:00); partition 1 is replaying a
    backlog and is at 20:00. c-1's morning stream (on 0) ended; her late-night stream is
    on 1, still to come: the day waits for it, takes it, and closes only once partition
    1's own time has passed midnight plus the grace."""
    k = keeper()
    send(k, MORNING)  # from partition 0
    # and another creator's part, far into the next day: a part's time closes nothing
    ahead = msgspec.structs.replace(
        MORNING, creator_id="c-2", day="2026-01-02", stream_time_ms=DAY2 + 5 * HOUR
    )
    send(k, ahead)
    report(k, 0, 2, DAY2 + 5 * HOUR)
    report(k, 1, 2, DAY1 + 20 * HOUR)
    assert finals(k) == [
        ("c-1/2026-01-01", ("s-a",), 35, False),
        ("c-2/2026-01-02", ("s-a",), 35, False),
    ]
    before_midnight = msgspec.structs.replace(
        LATE_NIGHT, live_to_ms=DAY2 - 10 * 60_000, stream_time_ms=DAY2 - 10 * 60_000
    )
    send(k, before_midnight)  # from partition 1, far behind partition 0
    report(k, 1, 2, DAY2 - 10 * 60_000)
    assert finals(k) == [("c-1/2026-01-01", ("s-a", "s-b"), 535, False)]
    closed = msgspec.structs.replace(LATE_NIGHT, coins=700, stream_time_ms=CLOSES)
    send(k, closed)
    report(k, 1, 2, CLOSES - 1)  # within the grace: a late event may still count
    assert finals(k) == [("c-1/2026-01-01", ("s-a", "s-b"), 735, False)]
    report(k, 1, 2, CLOSES)
    assert finals(k) == [("c-1/2026-01-01", ("s-a", "s-b"), 735, True)]


@pytest.mark.parametrize(
    ("times", "final"),
    [
        ([(0, CLOSES), (2, CLOSES)], False),  # partition 1 has not reported
        ([(0, CLOSES), (1, CLOSES), (2, CLOSES)], True),
        ([(0, CLOSES), (1, NO_TIME), (2, CLOSES)], True),  # 1 has had no event: left out
        ([(0, NO_TIME), (1, NO_TIME), (2, NO_TIME)], False),  # no time anywhere
        ([(0, CLOSES), (1, CLOSES - 1), (2, CLOSES)], False),
        ([(0, CLOSES), (1, CLOSES - 1), (2, CLOSES), (1, CLOSES)], True),  # the latest
    ],
    ids=[
        "one-not-reported",
        "all-past",
        "empty-partition-holds-nothing-back",
        "no-time-anywhere",
        "one-within-grace",
        "latest-counts",
    ],
)
def test_a_day_turns_final_once_every_input_partition_is_past_it(
    times: list[tuple[int, int]], final: bool
) -> None:
    k = keeper()
    send(k, MORNING)  # ended: only event time holds the day open
    for input_partition, time_ms in times:
        report(k, input_partition, 3, time_ms)
    assert finals(k) == [("c-1/2026-01-01", ("s-a",), 35, final)]


@pytest.mark.parametrize(
    ("key", "time"),
    [
        (b'["watermark",0]', True),
        (b'["watermark",12]', True),
        (part_key("watermark", "2026-01-01", "s-a"), False),  # a creator named so
        (part_key("c-1", "2026-01-01", "7"), False),
        (part_key("c-1", "2026-01-01", 'quote"]'), False),
    ],
    ids=["partition-0", "partition-12", "creator-watermark", "numeric-stream", "quote-in-id"],
)
def test_a_partition_times_key_is_never_a_part_key(key: bytes, time: bool) -> None:
    assert is_watermark_key(key) is time


def test_the_key_of_a_partition_time_is_its_input_partition() -> None:
    assert watermark_key(3) == b'["watermark",3]'
    assert decode_time(encode_time(PartitionTime(3, 8, DAY2))) == PartitionTime(3, 8, DAY2)
    assert encode_time(PartitionTime(3, 8, NO_TIME)) == b"[3,8,-1]"


def test_an_unreadable_time_or_its_tombstone_changes_nothing() -> None:
    k = keeper()
    k.take(3, watermark_key(0), b"{oops")
    k.take(3, watermark_key(0), None)
    k.take(5, watermark_key(0), encode_time(PartitionTime(0, 1, CLOSES)))  # not ours
    assert (k.days[3].times, k.days[3].clock) == ({}, -1)


class Producer:
    """What the keeper's flush sends, acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_each_partition_of_the_keeper_goes_by_the_times_it_read() -> None:
    """Partition 3 has heard every input partition pass the day; partition 5 has heard
    nothing yet (its records are behind): 5's day stays open, whatever 3 knows."""
    k = keeper()
    k.days[5] = CreatorDays()
    send(k, MORNING)
    report(k, 0, 1, CLOSES)
    other = msgspec.structs.replace(MORNING, creator_id="c-2")
    k.take(5, part_key("c-2", "2026-01-01", "s-a"), encode_part(other))
    producer = Producer()
    k.producer = producer  # type: ignore[assignment]
    asyncio.run(k.flush())
    days = {
        key: json.loads(value or b"")["final"]
        for topic, key, value, _ in producer.sent
        if topic == "creators"
    }
    assert days == {b"c-1/2026-01-01": True, b"c-2/2026-01-01": False}
    tombstones = [(key, p) for topic, key, value, p in producer.sent if topic == "parts"]
    assert tombstones == [(part_key("c-1", "2026-01-01", "s-a"), 3)]
