"""A checkpoint the worker cannot read stops it with a clear message, and floods nothing."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import Topics, WorkerProcess
from tests.integration.kafka import committed_offsets, keyed, produce, read_all
from tests.support.events import T0, StreamScript


async def create_state_topic(broker: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 4, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        await admin.close()


async def nothing_committed(broker: str, group: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        return not (await committed_offsets(admin, group, topic) or {})
    finally:
        await admin.close()


def test_an_unreadable_checkpoint_stops_the_worker_naming_topic_and_partition(
    broker: str, topics: Topics, unstarted_worker: WorkerProcess
) -> None:
    state_topic = f"{topics.app_id}.state"
    asyncio.run(create_state_topic(broker, state_topic))
    # a partition record in every partition, so whichever the worker gets, it meets a bad one
    garbage = [(b"p", b"\xc1 not a checkpoint") for _ in range(4)]

    async def send_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for p, (key, value) in enumerate(garbage):
                await producer.send_and_wait(state_topic, value, key=key, partition=p)
        finally:
            await producer.stop()

    asyncio.run(send_garbage())
    s = StreamScript("s1")
    events = [s.start(T0), *(s.likes(T0 + i * 1_000, 5) for i in range(1, 200))]
    asyncio.run(produce(broker, topics.events, keyed(events)))

    worker = unstarted_worker
    worker.start()
    assert worker.proc is not None
    code = worker.proc.wait(timeout=60)
    log = worker.log()
    assert code == 2, log
    assert f"state topic '{state_topic}' partition " in log, log
    assert "not a livepulse checkpoint record" in log and "reset consumer group" in log, log
    assert asyncio.run(read_all(broker, topics.dlq)) == []  # no dead-letter flood
    assert asyncio.run(read_all(broker, topics.alerts)) == []
    assert asyncio.run(nothing_committed(broker, topics.app_id, topics.events))
