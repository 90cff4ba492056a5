"""The ceiling: a raw aiokafka consumer that fetches and orjson-decodes every record, nothing else.

Run by the harness as ``python -m bench.ceiling BROKER TOPIC PARTITIONS RESULT.json``. It reads every
partition from the beginning to the end offsets it saw at start, and writes
``{"records", "t_first", "t_last"}`` (epoch seconds of the first and last record).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def consume(broker: str, topic: str, partitions: int) -> dict[str, float | int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        loads = orjson.loads
        records = 0
        t_first = 0.0
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            if batch and not t_first:
                t_first = time.time()
            for tp, messages in batch.items():
                for message in messages:
                    loads(message.value)
                records += len(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return {"records": records, "t_first": t_first, "t_last": time.time()}
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("broker")
    parser.add_argument("topic")
    parser.add_argument("partitions", type=int)
    parser.add_argument("result")
    args = parser.parse_args()
    result = asyncio.run(consume(args.broker, args.topic, args.partitions))
    with open(args.result, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
