"""Publishing, checkpoints and commits: what a batch caused goes out, and every commit
interval (and before partitions are revoked) the streams that changed are checkpointed to
the state topic and committed with the input offsets they cover."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from processor.records import OutputRecord
from processor.worker.ownership import FatalError, Ownership
from processor.worker.partitions import Applied, PartitionState
from processor.worker.transactions import PartitionProducer, TransactionFailed

log = logging.getLogger("livepulse.worker")

# streams whose checkpoint records are encoded in one step between two fetches (about
# 12 ms): a checkpoint of 10,000 changed streams never holds the loop for 120 ms at once
CHECKPOINT_SLICE = 1_000


def _not_wired(producer: PartitionProducer, failure: TransactionFailed) -> None:
    raise failure  # pragma: no cover  (Assignment sets on_lost)


class Commits:
    """Sends outputs and commits checkpoints and offsets, for the partitions ``owned``.

    A partition whose transaction fails is handed to ``on_lost`` (the assignment drops it
    and takes it back).
    """

    def __init__(self, owned: Ownership, app: faust.App) -> None:
        self.owned = owned
        self.app = app
        self.exactly_once = owned.settings.exactly_once
        self.on_lost: Callable[[PartitionProducer, TransactionFailed], None] = _not_wired
        self.sent: list[Awaitable[Any]] = []  # producer futures since the last checkpoint
        self.committing: asyncio.Future[None] | None = None  # the commit under way
        self.checkpointing: list[PartitionState] | None = None  # being encoded

    async def publish(self, partition: int, applied: Applied) -> None:
        """Send what one partition's records (or tick) caused: with ``exactly_once`` into
        the partition's open transaction, else at once."""
        if self.exactly_once:
            producer = self.owned.producers.get(partition)
            if producer is None:
                return  # lost meanwhile: its next owner applies these records again
            try:
                await producer.send(applied.records)
            except TransactionFailed as failure:
                self.on_lost(producer, failure)
                return
        else:
            for record in applied.records:
                await self.send(record)
        self.owned.metrics.record_applied(applied, time.time())
        for alert, _ in applied.alerts:
            log.info("alert %s %s %s", alert.type, alert.stream_id, alert.alert_id[:12])

    async def send(self, record: OutputRecord) -> None:
        """Hand an output to the producer; the next commit waits for its acknowledgement."""
        self.sent.append(await self._produce(record))

    async def _produce(self, record: OutputRecord) -> Awaitable[Any]:
        return await self.app.producer.send(
            record.topic,
            record.key,
            record.value,
            record.partition,
            None,
            list(record.headers) if record.headers else None,
        )

    async def commit(self, wait: bool = False) -> None:
        """Checkpoint what changed and commit it with the input offsets it covers.

        Call with ``lock`` held. One commit at a time; ``wait`` waits for the whole of it
        (before a rebalance, at a stop). A partition whose transaction fails is dropped
        (:meth:`lose`); any other failure stops the worker.

        ``exactly_once``: for each partition with something new, the checkpoint is
        encoded at once (so it covers exactly the records whose outputs are in the open
        transaction) and committed in the background with the outputs and offsets, while
        processing goes on into held-back outputs (:class:`PartitionProducer`).

        ``at_least_once``: the checkpoint is encoded a slice at a time between fetches;
        once encoded, in the background, every output sent before it is acknowledged, then
        each partition's checkpoint records and offsets are committed in one transaction
        (fenced like the outputs of ``exactly_once``). A crash between the two replays
        outputs, never loses them: a checkpoint cut short, or encoded over several
        fetches, is sorted out per stream on restore.
        """
        if self.exactly_once:
            await self.finish_commit()
            self._commit_transactions()
            if wait:
                await self.finish_commit()
            return
        if self.checkpointing is None:
            await self.finish_commit()
            self.checkpointing = [s for s in self.owned.partitions.values() if s.dirty]
            for state in self.checkpointing:
                state.begin_checkpoint()
        if wait:
            self.encode_checkpoint(None)
            await self.finish_commit()
        else:
            self.encode_checkpoint(CHECKPOINT_SLICE)

    def _commit_transactions(self) -> None:
        """``exactly_once``: checkpoint every partition with an open transaction and
        commit them in the background."""
        batch: list[tuple[PartitionProducer, list[OutputRecord], int | None]] = []
        for partition, state in self.owned.partitions.items():
            producer = self.owned.producers[partition]
            if not (state.dirty or producer.open):
                continue
            state.begin_checkpoint()
            records, covered = state.finish_checkpoint()
            producer.hold()
            batch.append((producer, records, covered + 1 if covered >= 0 else None))
        if batch:
            self.committing = asyncio.ensure_future(self._commit_partitions(batch))

    def encode_checkpoint(self, budget: int | None) -> None:
        """``at_least_once``: encode up to ``budget`` streams (None: all) of the checkpoint
        under way; once it is all encoded, hand it to the background to be committed."""
        taking = self.checkpointing
        if taking is None:
            return
        if budget is not None:
            for state in taking:
                budget -= state.encode_some(budget)
                if budget <= 0:
                    return
        self.checkpointing = None
        batch: list[tuple[PartitionProducer, list[OutputRecord], int | None]] = []
        for state in taking:
            if self.owned.partitions.get(state.partition) is not state:
                continue  # revoked or lost meanwhile (the revocation finished it first)
            records, covered = state.finish_checkpoint()
            offset = None
            if covered >= 0 and covered + 1 > self.owned.committed.get(state.partition, 0):
                offset = covered + 1
            if records or offset is not None:
                batch.append((self.owned.producers[state.partition], records, offset))
        sent, self.sent = self.sent, []
        if sent or batch:
            self.committing = asyncio.ensure_future(self._durable_then_commit(sent, batch))

    async def finish_commit(self) -> None:
        """Wait for the commit under way, if any (raises what it raised)."""
        task, self.committing = self.committing, None
        if task is not None:
            await task

    async def _durable_then_commit(
        self,
        sent: list[Awaitable[Any]],
        batch: list[tuple[PartitionProducer, list[OutputRecord], int | None]],
    ) -> None:
        await self._acknowledged(sent)
        await self._commit_partitions(batch)

    async def _commit_partitions(
        self, batch: list[tuple[PartitionProducer, list[OutputRecord], int | None]]
    ) -> None:
        """Commit each partition's transaction with its checkpoint records and the next
        input offset, all partitions at once; drop those whose transaction fails."""
        results = await asyncio.gather(
            *(producer.commit(records, offset) for producer, records, offset in batch),
            return_exceptions=True,
        )
        committed = failed = written = size = 0
        for (producer, records, offset), result in zip(batch, results, strict=True):
            if isinstance(result, TransactionFailed):
                failed += 1
                self.on_lost(producer, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                committed += 1
                written += len(records)
                size += sum(len(r.value or b"") for r in records)
                if offset is not None and self.owned.producers.get(producer.partition) is producer:
                    self.owned.committed[producer.partition] = offset
        self.owned.metrics.record_transactions(committed, failed)
        self.owned.metrics.record_checkpoint(written, size)

    @staticmethod
    async def _acknowledged(futures: list[Awaitable[Any]]) -> None:
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                raise FatalError(f"publishing failed ({result!r}); nothing past it is committed")
