"""A transactional producer that keeps what it is given, for tests without a broker.

It follows aiokafka's ``AIOKafkaProducer`` as the worker uses it, fencing included: once
:meth:`FakeTransactionalProducer.fence` is called, the next send raises ``ProducerFenced``
and every transactional call after it ``AssertionError``, as aiokafka 0.14 does against
Kafka 4.3.1 (docs/platform.md, Transactions).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from processor.worker.transactions import PartitionProducer


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None


@dataclass
class Transaction:
    records: list[Sent] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    group_id: str | None = None


class FakeTransactionalProducer:
    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.open: Transaction | None = None
        self.committed: list[Transaction] = []
        self.fenced = False
        self.raised_fenced = False
        self.fail_commit: BaseException | None = None
        self.fail_start: BaseException | None = None

    def fence(self) -> None:
        self.fenced = True

    def _check(self) -> None:
        if self.fenced:
            if not self.raised_fenced:
                self.raised_fenced = True
                raise ProducerFenced()
            raise AssertionError("Invalid state transition")

    async def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def begin_transaction(self) -> None:
        if self.fenced and self.raised_fenced:
            raise AssertionError("Invalid state transition")
        assert self.open is None, "a transaction is already open"
        self.open = Transaction()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[None]:
        self._check()
        assert self.open is not None, "Can't send messages while not in transaction"
        await asyncio.sleep(0)  # a real send may yield to the loop
        self.open.records.append(Sent(topic, key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        self._check()
        assert self.open is not None
        self.open.offsets.update(offsets)
        self.open.group_id = group_id

    async def commit_transaction(self) -> None:
        self._check()
        if self.fail_commit is not None:
            raise self.fail_commit
        assert self.open is not None
        await asyncio.sleep(0)
        self.committed.append(self.open)
        self.open = None

    def committed_records(self) -> list[Sent]:
        return [r for txn in self.committed for r in txn.records]


def fake_partition_producer(
    partition: int, events_topic: str = "ev", group_id: str = "unit-app"
) -> tuple[PartitionProducer, FakeTransactionalProducer]:
    fake = FakeTransactionalProducer()
    producer = PartitionProducer(
        partition,
        fake,  # type: ignore[arg-type]
        TopicPartition(events_topic, partition),
        group_id,
    )
    return producer, fake
