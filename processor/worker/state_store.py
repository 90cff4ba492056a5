"""The compacted state topic: each input partition's checkpoint records, one per stream."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError

from processor.kafka_client import client_options
from processor.settings import Settings

log = logging.getLogger("livepulse.state")

DEFAULT_PARTITIONS = 4
RESTORE_FETCH_BYTES = 16 * 1024 * 1024
READ_TIMEOUT_S = 30.0
# The state topic is compacted; small segments let the cleaner keep it near the live
# state (the active segment is never cleaned), so a restore reads about what is held.
STATE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(16 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.2",
    "delete.retention.ms": str(60 * 60 * 1000),
}


class StartupError(RuntimeError):
    """The worker cannot start; the message says why and what to do."""


class StateStore:
    """Snapshot partition ``p`` of the events topic lives in partition ``p`` here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.state_topic

    async def ensure_topics(self) -> int:
        """Create missing topics; returns the events topic's partition count.

        The state topic must have as many partitions as the events topic: the checkpoint
        records of input partition ``p`` live in its partition ``p``.
        """
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        try:
            await admin.start()
        except Exception as exc:
            raise StartupError(f"cannot reach broker {self.settings.broker}: {exc}") from None
        try:
            plain = (
                self.settings.events_topic,
                self.settings.alerts_topic,
                self.settings.dlq_topic,
                self.settings.windows_topic,
            )
            described = {t["topic"]: t for t in await admin.describe_topics([*plain, self.topic])}
            denied = sorted(
                name
                for name, t in described.items()
                if t["error_code"] == TopicAuthorizationFailedError.errno
            )
            if denied:
                raise StartupError(
                    f"not authorized to describe topic(s) {', '.join(denied)} as "
                    f"{self.settings.sasl_username or 'this client'}: grant Describe (and "
                    "Read/Write, and Create for topics livepulse should create) in the "
                    "cluster's ACLs"
                )
            existing = {name for name, t in described.items() if t["error_code"] == 0}
            events = described.get(self.settings.events_topic)
            partitions = (
                len(events["partitions"])
                if events and events["error_code"] == 0
                else DEFAULT_PARTITIONS
            )
            state = described.get(self.topic)
            if state and state["error_code"] == 0 and len(state["partitions"]) != partitions:
                raise StartupError(
                    f"state topic {self.topic!r} has {len(state['partitions'])} partitions but "
                    f"{self.settings.events_topic!r} has {partitions}; delete it (the state is "
                    f"rebuilt from the events) or change LIVEPULSE_APP_ID"
                )
            replicas = self.settings.replication_factor
            wanted = [
                NewTopic(name, num_partitions=partitions, replication_factor=replicas)
                for name in plain
            ]
            wanted.append(
                NewTopic(
                    self.topic,
                    num_partitions=partitions,
                    replication_factor=replicas,
                    topic_configs=STATE_TOPIC_CONFIG,
                )
            )
            # only what is missing: creating an existing topic needs the Create permission
            for topic in (t for t in wanted if t.name not in existing):
                try:
                    await admin.create_topics([topic])
                    log.info("created topic %s (%d partitions)", topic.name, partitions)
                except TopicAlreadyExistsError:
                    pass
            return partitions
        finally:
            await admin.close()

    async def read(self, partitions: list[int]) -> dict[int, list[tuple[bytes, bytes | None]]]:
        """Every record (key, value) of each state partition, in log order: a compacted
        topic holds the latest checkpoint record of each key, plus versions and tombstones
        the cleaner has not removed yet (the restore keeps the last of each key)."""
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # only what owners committed: an open or aborted transaction of a worker that
            # was fenced or died is not state
            isolation_level="read_committed",
            fetch_max_bytes=RESTORE_FETCH_BYTES,
            max_partition_fetch_bytes=RESTORE_FETCH_BYTES,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            for tp in tps:  # explicit: a reset racing assign() must not skip the state
                consumer.seek(tp, starts[tp])
            found: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in partitions}
            remaining = {tp for tp in tps if ends[tp] > 0}
            while remaining:
                batch = await asyncio.wait_for(
                    consumer.getmany(*remaining, timeout_ms=1_000), timeout=READ_TIMEOUT_S
                )
                for tp, records in batch.items():
                    found[tp.partition].extend(
                        (r.key or b"", r.value) for r in records if r.offset < ends[tp]
                    )
                    if records and records[-1].offset >= ends[tp] - 1:
                        remaining.discard(tp)
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            return found
        finally:
            await consumer.stop()
