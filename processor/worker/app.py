"""The thin Faust layer: wires one pure engine per input partition to Kafka topics.

Records are consumed raw (bytes) so a malformed record reaches the dead-letter topic
byte-for-byte. State is checkpointed to a compacted state topic in the same breath as
Faust commits input offsets (see :class:`CheckpointSensor`), which makes results
effectively once on Faust's at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.sensors import Monitor
from faust.types import TP

from processor.contract import InvalidRecord, Reason, decode_event
from processor.core.alerts import Output, WindowClosed
from processor.core.engine import EngineConfig
from processor.metrics import LAG_INTERVAL_S, Metrics
from processor.settings import Settings
from processor.worker.partitions import PartitionState, Pending, Router
from processor.worker.state_store import StateStore

log = logging.getLogger("livepulse.worker")

IDLE_TICK_S = 1.0


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
    )


def dlq_headers(
    invalid: InvalidRecord, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers that tell a dead-letter consumer why and where a record failed."""
    return [
        ("livepulse.reason", invalid.reason.encode()),
        ("livepulse.detail", invalid.detail.encode()),
        ("livepulse.source.topic", topic.encode()),
        ("livepulse.source.partition", str(partition).encode()),
        ("livepulse.source.offset", str(offset).encode()),
    ]


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of undecoded bytes: decoding is ours, so bad records reach the DLQ intact."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


