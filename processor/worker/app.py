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
import time
from dataclasses import dataclass, replace
from typing import Any

import faust
from faust.app.base import BootStrategy

from processor.core.creators import CreatorDays
from processor.core.days import Calendar
from processor.core.standings import standings
from processor.kafka_client import client_options, fast_lz4, faust_credentials
from processor.metrics import Metrics
from processor.settings import Settings
from processor.worker.assignment import Assignment, Batch, BatchConsumer
from processor.worker.clients import (
    BATCH_BYTES,
    LINGER_MS,
    MAX_REQUEST_BYTES,
    compression_type,
)
from processor.worker.commits import Commits
from processor.worker.creators import CreatorDaysKeeper
from processor.worker.http import Probes
from processor.worker.lag import LAG_INTERVAL_S
from processor.worker.ownership import Ownership
from processor.worker.progress import Progress
from processor.worker.state_store import DEFAULT_PARTITIONS, StateStore

IDLE_TICK_S = 1.0


class BatchBoot(BootStrategy):
    """Faust's runtime (producer, agents, timers, services, signals) without its consumer,
    conductor and tables: :class:`BatchConsumer` consumes instead."""

    enable_kafka_consumer = False


class LivepulseApp(faust.App):
    """A Faust app that boots with :class:`BatchBoot`."""

    BootStrategy = BatchBoot


@dataclass
class CreatorParts:
    """One fetch of stream parts of one partition, for the creator-days agent."""

    partition: int
    records: list[Any]
    done: asyncio.Future[None]


def creator_days_keeper(settings: Settings) -> CreatorDaysKeeper:
    """The creator-days agent's consumer and state, from the settings."""
    return CreatorDaysKeeper(
        client_options(settings),
        settings.creator_parts_topic,
        settings.creators_topic,
        f"{settings.app_id}.creators",
        Calendar(settings.time_zone),
        lambda: CreatorDays(
            settings.time_zone,
            settings.grace_seconds * 1000,
            settings.usd_per_coin,
            settings.top_users,
        ),
        settings.commit_interval,
    )


class LivepulseWorker:
    """The worker, in parts that each do one thing:

    - ``owned`` (:mod:`~processor.worker.ownership`): the partitions it owns, their
      producers, the offsets it committed, the one lock, and how it stops;
    - ``commits`` (:mod:`~processor.worker.commits`): publishing, checkpoints and commits;
    - ``assignment`` (:mod:`~processor.worker.assignment`): the fetch loop, rebalances,
      restores, partitions lost and taken back;
    - ``progress`` (:mod:`~processor.worker.progress`): readiness, idle decay on caught-up
      partitions, consumer lag.
    """

    def __init__(
        self, settings: Settings, metrics: Metrics, app: faust.App, parts_partitions: int = 0
    ) -> None:
        self.owned = Ownership(settings, metrics)
        # the creator-parts topic has the events topic's partitions (StateStore makes it so)
        self.owned.routes = replace(self.owned.routes, parts_partitions=parts_partitions)
        self.commits = Commits(self.owned, app)
        batches: faust.ChannelT[Batch] = app.channel(maxsize=1)
        self.assignment = Assignment(self.owned, self.commits, StateStore(settings), batches)
        self.progress = Progress(self.owned, self.assignment, self.commits)

    async def apply(self, batch: Batch) -> None:
        """In the agent: apply one fetch, publish what it caused, record the metrics."""
        applied = batch.state.apply(batch.records, int(time.time() * 1000))
        await self.commits.publish(batch.state.partition, applied)


def create_app(
    settings: Settings,
    metrics: Metrics,
    probes: Probes | None = None,
    partitions: int = 0,
) -> faust.App:
    """Build the Faust app with its agents; nothing connects until the worker starts.
    ``probes``, if given, learn the worker's event loop and readiness; ``partitions`` is
    the events topic's partition count (0: unknown, creator parts partitioned by key)."""
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
    worker = LivepulseWorker(settings, metrics, app, partitions)

    @app.agent(worker.assignment.batches)
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

    consumer = BatchConsumer(worker.assignment, app, loop=app.loop, beacon=app.beacon)

    @app.task  # type: ignore[untyped-decorator]
    async def start_consumer() -> None:
        await app.add_runtime_dependency(consumer)

    if probes is not None:
        probes.readiness = worker.progress.readiness

        @app.task  # type: ignore[untyped-decorator]
        async def answer_probes() -> None:
            probes.loop = asyncio.get_running_loop()

    keeper = creator_days_keeper(settings)
    parts: faust.ChannelT[CreatorParts] = app.channel(maxsize=1)

    @app.agent(parts)
    async def keep_creator_days(stream: faust.StreamT[CreatorParts]) -> None:
        """Keeps the creator days: applies each fetch of stream parts it is handed."""
        async for handed in stream:
            keeper.take_all(handed.partition, handed.records)
            handed.done.set_result(None)

    async def hand(partition: int, records: list[Any]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await parts.put(CreatorParts(partition, records, done))  # type: ignore[arg-type]
        await done

    keeper.hand = hand

    @app.task  # type: ignore[untyped-decorator]
    async def fetch_creator_parts() -> None:
        await keeper.run(asyncio.Event())  # until the app stops (cancelled)

    @app.timer(interval=IDLE_TICK_S)  # type: ignore[untyped-decorator]
    async def idle_tick() -> None:
        await worker.progress.tick()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def refresh_gauges() -> None:
        engines = [state.engine for state in worker.owned.partitions.values()]
        metrics.refresh(standings(engines, metrics.top_k))
        metrics.set_top_creators(*keeper.top_creators(metrics.top_k))

    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        await worker.progress.refresh_consumer_lag()

    app.livepulse_worker = worker  # type: ignore[attr-defined]
    app.creator_days = keeper  # type: ignore[attr-defined]
    return app
