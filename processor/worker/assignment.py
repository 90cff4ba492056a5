"""Fetching and assignment: the events topic read in whole fetches by an aiokafka consumer
in the app's group, each fetch handed per partition to the agent; rebalances (checkpoint,
commit, drop revoked partitions, restore assigned ones from the state topic); partitions
lost to a failed transaction, and taken back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from processor.core.checkpoint import SnapshotError
from processor.kafka_client import client_options
from processor.records import InputRecord
from processor.worker.clients import (
    TRANSACTION_TIMEOUT_MS,
    group_options,
    producer_options,
)
from processor.worker.commits import CHECKPOINT_SLICE, Commits
from processor.worker.ownership import FatalError, Ownership
from processor.worker.partitions import PartitionState
from processor.worker.state_store import StateStore
from processor.worker.transactions import (
    PartitionProducer,
    TransactionFailed,
    start_all,
    stop_all,
)

log = logging.getLogger("livepulse.worker")

FETCH_TIMEOUT_MS = 100  # how long one getmany waits for records; also bounds commit delay
MAX_BATCH_RECORDS = 4_000  # records per getmany, over all partitions
STOP_TIMEOUT_S = 10.0  # how long a stop waits for the batch in flight before committing
RETAKE_DELAY_S = 1.0  # before taking back a partition whose transaction failed


@dataclass(slots=True)
class Batch:
    """One fetch of one partition, on its way to the agent; ``done`` resolves once applied
    and handed to the producer."""

    state: PartitionState
    records: Sequence[InputRecord]
    done: asyncio.Future[None]


def heartbeat_while_assigning(consumer: AIOKafkaConsumer) -> None:
    """Keep the group session alive while partitions are restored.

    aiokafka stops its heartbeat task for a rebalance and starts it again only once the
    ``on_partitions_assigned`` callback returns, so a restore longer than the session
    timeout got the member expelled, and every rejoin restored again: a loop. The member
    is in the new generation by the time the callback runs, so the task can start
    (aiokafka's own start after the callback then finds it running). Private API: if a
    later aiokafka lacks it, restores are bounded by the session timeout again, as before.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    start = getattr(coordinator, "_start_heartbeat_task", None)
    if start is None:
        log.warning("aiokafka has no heartbeat task to start: long restores may expel")
        return
    start()


class Assignment:
    """Which partitions are ours, and their records in: the fetch loop, rebalances,
    restores, and partitions lost and taken back."""

    def __init__(
        self,
        owned: Ownership,
        commits: Commits,
        store: StateStore,
        batches: faust.ChannelT[Batch],
    ) -> None:
        self.owned = owned
        self.commits = commits
        commits.on_lost = self.lose
        self.store = store
        # the keep_counts agent's input: one fetch at a time, each awaited until applied
        self.batches = batches
        self.takes = 0  # counts partitions taken back after a failed transaction
        self.since: dict[int, int] = {}  # partition -> ``takes`` when it was last taken
        # partitions of the fetch in hand: getmany has moved the consumer's positions past
        # its records before they are applied, so those positions alone do not say caught up
        self.unapplied: frozenset[int] = frozenset()
        self.retaking: set[asyncio.Future[None]] = set()  # lost partitions to take back
        self.assigned: set[int] | None = None  # None until the group first assigns
        self.rebalancing = False

    async def consume(self, service: mode.Service) -> None:
        """Fetch, hand each partition's records to the agent, commit every interval."""
        consumer = self.owned.consumer
        assert consumer is not None
        interval = self.owned.settings.commit_interval
        next_commit = time.monotonic() + interval
        loop = asyncio.get_running_loop()
        while not service.should_stop:
            takes = self.takes
            fetched = await consumer.getmany(
                timeout_ms=FETCH_TIMEOUT_MS, max_records=MAX_BATCH_RECORDS
            )
            self.unapplied = frozenset(tp.partition for tp in fetched)  # before any await
            epoch = self.owned.epoch
            async with self.owned.lock:
                if self.owned.fatal is not None:
                    return
                if epoch == self.owned.epoch:  # else a rebalance came between: fetched again later
                    for tp, records in fetched.items():
                        state = self.owned.partitions.get(tp.partition)
                        if state is None or self.since.get(tp.partition, 0) > takes:
                            continue  # not (or no longer) ours, or fetched before retaken
                        done: asyncio.Future[None] = loop.create_future()
                        await self.batches.put(Batch(state, records, done))  # type: ignore[arg-type]
                        await done
                self.unapplied = frozenset()
                if self.commits.checkpointing is not None:
                    self.commits.encode_checkpoint(CHECKPOINT_SLICE)
                elif time.monotonic() >= next_commit:
                    await self.commits.commit()
                    next_commit = time.monotonic() + interval

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.owned.lock:
            self.owned.epoch += 1
            mine = {tp.partition for tp in revoked if tp.topic == self.owned.settings.events_topic}
            if self.owned.fatal is None and mine & set(self.owned.partitions):
                await self.commits.commit(wait=True)
            await self.drop(mine)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.owned.lock:
            self.owned.epoch += 1
            mine = {tp.partition for tp in assigned if tp.topic == self.owned.settings.events_topic}
            await self.drop(set(self.owned.partitions) - mine)
            new = sorted(mine - set(self.owned.partitions))
            if new and self.owned.fatal is None:
                try:
                    await self.take_over(new)
                except FatalError as exc:
                    self.owned.stop_with(exc)
            self.assigned = mine
            self.rebalancing = False

    async def drop(self, partitions: set[int]) -> None:
        """Forget partitions that are no longer ours, and close their producers."""
        producers = [self.owned.producers.pop(p) for p in partitions if p in self.owned.producers]
        for partition in partitions:
            self.owned.partitions.pop(partition, None)
            self.owned.committed.pop(partition, None)
        await stop_all(producers)

    async def take_over(self, partitions: list[int]) -> None:
        """Become the owner of ``partitions``: start their transactional producers, which
        fences any previous owner and aborts its open transactions, then restore them from
        what was committed to the state topic."""
        producers = [self.make_producer(p) for p in partitions]
        started = time.monotonic()
        try:
            await start_all(producers)
        except TransactionFailed as exc:
            raise FatalError(
                f"not authorized to use transactional ids {self.owned.settings.app_id!r}-... "
                f"({exc.cause}): grant Write and Describe on TransactionalId prefix "
                f"{self.owned.settings.app_id!r} in the cluster's ACLs"
            ) from None
        except Exception as exc:
            raise FatalError(
                f"cannot start the transactional producers of partitions {partitions}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        log.info(
            "transactional producers of partitions %s started in %.2f s: earlier owners fenced",
            partitions,
            time.monotonic() - started,
        )
        try:
            await self.restore(partitions)
        except BaseException:
            await stop_all(producers)
            raise
        for producer in producers:
            self.owned.producers[producer.partition] = producer

    def make_producer(self, partition: int) -> PartitionProducer:
        """The (not yet started) transactional producer of one input partition."""
        return PartitionProducer.create(
            partition,
            producer_options(self.owned.settings, partition),
            self.owned.settings.events_topic,
            self.owned.settings.app_id,
            TRANSACTION_TIMEOUT_MS,
        )

    async def restore(self, partitions: list[int]) -> None:
        """Restore partitions from their checkpoint records (one read of the state topic)."""
        started = time.monotonic()
        try:
            found = await self.store.read(partitions)
        except Exception as exc:
            raise FatalError(
                f"cannot read state topic {self.owned.routes.state_topic!r} "
                f"(partitions {partitions}): {type(exc).__name__}: {exc}"
            ) from exc
        read_s = time.monotonic() - started
        wall_ms = int(time.time() * 1000)
        for partition in partitions:
            records = found.get(partition, [])
            try:
                # in a thread: decoding 100k streams takes seconds, and the event loop
                # must go on heartbeating meanwhile, or the group expels this member
                state = await asyncio.to_thread(
                    PartitionState.restore,
                    partition,
                    records,
                    self.owned.config,
                    self.owned.routes,
                    wall_ms,
                )
            except SnapshotError as exc:
                raise FatalError(
                    f"state topic {self.owned.routes.state_topic!r} partition {partition}: {exc}. "
                    "Nothing was processed. To rebuild the state from the events, delete the "
                    f"state topic and reset consumer group {self.owned.settings.app_id!r} on "
                    f"{self.owned.settings.events_topic!r} to the earliest offsets; or run the "
                    "livepulse version that wrote it."
                ) from None
            # the previous owner's checkpoint may be ahead of the group's committed offset
            # (its commit failed in the rebalance): commit it at the next commit, or the
            # committed offset of a partition with no new input would stay behind for good
            state.dirty = state.applied_offset >= 0
            self.owned.partitions[partition] = state
            log.info(
                "partition %d restored at offset %d: %d streams, %d ended, from %d records "
                "(read in %.2f s, decoded after %.2f s)",
                partition,
                state.applied_offset,
                len(state.engine.streams),
                len(state.engine.ended),
                len(records),
                read_s,
                time.monotonic() - started,
            )
        self.owned.metrics.record_restore(time.monotonic() - started)

    def lose(self, producer: PartitionProducer, failure: TransactionFailed) -> None:
        """Stop all work on a partition whose transaction failed, at once: its state is
        dropped (nothing of the open transaction is visible), its input paused.

        Fenced, another worker owns it now: this one was expelled from the group and will
        hear so from the group; it takes the partition back after a session timeout only
        if the group still assigns it here. Otherwise (the broker went away, a timeout):
        it is taken back from the state topic at once, as a new owner would.
        """
        partition = producer.partition
        if self.owned.producers.get(partition) is not producer:
            return  # already lost, or taken again since
        del self.owned.producers[partition]
        self.owned.partitions.pop(partition, None)
        self.owned.committed.pop(partition, None)
        self.owned.metrics.record_partition_lost(failure.fenced)
        delay = self.owned.settings.session_timeout_seconds if failure.fenced else RETAKE_DELAY_S
        log.error(
            "%s: work on it stopped, nothing of its open transaction is visible; taking it "
            "back from the state topic in %g s if the group still assigns it here",
            failure,
            delay,
        )
        tp = TopicPartition(self.owned.settings.events_topic, partition)
        consumer = self.owned.consumer
        if consumer is not None and tp in consumer.assignment():
            consumer.pause(tp)
        task = asyncio.ensure_future(self._retake(producer, delay))
        self.retaking.add(task)
        task.add_done_callback(self.retaking.discard)

    async def _retake(self, lost: PartitionProducer, delay: float) -> None:
        """Take a lost partition back, unless a rebalance has dealt with it meanwhile."""
        await lost.stop()
        partition = lost.partition
        tp = TopicPartition(self.owned.settings.events_topic, partition)
        while True:
            await asyncio.sleep(delay)
            async with self.owned.lock:
                consumer = self.owned.consumer
                if self.owned.fatal is not None or consumer is None:
                    return
                if partition in self.owned.partitions or tp not in consumer.assignment():
                    return  # a rebalance restored it here, or gave it to another worker
                try:
                    await self.take_over([partition])
                except FatalError as exc:
                    log.warning("partition %d not taken back yet: %s", partition, exc)
                    delay = RETAKE_DELAY_S
                    continue
                # a fetch under way may hold its records from before: the loop drops it
                self.takes += 1
                self.since[partition] = self.takes
                applied = self.owned.partitions[partition].applied_offset
                if applied >= 0:
                    consumer.seek(tp, applied + 1)
                else:
                    committed = await consumer.committed(tp)
                    if committed is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, committed)
                consumer.resume(tp)
                log.info("partition %d taken back at offset %d", partition, applied + 1)
                return


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, assignment: Assignment, consumer: AIOKafkaConsumer) -> None:
        self.assignment = assignment
        self.consumer = consumer  # the worker learns of it only once it has started

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.assignment.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        heartbeat_while_assigning(self.consumer)
        await self.assignment.on_assigned(assigned)


