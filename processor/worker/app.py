"""The thin Faust layer: wires the pure engine to Kafka topics.

Records are consumed raw (bytes) so a malformed record can be forwarded to the
dead-letter topic byte-for-byte; the engine and decoder never see Kafka types.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import orjson

from processor.contract import InvalidRecord, Reason, decode_event
from processor.core.engine import Engine, EngineConfig
from processor.metrics import Metrics
from processor.settings import Settings

log = logging.getLogger("livepulse.worker")


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        tier_window_ms=settings.tier_window_seconds * 1000,
        tier_step_ms=settings.tier_step_seconds * 1000,
        moderate=settings.tier_moderate,
        high=settings.tier_high,
        hysteresis=settings.hysteresis,
        usd_per_coin=settings.usd_per_coin,
    )


def dlq_headers(
    invalid: InvalidRecord, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers that tell a dead-letter consumer why and where a record failed."""
    return [
        ("livepulse.reason", invalid.reason.encode()),
        ("livepulse.detail", invalid.detail.encode()),
        ("livepulse.source.topic", topic.encode()),
        ("livepulse.source.partition", str(partition).encode()),
        ("livepulse.source.offset", str(offset).encode()),
    ]


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of undecoded bytes: decoding is ours, so bad records reach the DLQ intact."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def create_app(settings: Settings, metrics: Metrics) -> faust.App:
    """Build the Faust app with its agent; nothing connects until the worker starts."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.broker.split(",")],
        datadir=settings.data_dir,
        web_enabled=False,  # metrics have their own server; Faust's web exposes tables.
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_partitions=4,
        topic_replication_factor=1,
    )
    events_topic = raw_topic(app, settings.events_topic)
    alerts_topic = raw_topic(app, settings.alerts_topic)
    dlq_topic = raw_topic(app, settings.dlq_topic)
    engine = Engine(engine_config(settings))

    async def dead_letter(
        value: bytes | None, key: bytes | None, invalid: InvalidRecord, message: Any
    ) -> None:
        metrics.record_invalid(invalid.reason)
        await dlq_topic.send(
            key=key,
            value=value,
            headers=dlq_headers(invalid, message.topic, message.partition, message.offset),
        )

    @app.agent(events_topic)
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            message = record.message
            key: bytes | None = message.key
            value: bytes | None = message.value
            try:
                decoded = decode_event(value, key, settings.max_record_bytes)
                if isinstance(decoded, InvalidRecord):
                    await dead_letter(value, key, decoded, message)
                    continue
                outcome = engine.process(decoded)
                if outcome.late:
                    late = InvalidRecord(Reason.LATE, "event is older than the tier window")
                    await dead_letter(value, key, late, message)
                    continue
                metrics.record_event(decoded["type"], outcome)
                for alert in outcome.alerts:
                    now = time.time()
                    record_value = orjson.dumps(alert.to_record(int(now * 1000)))
                    await alerts_topic.send(key=alert.stream_id.encode(), value=record_value)
                    # latency from the event's arrival on Kafka (record timestamp, seconds)
                    metrics.record_alert(alert, now - message.timestamp)
                    log.info(
                        "alert %s %s %s -> %s at %d likes",
                        alert.alert_id[:12],
                        alert.stream_id,
                        alert.from_tier,
                        alert.to_tier,
                        alert.value,
                    )
            except Exception as exc:
                log.exception(
                    "processing failed at %s[%d]@%d",
                    message.topic,
                    message.partition,
                    message.offset,
                )
                failure = InvalidRecord("processing_error", f"{type(exc).__name__}: {exc}")
                await dead_letter(value, key, failure, message)

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def refresh_gauges() -> None:
        metrics.refresh(engine)

    app.livepulse_engine = engine  # type: ignore[attr-defined]
    return app
