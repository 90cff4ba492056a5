"""Send ``(key, value, ts_ms)`` records to the events topic with aiokafka, paced or flat out.

Event time travels in the value's ``ts`` field; ``ts_ms`` is that time, used for
``realtime`` pacing and for the Kafka record timestamp. That is the send time (the
producer's default), except for an event ahead of the wall clock (a file or a run whose
clock is in the future), whose record is stamped with its event time: a record is never
older than its event, which the worker checks (``LIVEPULSE_MAX_FUTURE_SKEW_SECONDS``).
Kafka 4 brokers refuse records stamped more than an hour ahead of their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from processor.kafka_client import BrokerUnavailable, check_broker, client_options
from processor.settings import Settings
from processor.simulator.progress import ProgressReporter

Record = tuple[bytes | None, bytes, int | None]
Pace = Literal["realtime", "fast"]

FAST_BATCH = 10_000
REALTIME_REAP = 1_000
PACE_GRANULARITY_S = 0.02
TOPIC_WAIT_S = 5.0
DELIVERY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
ENABLE_IDEMPOTENCE = True


class BrokerError(Exception):
    """The broker could not be reached or refused the records (one-line message)."""


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """Outcome of :func:`produce`."""

    sent: int
    interrupted: bool
    elapsed_s: float


class _Stop:
    """First SIGINT/SIGTERM asks the send loop to stop; a second one cancels the task."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._task = asyncio.current_task()
        self._installed: list[int] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _on_signal(self) -> None:
        if self.event.is_set():
            if self._task is not None:
                self._task.cancel()
        else:
            self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, returning early when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), seconds)


async def _as_async(records: Iterable[Record] | AsyncIterable[Record]) -> AsyncIterator[Record]:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record


async def _settle(futures: list[asyncio.Future[object]], where: str) -> None:
    if not futures:
        return
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*futures, return_exceptions=True), DELIVERY_TIMEOUT_S
        )
    except TimeoutError:
        raise BrokerError(
            f"sending to {where} failed: no acknowledgement within {DELIVERY_TIMEOUT_S:.0f} s"
        ) from None
    futures.clear()
    for result in results:
        if isinstance(result, BaseException):
            raise BrokerError(f"sending to {where} failed: {_describe(result)}") from None


def _discard(futures: Iterable[asyncio.Future[object]]) -> None:
    """Mark failed deliveries as seen so asyncio does not log each one at exit."""

    def consume(future: asyncio.Future[object]) -> None:
        if not future.cancelled():
            future.exception()

    for future in futures:
        if future.done():
            consume(future)
        else:
            future.add_done_callback(consume)


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip()
    while text.startswith(name + ":"):
        text = text[len(name) + 1 :].strip()
    return f"{name}: {text}" if text else name


@contextlib.contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """Without a logging setup, keep aiokafka's retry chatter off the terminal."""
    logger = logging.getLogger("aiokafka")
    if logging.getLogger().handlers or logger.handlers or logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


