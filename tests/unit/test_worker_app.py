"""The Faust layer's decisions that need no broker: boot, restore failures, the monitor."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from processor.metrics import Metrics
from processor.settings import Settings
from processor.worker.app import LivepulseWorker, create_app
from processor.worker.clients import group_options
from processor.worker.transactions import PartitionProducer
from tests.unit.fake_kafka import FakeTransactionalProducer, fake_partition_producer

SETTINGS = Settings(app_id="unit-app", events_topic="ev", processing_guarantee="exactly_once")


def new_worker(settings: Settings = SETTINGS) -> tuple[Any, LivepulseWorker]:
    """A worker whose partitions' transactional producers are fakes (``worker.fakes``)."""
    app = create_app(settings, Metrics(CollectorRegistry()))
    worker: LivepulseWorker = app.livepulse_worker
    fakes: dict[int, FakeTransactionalProducer] = {}

    def make_producer(partition: int) -> PartitionProducer:
        producer, fakes[partition] = fake_partition_producer(partition, settings.events_topic)
        return producer

    worker.assignment.make_producer = make_producer  # type: ignore[method-assign]
    worker.fakes = fakes  # type: ignore[attr-defined]
    return app, worker


def test_the_app_boots_without_fausts_per_record_consumer() -> None:
    """Records come from the batch consumer; Faust's consumer, conductor and tables stay
    off (else they would join the same group with another assignor)."""
    app, _ = new_worker()
    services = list(app.boot_strategy.server())
    assert app.producer in services and app.agents in services
    assert not {app.consumer, app.topics, app.tables} & set(services)


@pytest.mark.parametrize(("setting", "codec"), [("lz4", "lz4"), ("zstd", "zstd"), ("none", None)])
def test_the_producer_compresses_as_the_setting_says(setting: str, codec: str | None) -> None:
    app = create_app(replace(SETTINGS, compression=setting), Metrics(CollectorRegistry()))
    assert app.conf.producer_compression_type == codec


def test_the_consumer_is_a_static_member_only_with_a_group_instance_id() -> None:
    dynamic = group_options(SETTINGS)
    static = group_options(Settings(app_id="unit-app", group_instance_id="livepulse-worker-0"))
    assert dynamic["group_instance_id"] is None  # aiokafka's "dynamic membership"
    assert static["group_instance_id"] == "livepulse-worker-0"
    assert {k: v for k, v in static.items() if k != "group_instance_id"} == {
        k: v for k, v in dynamic.items() if k != "group_instance_id"
    }
    assert static["group_id"] == "unit-app"
    assert static["session_timeout_ms"] == 10_000 and static["heartbeat_interval_ms"] == 2_500
    # a long session (static members want one) does not slow every rebalance down
    long_session = group_options(Settings(session_timeout_seconds=90.0))
    assert (long_session["session_timeout_ms"], long_session["heartbeat_interval_ms"]) == (
        90_000,
        3_000,
    )
    # every option is one aiokafka's consumer takes
    assert set(static) <= set(inspect.signature(AIOKafkaConsumer).parameters)


class FakeStore:
    def __init__(self, logs: dict[int, list[tuple[bytes, bytes | None]]]) -> None:
        self.logs = logs

    async def read(self, partitions: list[int]) -> dict[int, list[tuple[bytes, bytes | None]]]:
        return {p: self.logs.get(p, []) for p in partitions}


def test_a_snapshot_that_cannot_be_read_stops_the_worker_naming_topic_and_partition() -> None:
    """It once made every record of the partition a processing_error dead letter."""
    _, worker = new_worker()
    worker.assignment.store = FakeStore({2: [(b"p", b"\xc1 not a checkpoint")]})  # type: ignore[assignment]
    stopped: list[Exception] = []
    worker.owned.on_fatal = stopped.append
    assigned = {TopicPartition("ev", p) for p in range(4)}
    asyncio.run(worker.assignment.on_assigned(assigned))

    assert worker.owned.fatal is not None and stopped == [worker.owned.fatal]
    message = str(worker.owned.fatal)
    assert (
        "state topic 'unit-app.state' partition 2: partition record: not a livepulse checkpoint"
        in message
    )
    assert "reset consumer group 'unit-app'" in message
    assert 2 not in worker.owned.partitions  # nothing of it is ever processed


def test_partitions_restore_from_their_snapshots_on_assignment() -> None:
    _, worker = new_worker()
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]
    asyncio.run(
        worker.assignment.on_assigned({TopicPartition("ev", 1), TopicPartition("other", 0)})
    )
    assert worker.owned.fatal is None
    assert list(worker.owned.partitions) == [1]
    assert worker.owned.partitions[1].applied_offset == -1


