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
from aiokafka.errors import CommitFailedError, KafkaError
from faust.app.base import BootStrategy

from processor.core.engine import EngineConfig
from processor.core.snapshot import SnapshotError
from processor.kafka_client import client_options, faust_credentials
from processor.metrics import LAG_INTERVAL_S, LAG_TIMEOUT_S, Metrics, consumer_lag
from processor.records import InputRecord, OutputRecord
from processor.settings import Settings
from processor.worker.http import Probes, Status
from processor.worker.partitions import Applied, PartitionState, Routes
from processor.worker.state_store import StateStore

log = logging.getLogger("livepulse.worker")

IDLE_TICK_S = 1.0
FETCH_TIMEOUT_MS = 100  # how long one getmany waits for records; also bounds commit delay
MAX_BATCH_RECORDS = 4_000  # records per getmany, over all partitions
STOP_TIMEOUT_S = 10.0  # how long a stop waits for the batch in flight before committing
# streams whose checkpoint records are encoded in one step between two fetches (about
# 12 ms): a checkpoint of 10,000 changed streams never holds the loop for 120 ms at once
CHECKPOINT_SLICE = 1_000
MAX_HEARTBEAT_INTERVAL_MS = 3_000


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        tier_window_ms=settings.tier_window_seconds * 1000,
        tier_step_ms=settings.tier_step_seconds * 1000,
        tumbling_ms=settings.tumbling_window_seconds * 1000,
        grace_ms=settings.grace_seconds * 1000,
        moderate=settings.tier_moderate,
        high=settings.tier_high,
        hysteresis=settings.hysteresis,
        session_moderate=settings.session_tier_moderate,
        session_high=settings.session_tier_high,
        inactivity_ms=settings.inactivity_timeout_seconds * 1000,
        usd_per_coin=settings.usd_per_coin,
        top_users=settings.top_users,
        top_users_tracked=settings.top_users_tracked,
        spike_ratio=settings.spike_ratio,
        spike_rearm_ratio=settings.spike_rearm_ratio,
        spike_min_likes=settings.spike_min_likes,
        spike_min_coins=settings.spike_min_coins,
        spike_history_ms=settings.spike_history_seconds * 1000,
        like_goals=settings.like_goal_values,
        coin_goals=settings.coin_goal_values,
    )


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
    }


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
        self.config = engine_config(settings)
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
        self.committed: dict[int, int] = {}  # next offset to read, as committed by us
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
        await self.publish(applied)

    async def publish(self, applied: Applied) -> None:
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
        interval = self.settings.commit_interval_seconds
        next_commit = time.monotonic() + interval
        loop = asyncio.get_running_loop()
        while not service.should_stop:
            fetched = await consumer.getmany(
                timeout_ms=FETCH_TIMEOUT_MS, max_records=MAX_BATCH_RECORDS
            )
            epoch = self.epoch
            async with self.lock:
                if self.fatal is not None:
                    return
                if epoch == self.epoch:  # else a rebalance came between: fetched again later
                    for tp, records in fetched.items():
                        state = self.partitions.get(tp.partition)
                        if state is None:  # not (or no longer) ours
                            continue
                        done: asyncio.Future[None] = loop.create_future()
                        await self.batches.put(Batch(state, records, done))  # type: ignore[arg-type]
                        await done
                if self.checkpointing is not None:
                    self.encode_checkpoint(CHECKPOINT_SLICE)
                elif time.monotonic() >= next_commit:
                    await self.commit()
                    next_commit = time.monotonic() + interval

    # -- checkpoints and commits -------------------------------------------------------

    async def commit(self, wait: bool = False) -> None:
        """Begin a checkpoint of what changed (the consume loop encodes it a slice at a
        time between fetches); once it is encoded, in the background, wait until every
        output sent before it is acknowledged, write it, and once that is acknowledged too,
        commit the input offsets it covers.

        Call with ``lock`` held. Outputs are durable before the checkpoint that covers
        their records is written, and the checkpoint before the offsets are committed: a
        crash at any point loses nothing and leaves nothing half-applied (a checkpoint cut
        short, or encoded over several fetches, is sorted out per stream on restore).
        Processing goes on meanwhile; ``wait`` encodes at once and waits for the whole
        commit (before a rebalance, at a stop). One at a time. A failed send stops the
        worker.
        """
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

    def encode_checkpoint(self, budget: int | None) -> None:
        """Encode up to ``budget`` streams (None: all) of the checkpoint under way; once it
        is all encoded, hand it to the background to be written and committed."""
        taking = self.checkpointing
        if taking is None:
            return
        if budget is not None:
            for state in taking:
                budget -= state.encode_some(budget)
                if budget <= 0:
                    return
        self.checkpointing = None
        checkpoint: list[OutputRecord] = []
        offsets: dict[int, int] = {}
        for state in taking:
            if self.partitions.get(state.partition) is not state:
                continue  # revoked meanwhile (the revocation finished it first)
            records, covered = state.finish_checkpoint()
            checkpoint += records
            if covered >= 0 and covered + 1 > self.committed.get(state.partition, 0):
                offsets[state.partition] = covered + 1
        sent, self.sent = self.sent, []
        if sent or checkpoint or offsets:
            self.committing = asyncio.ensure_future(
                self._durable_then_commit(sent, checkpoint, offsets)
            )

    async def finish_commit(self) -> None:
        """Wait for the commit under way, if any (raises what it raised)."""
        task, self.committing = self.committing, None
        if task is not None:
            await task

    async def _durable_then_commit(
        self, sent: list[Awaitable[Any]], checkpoint: list[OutputRecord], offsets: dict[int, int]
    ) -> None:
        await self._acknowledged(sent)
        self.metrics.record_checkpoint(
            len(checkpoint), sum(len(r.value or b"") for r in checkpoint)
        )
        await self._acknowledged([await self._produce(record) for record in checkpoint])
        consumer = self.consumer
        if not offsets or consumer is None:
            return
        topic = self.settings.events_topic
        try:
            await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance is under way; the checkpoints are ahead of the committed offsets,
            # which is safe: the next owner skips what they hold.
            log.warning("offset commit failed (%s); the next owner replays from the last one", exc)
            return
        self.committed.update(offsets)

    @staticmethod
    async def _acknowledged(futures: list[Awaitable[Any]]) -> None:
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                raise FatalError(f"publishing failed ({result!r}); nothing past it is committed")

    # -- rebalances --------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:
            self.epoch += 1
            mine = {tp.partition for tp in revoked if tp.topic == self.settings.events_topic}
            if self.fatal is None and mine & set(self.partitions):
                await self.commit(wait=True)
            for partition in mine:
                self.partitions.pop(partition, None)
                self.committed.pop(partition, None)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.rebalancing = True
        async with self.lock:
            self.epoch += 1
            mine = {tp.partition for tp in assigned if tp.topic == self.settings.events_topic}
            for partition in set(self.partitions) - mine:
                del self.partitions[partition]
            new = sorted(mine - set(self.partitions))
            if new and self.fatal is None:
                try:
                    await self.restore(new)
                except FatalError as exc:
                    self.stop_with(exc)
            self.assigned = mine
            self.rebalancing = False

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
            state.dirty = state.applied >= 0
            self.partitions[partition] = state
            log.info(
                "partition %d restored at offset %d: %d streams, %d ended, from %d records",
                partition,
                state.applied,
                len(state.engine.streams),
                len(state.engine.ended),
                len(records),
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
                if self.caught_up(partition, state):
                    await self.publish(state.tick(wall_ms))

    def caught_up(self, partition: int, state: PartitionState) -> bool:
        if self.consumer is None:
            return False
        highwater = self.consumer.highwater(TopicPartition(self.settings.events_topic, partition))
        return highwater is not None and state.applied + 1 >= highwater

    async def refresh_consumer_lag(self) -> None:
        """Records of the events topic not yet committed, per assigned partition."""
        consumer = self.consumer
        if consumer is None:
            return
        tps = [tp for tp in consumer.assignment() if tp.topic == self.settings.events_topic]
        if not tps:
            self.metrics.set_consumer_lag({})
            return
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(tps), LAG_TIMEOUT_S)
            earliest = await asyncio.wait_for(consumer.beginning_offsets(tps), LAG_TIMEOUT_S)
        except Exception as exc:  # around start-up, rebalances, broker restarts
            log.debug("consumer lag not read: %s: %s", type(exc).__name__, exc)
            return
        self.metrics.set_consumer_lag(
            consumer_lag(
                {tp.partition: end for tp, end in ends.items()},
                {tp.partition: self.committed.get(tp.partition) for tp in tps},
                {tp.partition: first for tp, first in earliest.items()},
            )
        )


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: LivepulseWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
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
        consumer.subscribe([settings.events_topic], listener=Rebalance(self.worker))
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
        if consumer is not None:
            await consumer.stop()