async def produce(
    settings: Settings,
    records: Iterable[Record] | AsyncIterable[Record],
    *,
    pace: Pace,
    progress: ProgressReporter,
) -> ProduceResult:
    """Send ``records`` to ``settings.events_topic``; return once all are acknowledged.

    Raises :class:`BrokerError` when the broker is unreachable, the topic is missing or a send
    fails. SIGINT/SIGTERM stop sending, flush what was queued and return with
    ``interrupted=True``.
    """
    broker, topic = settings.broker, settings.events_topic
    where = f"topic {topic!r} on {broker}"
    stop = _Stop()
    producer = AIOKafkaProducer(
        **client_options(settings),
        client_id="livepulse-simulator",
        acks="all",
        enable_idempotence=ENABLE_IDEMPOTENCE,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    sent = 0
    started = False
    with _quiet_client_logs():
        try:
            stop.install()
            started = await _start(producer, settings, topic, stop)
            progress.start()
            if started:
                sent = await _send_all(producer, topic, records, pace, progress, stop, where)
        finally:
            stop.remove()
            if started:
                with contextlib.suppress(KafkaError, TimeoutError):
                    await asyncio.wait_for(producer.stop(), STOP_TIMEOUT_S)
    interrupted = stop.requested
    progress.finish(sent, interrupted=interrupted, target=where)
    return ProduceResult(sent, interrupted, progress.elapsed_s)


async def _start(producer: AIOKafkaProducer, settings: Settings, topic: str, stop: _Stop) -> bool:
    """Connect and check the topic; False when a stop was requested first."""
    broker = settings.broker

    async def check_then_start() -> None:
        await check_broker(settings)  # a failure names the setting to check
        await producer.start()

    start = asyncio.ensure_future(check_then_start())
    waiter = asyncio.ensure_future(stop.event.wait())
    try:
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not start.done():
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError, KafkaError, OSError):
            await start
        with contextlib.suppress(Exception):
            await producer.stop()
        return False
    try:
        start.result()
    except BrokerUnavailable as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise BrokerError(f"cannot connect to Kafka broker at {exc}") from None
    except (KafkaError, OSError) as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise BrokerError(
            f"cannot connect to Kafka broker at {broker} - is it running? ({_describe(exc)})"
        ) from None
    try:
        await asyncio.wait_for(producer.partitions_for(topic), TOPIC_WAIT_S)
    except (TimeoutError, KafkaError) as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        reason = (
            f"no metadata after {TOPIC_WAIT_S:.0f} s"
            if isinstance(exc, TimeoutError)
            else _describe(exc)
        )
        raise BrokerError(
            f"topic {topic!r} is not available on Kafka broker at {broker} ({reason}); "
            "create it first"
        ) from None
    return True


async def _send_all(
    producer: AIOKafkaProducer,
    topic: str,
    records: Iterable[Record] | AsyncIterable[Record],
    pace: Pace,
    progress: ProgressReporter,
    stop: _Stop,
    where: str,
) -> int:
    send = producer.send
    current: list[asyncio.Future[object]] = []
    previous: list[asyncio.Future[object]] = []
    queued = 0
    first_ts: int | None = None
    anchor = 0.0
    realtime = pace == "realtime"
    batch = REALTIME_REAP if realtime else FAST_BATCH
    try:
        async for key, value, ts_ms in _as_async(records):
            if stop.requested:
                break
            if realtime and ts_ms is not None:
                if first_ts is None:
                    first_ts, anchor = ts_ms, time.monotonic()
                delay = anchor + (ts_ms - first_ts) / 1000.0 - time.monotonic()
                if delay >= PACE_GRANULARITY_S:
                    await stop.sleep(delay)
                    if stop.requested:
                        break
            # never a record older than its event (see above): stamp one ahead of the clock
            ahead = ts_ms is not None and ts_ms > time.time() * 1000
            current.append(await send(topic, value, key=key, timestamp_ms=ts_ms if ahead else None))
            queued += 1
            if len(current) >= batch:
                # Keep one batch in flight while the next one fills; surfaces errors early.
                await _settle(previous, where)
                previous, current = current, previous
            progress.tick(queued)
        await asyncio.wait_for(producer.flush(), DELIVERY_TIMEOUT_S)
        await _settle(previous, where)
        await _settle(current, where)
    except TimeoutError:
        _discard(previous + current)
        raise BrokerError(
            f"sending to {where} failed: no acknowledgement within {DELIVERY_TIMEOUT_S:.0f} s"
        ) from None
    except KafkaError as exc:
        _discard(previous + current)
        raise BrokerError(f"sending to {where} failed: {_describe(exc)}") from None
    except BaseException:
        _discard(previous + current)
        raise
    return queued


__all__ = ["BrokerError", "Pace", "ProduceResult", "Record", "produce"]
