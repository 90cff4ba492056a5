"""One Kafka transaction at a time per input partition: outputs, checkpoint and offsets.

Each input partition the worker owns gets its own transactional producer, with a
transactional id that is the same for that partition whoever owns it
(:func:`transactional_id`). Starting it fences the previous owner's producer: the broker
aborts that producer's open transaction and rejects everything it sends afterwards. So a
worker that was expelled from the group while it was stopped (a long pause, ``SIGSTOP``)
cannot write stale checkpoint records, or alerts, or commit offsets once it wakes: it only
learns that it was fenced.

With ``exactly_once`` the outputs a partition's records caused go into the partition's
open transaction, and a commit adds the checkpoint records and the input offsets they
cover, then commits all of it at once. Outputs caused while a commit is under way are held
back and open the next transaction (in order) once it is done. With ``at_least_once`` only
checkpoints and offsets are transactional; outputs go out at once through another producer.

Aiokafka raises ``ProducerFenced`` on the first send after a fence and ``AssertionError``
(an invalid state transition) on the calls after that; anything that goes wrong inside a
transaction is raised here as :class:`TransactionFailed`, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)

from processor.records import OutputRecord

log = logging.getLogger("livepulse.transactions")

STOP_TIMEOUT_S = 5.0


def transactional_id(app_id: str, events_topic: str, partition: int) -> str:
    """The transactional id of one input partition: stable across owners and restarts."""
    return f"{app_id}-{events_topic}-{partition}"


class TransactionFailed(RuntimeError):
    """A transaction of one partition failed; nothing of it is visible to a
    ``read_committed`` reader. ``fenced``: another producer took the partition over."""

    def __init__(self, partition: int, cause: BaseException) -> None:
        self.partition = partition
        self.cause = cause
        self.fenced = is_fenced(cause)
        what = "fenced by a newer owner" if self.fenced else "transaction failed"
        super().__init__(f"partition {partition}: {what} ({type(cause).__name__}: {cause})")


def is_fenced(exc: BaseException) -> bool:
    """Whether ``exc`` says that a newer producer with the same transactional id exists."""
    return isinstance(exc, ProducerFenced | InvalidProducerEpoch | AssertionError)


class PartitionProducer:
    """The transactional producer of one input partition.

    Use from one event loop; :meth:`send` and :meth:`commit` may interleave: once
    :meth:`hold` is called, sends are held until the commit under way is done.
    """

    def __init__(
        self,
        partition: int,
        producer: AIOKafkaProducer,
        input_partition: TopicPartition,
        group_id: str,
    ) -> None:
        self.partition = partition
        self.producer = producer
        self.input_partition = input_partition
        self.group_id = group_id
        self.open = False  # a transaction is open
        self.sent: list[Awaitable[Any]] = []  # delivery futures of the open transaction
        self.held: list[OutputRecord] | None = None  # None: not holding
        self.failed: TransactionFailed | None = None

    @classmethod
    def create(
        cls,
        partition: int,
        options: dict[str, Any],
        events_topic: str,
        app_id: str,
        transaction_timeout_ms: int,
    ) -> PartitionProducer:
        producer = AIOKafkaProducer(
            **options,
            transactional_id=transactional_id(app_id, events_topic, partition),
            transaction_timeout_ms=transaction_timeout_ms,
        )
        return cls(partition, producer, TopicPartition(events_topic, partition), app_id)

    async def start(self) -> None:
        """Connect and take the transactional id over: the previous owner's producer is
        fenced and its open transaction aborted before this returns."""
        try:
            await self.producer.start()
        except TransactionalIdAuthorizationFailed as exc:
            raise TransactionFailed(self.partition, exc) from exc

    async def stop(self) -> None:
        """Close; an open transaction is left for the broker (or the next owner) to abort."""
        try:
            await asyncio.wait_for(self.producer.stop(), STOP_TIMEOUT_S)
        except Exception as exc:  # closing a fenced or cut-off producer
            log.debug(
                "partition %d: producer stop: %s: %s", self.partition, type(exc).__name__, exc
            )

    def hold(self) -> None:
        """Hold sends back from now until the next :meth:`commit` is done."""
        if self.held is None:
            self.held = []

    async def send(self, records: Sequence[OutputRecord]) -> None:
        """Add records to the open transaction (opening one), or hold them back while a
        commit is under way. Raises :class:`TransactionFailed`."""
        if self.failed is not None:
            raise self.failed
        if self.held is not None:
            self.held.extend(records)
            return
        await self._send(records)

    async def _send(self, records: Sequence[OutputRecord]) -> None:
        try:
            if not self.open:
                await self.producer.begin_transaction()
                self.open = True
            send = self.producer.send
            sent = self.sent
            for record in records:
                sent.append(
                    await send(
                        record.topic,
                        record.value,
                        record.key,
                        record.partition,
                        None,
                        list(record.headers) if record.headers else None,
                    )
                )
        except Exception as exc:
            raise self._fail(exc) from exc

    async def commit(self, checkpoint: Sequence[OutputRecord], next_offset: int | None) -> None:
        """Add the checkpoint records and the input offset (the next to read) to the open
        transaction and commit it; then send what was held back, in a new transaction.

        Raises :class:`TransactionFailed`: then nothing of the transaction is visible, and
        this producer is done (the partition must be restored again from what was
        committed)."""
        if self.failed is not None:
            raise self.failed
        try:
            if checkpoint or next_offset is not None:
                await self._send(checkpoint)
            if self.open:
                if next_offset is not None:
                    await self.producer.send_offsets_to_transaction(
                        {self.input_partition: next_offset}, self.group_id
                    )
                await self.producer.commit_transaction()
                self.open = False
                sent, self.sent = self.sent, []
                for result in await asyncio.gather(*sent, return_exceptions=True):
                    if isinstance(result, BaseException):
                        raise result
        except TransactionFailed:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        await self._release()

    async def _release(self) -> None:
        """Send what was held back during the commit, in order, then stop holding."""
        while self.held:
            held, self.held = self.held, []
            await self._send(held)
        self.held = None

    def _fail(self, exc: BaseException) -> TransactionFailed:
        if self.failed is None:
            self.failed = TransactionFailed(self.partition, exc)
            self.held = None
            self.sent = []
        return self.failed


async def start_all(producers: Sequence[PartitionProducer]) -> None:
    """Start producers at once; stop every one of them if any fails to start."""
    results = await asyncio.gather(*(p.start() for p in producers), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await stop_all(producers)
        raise failures[0]


async def stop_all(producers: Sequence[PartitionProducer]) -> None:
    await asyncio.gather(*(p.stop() for p in producers))
