"""The worker's HTTP endpoint: Prometheus metrics, and the probes Kubernetes asks.

- ``/healthz`` (liveness): 200 while the process answers and the worker's event loop runs
  a no-op within :data:`LOOP_TIMEOUT_S`; 503 when the loop is stuck or stopped.
- ``/readyz`` (readiness): 200 once the worker is connected, in its consumer group, and
  every partition assigned to it is restored from its checkpoint; 503 before that, during
  a rebalance, and after a fatal error. The body says which.
- any other path: the metrics, as ``prometheus_client`` serves them.

The server runs in its own threads, so a probe can see a stuck event loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

LOOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Status:
    ok: bool
    detail: str


class Probes:
    """What the probes answer. The worker sets ``loop`` once its event loop runs and
    ``readiness`` once it exists; until then the process is alive and not ready."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.readiness: Callable[[], Status] = lambda: Status(False, "starting")

    def health(self) -> Status:
        loop = self.loop
        if loop is None:
            return Status(True, "starting")
        if loop.is_closed() or not loop.is_running():
            return Status(False, "event loop stopped")
        try:
            asyncio.run_coroutine_threadsafe(_pong(), loop).result(LOOP_TIMEOUT_S)
        except TimeoutError:
            return Status(False, f"event loop did not respond within {LOOP_TIMEOUT_S:g} s")
        except RuntimeError as exc:  # closed between the check and the call
            return Status(False, f"event loop stopped ({exc})")
        return Status(True, "ok")

    def ready(self) -> Status:
        try:
            return self.readiness()
        except Exception as exc:  # a probe answers, whatever the state
            return Status(False, f"readiness unknown: {type(exc).__name__}: {exc}")


async def _pong() -> None:
    return None


def probe_app(registry: CollectorRegistry, probes: Probes) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: probes on their paths, metrics everywhere else."""
    metrics = make_wsgi_app(registry)
    checks = {"/healthz": probes.health, "/readyz": probes.ready}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        check = checks.get(environ.get("PATH_INFO", ""))
        if check is None:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        status = check()
        start_response(
            "200 OK" if status.ok else "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
        )
        return [status.detail.encode() + b"\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        pass


def serve(host: str, port: int, registry: CollectorRegistry, probes: Probes) -> ThreadingWSGIServer:
    """Serve metrics and probes on ``host:port`` from a daemon thread (OSError if the port
    is taken); the returned server's ``server_port`` is the port bound."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    httpd: ThreadingWSGIServer = make_server(
        host, port, probe_app(registry, probes), Server, handler_class=_QuietHandler
    )
    threading.Thread(target=httpd.serve_forever, name="livepulse-http", daemon=True).start()
    return httpd


__all__ = ["LOOP_TIMEOUT_S", "Probes", "Status", "probe_app", "serve"]