def test_the_monitor_tracks_stream_inbound_time() -> None:
    """Faust's stream-idle check reads ``stream_inbound_time``; a monitor that never set it
    made the check report streams idle after 300 s of sustained lag."""
    app, _ = new_worker()
    tp = TopicPartition("ev", 0)

    class Weak:  # the monitor keys streams and their tasks weakly
        pass

    class Stream(Weak):
        task_owner = Weak()

    app.monitor.on_stream_event_in(tp, 5, Stream(), Weak())
    assert tp in app.monitor.stream_inbound_time


def test_a_restored_checkpoint_is_committed_even_with_no_new_input() -> None:
    """The previous owner's checkpoint can be ahead of the group's committed offset (its
    commit failed in the rebalance). The next owner commits it at its next commit: with no
    new input, nothing else would, and the group's offset (and lag) stayed behind for good
    (the two-worker kill test once waited 120 s for it)."""
    from processor.core import checkpoint
    from processor.core.engine import Engine

    _, worker = new_worker()
    engine = Engine(worker.owned.config)
    worker.assignment.store = FakeStore({0: checkpoint.full(engine, 41)})  # type: ignore[assignment]
    asyncio.run(worker.assignment.on_assigned({TopicPartition("ev", 0), TopicPartition("ev", 1)}))
    assert worker.owned.partitions[0].applied_offset == 41 and worker.owned.partitions[0].dirty
    assert not worker.owned.partitions[1].dirty  # nothing restored, nothing to commit

    async def commit() -> None:
        async with worker.owned.lock:
            await worker.commits.commit(wait=True)

    asyncio.run(commit())
    fakes = worker.fakes  # type: ignore[attr-defined]
    # the partition record again (nothing changed) with the offset it covers
    assert [[r.key for r in t.records] for t in fakes[0].committed] == [[b"p"]]
    assert fakes[0].committed[0].offsets == {TopicPartition("ev", 0): 42}
    assert fakes[1].committed == []


def test_a_principal_without_transactional_id_acls_stops_the_worker_naming_them() -> None:
    from aiokafka.errors import TransactionalIdAuthorizationFailed

    _, worker = new_worker()
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]
    made = worker.assignment.make_producer

    def denied(partition: int) -> PartitionProducer:
        producer = made(partition)
        worker.fakes[partition].fail_start = TransactionalIdAuthorizationFailed()  # type: ignore[attr-defined]
        return producer

    worker.assignment.make_producer = denied  # type: ignore[method-assign]
    asyncio.run(worker.assignment.on_assigned({TopicPartition("ev", 0)}))
    assert worker.owned.fatal is not None
    assert "grant Write and Describe on TransactionalId prefix 'unit-app'" in str(
        worker.owned.fatal
    )
    assert worker.owned.partitions == {} and worker.owned.producers == {}


def test_a_fenced_partition_is_dropped_at_once_and_nothing_of_it_committed() -> None:
    """A worker expelled while stalled learns on its next send that a newer owner took
    the partition: it stops applying it, commits nothing of it, and counts the loss."""
    from processor.records import OutputRecord
    from processor.worker.partitions import Applied

    _, worker = new_worker()
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]

    async def run() -> None:
        await worker.assignment.on_assigned({TopicPartition("ev", 0), TopicPartition("ev", 1)})
        out = OutputRecord("alerts", b"s1", b"{}")
        await worker.commits.publish(0, Applied(records=[out]))
        await worker.commits.publish(1, Applied(records=[out]))
        worker.fakes[0].fence()  # type: ignore[attr-defined]
        await worker.commits.publish(0, Applied(records=[out]))
        async with worker.owned.lock:
            await worker.commits.commit(wait=True)
        for task in list(worker.assignment.retaking):
            task.cancel()

    asyncio.run(run())
    fakes = worker.fakes  # type: ignore[attr-defined]
    assert list(worker.owned.partitions) == [1] and list(worker.owned.producers) == [1]
    assert fakes[0].committed == []
    assert [[r.key for r in t.records] for t in fakes[1].committed] == [[b"s1", b"p"]]
    lost = worker.owned.metrics.registry.get_sample_value(
        "livepulse_partitions_lost_total", {"cause": "fenced"}
    )
    assert lost == 1


