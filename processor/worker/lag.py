"""Consumer lag: records of the events topic this worker's group has not committed yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer

log = logging.getLogger("livepulse.worker")

# Consumer lag is read every LAG_INTERVAL_S, each read given up after LAG_TIMEOUT_S.
LAG_INTERVAL_S = 5.0
LAG_TIMEOUT_S = 4.5


def consumer_lag(
    ends: Mapping[int, int], committed: Mapping[int, int | None], earliest: Mapping[int, int]
) -> dict[int, int]:
    """Records not yet committed, per partition: log end offset - committed offset.

    A partition the group has never committed counts from its earliest available offset.
    Never negative; a partition without a known end is left out.
    """
    lag: dict[int, int] = {}
    for partition, end in ends.items():
        done = committed.get(partition)
        if done is None:
            done = earliest.get(partition)
        if done is not None:
            lag[partition] = max(0, end - done)
    return lag


async def read_consumer_lag(
    consumer: AIOKafkaConsumer, topic: str, committed: Mapping[int, int]
) -> dict[int, int] | None:
    """The lag of each partition of ``topic`` assigned to ``consumer``, given the offsets
    this worker committed; None when the broker did not answer in time (around start-up,
    rebalances, broker restarts)."""
    tps = [tp for tp in consumer.assignment() if tp.topic == topic]
    if not tps:
        return {}
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(tps), LAG_TIMEOUT_S)
        earliest = await asyncio.wait_for(consumer.beginning_offsets(tps), LAG_TIMEOUT_S)
    except Exception as exc:
        log.debug("consumer lag not read: %s: %s", type(exc).__name__, exc)
        return None
    return consumer_lag(
        {tp.partition: end for tp, end in ends.items()},
        {tp.partition: committed.get(tp.partition) for tp in tps},
        {tp.partition: first for tp, first in earliest.items()},
    )
