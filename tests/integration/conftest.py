"""Integration fixtures: a real KRaft broker for the session, real worker processes.

The broker is the project's own (deploy/kafka/kafka.sh) on test ports (19092/19093, or
LIVEPULSE_TEST_KAFKA_PORT and the port after it), so a `make run` on the default ports is
left alone. Set LIVEPULSE_TEST_BROKER=host:port to use a broker that is already running.

The test broker always runs in kafka.sh's secured mode: besides PLAINTEXT on the test port
it serves SASL_SSL, SSL (mutual TLS) and SASL_PLAINTEXT on the three ports after the
controller's (see ``secure_broker``), so one JVM serves the plain and the secured tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from processor.core.engine import EngineConfig
from tests.integration.kafka import committed_total, create_topics
from tests.integration.secure import SecureBroker, kafka_sh_env, secure_broker_of

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
# Parallel test sessions (several checkouts, or helpers) pick distinct ports.
TEST_PORT = int(os.environ.get("LIVEPULSE_TEST_KAFKA_PORT", "19092"))
TEST_KAFKA_HOME = ROOT / ".local" / f"kafka-test-{TEST_PORT}"
TEST_KAFKA_ENV = {
    "LIVEPULSE_KAFKA_PORT": str(TEST_PORT),
    "LIVEPULSE_KAFKA_CONTROLLER_PORT": str(TEST_PORT + 1),
    "LIVEPULSE_KAFKA_HOME": str(TEST_KAFKA_HOME),
} | kafka_sh_env(TEST_PORT)


def _kafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        env=os.environ | TEST_KAFKA_ENV,
        text=True,
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap address of a real broker: started here (and stopped after) or found."""
    external = os.environ.get("LIVEPULSE_TEST_BROKER")
    if external:
        yield external
        return
    already_running = _kafka("status").returncode == 0
    up = _kafka("up")
    assert up.returncode == 0, f"broker did not start:\n{up.stdout}\n{up.stderr}"
    try:
        yield f"127.0.0.1:{TEST_PORT}"
    finally:
        if not already_running:
            down = _kafka("down")
            assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
def secure_broker(broker: str) -> SecureBroker:
    """The secured listeners, certificates and user of the session's test broker."""
    if os.environ.get("LIVEPULSE_TEST_BROKER"):
        pytest.fail(
            "secure_broker needs the test broker that kafka.sh starts in secured mode, but "
            f"LIVEPULSE_TEST_BROKER={os.environ['LIVEPULSE_TEST_BROKER']} names an external "
            "broker whose SASL/TLS listeners, certificates and users these tests cannot know; "
            "unset LIVEPULSE_TEST_BROKER to run them"
        )
    assert broker == f"127.0.0.1:{TEST_PORT}", broker
    return secure_broker_of(TEST_PORT, TEST_KAFKA_HOME)


@dataclass
class Topics:
    events: str
    alerts: str
    dlq: str
    windows: str
    app_id: str


def new_topics(broker: str, partitions: int) -> Topics:
    """Fresh topics of ``partitions`` partitions and a fresh consumer group (app id)."""
    run = uuid.uuid4().hex[:8]
    t = Topics(
        f"t{run}.events",
        f"t{run}.alerts",
        f"t{run}.dlq",
        f"t{run}.windows",
        f"livepulse-test-{run}",
    )
    asyncio.run(create_topics(broker, [t.events, t.alerts, t.dlq, t.windows], partitions))
    return t


@pytest.fixture
def topics(broker: str) -> Topics:
    """Fresh topics and consumer group per test, so tests never see each other's records."""
    return new_topics(broker, partitions=4)


# Ports other brokers on these machines listen on (make run, benches): never handed out.
RESERVED_PORTS = frozenset({9092, 9093, 39092, 39093, 39292, 39293})


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


@dataclass
class WorkerProcess:
    """A real ``livepulse worker`` process."""

    env: dict[str, str]
    log_path: Path
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "processor.cli", "worker"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the worker and wait for it to exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"worker ignored signal {sig}; log: {self.log()}") from None
        code = self.proc.returncode
        self.exit_codes.append(code)
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


# Small windows and thresholds, so a few minutes of simulated traffic cross every tier,
# spike in likes and coins, reach goals and overflow the top-user summaries (8 users).
KILL_TEST_ENGINE = EngineConfig(
    tier_window_ms=30_000,
    tier_step_ms=5_000,
    tumbling_ms=20_000,
    grace_ms=10_000,
    moderate=150,
    high=1_000,
    session_moderate=2_000,
    session_high=8_000,
    top_users_tracked=8,
    spike_min_likes=100,
    spike_min_coins=200,
    spike_history_ms=10_000,
    like_goals=(5_000,),
    coin_goals=(1_000, 10_000),
)


