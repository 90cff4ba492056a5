"""The compacted state topic that holds each input partition's latest snapshot."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from processor.settings import Settings

log = logging.getLogger("livepulse.state")

DEFAULT_PARTITIONS = 4
SNAPSHOT_MAX_BYTES = 16 * 1024 * 1024


class StartupError(RuntimeError):
    """The worker cannot start; the message says why and what to do."""


class StateStore:
    """Snapshot partition ``p`` of the events topic lives in partition ``p`` here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = self.topic_name(settings)

    @staticmethod
    def topic_name(settings: Settings) -> str:
        return f"{settings.app_id}.state"

    async def ensure_topics(self) -> int:
        """Create missing topics; returns the events topic's partition count.

        The state topic must have as many partitions as the events topic, so that one
        record per partition, at the same partition number, is each snapshot.
        """
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.broker)
        try:
            await admin.start()
        except Exception as exc:
            raise StartupError(f"cannot reach broker {self.settings.broker}: {exc}") from None
        try:
            described = {
                t["topic"]: t
                for t in await admin.describe_topics([self.settings.events_topic, self.topic])
            }
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
            wanted = [
                NewTopic(name, num_partitions=partitions, replication_factor=1)
                for name in (
                    self.settings.events_topic,
                    self.settings.alerts_topic,
                    self.settings.dlq_topic,
                    self.settings.windows_topic,
                )
            ]
            wanted.append(
                NewTopic(
                    self.topic,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs={
                        "cleanup.policy": "compact",
                        "max.message.bytes": str(SNAPSHOT_MAX_BYTES),
                    },
                )
            )
            for topic in wanted:
                try:
                    await admin.create_topics([topic])
                    log.info("created topic %s (%d partitions)", topic.name, partitions)
                except TopicAlreadyExistsError:
                    pass
            return partitions
        finally:
            await admin.close()

    async def latest(self, partitions: list[int]) -> dict[int, bytes]:
        """The newest snapshot of each partition that has one."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.broker,
            enable_auto_commit=False,
            fetch_max_bytes=SNAPSHOT_MAX_BYTES * 2,
            max_partition_fetch_bytes=SNAPSHOT_MAX_BYTES,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            found: dict[int, bytes] = {}
            for tp in tps:
                if ends[tp] == 0:
                    continue
                consumer.seek(tp, ends[tp] - 1)
                record = await asyncio.wait_for(consumer.getone(tp), timeout=30)
                found[tp.partition] = record.value
            return found
        finally:
            await consumer.stop()
