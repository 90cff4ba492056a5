"""The bench's shared parts: its broker, topics, consumer groups and child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local" / "bench"
MARK = "benchc-"  # in every topic and group a run makes, so an interrupted run's are found
_T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr, with the time since the bench started."""
    minutes, seconds = divmod(int(time.monotonic() - _T0), 60)
    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not stop the cleanup
        print(f"[bench {minutes:2d}:{seconds:02d}] {message}", file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass(frozen=True)
class Broker:
    """The bench's own KRaft broker, apart from `make run`'s (9092) and the tests'."""

    port: int = 39092
    controller_port: int = 39093
    home: Path = ROOT / ".local" / "kafka-bench"
    bootstrap = property(lambda self: f"127.0.0.1:{self.port}")

    def kafka_sh(self, command: str) -> bool:
        """``deploy/kafka/kafka.sh COMMAND`` for this broker; whether it succeeded."""
        env = {"PORT": str(self.port), "CONTROLLER_PORT": str(self.controller_port)}
        env = os.environ | {f"LIVEPULSE_KAFKA_{k}": v for k, v in env.items()}
        env["LIVEPULSE_KAFKA_HOME"] = str(self.home)
        argv = ["bash", str(ROOT / "deploy" / "kafka" / "kafka.sh"), command]
        # its own session: the Ctrl-C that stops the bench must not stop kafka.sh half-way
        done = subprocess.run(argv, env=env, capture_output=True, text=True, start_new_session=True)
        if done.returncode and command != "status":
            raise RuntimeError(f"kafka.sh {command} failed:\n{done.stdout}{done.stderr}")
        return done.returncode == 0


@contextlib.asynccontextmanager
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    async with admin(bootstrap) as client:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await client.create_topics([NewTopic(name, partitions, 1)])


async def delete_topics(bootstrap: str, containing: str) -> None:
    """Delete every topic whose name contains ``containing`` (cleanup: failures ignored)."""
    with contextlib.suppress(Exception):
        async with admin(bootstrap) as client:
            if names := [t for t in await client.list_topics() if containing in t]:
                await client.delete_topics(names, timeout_ms=30_000)


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic`` ({} when there is no such topic)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Send ``records`` (key, value) in order, and wait until all are acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        sent: list[asyncio.Future[Any]] = []
        for key, value in records:
            sent.append(await producer.send(topic, value, key=key))
            if len(sent) == 20_000:  # memory stays bounded
                await asyncio.gather(*sent)
                sent.clear()
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read(bootstrap: str, topic: str, ends: dict[int, int]) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topic`` below ``ends`` (partition: offset), from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        left = {TopicPartition(topic, p) for p, end in ends.items() if end > 0}
        consumer.assign(list(left))
        await consumer.seek_to_beginning()
        while left:
            for tp, batch in (await consumer.getmany(*left, timeout_ms=1_000)).items():
                for record in batch:
                    if record.offset < ends[tp.partition]:
                        yield record
            left = {tp for tp in left if await consumer.position(tp) < ends[tp.partition]}
    finally:
        await consumer.stop()


async def committed(client: AIOKafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    """The offset ``group`` committed on each partition of ``topic`` that has one."""
    try:
        offsets = await client.list_consumer_group_offsets(group)
    except KafkaError:
        return {}
    return {
        tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0
    }


def _partitions(assignment: bytes, topic: str) -> set[int]:
    decoded = ConsumerProtocolMemberAssignment.decode(assignment).assignment
    return {p for name, parts in decoded if name == topic for p in parts}


async def members(client: AIOKafkaAdminClient, group: str, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each member of ``group`` holds, once it is Stable."""
    with contextlib.suppress(Exception):  # KafkaError, or a member not of the consumer protocol
        for response in await client.describe_consumer_groups([group]):
            for found in response.to_object()["groups"]:
                if found["group"] == group and found["state"] == "Stable":
                    return [_partitions(m["member_assignment"], topic) for m in found["members"]]
    return []


class Child:
    """A process in a session of its own, so that its whole group can be stopped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            streams = {"stdin": subprocess.DEVNULL, "stdout": out, "stderr": out}
            self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True, **streams)

    def cpu(self) -> float:
        """Its user and system CPU seconds so far (0 once it is gone)."""
        with contextlib.suppress(OSError), open(f"/proc/{self.proc.pid}/stat") as stat:
            utime, stime = stat.read().rsplit(")", 1)[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def peak_rss(self) -> int:
        """Its peak resident set size in bytes, VmHWM (0 once it is gone)."""
        with contextlib.suppress(OSError), open(f"/proc/{self.proc.pid}/status") as status:
            return next((int(s.split()[1]) * 1024 for s in status if s.startswith("VmHWM:")), 0)
        return 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM, 30 s, then SIGKILL to its group; its exit code (-9: killed)."""
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        self.kill()
        return -9 if self.proc.returncode is None else self.proc.returncode

    def kill(self) -> None:
        """SIGKILL whatever is left of its process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def failed(self, what: str) -> dict[str, str]:
        """An error result: ``what`` happened, with the end of the process's log."""
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return {"error": f"{self.name} {what}; log {self.log}:\n{tail}"}


def worker_env(bootstrap: str, app_id: str, topic: str, port: int, data: Path) -> dict[str, str]:
    """The environment of a `livepulse worker` of ``app_id`` reading ``topic``."""
    data.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the data dir itself
    env = {"BROKER": bootstrap, "EVENTS_TOPIC": topic, "APP_ID": app_id, "DATA_DIR": str(data)}
    env |= {f"{t.upper()}_TOPIC": f"{app_id}.{t}" for t in ("alerts", "dlq", "windows")}
    return clean_env("LIVEPULSE_", env | {"METRICS_PORT": str(port)})


def clean_env(prefix: str, settings: dict[str, str]) -> dict[str, str]:
    """Our environment without bench or livepulse settings, and ``settings`` (``prefix``ed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEPULSE_", "BENCH_"))}
    return env | {"PYTHONUNBUFFERED": "1"} | {prefix + k: v for k, v in settings.items()}


def scrape(port: int) -> str:
    """A worker's /metrics text ("" if it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return bytes(response.read()).decode()
    except OSError:
        return ""


def metric(text: str, name: str) -> float | None:
    """The sum over labels of metric ``name`` in a /metrics text; None if it is not there."""
    found = [line for line in text.splitlines() if line.startswith((name + " ", name + "{"))]
    return sum(float(line.rsplit(" ", 1)[1]) for line in found) if found else None
