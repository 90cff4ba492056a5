"""The thin Faust layer: whole fetches in, one Faust agent keeping the counts, records out.

Faust's own consumer runs every record through its per-message path (tasks, locks, an
``Event`` and acks per record), which caps a Faust agent near 6,500 records/s here. So the
app boots without it (:class:`BatchBoot`), and :class:`BatchConsumer`, a Faust service,
reads the events topic with aiokafka's public API in the app's consumer group: each
``getmany`` fetch is handed per partition, as one :class:`Batch`, to the ``keep_counts``
agent through an in-memory channel. The agent applies it (decode, engine, outputs: one
synchronous call, :meth:`PartitionState.apply`) and hands the outputs to Faust's producer.

Exactly-once results on at-least-once delivery: every commit interval, and before
partitions are revoked, a checkpoint of the streams that changed is taken; once the
outputs sent before it are acknowledged it goes to the compacted state topic, and once it
is acknowledged the input offsets it covers are committed. A restart restores each
partition from its checkpoint records, resumes at the committed offset and skips what the
records hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError
from faust.app.base import BootStrategy

from processor.core.checkpoint import SnapshotError
from processor.core.engine import EngineConfig
from processor.core.standings import standings
from processor.kafka_client import client_options, fast_lz4, faust_credentials
from processor.metrics import Metrics
from processor.records import InputRecord, OutputRecord
from processor.settings import Settings
from processor.worker.http import Probes, Status
from processor.worker.lag import LAG_INTERVAL_S, read_consumer_lag
from processor.worker.partitions import Applied, PartitionState, Routes
from processor.worker.state_store import DEFAULT_PARTITIONS, StateStore
from processor.worker.transactions import (
    PartitionProducer,
    TransactionFailed,
    start_all,
    stop_all,
)

log = logging.getLogger("livepulse.worker")

IDLE_TICK_S = 1.0
FETCH_TIMEOUT_MS = 100  # how long one getmany waits for records; also bounds commit delay
MAX_BATCH_RECORDS = 4_000  # records per getmany, over all partitions
POSITION_WAIT_S = 0.05  # a consumer position the idle tick asks for is known, or skipped
STOP_TIMEOUT_S = 10.0  # how long a stop waits for the batch in flight before committing
# streams whose checkpoint records are encoded in one step between two fetches (about
# 12 ms): a checkpoint of 10,000 changed streams never holds the loop for 120 ms at once
CHECKPOINT_SLICE = 1_000
MAX_HEARTBEAT_INTERVAL_MS = 3_000
RETAKE_DELAY_S = 1.0  # before taking back a partition whose transaction failed
# How long the broker lets a transaction stay open before aborting it; the next owner of a
# partition aborts its predecessor's open transaction at once anyway.
TRANSACTION_TIMEOUT_MS = 60_000
# How every producer of the worker batches. Checkpoints come in bursts of thousands of
# records: Faust's 16 KiB batches sent with no linger made a produce request, and a
# loopback write, of every few dozen; 1 MiB batches and 5 ms of linger took the heavy
# workload from 13k to 26-35k events/s.
BATCH_BYTES = 1024 * 1024
LINGER_MS = 5
# dead letters carry whole input records (up to LIVEPULSE_MAX_RECORD_BYTES)
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def group_options(settings: Settings) -> dict[str, Any]:
    """How the events consumer takes part in the app's consumer group.

    With ``group_instance_id`` it is a static member (KIP-345): the broker keeps its
    partitions for it while it is away, up to the session timeout, and a process that
    joins with the same id takes them over at once, in the same generation, without a
    rebalance of the other members. It is still told its assignment (the rebalance
    listener's ``on_partitions_assigned``), so it restores them from the state topic
    like any new owner.
    """
    session_timeout_ms = int(settings.session_timeout_seconds * 1000)
    # A member learns of a rebalance from its next heartbeat, so a join waits up to one
    # interval: at most 3 s (Kafka's default), however long the session.
    heartbeat_interval_ms = min(session_timeout_ms // 4, MAX_HEARTBEAT_INTERVAL_MS)
    return {
        "group_id": settings.app_id,
        "group_instance_id": settings.group_instance_id or None,
        "client_id": f"{settings.app_id}-events",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": heartbeat_interval_ms,
        # events written in transactions upstream count once they are committed
        "isolation_level": "read_committed",
    }


def compression_type(settings: Settings) -> str | None:
    """``compression`` as the clients name it (None: uncompressed)."""
    return None if settings.compression == "none" else settings.compression


def producer_options(settings: Settings, partition: int) -> dict[str, Any]:
    """How the transactional producer of one input partition sends."""
    return {
        **client_options(settings),
        "client_id": f"{settings.app_id}-p{partition}",
        "max_batch_size": BATCH_BYTES,
        "linger_ms": LINGER_MS,
        "compression_type": compression_type(settings),
        "max_request_size": MAX_REQUEST_BYTES,
    }


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


class BatchBoot(BootStrategy):
    """Faust's runtime (producer, agents, timers, services, signals) without its consumer,
    conductor and tables: :class:`BatchConsumer` consumes instead."""

    enable_kafka_consumer = False


class LivepulseApp(faust.App):
    """A Faust app that boots with :class:`BatchBoot`."""

    BootStrategy = BatchBoot


class FatalError(RuntimeError):
    """The worker cannot go on; the message says why and what to do."""


@dataclass(slots=True)
class Batch:
    """One fetch of one partition, on its way to the agent; ``done`` resolves once applied
    and handed to the producer."""

    state: PartitionState
    records: Sequence[InputRecord]
    done: asyncio.Future[None]


class LivepulseWorker:
    """The worker's state and behaviour, outside Faust's decorators so it can be read.

    ``lock`` serialises the three things that must not interleave: applying a fetch,
    checkpoint-and-commit, and a rebalance (which checkpoints, commits, drops revoked
    partitions and restores assigned ones).
    """

    def __init__(self, settings: Settings, metrics: Metrics, app: faust.App) -> None:
        self.settings = settings
        self.metrics = metrics
        self.app = app
        self.config = EngineConfig.from_settings(settings)
        if not self.config.spikes_possible:
            log.warning(
                "no spike alerts: LIVEPULSE_SPIKE_HISTORY_SECONDS (%d) is more than "
                "LIVEPULSE_TIER_WINDOW_SECONDS minus LIVEPULSE_TUMBLING_WINDOW_SECONDS (%d)",
                settings.spike_history_seconds,
                settings.tier_window_seconds - settings.tumbling_window_seconds,
            )
        self.routes = Routes.from_settings(settings)
        self.store = StateStore(settings)
        self.partitions: dict[int, PartitionState] = {}
        self.exactly_once = settings.exactly_once
        # the transactional producer of each partition in ``partitions``
        self.producers: dict[int, PartitionProducer] = {}
        self.takes = 0  # counts partitions taken back after a failed transaction
        self.since: dict[int, int] = {}  # partition -> ``takes`` when it was last taken
        # partitions of the fetch in hand: getmany has moved the consumer's positions past
        # its records before they are applied, so those positions alone do not say caught up
        self.unapplied: frozenset[int] = frozenset()
        self.committed: dict[int, int] = {}  # next offset to read, as committed by us
        self.retaking: set[asyncio.Future[None]] = set()  # lost partitions to take back
        self.sent: list[Awaitable[Any]] = []  # producer futures since the last checkpoint
        self.committing: asyncio.Future[None] | None = None  # the commit under way
        self.checkpointing: list[PartitionState] | None = None  # being encoded
        self.lock = asyncio.Lock()
        self.epoch = 0  # bumped by every rebalance: a fetch from before one is dropped
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned: set[int] | None = None  # None until the group first assigns
        self.rebalancing = False
        self.fatal: FatalError | None = None
        self.on_fatal: Any = None  # set by the CLI: stops the Faust worker
        # the keep_counts agent's input: one fetch at a time, each awaited until applied
        self.batches: faust.ChannelT[Batch] = app.channel(maxsize=1)

    # -- the batch path ----------------------------------------------------------------

    async def apply(self, batch: Batch) -> None:
        """In the agent: apply one fetch, publish what it caused, record the metrics."""
        applied = batch.state.apply(batch.records, int(time.time() * 1000))
        await self.publish(batch.state.partition, applied)

    async def publish(self, partition: int, applied: Applied) -> None:
        """Send what one partition's records (or tick) caused: with ``exactly_once`` into
        the partition's open transaction, else at once."""
        if self.exactly_once:
            producer = self.producers.get(partition)
            if producer is None:
                return  # lost meanwhile: its next owner applies these records again
            try:
                await producer.send(applied.records)
            except TransactionFailed as failure:
                self.lose(producer, failure)
                return
        else:
            for record in applied.records:
                await self.send(record)
        self.metrics.record_applied(applied, time.time())
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

    async def consume(self, service: mode.Service) -> None:
        """Fetch, hand each partition's records to the agent, commit every interval."""
        consumer = self.consumer
        assert consumer is not None
        interval = self.settings.commit_interval
        next_commit = time.monotonic() + interval
        loop = asyncio.get_running_loop()
        while not service.should_stop:
            takes = self.takes
            fetched = await consumer.getmany(
                timeout_ms=FETCH_TIMEOUT_MS, max_records=MAX_BATCH_RECORDS
            )
            self.unapplied = frozenset(tp.partition for tp in fetched)  # before any await
            epoch = self.epoch
            async with self.lock:
                if self.fatal is not None:
                    return
                if epoch == self.epoch:  # else a rebalance came between: fetched again later
                    for tp, records in fetched.items():
                        state = self.partitions.get(tp.partition)
                        if state is None or self.since.get(tp.partition, 0) > takes:
                            continue  # not (or no longer) ours, or fetched before retaken
                        done: asyncio.Future[None] = loop.create_future()
                        await self.batches.put(Batch(state, records, done))  # type: ignore[arg-type]
                        await done
                self.unapplied = frozenset()
                if self.checkpointing is not None:
                    self.encode_checkpoint(CHECKPOINT_SLICE)
                elif time.monotonic() >= next_commit:
                    await self.commit()
                    next_commit = time.monotonic() + interval

    # -- checkpoints and commits -------------------------------------------------------

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
            self.checkpointing = [s for s in self.partitions.values() if s.dirty]
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
        for partition, state in self.partitions.items():
            producer = self.producers[partition]
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
            if self.partitions.get(state.partition) is not state:
                continue  # revoked or lost meanwhile (the revocation finished it first)
            records, covered = state.finish_checkpoint()
            offset = None
            if covered >= 0 and covered + 1 > self.committed.get(state.partition, 0):
                offset = covered + 1
            if records or offset is not None:
                batch.append((self.producers[state.partition], records, offset))
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
                self.lose(producer, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                committed += 1
                written += len(records)
                size += sum(len(r.value or b"") for r in records)
                if offset is not None and self.producers.get(producer.partition) is producer:
                    self.committed[producer.partition] = offset
        self.metrics.record_transactions(committed, failed)
        self.metrics.record_checkpoint(written, size)

    @staticmethod
    async def _acknowledged(futures: list[Awaitable[Any]]) -> None:
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                raise FatalError(f"publishing failed ({result!r}); nothing past it is committed")

    # -- partitions lost and taken back ------------------------------------------------

    def lose(self, producer: PartitionProducer, failure: TransactionFailed) -> None:
        """Stop all work on a partition whose transaction failed, at once: its state is
        dropped (nothing of the open transaction is visible), its input paused.

        Fenced, another worker owns it now: this one was expelled from the group and will
        hear so from the group; it takes the partition back after a session timeout only
        if the group still assigns it here. Otherwise (the broker went away, a timeout):
        it is taken back from the state topic at once, as a new owner would.
        """
        partition = producer.partition
        if self.producers.get(partition) is not producer:
            return  # already lost, or taken again since
        del self.producers[partition]
        self.partitions.pop(partition, None)
        self.committed.pop(partition, None)
        self.metrics.record_partition_lost(failure.fenced)
        delay = self.settings.session_timeout_seconds if failure.fenced else RETAKE_DELAY_S
        log.error(
            "%s: work on it stopped, nothing of its open transaction is visible; taking it "
            "back from the state topic in %g s if the group still assigns it here",
            failure,
            delay,
        )
        tp = TopicPartition(self.settings.events_topic, partition)
        consumer = self.consumer
        if consumer is not None and tp in consumer.assignment():
            consumer.pause(tp)
        task = asyncio.ensure_future(self._retake(producer, delay))
        self.retaking.add(task)
        task.add_done_callback(self.retaking.discard)

    async def _retake(self, lost: PartitionProducer, delay: float) -> None:
        """Take a lost partition back, unless a rebalance has dealt with it meanwhile."""
        await lost.stop()
        partition = lost.partition
        tp = TopicPartition(self.settings.events_topic, partition)
        while True:
            await asyncio.sleep(delay)
            async with self.lock:
                consumer = self.consumer
                if self.fatal is not None or consumer is None:
                    return
                if partition in self.partitions or tp not in consumer.assignment():
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
                applied = self.partitions[partition].applied_offset
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

    def make_producer(self, partition: int) -> PartitionProducer:
        """The (not yet started) transactional producer of one input partition."""
        return PartitionProducer.create(
            partition,
            producer_options(self.settings, partition),
            self.settings.events_topic,
            self.settings.app_id,
            TRANSACTION_TIMEOUT_MS,
        )

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
                f"not authorized to use transactional ids {self.settings.app_id!r}-... "
                f"({exc.cause}): grant Write and Describe on TransactionalId prefix "
                f"{self.settings.app_id!r} in the cluster's ACLs"
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
            self.producers[producer.partition] = producer

    # -- rebalances --------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:
            self.epoch += 1
            mine = {tp.partition for tp in revoked if tp.topic == self.settings.events_topic}
            if self.fatal is None and mine & set(self.partitions):
                await self.commit(wait=True)
            await self.drop(mine)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:
            self.epoch += 1
            mine = {tp.partition for tp in assigned if tp.topic == self.settings.events_topic}
            await self.drop(set(self.partitions) - mine)
            new = sorted(mine - set(self.partitions))
            if new and self.fatal is None:
                try:
                    await self.take_over(new)
                except FatalError as exc:
                    self.stop_with(exc)
            self.assigned = mine
            self.rebalancing = False

    async def drop(self, partitions: set[int]) -> None:
        """Forget partitions that are no longer ours, and close their producers."""
        producers = [self.producers.pop(p) for p in partitions if p in self.producers]
        for partition in partitions:
            self.partitions.pop(partition, None)
            self.committed.pop(partition, None)
        await stop_all(producers)

    def readiness(self) -> Status:
        """What ``/readyz`` answers: ready once connected, in the group, and every
        partition assigned here is restored. A member with no partitions (more replicas
        than partitions) is ready: it is a standby that takes over in a rebalance."""
        if self.fatal is not None:
            return Status(False, f"stopped: {self.fatal}")
        if self.consumer is None:
            return Status(False, "not connected to the broker")
        if self.assigned is None:
            return Status(False, f"joining consumer group {self.settings.app_id!r}")
        if self.rebalancing:
            return Status(False, "rebalancing: partitions are being revoked or restored")
        missing = self.assigned - set(self.partitions)
        if missing:
            return Status(False, f"partitions {sorted(missing)} not restored")
        return Status(
            True,
            f"ready: partitions {sorted(self.assigned)} of {self.settings.events_topic!r} "
            "assigned and restored",
        )

    async def restore(self, partitions: list[int]) -> None:
        """Restore partitions from their checkpoint records (one read of the state topic)."""
        started = time.monotonic()
        try:
            found = await self.store.read(partitions)
        except Exception as exc:
            raise FatalError(
                f"cannot read state topic {self.routes.state_topic!r} "
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
                    PartitionState.restore, partition, records, self.config, self.routes, wall_ms
                )
            except SnapshotError as exc:
                raise FatalError(
                    f"state topic {self.routes.state_topic!r} partition {partition}: {exc}. "
                    "Nothing was processed. To rebuild the state from the events, delete the "
                    f"state topic and reset consumer group {self.settings.app_id!r} on "
                    f"{self.settings.events_topic!r} to the earliest offsets; or run the "
                    "livepulse version that wrote it."
                ) from None
            # the previous owner's checkpoint may be ahead of the group's committed offset
            # (its commit failed in the rebalance): commit it at the next commit, or the
            # committed offset of a partition with no new input would stay behind for good
            state.dirty = state.applied_offset >= 0
            self.partitions[partition] = state
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
        self.metrics.record_restore(time.monotonic() - started)

    def stop_with(self, error: FatalError) -> None:
        """Stop the worker: it must not process records it cannot process correctly."""
        self.fatal = error
        log.critical("%s", error)
        if self.on_fatal is not None:
            self.on_fatal(error)

    # -- timers ------------------------------------------------------------------------

    async def tick(self) -> None:
        """Idle decay: stream time follows the wall clock for streams that get nothing.

        Only on partitions that are caught up: while a partition has a backlog, a silent
        stream's events may be in it, and advancing its time would make them late.
        """
        async with self.lock:
            if self.checkpointing is not None:
                # a checkpoint under way records the idle time as it began: a tick now
                # would be lost from it (the next tick catches up)
                return
            wall_ms = int(time.time() * 1000)
            for partition, state in list(self.partitions.items()):
                if await self.caught_up(partition, state):
                    await self.publish(partition, state.tick(wall_ms))

    async def caught_up(self, partition: int, state: PartitionState) -> bool:
        """Whether every record of the partition that can be read has been applied. Call
        with ``lock`` held: the fetch loop applies each fetch before it lets go of it."""
        consumer = self.consumer
        if consumer is None or partition in self.unapplied:
            return False
        tp = TopicPartition(self.settings.events_topic, partition)
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        if state.applied_offset + 1 >= highwater:
            return True
        # Past the last record there may be transaction markers (an exactly-once producer
        # upstream writes one per partition and commit) or an open transaction's records
        # (not readable yet, read_committed): caught up once the consumer has read up to
        # the last stable offset. Its position is known here; never wait for one.
        stable = consumer.last_stable_offset(tp)
        if stable is None or stable < 0:
            return False
        try:
            position = await asyncio.wait_for(consumer.position(tp), POSITION_WAIT_S)
        except (TimeoutError, IllegalStateError):
            return False
        return bool(position >= stable)

    async def refresh_consumer_lag(self) -> None:
        """Records of the events topic not yet committed, per assigned partition."""
        consumer = self.consumer
        if consumer is None:
            return
        lag = await read_consumer_lag(consumer, self.settings.events_topic, self.committed)
        if lag is not None:
            self.metrics.set_consumer_lag(lag)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: LivepulseWorker, consumer: AIOKafkaConsumer) -> None:
        self.worker = worker
        self.consumer = consumer  # the worker learns of it only once it has started

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        heartbeat_while_assigning(self.consumer)
        await self.worker.on_assigned(assigned)


class BatchConsumer(mode.Service):
    """The events topic, read in whole fetches by an aiokafka consumer in the app's group.

    Only public aiokafka API: ``getmany``, a ``ConsumerRebalanceListener`` and manual
    commits after each checkpoint.
    """

    def __init__(self, worker: LivepulseWorker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker = worker

    async def on_start(self) -> None:
        settings = self.worker.settings
        # Faust's consumer resumes flow control on assignment; without it, channel queues
        # (the agent's input) hold everything back.
        self.worker.app.flow_control.resume()
        consumer = AIOKafkaConsumer(**client_options(settings), **group_options(settings))
        if settings.group_instance_id:
            log.info(
                "joining consumer group %r as static member %r: a restart with this id "
                "within %g s gets the same partitions back without a rebalance",
                settings.app_id,
                settings.group_instance_id,
                settings.session_timeout_seconds,
            )
        consumer.subscribe([settings.events_topic], listener=Rebalance(self.worker, consumer))
        await consumer.start()
        self.worker.consumer = consumer

    @mode.Service.task
    async def _consume(self) -> None:
        try:
            await self.worker.consume(self)
        except asyncio.CancelledError:
            raise
        except FatalError as exc:
            self.worker.stop_with(exc)
        except Exception as exc:
            self.worker.stop_with(FatalError(f"consumer failed: {type(exc).__name__}: {exc}"))

    async def on_stop(self) -> None:
        """A clean stop: commit what is applied, then leave the group (others take over at
        once instead of after the session timeout).

        A static member (``group_instance_id``) does not leave: aiokafka, like the Java
        client, sends no LeaveGroup for one, so its partitions wait for it to come back
        with the same id, up to the session timeout, and only then move to the others.
        """
        worker = self.worker
        consumer, worker.consumer = worker.consumer, None
        try:
            await asyncio.wait_for(worker.lock.acquire(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("stopping without a final commit: a batch is still in flight")
        else:
            try:
                if worker.fatal is None and consumer is not None:
                    worker.consumer = consumer
                    await worker.commit(wait=True)
                    worker.consumer = None
            except Exception as exc:
                log.warning("final commit failed (%s); the next start replays from the last", exc)
            finally:
                worker.lock.release()
        for task in list(worker.retaking):
            task.cancel()
        await worker.drop(set(worker.producers))
        if consumer is not None:
            await consumer.stop()


def create_app(settings: Settings, metrics: Metrics, probes: Probes | None = None) -> faust.App:
    """Build the Faust app with its agent; nothing connects until the worker starts.
    ``probes``, if given, learn the worker's event loop and readiness."""
    if settings.compression == "lz4":
        fast_lz4()
    app = LivepulseApp(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.broker.split(",")],
        broker_credentials=faust_credentials(settings),
        datadir=settings.data_dir,
        web_enabled=False,  # metrics have their own server; Faust's web exposes tables.
        producer_acks=-1,
        producer_max_batch_size=BATCH_BYTES,
        producer_linger=LINGER_MS / 1000,
        producer_compression_type=compression_type(settings),
        producer_max_request_size=MAX_REQUEST_BYTES,
        topic_partitions=DEFAULT_PARTITIONS,
        topic_replication_factor=settings.replication_factor,
    )
    worker = LivepulseWorker(settings, metrics, app)

    @app.agent(worker.batches)
    async def keep_counts(stream: faust.StreamT[Batch]) -> None:
        """Keeps the windowed counts: applies each fetch it is handed, in order."""
        async for batch in stream:
            try:
                await worker.apply(batch)
            except Exception as exc:
                if not batch.done.done():
                    batch.done.set_exception(exc)
            else:
                if not batch.done.done():
                    batch.done.set_result(None)

    consumer = BatchConsumer(worker, loop=app.loop, beacon=app.beacon)

    @app.task  # type: ignore[untyped-decorator]
    async def start_consumer() -> None:
        await app.add_runtime_dependency(consumer)

    if probes is not None:
        probes.readiness = worker.readiness

        @app.task  # type: ignore[untyped-decorator]
        async def answer_probes() -> None:
            probes.loop = asyncio.get_running_loop()

    @app.timer(interval=IDLE_TICK_S)  # type: ignore[untyped-decorator]
    async def idle_tick() -> None:
        await worker.tick()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def refresh_gauges() -> None:
        engines = [state.engine for state in worker.partitions.values()]
        metrics.refresh(standings(engines, metrics.top_k))

    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        await worker.refresh_consumer_lag()

    app.livepulse_worker = worker  # type: ignore[attr-defined]
    return app
