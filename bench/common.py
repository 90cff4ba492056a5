"""Shared pieces of the benchmark harness: broker, topics, child processes, measurements."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
LOCAL = ROOT / ".local" / "bench"

# The bench broker never shares ports or data with `make run` (9092) or the tests (19092).
DEFAULT_PORT = 39092
DEFAULT_CONTROLLER_PORT = 39093
DEFAULT_HOME = ROOT / ".local" / "kafka-bench"

_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, prefixed with the harness's elapsed time."""
    elapsed = int(time.monotonic() - _T0)
    # A closed stderr (e.g. `| tee` killed by the same Ctrl-C) must not stop the cleanup.
    with contextlib.suppress(OSError, ValueError):
        print(
            f"[bench {elapsed // 60:2d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True
        )


def quiet_kafka_logs() -> None:
    """aiokafka logs retries and coordinator changes at warning level; we only want errors."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports (all sockets held open until every port is picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


# ---------------------------------------------------------------------------- broker


@dataclass(frozen=True)
class Broker:
    """The bench's own local KRaft broker, driven through deploy/kafka/kafka.sh."""

    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    home: Path = DEFAULT_HOME

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return os.environ | {
            "LIVEPULSE_KAFKA_PORT": str(self.port),
            "LIVEPULSE_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LIVEPULSE_KAFKA_HOME": str(self.home),
        }

    def _run(self, command: str) -> subprocess.CompletedProcess[str]:
        # start_new_session: a Ctrl-C aimed at the harness must not kill kafka.sh half-way.
        return subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=self._env(),
            text=True,
            capture_output=True,
            check=False,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self._run("status").returncode == 0

    def up(self) -> None:
        result = self._run("up")
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh up failed:\n{result.stdout}{result.stderr}")

    def down(self) -> None:
        result = self._run("down")
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh down failed:\n{result.stdout}{result.stderr}")


# ---------------------------------------------------------------------------- topics


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create topics (replication 1); existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, partitions, 1, topic_configs=dict(configs or {}))]
                )
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Delete topics that exist; failures are ignored (cleanup only)."""
    wanted = set(names)
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = wanted & set(await admin.list_topics())
        if present:
            with contextlib.suppress(KafkaError):
                await admin.delete_topics(sorted(present), timeout_ms=30_000)
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Log end offset per partition of ``topic`` ({} if the topic does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            return {}
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


class OffsetWatcher:
    """Reads a consumer group's committed offsets on one topic (one admin connection)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.group = group
        self.topic = topic

    async def __aenter__(self) -> OffsetWatcher:
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()

    async def committed(self) -> int:
        """Sum of committed offsets over the topic's partitions (0 before the first commit)."""
        return sum((await self.committed_by_partition()).values())

    async def committed_by_partition(self) -> dict[int, int]:
        """Committed offset per partition of the topic that has one."""
        try:
            offsets = await self.admin.list_consumer_group_offsets(self.group)
        except KafkaError:
            return {}
        return {
            tp.partition: m.offset
            for tp, m in offsets.items()
            if tp.topic == self.topic and m.offset > 0
        }

    async def members(self) -> list[set[int]]:
        """The topic's partitions each member holds, once the group is Stable; [] otherwise.

        Asks the broker (DescribeGroups), so it holds whatever client the members use.
        """
        try:
            responses = await self.admin.describe_consumer_groups([self.group])
        except KafkaError:
            return []
        for response in responses:
            for group in response.to_object()["groups"]:
                if group["group"] == self.group and group["state"] == "Stable":
                    return [self._held(m["member_assignment"]) for m in group["members"]]
        return []

    def _held(self, raw: bytes) -> set[int]:
        try:
            assignment = ConsumerProtocolMemberAssignment.decode(raw).assignment
        except Exception:  # not the consumer protocol's layout: a member all the same
            return set()
        return {p for topic, parts in assignment if topic == self.topic for p in parts}


# ---------------------------------------------------------------------------- processes


@dataclass
class Sample:
    t: float  # time.time()
    cpu_s: float  # user + system of the whole process tree
    rss: int  # bytes, whole process tree


@dataclass
class ProcessMonitor:
    """Samples CPU seconds and RSS of a process and its children on a background thread."""

    pid: int
    interval_s: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    hwm: int = 0  # VmHWM of the main process, read at the last sample it was alive for
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bench-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        known: dict[int, psutil.Process] = {self.pid: proc}
        gone_cpu = 0.0  # CPU of children that have exited since we saw them
        last_cpu: dict[int, float] = {}
        while not self._stop.is_set():
            try:
                for child in proc.children(recursive=True):
                    known.setdefault(child.pid, child)
            except psutil.Error:
                pass
            cpu = 0.0
            rss = 0
            for pid, p in list(known.items()):
                try:
                    with p.oneshot():
                        times = p.cpu_times()
                        used = times.user + times.system
                        rss += p.memory_info().rss
                    last_cpu[pid] = used
                    cpu += used
                except psutil.Error:
                    gone_cpu += last_cpu.pop(pid, 0.0)
                    del known[pid]
            if self.pid not in known:
                break
            hwm = read_vm_hwm(self.pid)
            with self._lock:
                self.hwm = max(self.hwm, hwm)
                self.samples.append(Sample(time.time(), cpu + gone_cpu, rss))
            self._stop.wait(self.interval_s)

    def cpu_at(self, t: float) -> float:
        """CPU seconds of the tree at time ``t`` (linear between samples)."""
        with self._lock:
            samples = list(self.samples)
        if not samples:
            return 0.0
        times = [s.t for s in samples]
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return samples[0].cpu_s
        if i >= len(samples):
            return samples[-1].cpu_s
        a, b = samples[i - 1], samples[i]
        frac = (t - a.t) / (b.t - a.t) if b.t > a.t else 1.0
        return a.cpu_s + frac * (b.cpu_s - a.cpu_s)

    @property
    def peak_rss(self) -> int:
        with self._lock:
            sampled = max((s.rss for s in self.samples), default=0)
            return max(sampled, self.hwm)

    @property
    def cpu_total(self) -> float:
        with self._lock:
            return self.samples[-1].cpu_s if self.samples else 0.0


def read_vm_hwm(pid: int) -> int:
    """Peak resident set size (VmHWM) of a live process in bytes, 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Child:
    """A contender or helper process in its own session, so we can stop its whole group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        interval_s: float = 0.1,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.monitor = ProcessMonitor(self.proc.pid, interval_s)
        self.monitor.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return self.proc.poll()

    def terminate(self) -> None:
        """SIGTERM the process without waiting (``stop`` waits), to stop several at once."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace_s: float = 30.0) -> int:
        """SIGTERM the process, SIGKILL its group if it lingers; always reaps it."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                say(f"{self.name} ignored SIGTERM for {grace_s:.0f}s; killing it")
        self.kill_group()
        self.monitor.stop()
        self._log.close()
        return self.proc.returncode if self.proc.returncode is not None else -9

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (its own session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
