"""What the worker's parts share: the partitions it owns, their transactional producers,
the offsets it committed, the one lock, and how it stops."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer

from processor.core.engine import EngineConfig
from processor.metrics import Metrics
from processor.settings import Settings
from processor.worker.partitions import PartitionState, Routes
from processor.worker.transactions import PartitionProducer

log = logging.getLogger("livepulse.worker")


class FatalError(RuntimeError):
    """The worker cannot go on; the message says why and what to do."""


class Ownership:
    """The input partitions this worker owns and what goes with them.

    ``lock`` serialises the three things that must not interleave: applying a fetch,
    checkpoint-and-commit, and a rebalance (which checkpoints, commits, drops revoked
    partitions and restores assigned ones). ``epoch`` is bumped by every rebalance: a
    fetch from before one is dropped.
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = EngineConfig.from_settings(settings)
        if not self.config.spikes_possible:
            log.warning(
                "no spike alerts: LIVEPULSE_SPIKE_HISTORY_SECONDS (%d) is more than "
                "LIVEPULSE_TIER_WINDOW_SECONDS minus LIVEPULSE_TUMBLING_WINDOW_SECONDS (%d)",
                settings.spike_history_seconds,
                settings.tier_window_seconds - settings.tumbling_window_seconds,
            )
        self.routes = Routes.from_settings(settings)
        self.partitions: dict[int, PartitionState] = {}
        # the transactional producer of each partition in ``partitions``
        self.producers: dict[int, PartitionProducer] = {}
        self.committed: dict[int, int] = {}  # next offset to read, as committed by us
        self.lock = asyncio.Lock()
        self.epoch = 0  # bumped by every rebalance: a fetch from before one is dropped
        self.consumer: AIOKafkaConsumer | None = None  # the events consumer, once started
        self.fatal: FatalError | None = None
        self.on_fatal: Any = None  # set by the CLI: stops the Faust worker

    def stop_with(self, error: FatalError) -> None:
        """Stop the worker: it must not process records it cannot process correctly."""
        self.fatal = error
        log.critical("%s", error)
        if self.on_fatal is not None:
            self.on_fatal(error)