def create_app(settings: Settings, metrics: Metrics, probes: Probes | None = None) -> faust.App:
    """Build the Faust app with its agent; nothing connects until the worker starts.
    ``probes``, if given, learn the worker's event loop and readiness."""
    app = LivepulseApp(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.broker.split(",")],
        broker_credentials=faust_credentials(settings),
        datadir=settings.data_dir,
        web_enabled=False,  # metrics have their own server; Faust's web exposes tables.
        producer_acks=-1,
        # Checkpoints come in bursts of thousands of records: Faust's 16 KiB batches sent
        # with no linger made a produce request, and a loopback write, of every few dozen.
        # 1 MiB batches and 5 ms of linger: 13k -> 26-35k events/s on the heavy workload.
        producer_max_batch_size=1024 * 1024,
        producer_linger=0.005,
        producer_compression_type=None if settings.compression == "none" else settings.compression,
        # dead letters carry whole input records (up to LIVEPULSE_MAX_RECORD_BYTES)
        producer_max_request_size=16 * 1024 * 1024,
        topic_partitions=4,
        topic_replication_factor=1,
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
        metrics.refresh([state.engine for state in worker.partitions.values()])

    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        await worker.refresh_consumer_lag()

    app.livepulse_worker = worker  # type: ignore[attr-defined]
    return app
