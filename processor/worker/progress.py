"""Where the worker stands: readiness (``/readyz``), which partitions are caught up (idle
decay runs only on those), and consumer lag."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from processor.worker.assignment import Assignment
from processor.worker.commits import Commits
from processor.worker.http import Status
from processor.worker.lag import read_consumer_lag
from processor.worker.ownership import Ownership
from processor.worker.partitions import PartitionState

POSITION_WAIT_S = 0.05  # a consumer position the idle tick asks for is known, or skipped


class Progress:
    """Readiness, idle decay on caught-up partitions, consumer lag: read from the other
    parts, on timers and probes."""

    def __init__(self, owned: Ownership, assignment: Assignment, commits: Commits) -> None:
        self.owned = owned
        self.assignment = assignment
        self.commits = commits

    def readiness(self) -> Status:
        """What ``/readyz`` answers: ready once connected, in the group, and every
        partition assigned here is restored. A member with no partitions (more replicas
        than partitions) is ready: it is a standby that takes over in a rebalance."""
        owned, assigned = self.owned, self.assignment.assigned
        if owned.fatal is not None:
            return Status(False, f"stopped: {owned.fatal}")
        if owned.consumer is None:
            return Status(False, "not connected to the broker")
        if assigned is None:
            return Status(False, f"joining consumer group {owned.settings.app_id!r}")
        if self.assignment.rebalancing:
            return Status(False, "rebalancing: partitions are being revoked or restored")
        missing = assigned - set(owned.partitions)
        if missing:
            return Status(False, f"partitions {sorted(missing)} not restored")
        return Status(
            True,
            f"ready: partitions {sorted(assigned)} of {owned.settings.events_topic!r} "
            "assigned and restored",
        )

    async def tick(self) -> None:
        """Idle decay: stream time follows the wall clock for streams that get nothing.

        Only on partitions that are caught up: while a partition has a backlog, a silent
        stream's events may be in it, and advancing its time would make them late.
        """
        async with self.owned.lock:
            if self.commits.checkpointing is not None:
                # a checkpoint under way records the idle time as it began: a tick now
                # would be lost from it (the next tick catches up)
                return
            wall_ms = int(time.time() * 1000)
            for partition, state in list(self.owned.partitions.items()):
                if await self.caught_up(partition, state):
                    await self.commits.publish(partition, state.tick(wall_ms))

    async def caught_up(self, partition: int, state: PartitionState) -> bool:
        """Whether every record of the partition that can be read has been applied. Call
        with ``lock`` held: the fetch loop applies each fetch before it lets go of it."""
        consumer = self.owned.consumer
        if consumer is None or partition in self.assignment.unapplied:
            return False
        tp = TopicPartition(self.owned.settings.events_topic, partition)
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        if state.applied_offset + 1 >= highwater:
            return True
        # Past the last record there may be transaction markers (an exactly-once producer
        # upstream writes one per partition and commit) or an open transaction's records
        # (not readable yet, read_committed): caught up once the consumer has read up to
        # the last stable offset. Its position is known here; never wait for one.
        stable = consumer.last_stable_offset(tp)
        if stable is None or stable < 0:
            return False
        try:
            position = await asyncio.wait_for(consumer.position(tp), POSITION_WAIT_S)
        except (TimeoutError, IllegalStateError):
            return False
        return bool(position >= stable)

    async def refresh_consumer_lag(self) -> None:
        """Records of the events topic not yet committed, per assigned partition."""
        consumer = self.owned.consumer
        if consumer is None:
            return
        lag = await read_consumer_lag(
            consumer, self.owned.settings.events_topic, self.owned.committed
        )
        if lag is not None:
            self.owned.metrics.set_consumer_lag(lag)