class QuietMonitor(Monitor):
    """Faust's monitor minus its per-event bookkeeping, which feeds only Faust's web
    statistics (disabled here) and costs several calls and clock reads per record."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass


class CheckpointSensor(faust.Sensor):
    """Snapshots every changed partition right before Faust commits input offsets.

    Faust calls ``on_commit_initiated`` synchronously and then picks the offsets to
    commit without yielding to the event loop, so the committed offsets never pass what
    the snapshots cover; and it flushes the producer (snapshots, alerts) before it
    commits. A restart therefore resumes at or before each snapshot's offset, skips what
    the snapshot already holds, and republishes the snapshot's pending outputs.
    """

    def __init__(self, worker: LivepulseWorker) -> None:
        super().__init__()
        self.worker = worker

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.worker.checkpoint()
        return None


class LivepulseWorker:
    """The app's state and behaviour, outside Faust's decorators so it can be read."""

    def __init__(self, settings: Settings, metrics: Metrics, app: faust.App) -> None:
        self.settings = settings
        self.metrics = metrics
        self.app = app
        self.config = engine_config(settings)
        self.router = Router(settings)
        self.partitions: dict[int, PartitionState] = {}
        self.topics: dict[str, faust.TopicT] = {
            name: raw_topic(app, name)
            for name in (settings.alerts_topic, settings.windows_topic, settings.dlq_topic)
        }
        self.state_topic = raw_topic(app, StateStore.topic_name(settings))
        self.store = StateStore(settings)
        self.restoring: dict[int, asyncio.Future[PartitionState]] = {}

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(self) -> None:
        for partition, state in self.partitions.items():
            if state.dirty:
                self.state_topic.send_soon(
                    key=str(partition).encode(), value=state.checkpoint(), partition=partition
                )

    async def on_assigned(self, assigned: set[Any]) -> None:
        """Restore newly assigned partitions; forget the ones now elsewhere."""
        mine = {tp.partition for tp in assigned if tp.topic == self.settings.events_topic}
        for partition in set(self.partitions) - mine:
            del self.partitions[partition]
        for state in self.partitions.values():
            # Faust seeks back to the committed offset: skip what is already applied.
            state.replay_until = state.applied
        new = sorted(p for p in mine if p not in self.partitions and p not in self.restoring)
        if new:  # one read of the state topic for all of them
            snapshots = asyncio.ensure_future(self.store.latest(new))
            for partition in new:
                self._start_restore(partition, snapshots)
        for partition in sorted(mine):
            await self.restored(partition)

    async def restored(self, partition: int) -> PartitionState:
        """The partition's state, restored from its snapshot on first use.

        Faust may resume fetching before the assignment signal reaches us, so the first
        record of a partition can be what triggers the restore; either way it runs once.
        """
        state = self.partitions.get(partition)
        if state is not None:
            return state
        task = self.restoring.get(partition) or self._start_restore(partition, None)
        return await asyncio.shield(task)

    def _start_restore(
        self, partition: int, snapshots: asyncio.Future[dict[int, bytes]] | None
    ) -> asyncio.Future[PartitionState]:
        task = asyncio.ensure_future(self._restore(partition, snapshots))
        self.restoring[partition] = task
        task.add_done_callback(lambda _: self.restoring.pop(partition, None))
        return task

    async def _restore(
        self, partition: int, snapshots: asyncio.Future[dict[int, bytes]] | None
    ) -> PartitionState:
        found = await (snapshots if snapshots is not None else self.store.latest([partition]))
        data = found.get(partition)
        state, pending = PartitionState.restore(data, self.config, int(time.time() * 1000))
        state.pending.extend(pending)
        state.dirty = bool(pending)
        self.partitions[partition] = state
        log.info(
            "partition %d restored at offset %d with %d streams, %d outputs to republish",
            partition,
            state.applied,
            len(state.engine.streams),
            len(pending),
        )
        for record in pending:
            await self.publish(record)
        return state

    # -- processing --------------------------------------------------------------------

    async def publish(self, record: Pending) -> None:
        topic, key, value, headers = record
        await self.topics[topic].send(
            key=None if key is None else key.encode(),
            value=value.encode(),
            headers=[(k, v.encode()) for k, v in headers] if headers else None,
        )

    async def dead_letter(
        self, value: bytes | None, key: bytes | None, invalid: InvalidRecord, message: Any
    ) -> None:
        self.metrics.record_invalid(invalid.reason)
        await self.topics[self.settings.dlq_topic].send(
            key=key,
            value=value,
            headers=dlq_headers(invalid, message.topic, message.partition, message.offset),
        )

    async def handle(self, message: Any) -> None:
        """One input record, in partition order."""
        key: bytes | None = message.key
        value: bytes | None = message.value
        state = self.partitions.get(message.partition) or await self.restored(message.partition)
        decoded = decode_event(value, key, self.settings.max_record_bytes)
        if message.offset <= state.replay_until:
            # Applied before the restart; only dead letters, being a pure function of
            # the record, are sent again (at least once), the rest is in the snapshot.
            if isinstance(decoded, InvalidRecord):
                await self.dead_letter(value, key, decoded, message)
            return
        state.applied = message.offset
        state.dirty = True
        if isinstance(decoded, InvalidRecord):
            await self.dead_letter(value, key, decoded, message)
            return
        now = time.time()
        outcome = state.engine.process(decoded, int(now * 1000))
        if outcome.late is not None:
            detail = (
                "older than stream time minus the grace period"
                if outcome.late == Reason.LATE
                else "the stream has already ended"
            )
            invalid = InvalidRecord(outcome.late, detail)
            headers = dlq_headers(invalid, message.topic, message.partition, message.offset)
            record: Pending = (
                self.settings.dlq_topic,
                None if key is None else key.decode(),
                value.decode() if value else "",
                [(k, v.decode()) for k, v in headers],
            )
            # Lateness depends on state, so this dead letter is checkpointed like an alert.
            state.pending.append(record)
            self.metrics.record_invalid(invalid.reason)
            await self.publish(record)
            return
        self.metrics.record_event(decoded["type"], outcome)
        if outcome.outputs:
            await self.emit(state, outcome.outputs, now - message.timestamp)

    async def emit(
        self,
        state: PartitionState,
        outputs: tuple[Output, ...] | list[Output],
        latency_s: float | None,
    ) -> None:
        emitted_at = int(time.time() * 1000)
        records = [self.router.route(output, emitted_at) for output in outputs]
        state.pending.extend(records)  # before any await: a checkpoint may run meanwhile
        for output, record in zip(outputs, records, strict=True):
            await self.publish(record)
            if isinstance(output, WindowClosed):
                self.metrics.record_window()
                continue
            self.metrics.record_alert(output, latency_s if latency_s is not None else 0.0)
            log.info("alert %s %s %s", output.type, output.stream_id, output.alert_id[:12])

    async def tick(self) -> None:
        """Idle decay: stream time follows the wall clock for streams that get nothing.

        Only on partitions that are caught up: while a partition has a backlog, a silent
        stream's events may be in it, and advancing its time would make them late.
        """
        wall_ms = int(time.time() * 1000)
        for partition, state in list(self.partitions.items()):
            if not self.caught_up(partition, state):
                continue
            outputs = state.engine.tick(wall_ms)
            if outputs:
                state.dirty = True
                await self.emit(state, outputs, None)

    def caught_up(self, partition: int, state: PartitionState) -> bool:
        try:
            highwater = self.app.consumer.highwater(TP(self.settings.events_topic, partition))
        except Exception:  # consumer not started or partition not fetched yet
            return False
        return highwater is not None and state.applied + 1 >= highwater


def create_app(settings: Settings, metrics: Metrics) -> faust.App:
    """Build the Faust app with its agent; nothing connects until the worker starts."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.broker.split(",")],
        datadir=settings.data_dir,
        web_enabled=False,  # metrics have their own server; Faust's web exposes tables.
        monitor=QuietMonitor(),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=16 * 1024 * 1024,  # partition snapshots can be large
        broker_commit_interval=settings.commit_interval_seconds,
        # a worker that dies (kill -9) holds its partitions until this expires
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 4,
        topic_partitions=4,
        topic_replication_factor=1,
    )
    worker = LivepulseWorker(settings, metrics, app)
    app.sensors.add(CheckpointSensor(worker))
    events_topic = raw_topic(app, settings.events_topic)

    @app.agent(events_topic)
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            message = record.message
            try:
                await worker.handle(message)
            except Exception as exc:  # one bad record must never stop the worker
                log.exception(
                    "processing failed at %s[%d]@%d",
                    message.topic,
                    message.partition,
                    message.offset,
                )
                failure = InvalidRecord(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                await worker.dead_letter(message.value, message.key, failure, message)

    @app.on_partitions_assigned.connect
    async def restore(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await worker.on_assigned(args[0])

    @app.timer(interval=IDLE_TICK_S)  # type: ignore[untyped-decorator]
    async def idle_tick() -> None:
        await worker.tick()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def refresh_gauges() -> None:
        metrics.refresh([state.engine for state in worker.partitions.values()])

    # Its own timer: offsets are asked through Faust's consumer thread, which answers
    # between fetches (1-3 s), so the engine gauges above are never held up by it.
    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        await metrics.refresh_consumer_lag(app.consumer, settings.events_topic)

    app.livepulse_worker = worker  # type: ignore[attr-defined]
    return app
