"""Tests of the simulator's Kafka producer loop against an in-memory fake producer."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownTopicOrPartitionError

from processor.settings import Settings
from processor.simulator import producer as producer_module
from processor.simulator.producer import BrokerError, Record, produce
from processor.simulator.progress import ProgressReporter


class FakeProducer:
    """Just enough of AIOKafkaProducer for :func:`produce`."""

    instances: ClassVar[list[FakeProducer]] = []
    start_error: ClassVar[BaseException | None] = None
    topic_error: ClassVar[BaseException | None] = None
    delivery_error: ClassVar[BaseException | None] = None

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes | None, bytes, float]] = []
        self.stamps: list[int | None] = []  # the record timestamp asked for (None: send time)
        self.flushed = self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    async def partitions_for(self, topic: str) -> set[int]:
        if self.topic_error is not None:
            raise self.topic_error
        return {0, 1}

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, timestamp_ms: int | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, time.monotonic()))
        self.stamps.append(timestamp_ms)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.delivery_error is not None:
            future.set_exception(self.delivery_error)
        else:
            future.set_result(None)
        return future

    async def flush(self) -> None:
        self.flushed = True

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProducer]]:
    FakeProducer.instances = []
    FakeProducer.start_error = FakeProducer.topic_error = FakeProducer.delivery_error = None
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", FakeProducer)

    async def broker_answers(settings: Settings) -> None:  # the start-up check, passed
        return None

    monkeypatch.setattr(producer_module, "check_broker", broker_answers)
    yield FakeProducer


SETTINGS = Settings(broker="127.0.0.1:9092", events_topic="sim.test")


def records(n: int, gap_ms: int = 0) -> list[Record]:
    return [(f"s{i % 3}".encode(), f'{{"i":{i}}}'.encode(), 1_000 + i * gap_ms) for i in range(n)]


async def test_fast_sends_everything_verbatim_and_flushes(fake: type[FakeProducer]) -> None:
    out = io.StringIO()
    data = records(25_000)
    result = await produce(SETTINGS, data, pace="fast", progress=ProgressReporter("t", stream=out))
    (producer,) = fake.instances
    assert result.sent == 25_000 and not result.interrupted
    assert [(k, v) for _, k, v, _ in producer.sent] == [(k, v) for k, v, _ in data]
    assert {topic for topic, *_ in producer.sent} == {"sim.test"}
    assert producer.flushed and producer.stopped
    assert producer.config["bootstrap_servers"] == "127.0.0.1:9092"
    assert producer.config["acks"] == "all" and producer.config["enable_idempotence"]
    assert "done: 25,000 events" in out.getvalue()


async def test_a_record_is_never_stamped_before_its_event(fake: type[FakeProducer]) -> None:
    """Events up to now keep the send time as their record timestamp (the producer's
    default); one ahead of the wall clock is stamped with its own ts, or the worker would
    see an event from the future (future_timestamp)."""
    now = int(time.time() * 1000)
    ahead = now + 600_000
    data: list[Record] = [
        (b"s", b"{}", now - 3_600_000),
        (b"s", b"{}", ahead),
        (None, b"not json", None),
        (b"s", b"{}", ahead + 1),
    ]
    await produce(SETTINGS, data, pace="fast", progress=ProgressReporter("t", quiet=True))
    (producer,) = fake.instances
    assert producer.stamps == [None, ahead, None, ahead + 1]


async def test_accepts_async_iterables(fake: type[FakeProducer]) -> None:
    async def agen() -> AsyncIterator[Record]:
        for record in records(10):
            yield record

    result = await produce(
        SETTINGS, agen(), pace="fast", progress=ProgressReporter("t", quiet=True)
    )
    assert result.sent == 10


async def test_realtime_paces_by_ts_gaps(fake: type[FakeProducer]) -> None:
    data = records(16, gap_ms=20)
    data.insert(5, (None, b"not json", None))
    started = time.monotonic()
    result = await produce(
        SETTINGS, data, pace="realtime", progress=ProgressReporter("t", quiet=True)
    )
    elapsed = time.monotonic() - started
    assert result.sent == 17
    assert 0.27 <= elapsed < 0.6
    (producer,) = fake.instances
    first = producer.sent[0][3]
    for (_, _, value, at), (_, _, ts) in zip(producer.sent, data, strict=True):
        if ts is not None:
            assert at - first >= (ts - 1_000) / 1000 - 0.021, value


async def test_sigint_stops_flushes_and_reports(fake: type[FakeProducer]) -> None:
    def interrupted_after(n: int) -> Iterator[Record]:
        for i, record in enumerate(records(100_000)):
            if i == n:
                os.kill(os.getpid(), signal.SIGINT)
            yield record

    out = io.StringIO()
    result = await produce(
        SETTINGS, interrupted_after(50), pace="realtime", progress=ProgressReporter("t", stream=out)
    )
    assert result.interrupted
    assert 50 <= result.sent < 20_000
    (producer,) = fake.instances
    assert producer.flushed and producer.stopped
    assert "interrupted: " in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("attribute", "error", "expected"),
    [
        ("start_error", KafkaConnectionError("refused"), "cannot connect to Kafka broker at"),
        ("topic_error", UnknownTopicOrPartitionError(), "topic 'sim.test' is not available"),
        ("delivery_error", KafkaTimeoutError("too slow"), "sending to topic 'sim.test' on"),
    ],
)
async def test_broker_failures_become_one_line_errors(
    fake: type[FakeProducer],
    attribute: str,
    error: BaseException,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setattr(fake, attribute, error)
    with pytest.raises(BrokerError) as raised:
        await produce(
            SETTINGS, records(25_000), pace="fast", progress=ProgressReporter("t", quiet=True)
        )
    message = str(raised.value)
    assert expected in message and "127.0.0.1:9092" in message
    assert "\n" not in message
    del raised
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_missing_acknowledgements_time_out(
    fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never_acked(
        self: FakeProducer,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    monkeypatch.setattr(FakeProducer, "send", never_acked)
    monkeypatch.setattr(producer_module, "DELIVERY_TIMEOUT_S", 0.05)
    with pytest.raises(BrokerError, match="no acknowledgement within"):
        await produce(SETTINGS, records(5), pace="fast", progress=ProgressReporter("t", quiet=True))
