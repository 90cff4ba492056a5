"""The worker's HTTP endpoint: /healthz, /readyz and the metrics, served for real on a
loopback port; and the worker's readiness through a rebalance."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter

from processor.worker import http
from processor.worker.http import Probes, Status, serve
from tests.support.http import get
from tests.unit.test_worker_app import FakeStore, new_worker


@pytest.fixture
def served() -> Iterator[tuple[int, Probes]]:
    registry = CollectorRegistry()
    Counter("livepulse_unit_things", "things", registry=registry).inc(3)
    probes = Probes()
    server = serve("127.0.0.1", 0, registry, probes)
    yield server.server_port, probes
    server.shutdown()
    server.server_close()


@pytest.fixture
def running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_metrics_are_served_beside_the_probes(served: tuple[int, Probes]) -> None:
    port, _ = served
    status, body = get(port, "/metrics")
    assert status == 200
    assert "livepulse_unit_things_total 3.0" in body


def test_before_the_worker_runs_it_is_alive_and_not_ready(served: tuple[int, Probes]) -> None:
    port, _ = served
    assert get(port, "/healthz") == (200, "starting\n")
    assert get(port, "/readyz") == (503, "starting\n")


def test_healthz_asks_the_event_loop(
    served: tuple[int, Probes],
    running_loop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, probes = served
    probes.loop = running_loop
    assert get(port, "/healthz") == (200, "ok\n")

    monkeypatch.setattr(http, "LOOP_TIMEOUT_S", 0.2)
    release = threading.Event()
    running_loop.call_soon_threadsafe(release.wait, 30)  # a callback that hogs the loop
    try:
        assert get(port, "/healthz") == (503, "event loop did not respond within 0.2 s\n")
    finally:
        release.set()
    assert get(port, "/healthz") == (200, "ok\n")


def test_healthz_fails_once_the_loop_has_stopped(served: tuple[int, Probes]) -> None:
    port, probes = served
    loop = asyncio.new_event_loop()
    probes.loop = loop
    assert get(port, "/healthz") == (503, "event loop stopped\n")
    loop.close()
    assert get(port, "/healthz") == (503, "event loop stopped\n")


def test_readyz_answers_even_when_readiness_raises(served: tuple[int, Probes]) -> None:
    port, probes = served
    probes.readiness = lambda: Status(True, "ready: partitions [0]")
    assert get(port, "/readyz") == (200, "ready: partitions [0]\n")

    def broken() -> Status:
        raise KeyError("gone")

    probes.readiness = broken
    assert get(port, "/readyz") == (503, "readiness unknown: KeyError: 'gone'\n")


class Consumer:
    """Stands for the connected aiokafka consumer; readiness only asks if there is one."""


def test_the_worker_is_ready_once_its_assigned_partitions_are_restored() -> None:
    _, worker = new_worker()
    worker.assignment.store = FakeStore({})  # type: ignore[assignment]
    assert worker.progress.readiness() == Status(False, "not connected to the broker")
    worker.owned.consumer = Consumer()  # type: ignore[assignment]
    assert worker.progress.readiness() == Status(False, "joining consumer group 'unit-app'")

    asyncio.run(worker.assignment.on_assigned({TopicPartition("ev", 1), TopicPartition("ev", 3)}))
    assert worker.progress.readiness() == Status(
        True, "ready: partitions [1, 3] of 'ev' assigned and restored"
    )

    async def revoke_then_look() -> Status:
        await worker.assignment.on_revoked({TopicPartition("ev", 1), TopicPartition("ev", 3)})
        return worker.progress.readiness()

    assert asyncio.run(revoke_then_look()) == Status(
        False, "rebalancing: partitions are being revoked or restored"
    )
    asyncio.run(worker.assignment.on_assigned(set()))  # more members than partitions: a standby
    assert worker.progress.readiness() == Status(
        True, "ready: partitions [] of 'ev' assigned and restored"
    )


def test_a_worker_that_stopped_on_an_error_is_not_ready() -> None:
    _, worker = new_worker()
    worker.assignment.store = FakeStore({2: [(b"p", b"\xc1 not a checkpoint")]})  # type: ignore[assignment]
    worker.owned.consumer = Consumer()  # type: ignore[assignment]
    asyncio.run(worker.assignment.on_assigned({TopicPartition("ev", 2)}))
    ready = worker.progress.readiness()
    assert not ready.ok
    assert ready.detail.startswith("stopped: state topic 'unit-app.state' partition 2")