class BatchConsumer(mode.Service):
    """The events topic, read in whole fetches by an aiokafka consumer in the app's group.

    Only public aiokafka API: ``getmany``, a ``ConsumerRebalanceListener`` and manual
    commits after each checkpoint.
    """

    def __init__(self, assignment: Assignment, app: faust.App, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.assignment = assignment
        self.app = app

    async def on_start(self) -> None:
        owned = self.assignment.owned
        settings = owned.settings
        # Faust's consumer resumes flow control on assignment; without it, channel queues
        # (the agent's input) hold everything back.
        self.app.flow_control.resume()
        consumer = AIOKafkaConsumer(**client_options(settings), **group_options(settings))
        if settings.group_instance_id:
            log.info(
                "joining consumer group %r as static member %r: a restart with this id "
                "within %g s gets the same partitions back without a rebalance",
                settings.app_id,
                settings.group_instance_id,
                settings.session_timeout_seconds,
            )
        listener = Rebalance(self.assignment, consumer)
        consumer.subscribe([settings.events_topic], listener=listener)
        await consumer.start()
        owned.consumer = consumer

    @mode.Service.task
    async def _consume(self) -> None:
        owned = self.assignment.owned
        try:
            await self.assignment.consume(self)
        except asyncio.CancelledError:
            raise
        except FatalError as exc:
            owned.stop_with(exc)
        except Exception as exc:
            owned.stop_with(FatalError(f"consumer failed: {type(exc).__name__}: {exc}"))

    async def on_stop(self) -> None:
        """A clean stop: commit what is applied, then leave the group (others take over at
        once instead of after the session timeout).

        A static member (``group_instance_id``) does not leave: aiokafka, like the Java
        client, sends no LeaveGroup for one, so its partitions wait for it to come back
        with the same id, up to the session timeout, and only then move to the others.
        """
        assignment = self.assignment
        owned = assignment.owned
        consumer, owned.consumer = owned.consumer, None
        try:
            await asyncio.wait_for(owned.lock.acquire(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("stopping without a final commit: a batch is still in flight")
        else:
            try:
                if owned.fatal is None and consumer is not None:
                    owned.consumer = consumer
                    await assignment.commits.commit(wait=True)
                    owned.consumer = None
            except Exception as exc:
                log.warning("final commit failed (%s); the next start replays from the last", exc)
            finally:
                owned.lock.release()
        for task in list(assignment.retaking):
            task.cancel()
        await assignment.drop(set(owned.producers))
        if consumer is not None:
            await consumer.stop()
