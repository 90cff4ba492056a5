"""Kafka records as livepulse sees them, without a Kafka client: what comes in, what goes out.

Pure protocol code: the worker's Faust layer turns :class:`OutputRecord` into producer calls
and hands fetched consumer records in as :class:`InputRecord`.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from processor.contract import InvalidRecord

Headers = tuple[tuple[str, bytes], ...]


class InputRecord(Protocol):
    """One fetched record of the events topic (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int:
        """When the record reached Kafka, epoch milliseconds."""
        ...


class OutputRecord(msgspec.Struct, frozen=True):
    """A record ready to publish: bytes as they go on the wire.

    ``partition`` is set only where it matters (the state topic mirrors the events topic's
    partitions); otherwise the producer partitions by key.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None


def dead_letter(
    topic: str,
    invalid: InvalidRecord,
    key: bytes | None,
    value: bytes | None,
    source: tuple[str, int, int],
) -> OutputRecord:
    """The dead-letter record of a rejected input: its original bytes, and headers that say
    why (``livepulse.reason``, ``livepulse.detail``) and where it came from (source topic,
    partition, offset)."""
    source_topic, partition, offset = source
    return OutputRecord(
        topic,
        key,
        value,
        (
            ("livepulse.reason", invalid.reason.encode()),
            ("livepulse.detail", invalid.detail.encode()),
            ("livepulse.source.topic", source_topic.encode()),
            ("livepulse.source.partition", str(partition).encode()),
            ("livepulse.source.offset", str(offset).encode()),
        ),
    )
