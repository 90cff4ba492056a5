"""How the worker's Kafka clients are configured: the events consumer's group membership,
and how every producer batches and compresses."""

from __future__ import annotations

from typing import Any

from processor.kafka_client import client_options
from processor.settings import Settings

MAX_HEARTBEAT_INTERVAL_MS = 3_000
# How long the broker lets a transaction stay open before aborting it; the next owner of a
# partition aborts its predecessor's open transaction at once anyway.
TRANSACTION_TIMEOUT_MS = 60_000
# How every producer of the worker batches. Checkpoints come in bursts of thousands of
# records: Faust's 16 KiB batches sent with no linger made a produce request, and a
# loopback write, of every few dozen; 1 MiB batches and 5 ms of linger took the heavy
# workload from 13k to 26-35k events/s.
BATCH_BYTES = 1024 * 1024
LINGER_MS = 5
# dead letters carry whole input records (up to LIVEPULSE_MAX_RECORD_BYTES)
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def group_options(settings: Settings) -> dict[str, Any]:
    """How the events consumer takes part in the app's consumer group.

    With ``group_instance_id`` it is a static member (KIP-345): the broker keeps its
    partitions for it while it is away, up to the session timeout, and a process that
    joins with the same id takes them over at once, in the same generation, without a
    rebalance of the other members. It is still told its assignment (the rebalance
    listener's ``on_partitions_assigned``), so it restores them from the state topic
    like any new owner.
    """
    session_timeout_ms = int(settings.session_timeout_seconds * 1000)
    # A member learns of a rebalance from its next heartbeat, so a join waits up to one
    # interval: at most 3 s (Kafka's default), however long the session.
    heartbeat_interval_ms = min(session_timeout_ms // 4, MAX_HEARTBEAT_INTERVAL_MS)
    return {
        "group_id": settings.app_id,
        "group_instance_id": settings.group_instance_id or None,
        "client_id": f"{settings.app_id}-events",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": heartbeat_interval_ms,
        # events written in transactions upstream count once they are committed
        "isolation_level": "read_committed",
    }


def compression_type(settings: Settings) -> str | None:
    """``compression`` as the clients name it (None: uncompressed)."""
    return None if settings.compression == "none" else settings.compression


def producer_options(settings: Settings, partition: int) -> dict[str, Any]:
    """How the transactional producer of one input partition sends."""
    return {
        **client_options(settings),
        "client_id": f"{settings.app_id}-p{partition}",
        "max_batch_size": BATCH_BYTES,
        "linger_ms": LINGER_MS,
        "compression_type": compression_type(settings),
        "max_request_size": MAX_REQUEST_BYTES,
    }