def test_at_least_once_publishes_at_once_and_commits_only_checkpoints_in_transactions() -> None:
    """Outputs go out through the plain producer as they come; the checkpoint and the
    offsets still commit in the partition's fenced transaction, once those outputs are
    acknowledged."""
    from processor.records import OutputRecord
    from processor.worker.partitions import Applied

    _, worker = new_worker(replace(SETTINGS, processing_guarantee="at_least_once"))
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]
    published: list[bytes | None] = []

    async def produce(record: OutputRecord) -> asyncio.Future[None]:
        published.append(record.key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    worker.commits._produce = produce  # type: ignore[method-assign]

    async def run() -> None:
        await worker.assignment.on_assigned({TopicPartition("ev", 0)})
        state = worker.owned.partitions[0]
        state.applied_offset = 9  # as if records 0-9 were applied
        state.dirty = True
        await worker.commits.publish(0, Applied(records=[OutputRecord("alerts", b"s1", b"{}")]))
        assert published == [b"s1"]  # at once, before any commit
        async with worker.owned.lock:
            await worker.commits.commit(wait=True)

    asyncio.run(run())
    (txn,) = worker.fakes[0].committed  # type: ignore[attr-defined]
    assert [r.key for r in txn.records] == [b"p"]  # the checkpoint only
    assert txn.offsets == {TopicPartition("ev", 0): 10}


def test_a_partition_whose_commit_failed_is_taken_back_from_what_was_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not fenced (say the broker went away): the partition is dropped and paused at once,
    then restored with a new producer (which fences the failed one) and read again from
    the offset its last committed checkpoint covers."""
    from aiokafka.errors import KafkaTimeoutError

    from processor.core import checkpoint
    from processor.core.engine import Engine
    from processor.worker import assignment as assignment_module

    monkeypatch.setattr(assignment_module, "RETAKE_DELAY_S", 0.0)
    _, worker = new_worker()
    worker.assignment.store = FakeStore({0: checkpoint.full(Engine(worker.owned.config), 41)})  # type: ignore[assignment]
    tp = TopicPartition("ev", 0)
    moves: list[tuple[str, int | None]] = []

    class Consumer:
        def assignment(self) -> set[TopicPartition]:
            return {tp}

        def pause(self, *tps: TopicPartition) -> None:
            moves.append(("pause", None))

        def resume(self, *tps: TopicPartition) -> None:
            moves.append(("resume", None))

        def seek(self, partition: TopicPartition, offset: int) -> None:
            moves.append(("seek", offset))

    fakes = worker.fakes  # type: ignore[attr-defined]

    async def run() -> FakeTransactionalProducer:
        worker.owned.consumer = Consumer()  # type: ignore[assignment]
        await worker.assignment.on_assigned({tp})
        failing: FakeTransactionalProducer = fakes[0]
        failing.fail_commit = KafkaTimeoutError()
        async with worker.owned.lock:
            await worker.commits.commit(wait=True)  # the restored checkpoint is committed again
        assert 0 not in worker.owned.partitions and moves == [("pause", None)]
        await asyncio.gather(*worker.assignment.retaking)
        return failing

    failing = asyncio.run(run())
    assert moves == [("pause", None), ("seek", 42), ("resume", None)]
    assert failing.stopped and fakes[0] is not failing and fakes[0].started
    assert worker.owned.partitions[0].applied_offset == 41
    assert (
        worker.assignment.since[0] == worker.assignment.takes == 1
    )  # a fetch from before it is dropped
    lost = worker.owned.metrics.registry.get_sample_value(
        "livepulse_partitions_lost_total", {"cause": "failed"}
    )
    assert lost == 1


class DrainedConsumer:
    """What ``caught_up`` reads of aiokafka's consumer once a ``getmany`` has drained the
    partition's last record (offset 9): its position is past it, applied or not."""

    def __init__(self) -> None:
        self.fetched = asyncio.Event()

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        if self.fetched.is_set():
            await asyncio.Event().wait()  # nothing more
        self.fetched.set()
        return {TopicPartition("ev", 0): [object()]}

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return 10

    async def position(self, tp: TopicPartition) -> int:
        return 10


def test_a_fetched_record_not_yet_applied_keeps_its_partition_from_counting_as_caught_up() -> None:
    """The idle tick can take the lock between a ``getmany`` and the application of what
    it drained. It once counted such a partition caught up (the consumer's position was at
    the last stable offset) and advanced its silent streams' time past the records in hand:
    two fault tests found tier changes at later events than an uninterrupted run's."""
    _, worker = new_worker()
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]
    asyncio.run(worker.assignment.on_assigned({TopicPartition("ev", 0)}))
    state = worker.owned.partitions[0]
    assert state.applied_offset == -1

    class Running:
        should_stop = False

    async def scenario() -> tuple[bool, bool]:
        consumer = DrainedConsumer()
        worker.owned.consumer = consumer  # type: ignore[assignment]
        async with worker.owned.lock:  # as the tick holds it
            fetching = asyncio.create_task(worker.assignment.consume(Running()))  # type: ignore[arg-type]
            await consumer.fetched.wait()
            await asyncio.sleep(0)  # the loop now waits for the lock, records in hand
            in_hand = await worker.progress.caught_up(0, state)
            fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
        worker.assignment.unapplied = frozenset()
        # with nothing in hand, a position at the last stable offset is caught up (the
        # offsets past the last applied record are transaction markers)
        return in_hand, await worker.progress.caught_up(0, state)

    assert asyncio.run(scenario()) == (False, True)
