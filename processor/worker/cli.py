"""``livepulse worker``: run the Faust worker and the metrics endpoint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from processor import core_is_compiled
from processor.metrics import Metrics
from processor.settings import Settings
from processor.worker.http import Probes, serve


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="consume live.events, keep windowed counts, publish tier alerts",
        description=(
            "Consume the events topic, keep per-stream windowed likes, gifts, coins and "
            "estimated creator USD, publish tier_changed alerts to the alerts topic, send "
            "invalid records to the dead-letter topic, and serve Prometheus metrics at "
            "/metrics with the probes /healthz (alive) and /readyz (partitions assigned and "
            "restored). Checks the broker connection first (within 20 s; a failure names the "
            "setting to check and exits 2). Stops cleanly on Ctrl-C or SIGTERM."
        ),
    )
    parser.set_defaults(handler=run_worker)


SHUTDOWN_TIMEOUT_S = 20.0


def _force_exit() -> None:
    print(
        f"livepulse worker: shutdown did not finish within {SHUTDOWN_TIMEOUT_S:.0f} s "
        "(broker unreachable?); exiting now. Work since the last checkpoint is replayed "
        "on the next start.",
        file=sys.stderr,
        flush=True,
    )
    os._exit(3)


def _connection(settings: Settings) -> str:
    """How the worker connects, for its first line of output (never the password)."""
    if settings.uses_sasl:
        return (
            f"{settings.security_protocol}, {settings.sasl_mechanism} as {settings.sasl_username!r}"
        )
    return settings.security_protocol


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from faust import Worker  # imported late: faust is slow to import for other commands

    from processor.worker.app import LivepulseWorker, create_app

    class _BoundedShutdownWorker(Worker):
        """Faust's worker, but Ctrl-C / SIGTERM stop it within a bounded time.

        A graceful stop flushes and commits, which waits forever for a broker that is
        gone; checkpoints make a hard exit safe, so after a grace period we take it.
        """

        def _schedule_shutdown(self, signal: Any) -> None:
            watchdog = threading.Timer(SHUTDOWN_TIMEOUT_S, _force_exit)
            watchdog.daemon = True
            watchdog.start()
            super()._schedule_shutdown(signal)

    registry = CollectorRegistry(auto_describe=True)
    metrics = Metrics(registry, usd_per_coin=settings.usd_per_coin, top_k=settings.top_k)
    probes = Probes()
    try:
        serve(settings.metrics_host, settings.metrics_port, registry, probes)
    except OSError as exc:
        print(
            f"livepulse worker: cannot serve metrics on "
            f"{settings.metrics_host}:{settings.metrics_port} ({exc.strerror}); "
            "set LIVEPULSE_METRICS_PORT to a free port",
            file=sys.stderr,
        )
        return 2
    print(
        f"livepulse worker: broker {settings.broker} ({_connection(settings)}), events {settings.events_topic!r}, "
        f"alerts {settings.alerts_topic!r}, dead letters {settings.dlq_topic!r}, metrics "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics, core "
        f"{'compiled' if core_is_compiled() else 'pure Python (LIVEPULSE_PURE_PYTHON or no compiler at install)'}",
        file=sys.stderr,
        flush=True,
    )
    from processor.kafka_client import BrokerUnavailable, check_broker
    from processor.worker.state_store import StartupError, StateStore

    loop = asyncio.new_event_loop()  # not the default loop: Faust sets up its own
    try:
        loop.run_until_complete(check_broker(settings))
        loop.run_until_complete(StateStore(settings).ensure_topics())
    except BrokerUnavailable as exc:
        print(f"livepulse worker: cannot connect to Kafka broker at {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"livepulse worker: {exc}", file=sys.stderr)
        return 2
    finally:
        loop.close()
    app = create_app(settings, metrics, probes)
    worker = _BoundedShutdownWorker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    )
    livepulse: LivepulseWorker = app.livepulse_worker  # type: ignore[attr-defined]

    def stop_on_fatal(error: Exception) -> None:
        print(f"livepulse worker: {error}", file=sys.stderr, flush=True)
        worker._schedule_shutdown(signal.SIGTERM)

    livepulse.owned.on_fatal = stop_on_fatal
    logging.getLogger("livepulse").setLevel(settings.log_level.upper())
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    return 2 if livepulse.owned.fatal is not None else code
