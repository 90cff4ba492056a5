"""Small async Kafka helpers for the integration tests (real broker only)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

DEADLINE_S = 90.0


async def create_topics(broker: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


async def produce(
    broker: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    transactional_id: str | None = None,
    **client: Any,
) -> int:
    """Send (key, value) records in order and wait until the broker has them all; with a
    ``transactional_id``, in one committed transaction (each partition then ends with a
    commit marker, as a topic that an exactly-once producer writes does).
    ``client``: aiokafka security options (protocol, TLS context, SASL) for a secured listener."""
    producer = AIOKafkaProducer(
        bootstrap_servers=broker,
        acks="all",
        linger_ms=5,
        transactional_id=transactional_id,
        **client,
    )
    await producer.start()
    sent = 0
    try:
        if transactional_id is not None:
            await producer.begin_transaction()
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        await producer.flush()
        for fut in futures:
            await fut
            sent += 1
        if transactional_id is not None:
            await producer.commit_transaction()
    finally:
        await producer.stop()
    return sent


def keyed(events: Iterable[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(e["stream_id"].encode(), orjson.dumps(e)) for e in events]


async def partitions_of(broker: str, topic: str, **client: Any) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker, **client)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0, described
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def end_offsets(
    broker: str, topic: str, isolation_level: str = "read_uncommitted", **client: Any
) -> dict[TopicPartition, int]:
    """Each partition's end: the high watermark, or for ``read_committed`` the last stable
    offset (the first offset of a transaction still open, if any)."""
    partitions = await partitions_of(broker, topic, **client)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        isolation_level=isolation_level,
        **client,
    )
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, topic: str
) -> dict[TopicPartition, int] | None:
    """What ``group`` has committed on ``topic``; None while the broker cannot say yet."""
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError as exc:  # e.g. the offsets topic is still being created
        if not exc.retriable:
            raise
        return None
    return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def committed_total(broker: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        committed = await committed_offsets(admin, group, topic) or {}
    finally:
        await admin.close()
    return sum(offset for offset in committed.values() if offset > 0)


async def wait_until_committed(
    broker: str, group: str, topic: str, deadline_s: float = DEADLINE_S
) -> None:
    """Wait until ``group`` has committed every record of ``topic``.

    The worker flushes its producer before each commit, so once this returns, every
    alert and dead letter caused by those records is on its topic.
    """
    targets = await end_offsets(broker, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        give_up = time.monotonic() + deadline_s
        committed: dict[TopicPartition, int] = {}
        while time.monotonic() < give_up:
            committed = await committed_offsets(admin, group, topic) or {}
            if committed and all(committed.get(tp, 0) >= end for tp, end in targets.items()):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{group} committed {committed}, expected {targets}")
    finally:
        await admin.close()


async def read_all(
    broker: str, topic: str, isolation_level: str = "read_uncommitted", **client: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` up to its current end, partition by partition (``client``:
    security options, as for :func:`produce`).

    ``read_committed``: what a subscriber with that isolation level gets, up to the last
    stable offsets: no record of an aborted transaction, none of one still open."""
    targets = await end_offsets(broker, topic, isolation_level, **client)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        **client,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(list(targets))
        await consumer.seek_to_beginning(*targets)
        remaining = {tp for tp, end in targets.items() if end > 0}
        give_up = time.monotonic() + DEADLINE_S
        while remaining and time.monotonic() < give_up:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(m for m in messages if m.offset < targets[tp])
                if await consumer.position(tp) >= targets[tp]:
                    remaining.discard(tp)
        assert not remaining, f"could not read {topic} to its end through {broker}: {remaining}"
    finally:
        await consumer.stop()
    return records


def kcat(*args: str, stdin: bytes | None = None) -> bytes:
    """Run kcat (librdkafka), the non-Python client; its stdout, or fail with its stderr."""
    result = subprocess.run(
        ["kcat", *args], input=stdin, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout
