"""The creator-days keeper's record handling, without a broker: parts in, tombstones of
final days close them again on a restore."""

from __future__ import annotations

import msgspec
from aiokafka.partitioner import DefaultPartitioner

from processor.core.creators import CreatorDays
from processor.core.days import Calendar
from processor.worker.creators import (
    CreatorDaysKeeper,
    creator_partition,
    encode_part,
    part_key,
)
from tests.unit.test_creators import DAY2, LATE_NIGHT, MORNING


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
