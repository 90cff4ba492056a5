"""One transaction per input partition: what goes in it, what is held back, what fails."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from processor.records import OutputRecord
from processor.worker.transactions import TransactionFailed, is_fenced, transactional_id
from tests.unit.fake_kafka import fake_partition_producer


def out(key: str, topic: str = "alerts") -> OutputRecord:
    return OutputRecord(topic, key.encode(), b"{}")


def test_the_transactional_id_is_the_same_for_a_partition_whoever_owns_it() -> None:
    assert transactional_id("app", "live.events", 3) == "app-live.events-3"
    assert transactional_id("app", "live.events", 3) != transactional_id("app", "live.events", 4)


def test_outputs_checkpoint_and_next_offset_commit_in_one_transaction() -> None:
    producer, fake = fake_partition_producer(2)

    async def run() -> None:
        await producer.send([out("a"), out("b")])
        await producer.commit([out("p", "state")], 42)

    asyncio.run(run())
    assert len(fake.committed) == 1
    txn = fake.committed[0]
    assert [(r.topic, r.key) for r in txn.records] == [
        ("alerts", b"a"),
        ("alerts", b"b"),
        ("state", b"p"),
    ]
    assert txn.offsets == {TopicPartition("ev", 2): 42}
    assert txn.group_id == "unit-app"
    assert fake.open is None and not producer.open


def test_a_commit_with_nothing_to_commit_opens_no_transaction() -> None:
    producer, fake = fake_partition_producer(0)
    asyncio.run(producer.commit([], None))
    assert fake.committed == [] and fake.open is None


def test_outputs_sent_during_a_commit_open_the_next_transaction_in_order() -> None:
    """The checkpoint covers the records applied before the commit began; outputs of
    records applied while it is under way belong to the next transaction."""
    producer, fake = fake_partition_producer(0)

    async def run() -> None:
        await producer.send([out("before")])
        producer.hold()
        commit = asyncio.ensure_future(producer.commit([out("p", "state")], 10))
        await producer.send([out("during-1")])
        await asyncio.sleep(0)
        await producer.send([out("during-2")])
        await commit
        await producer.send([out("after")])
        await producer.commit([], 12)

    asyncio.run(run())
    assert [[r.key for r in txn.records] for txn in fake.committed] == [
        [b"before", b"p"],
        [b"during-1", b"during-2", b"after"],
    ]
    assert [txn.offsets for txn in fake.committed] == [
        {TopicPartition("ev", 0): 10},
        {TopicPartition("ev", 0): 12},
    ]


def test_a_fenced_producer_fails_every_call_and_never_commits() -> None:
    producer, fake = fake_partition_producer(5)

    async def run() -> list[TransactionFailed]:
        await producer.send([out("a")])
        fake.fence()
        failures = []
        for step in (producer.send([out("b")]), producer.commit([out("p", "state")], 7)):
            with pytest.raises(TransactionFailed) as raised:
                await step
            failures.append(raised.value)
        return failures

    failures = asyncio.run(run())
    assert all(f.fenced and f.partition == 5 for f in failures)
    assert "partition 5: fenced by a newer owner (ProducerFenced" in str(failures[0])
    assert fake.committed == []


def test_after_the_first_fenced_error_aiokafka_raises_assertion_errors_also_fenced() -> None:
    producer, fake = fake_partition_producer(1)

    async def run() -> TransactionFailed:
        await producer.send([out("a")])
        fake.fence()
        fake.raised_fenced = True  # ProducerFenced was raised to someone else already
        with pytest.raises(TransactionFailed) as raised:
            await producer.commit([], 3)
        return raised.value

    failure = asyncio.run(run())
    assert failure.fenced and isinstance(failure.cause, AssertionError)
    assert fake.committed == []


def test_a_failed_commit_is_a_failure_not_fenced() -> None:
    producer, fake = fake_partition_producer(0)
    fake.fail_commit = KafkaTimeoutError()

    async def run() -> TransactionFailed:
        await producer.send([out("a")])
        with pytest.raises(TransactionFailed) as raised:
            await producer.commit([out("p", "state")], 3)
        return raised.value

    failure = asyncio.run(run())
    assert not failure.fenced and isinstance(failure.cause, KafkaTimeoutError)
    assert fake.committed == []
    with pytest.raises(TransactionFailed):  # and it stays failed
        asyncio.run(producer.send([out("b")]))


@pytest.mark.parametrize(
    ("error", "fenced"),
    [
        (AssertionError("Invalid state transition"), True),
        (KafkaTimeoutError(), False),
        (RuntimeError("boom"), False),
    ],
)
def test_which_errors_mean_fenced(error: BaseException, fenced: bool) -> None:
    assert is_fenced(error) is fenced
