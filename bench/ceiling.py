"""The ceiling: a raw aiokafka consumer that fetches and orjson-decodes each record, no more.

Run by bench.run with ``BENCH_BROKER``, ``BENCH_TOPIC`` and ``BENCH_PARTITIONS`` set, it
reads every partition from the start to the end it saw then, and prints the records read,
the time and its CPU seconds at its first fetch and at its last record, and its peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def consume(broker: str, topic: str, partitions: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        loads, records, first = orjson.loads, 0, None
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            if batch and first is None:
                first = (time.time(), time.process_time())
            for tp, messages in batch.items():
                for message in messages:
                    loads(message.value)
                records += len(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        last = (time.time(), time.process_time())
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"records": records, "first": first, "last": last, "peak_rss": peak_rss}
    finally:
        await consumer.stop()


if __name__ == "__main__":
    env = os.environ
    topic, partitions = env["BENCH_TOPIC"], int(env["BENCH_PARTITIONS"])
    print(json.dumps(asyncio.run(consume(env["BENCH_BROKER"], topic, partitions))))