def kill_test_env(worker_env: dict[str, str]) -> dict[str, str]:
    """Worker settings for tests that kill workers: frequent commits, and the shortest
    session timeout allowed (a killed worker holds its partitions until it expires)."""
    return (
        worker_env
        | engine_env(KILL_TEST_ENGINE)
        | {"LIVEPULSE_COMMIT_INTERVAL_SECONDS": "0.2", "LIVEPULSE_SESSION_TIMEOUT_SECONDS": "6"}
    )


def engine_env(config: EngineConfig) -> dict[str, str]:
    """The worker settings that give its engine ``config``."""
    return {
        "LIVEPULSE_TIER_WINDOW_SECONDS": str(config.tier_window_ms // 1000),
        "LIVEPULSE_TIER_STEP_SECONDS": str(config.tier_step_ms // 1000),
        "LIVEPULSE_TUMBLING_WINDOW_SECONDS": str(config.tumbling_ms // 1000),
        "LIVEPULSE_GRACE_SECONDS": str(config.grace_ms // 1000),
        "LIVEPULSE_TIER_MODERATE": str(config.moderate),
        "LIVEPULSE_TIER_HIGH": str(config.high),
        "LIVEPULSE_HYSTERESIS": str(config.hysteresis),
        "LIVEPULSE_SESSION_TIER_MODERATE": str(config.session_moderate),
        "LIVEPULSE_SESSION_TIER_HIGH": str(config.session_high),
        "LIVEPULSE_INACTIVITY_TIMEOUT_SECONDS": str(config.inactivity_ms // 1000),
        "LIVEPULSE_USD_PER_COIN": str(config.usd_per_coin),
        "LIVEPULSE_TOP_USERS": str(config.top_users),
        "LIVEPULSE_TOP_USERS_TRACKED": str(config.top_users_tracked),
        "LIVEPULSE_SPIKE_RATIO": str(config.spike_ratio),
        "LIVEPULSE_SPIKE_REARM_RATIO": str(config.spike_rearm_ratio),
        "LIVEPULSE_SPIKE_MIN_LIKES": str(config.spike_min_likes),
        "LIVEPULSE_SPIKE_MIN_COINS": str(config.spike_min_coins),
        "LIVEPULSE_SPIKE_HISTORY_SECONDS": str(config.spike_history_ms // 1000),
        "LIVEPULSE_LIKE_GOALS": ",".join(map(str, config.like_goals)),
        "LIVEPULSE_COIN_GOALS": ",".join(map(str, config.coin_goals)),
    }


def worker_env_for(broker: str, topics: Topics, tmp_path: Path) -> dict[str, str]:
    """A worker's environment for ``topics`` on ``broker``: its own data dir and metrics port."""
    return os.environ | {
        "LIVEPULSE_BROKER": broker,
        "LIVEPULSE_EVENTS_TOPIC": topics.events,
        "LIVEPULSE_ALERTS_TOPIC": topics.alerts,
        "LIVEPULSE_DLQ_TOPIC": topics.dlq,
        "LIVEPULSE_WINDOWS_TOPIC": topics.windows,
        "LIVEPULSE_APP_ID": topics.app_id,
        "LIVEPULSE_DATA_DIR": str(tmp_path / "worker-data"),
        "LIVEPULSE_METRICS_PORT": str(free_port()),
    }


@pytest.fixture
def worker_env(broker: str, topics: Topics, tmp_path: Path) -> dict[str, str]:
    return worker_env_for(broker, topics, tmp_path)


def kill_9_once_committed(
    worker: WorkerProcess, broker: str, topics: Topics, at_least: float, deadline_s: float = 180
) -> int:
    """Wait until the group has committed ``at_least`` records of the events topic, then
    ``kill -9`` the worker; returns how many were committed when the kill was decided."""
    deadline = time.monotonic() + deadline_s
    while (done := asyncio.run(committed_total(broker, topics.app_id, topics.events))) < at_least:
        assert time.monotonic() < deadline, f"stuck at {done}: {worker.log()}"
        time.sleep(0.01)
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    return done


@pytest.fixture
def unstarted_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker the test starts itself; if running at the end, stopped with SIGTERM, which
    must exit cleanly (0)."""
    w = WorkerProcess(
        worker_env, tmp_path / "worker.log", int(worker_env["LIVEPULSE_METRICS_PORT"])
    )
    yield w
    if w.proc is not None and w.proc.poll() is None:
        code = w.stop()
        assert code == 0, f"worker exited {code} on SIGTERM; log:\n{w.log()}"


@pytest.fixture
def worker(unstarted_worker: WorkerProcess) -> WorkerProcess:
    """A started worker; stopped with SIGTERM afterwards, which must exit cleanly (0)."""
    unstarted_worker.start()
    return unstarted_worker
