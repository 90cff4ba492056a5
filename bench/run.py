"""Benchmark livepulse (one worker, two) against a raw-consumer ceiling, Faust, Quix Streams
and Kafka Streams, on two workloads.

One run: start the bench's own Kafka broker (unless it is running), pre-fill a topic with
each workload (bench.workload: the platform-like ``heavy`` one of bench.heavy, which the
targets are judged on, and the simulator's gentler one; both reused by later runs while
they and their generators are unchanged), then, workload by workload, run each contender
as its own process, one after another, on the same records:

  ceiling      raw aiokafka consumer + orjson.loads per record, nothing else
  faust-floor  Faust agent that only iterates the stream and decodes (no tables): the
               per-message cost of Faust itself, under any Faust app (not in --quick)
  naive-faust  Faust agent, likes per stream in Faust windowed tables (tumbling 60 s +
               hopping 600 s / --faust-hop-step s), `+=` per like event, changelogs on (not in --quick)
  quix         Quix Streams: per-stream 60 s tumbling sum of likes on event time
  kstreams     Kafka Streams 4.3.1 (bench/kstreams, built here with Maven): the same sum,
               one stream thread, RocksDB window store, suppressed until the window closes;
               the JVM is measured whole-process like the others, JIT warm-up included
  livepulse    `livepulse worker` doing its full job (alerts, windows, DLQ, snapshots),
               with the default guarantee, at_least_once
  livepulse-eos  the same with LIVEPULSE_PROCESSING_GUARANTEE=exactly_once: outputs,
               checkpoint and offsets in one transaction per partition and commit
  livepulse-pure  the same with LIVEPULSE_PURE_PYTHON=1: the core's Python source instead
               of its mypyc-compiled modules (only when --only names it)
  livepulse-2  two `livepulse worker` processes in one consumer group (same app id,
               their own metrics ports and data dirs) sharing the same topic

Throughput = records / wall time from the first record (first commit, for consumer
groups; for livepulse-2 the first commit once both workers are in the group) to the
last, so start-up is left out. CPU = user+system seconds of the process tree over that
span; peak RSS = the highest resident set seen (and VmHWM); for livepulse-2 both summed
over the two workers. Then livepulse again, fresh, at half its measured events/s, for
event-to-alert latency as a read_uncommitted and a read_committed subscriber see it, once
per guarantee, and its state snapshot size per active stream. Checkpoint cost:
the workers' livepulse_checkpoint_{bytes,records}_total read at both ends of livepulse's
measured span (full load) and of the latency step (paced), per second and per commit.
Then the restore step (bench.restore): a worker holding 100,000 streams is killed -9 and
restarted, timed until it is restored and processing again; bench.state_memory's
tracemalloc measure of memory per stream; and bench.micro's in-process µs per event
(apply, checkpoint) on each workload. The table checks livepulse against its targets
(met / missed) on the heavy workload and sets two workers against one on each.
Results: bench-results/<stamp>.json, .png, latest.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from traceback import format_exc
from typing import Any

import psutil

from bench import report, restore
from bench.common import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_HOME,
    DEFAULT_PORT,
    LOCAL,
    ROOT,
    Broker,
    Child,
    OffsetWatcher,
    create_topics,
    delete_topics,
    end_offsets,
    free_port,
    free_ports,
    list_topics,
    quiet_kafka_logs,
    say,
)
from bench.restore import read_state
from bench.workload import Workload, ensure_prefilled
from processor.settings import Settings

CONTENDERS = report.ORDER
DEFAULT_GUARANTEE = Settings().processing_guarantee
# every contender commits as often as livepulse does by default (BENCH_COMMIT_SECONDS)
COMMIT_SECONDS = Settings().commit_interval
WORKLOADS = ("heavy", "simulator")  # heavy first: the targets are judged on it
KSTREAMS = ROOT / "bench" / "kstreams"
MARK = "benchc-"  # in every name a contender creates, so leftovers can be found and deleted
POLL_S = 0.25
# Before each contender the machine gets to settle: the broker deletes the last one's
# topics and Kafka Streams' JVM exits, and whichever contender ran next used to pay for it
# (livepulse after Kafka Streams: 23.2 against 21.6 CPU s per million run alone).
SETTLE_BUSY = 0.25  # of all cores, over one second
SETTLE_MAX_S = 30.0
SHORT_SPAN_S = 5.0  # a measured span shorter than this holds only a few commits


@dataclass(frozen=True)
class Profile:
    events: int
    streams: int
    partitions: int
    max_seconds: float
    faust_max_seconds: float
    latency_seconds: float
    contenders: tuple[str, ...]


# livepulse-pure (the worker with LIVEPULSE_PURE_PYTHON=1) only runs when --only names it
DEFAULT_CONTENDERS = tuple(c for c in CONTENDERS if c != "livepulse-pure")
FULL = Profile(2_000_000, 10_000, 8, 900.0, 150.0, 60.0, DEFAULT_CONTENDERS)
# 1M events a workload: the batched worker needs several seconds of work to time at all;
# a contender stops at a 40 s cap and reports its rate so far; no Faust (about 1,000 ev/s).
QUICK = Profile(
    1_000_000, 1_000, 4, 40.0, 15.0, 15.0, tuple(c for c in DEFAULT_CONTENDERS if "faust" not in c)
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  make bench                       # full run (about 20 min the first time)\n"
            "  make bench-quick                 # 1M events a workload: 8-12 min\n"
            "  python -m bench.run --only ceiling,livepulse --events 500000\n"
            "  python -m bench.run --quick --workload heavy --port 39192 --controller-port 39193\n"
            "  python -m bench.run --keep-broker   # leave the bench broker up for reruns\n\n"
            f"The bench broker listens on 127.0.0.1:{DEFAULT_PORT} (controller {DEFAULT_CONTROLLER_PORT}),\n"
            f"data in {DEFAULT_HOME.relative_to(ROOT)}/; it is started if not running and stopped at\n"
            "the end if this run started it. Ctrl-C stops every process the run started."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small workloads: {QUICK.events:,} events each, the simulator's over "
        f"{QUICK.streams:,} streams and {QUICK.partitions} partitions, short caps",
    )
    parser.add_argument(
        "--workload",
        choices=("heavy", "simulator", "both"),
        default="both",
        help="heavy: bench.heavy's 10,000 lognormal streams and 100,000 users over 8 "
        "partitions (the targets are judged on it); simulator: the simulator's events "
        "(default both)",
    )
    parser.add_argument(
        "--events", type=int, help=f"records to pre-fill per workload (default {FULL.events:,})"
    )
    parser.add_argument(
        "--streams",
        type=int,
        help=f"concurrent live streams of the simulator's workload (default {FULL.streams:,})",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        help=f"partitions of the simulator's topic (default {FULL.partitions}; heavy: 8)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--rate",
        type=float,
        default=10_000.0,
        help="the simulator's virtual events/s, i.e. how much event time the workload spans "
        "(default 10,000: 2M events are about 170 s of event time)",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated contenders to run (default: {','.join(DEFAULT_CONTENDERS)}; "
        "--quick leaves out faust-floor and naive-faust; livepulse-pure, the worker with "
        "LIVEPULSE_PURE_PYTHON=1, runs only when named)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        help=f"stop a contender that has not finished after this long and report it as partial "
        f"(default {FULL.max_seconds:.0f}, quick {QUICK.max_seconds:.0f})",
    )
    parser.add_argument(
        "--faust-max-seconds",
        type=float,
        help=f"the same cap for naive Faust (a few hundred events/s) and faust-floor "
        f"(default {FULL.faust_max_seconds:.0f}, quick {QUICK.faust_max_seconds:.0f})",
    )
    parser.add_argument(
        "--faust-hop-step",
        type=float,
        default=60.0,
        help="hop of naive Faust's 600 s hopping table in seconds: every like writes 600/step "
        "windows (default 60; livepulse's tier window steps by 10 s)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help=f"seconds of paced load for livepulse's latency (default {FULL.latency_seconds:.0f}, "
        f"quick {QUICK.latency_seconds:.0f}; 0 skips it)",
    )
    parser.add_argument(
        "--eos-commit-interval",
        type=float,
        help="LIVEPULSE_COMMIT_INTERVAL_SECONDS of the exactly_once worker (livepulse-eos and "
        "its latency step); default: the setting's default, as for at_least_once",
    )
    parser.add_argument(
        "--restore-streams",
        type=int,
        default=restore.STREAMS,
        help=f"streams of the restore step: held by a worker that is killed -9 and restarted "
        f"(default {restore.STREAMS:,}, the target's; 0 skips it)",
    )
    parser.add_argument(
        "--refill", action="store_true", help="pre-fill again even if a matching topic exists"
    )
    parser.add_argument(
        "--broker", metavar="HOST:PORT", help="use this running broker instead of the bench's own"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"bench broker port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--controller-port",
        type=int,
        default=DEFAULT_CONTROLLER_PORT,
        help=f"bench broker controller port (default {DEFAULT_CONTROLLER_PORT})",
    )
    parser.add_argument(
        "--kafka-home", type=Path, default=DEFAULT_HOME, help="bench broker data dir"
    )
    parser.add_argument(
        "--keep-broker", action="store_true", help="leave the bench broker running at the end"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-results", help="results directory"
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    for name in (
        "events",
        "streams",
        "partitions",
        "max_seconds",
        "faust_max_seconds",
        "latency_seconds",
    ):
        if getattr(args, name) is None:
            setattr(args, name, getattr(profile, name))
    if args.only is None:
        args.only = list(profile.contenders)
    else:
        args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(args.only) - set(CONTENDERS)
    if unknown:
        parser.error(f"--only: unknown contender(s) {', '.join(sorted(unknown))}")
    if args.events < 1 or args.streams < 1 or args.partitions < 1:
        parser.error("--events, --streams and --partitions must be >= 1")
    args.workloads = WORKLOADS if args.workload == "both" else (args.workload,)
    return args


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as fh:
        mem_gb = int(fh.readline().split()[1]) / 1024 / 1024
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": "Apache Kafka 4.3.1 (KRaft, single node, deploy/kafka/kafka.sh)",
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("aiokafka", "faust-streaming", "quixstreams", "confluent-kafka", "orjson"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    pom = (KSTREAMS / "pom.xml").read_text()
    out["kafka-streams"] = pom.split("<kafka.version>", 1)[1].split("<", 1)[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        out["java"] = java.stderr.splitlines()[0]
    return out


@functools.cache
def kstreams_jar() -> Path:
    """bench/kstreams's shaded jar, built with Maven unless it is from the current sources
    (offline first; online the first time, to resolve the dependencies from Maven Central)."""
    sources = [KSTREAMS / "pom.xml", *sorted((KSTREAMS / "src").rglob("*.java"))]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    jar = KSTREAMS / "target" / "kstreams-bench.jar"
    stamp = KSTREAMS / "target" / "sources.sha256"
    if jar.exists() and stamp.exists() and stamp.read_text() == digest:
        return jar
    say("building the Kafka Streams contender: mvn package in bench/kstreams")
    log = LOCAL / "kstreams-mvn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for offline in (["-o"], []):
        with log.open("w") as out:
            cmd = ["mvn", "-B", "-q", *offline, "-f", str(KSTREAMS / "pom.xml"), "package"]
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode == 0:
                stamp.write_text(digest)
                return jar
    raise RuntimeError(f"mvn package failed in {KSTREAMS}; log {log}")


class Run:
    """One bench run: its names, directories, and the measurement of each contender."""

    def __init__(
        self, args: argparse.Namespace, bootstrap: str, workload: Workload, run_id: str
    ) -> None:
        self.args = args
        self.bootstrap = bootstrap
        self.workload = workload
        self.topic = workload.topic
        self.run_id = f"{run_id}-{workload.kind}"
        self.tmp = LOCAL / "tmp" / run_id / workload.kind
        self.logs = LOCAL / "logs" / run_id / workload.kind
        self.total = workload.events
        self.children: list[Child] = []

    def name(self, contender: str) -> str:
        return f"{MARK}{self.run_id}-{contender}"

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEPULSE_", "BENCH_"))}
        env["PYTHONUNBUFFERED"] = "1"
        env["BENCH_COMMIT_SECONDS"] = f"{COMMIT_SECONDS:g}"
        return env | extra

    def start(
        self, contender: str, argv: list[str], env: dict[str, str], interval_s: float = 0.1
    ) -> Child:
        child = Child(contender, argv, env, self.logs / f"{contender}.log", interval_s)
        self.children.append(child)
        return child

    def stop_children(self) -> list[int]:
        """Stop every process started since the last call (all signalled at once); exit codes."""
        children, self.children = self.children, []
        for child in children:
            child.terminate()
        return [child.stop() for child in children]

    async def cleanup_topics(self, contender: str) -> None:
        mine = {t for t in await list_topics(self.bootstrap) if self.name(contender) in t}
        await delete_topics(self.bootstrap, mine)

    # -- contenders ---------------------------------------------------------------------

    async def ceiling(self) -> dict[str, Any]:
        result_path = self.tmp / "ceiling.json"
        child = self.start(
            "ceiling",
            [
                sys.executable,
                "-m",
                "bench.ceiling",
                self.bootstrap,
                self.topic,
                str(self.workload.partitions),
                str(result_path),
            ],
            self.env({}),
            interval_s=0.02,
        )
        launched = time.time()
        code = await child.wait(self.args.max_seconds)
        if code is None:
            self.stop_children()
            return {"error": f"did not finish in {self.args.max_seconds:.0f}s"}
        monitor = child.monitor
        self.stop_children()
        if code != 0:
            return {"error": f"exit code {code}; log {child.log_path}:\n{child.tail()}"}
        data = json.loads(result_path.read_text())
        t_first, t_last, records = data["t_first"], data["t_last"], data["records"]
        wall = max(t_last - t_first, 1e-6)
        cpu = monitor.cpu_at(t_last) - monitor.cpu_at(t_first)
        return {
            "events_per_s": round(records / wall, 1),
            "wall_s": round(wall, 3),
            "startup_s": round(t_first - launched, 2),
            "records_done": records,
            "records_total": self.total,
            "complete": records == self.total,
            "cpu_s": round(cpu, 2),
            "cpu_s_per_million": round(cpu / records * 1e6, 1),
            "cpu_s_total": round(monitor.cpu_total, 2),
            "peak_rss_mb": round(monitor.peak_rss / 2**20, 1),
            "exit_code": code,
            "note": "wall time from first fetched batch to last record",
        }

    async def group_contender(
        self,
        contender: str,
        procs: list[tuple[list[str], dict[str, str]]],
        group: str,
        cap_s: float,
        on_done: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        probe: Callable[[], Awaitable[dict[str, float]]] | None = None,
    ) -> dict[str, Any]:
        """Run a consumer-group contender until the group's committed offsets reach the end.

        ``procs`` holds ``(argv, env)`` of each process of the contender, all members of
        ``group`` on the bench topic. Events/s is the growth of the group's summed committed
        offsets from the first commit to the last; with several processes the span starts
        at the first commit once all of them are in the (Stable) group, so it measures them
        working together rather than the first one alone before the rest joined. CPU and
        peak RSS are summed over the processes' trees. ``probe`` (the processes' metrics),
        if given, is read when the measured span starts and when it ends: ``result["probe"]``
        holds both readings, their times, and the commits seen between them.
        """
        n = len(procs)
        children = [
            self.start(contender if n == 1 else f"{contender}.{i}", argv, env)
            for i, (argv, env) in enumerate(procs, 1)
        ]
        launched = time.time()
        first_any: tuple[float, int] | None = None  # the group's first commit
        first: tuple[float, int] | None = None  # the first commit with all n members in
        last: tuple[float, int] = (launched, 0)
        offsets: dict[int, int] = {}
        at_first: dict[int, int] = {}  # per partition, when the measured span starts
        held: list[set[int]] = []  # partitions of each member, n > 1 only
        most = 0  # the most members seen in the Stable group
        next_report = launched + 5.0
        extra: dict[str, Any] = {}
        error = None
        probed: dict[str, Any] = {}
        commits_seen = 0  # changes of the committed total in the measured span
        async with OffsetWatcher(self.bootstrap, group, self.topic) as watcher:
            while True:
                offsets = await watcher.committed_by_partition()
                committed = sum(offsets.values())
                if n > 1 and first is None:
                    held = await watcher.members()
                    most = max(most, len(held))
                now = time.time()
                if committed and first_any is None:
                    first_any = (now, committed)
                if committed and first is None and (n == 1 or len(held) >= n):
                    first, at_first = (now, committed), offsets
                    if probe is not None:
                        probed["start"] = {"t": time.time(), "metrics": await probe()}
                elif first is not None and committed != last[1]:
                    commits_seen += 1
                last = (now, committed)
                if committed >= self.total:
                    break
                dead = next((c for c in children if not c.alive()), None)
                if dead is not None:
                    error = (
                        f"{dead.name} exited with code {dead.proc.returncode}; "
                        f"log {dead.log_path}:\n{dead.tail()}"
                    )
                    break
                if now - launched > cap_s:
                    break
                if now >= next_report:
                    rate = (
                        (committed - first[1]) / (now - first[0]) if first and now > first[0] else 0
                    )
                    joined = (
                        f", {len(held)}/{n} workers in the group" if n > 1 and not first else ""
                    )
                    say(
                        f"  {contender}: {committed:>11,}/{self.total:,} committed "
                        f"({100 * committed / self.total:3.0f}%), {rate:,.0f} ev/s{joined}"
                    )
                    next_report = now + 5.0
                await asyncio.sleep(POLL_S)
            held_at_end = await watcher.members() if n > 1 and first else []
        if probe is not None and probed and all(c.alive() for c in children):
            probed["end"] = {"t": time.time(), "metrics": await probe()}
            probed["commits_seen"] = commits_seen
            probed["poll_s"] = POLL_S
        if on_done is not None and error is None:
            extra = await on_done()
        monitors = [child.monitor for child in children]
        codes = self.stop_children()
        result: dict[str, Any] = {"exit_code": codes[0] if n == 1 else codes, **extra}
        if probed.get("end"):
            result["probe"] = probed
        notes = []
        if n > 1:
            result["processes"] = n
            if first is not None:
                # Records each worker committed in the measured span, by the partitions it held.
                result |= {
                    "all_workers_joined_s": round(first[0] - launched, 2),
                    "partitions_per_worker": [sorted(h) for h in held],
                    "records_per_worker": [
                        sum(offsets.get(p, 0) - at_first.get(p, 0) for p in h) for h in held
                    ],
                }
                if sorted(map(sorted, held_at_end)) != sorted(map(sorted, held)):
                    notes.append("the group rebalanced during the measured span")
            else:
                result["all_workers_joined_s"] = None
            result["first_commit_s"] = round(first_any[0] - launched, 2) if first_any else None
            result["committed_before_all_joined"] = (
                first[1] - first_any[1] if first and first_any else None
            )
        if first is None and first_any is not None:
            # Every record was committed (or the cap hit) before all n were in the group:
            # the numbers are the first workers' alone.
            first = first_any
            notes.append(
                f"at most {most} of {n} workers were in the group before the end: "
                "too few records for them to share (more --events)"
            )
        if first is None:
            logs = ", ".join(str(child.log_path) for child in children)
            result["error"] = error or f"committed nothing in {cap_s:.0f}s; log {logs}"
            return result
        complete = last[1] >= self.total
        t0, c0 = first
        t1, c1 = last
        span = max(t1 - t0, 1e-6)
        done = c1 - c0
        cpu = sum(m.cpu_at(t1) - m.cpu_at(t0) for m in monitors)
        result |= {
            "events_per_s": round(done / span, 1) if done > 0 else None,
            "wall_s": round(span, 2),
            "startup_s": round(t0 - launched, 2),
            "records_done": c1,
            "records_total": self.total,
            "complete": complete,
            "cpu_s": round(cpu, 2),
            "cpu_s_per_million": round(cpu / done * 1e6, 1) if done > 0 else None,
            "cpu_s_total": round(sum(m.cpu_total for m in monitors), 2),
            "peak_rss_mb": round(sum(m.peak_rss for m in monitors) / 2**20, 1),
        }
        if error:
            result["error"] = error
        if not complete and not error:
            notes.append(f"partial: stopped at the {cap_s:.0f}s cap")
        if done <= 0 and complete:
            notes.append(
                "every record was in the first commit seen: nothing to time (more --events)"
            )
        elif span < SHORT_SPAN_S:
            notes.append(f"only {span:.1f}s between first and last commit: coarse (more --events)")
        if notes:
            result["note"] = "; ".join(notes)
        return result

    async def naive_faust(self) -> dict[str, Any]:
        app_id = self.name("naive-faust")
        env = self.env(
            {
                "BENCH_BROKER": self.bootstrap,
                "BENCH_TOPIC": self.topic,
                "BENCH_APP_ID": app_id,
                "BENCH_PARTITIONS": str(self.workload.partitions),
                "BENCH_DATA_DIR": str(self.tmp / "naive-faust"),
                "BENCH_HOP_SIZE": "600",
                "BENCH_HOP_STEP": f"{self.args.faust_hop_step:g}",
            }
        )
        result = await self.group_contender(
            "naive-faust",
            [([sys.executable, "-m", "bench.naive_faust"], env)],
            app_id,
            self.args.faust_max_seconds,
        )
        result["config"] = (
            f"tumbling 60 s + hopping 600/{self.args.faust_hop_step:g} s, in-memory, changelogs"
        )
        return result

    async def faust_floor(self) -> dict[str, Any]:
        app_id = self.name("faust-floor")
        env = self.env(
            {
                "BENCH_BROKER": self.bootstrap,
                "BENCH_TOPIC": self.topic,
                "BENCH_APP_ID": app_id,
                "BENCH_PARTITIONS": str(self.workload.partitions),
                "BENCH_DATA_DIR": str(self.tmp / "faust-floor"),
                "BENCH_MODE": "floor",
            }
        )
        result = await self.group_contender(
            "faust-floor",
            [([sys.executable, "-m", "bench.naive_faust"], env)],
            app_id,
            self.args.faust_max_seconds,
        )
        result["config"] = "Faust agent: async for value in stream: orjson.loads(value)"
        return result

    async def quix(self) -> dict[str, Any]:
        if importlib.util.find_spec("quixstreams") is None:
            return {"skipped": "quixstreams is not installed: pip install -e '.[bench]'"}
        group = self.name("quix")
        env = self.env(
            {
                "BENCH_BROKER": self.bootstrap,
                "BENCH_TOPIC": self.topic,
                "BENCH_GROUP": group,
                "BENCH_STATE_DIR": str(self.tmp / "quix"),
            }
        )
        result = await self.group_contender(
            "quix", [([sys.executable, "-m", "bench.quix"], env)], group, self.args.max_seconds
        )
        result["config"] = "tumbling 60 s sum on event time, RocksDB + changelog"
        return result

    async def kstreams(self) -> dict[str, Any]:
        jar = await asyncio.to_thread(kstreams_jar)
        group = self.name("kstreams")
        await create_topics(self.bootstrap, [f"{group}.out"], self.workload.partitions)
        env = self.env(
            {
                "BENCH_BROKER": self.bootstrap,
                "BENCH_TOPIC": self.topic,
                "BENCH_GROUP": group,
                "BENCH_STATE_DIR": str(self.tmp / "kstreams"),
            }
        )
        argv = ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-jar", str(jar)]
        result = await self.group_contender("kstreams", [(argv, env)], group, self.args.max_seconds)
        result["config"] = (
            "one stream thread, tumbling 60 s sum on event time (RocksDB window store + "
            "changelog), suppressed until the window closes; the JVM's defaults, JIT warm-up "
            "inside the measured span"
        )
        return result

    def livepulse_env(
        self,
        app_id: str,
        events_topic: str,
        metrics_port: int,
        data_dir: Path | None = None,
        guarantee: str = DEFAULT_GUARANTEE,
    ) -> dict[str, str]:
        interval = self.args.eos_commit_interval if guarantee == "exactly_once" else None
        return self.env(
            ({"LIVEPULSE_COMMIT_INTERVAL_SECONDS": f"{interval:g}"} if interval else {})
            | {
                "LIVEPULSE_PROCESSING_GUARANTEE": guarantee,
                "LIVEPULSE_BROKER": self.bootstrap,
                "LIVEPULSE_EVENTS_TOPIC": events_topic,
                "LIVEPULSE_ALERTS_TOPIC": f"{app_id}.alerts",
                "LIVEPULSE_DLQ_TOPIC": f"{app_id}.dlq",
                "LIVEPULSE_WINDOWS_TOPIC": f"{app_id}.windows",
                "LIVEPULSE_APP_ID": app_id,
                "LIVEPULSE_DATA_DIR": str(data_dir or self.tmp / app_id),
                "LIVEPULSE_METRICS_PORT": str(metrics_port),
            }
        )

    async def livepulse(
        self, workers: int = 1, guarantee: str = DEFAULT_GUARANTEE, pure: bool = False
    ) -> dict[str, Any]:
        """``workers`` `livepulse worker` processes in one consumer group on the bench topic
        (``pure``: the core's Python source, not the compiled modules)."""
        contender = "livepulse" if workers == 1 else f"livepulse-{workers}"
        if guarantee != DEFAULT_GUARANTEE:
            contender += "-eos"
        if pure:
            contender += "-pure"
        app_id = self.name(contender)
        ports = free_ports(workers)
        argv = [sys.executable, "-m", "processor.cli", "worker"]
        data_dirs: list[Path | None] = [None]  # the usual one, self.tmp / app_id
        if workers > 1:
            data_dirs = [self.tmp / app_id / f"worker-{i}" for i in range(1, workers + 1)]
        for data_dir in data_dirs:
            if data_dir is not None:
                data_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last
        procs = [
            (
                argv,
                self.livepulse_env(app_id, self.topic, port, data_dir, guarantee)
                | ({"LIVEPULSE_PURE_PYTHON": "1"} if pure else {}),
            )
            for port, data_dir in zip(ports, data_dirs, strict=True)
        ]

        async def totals() -> dict[str, float]:
            summed: dict[str, float] = {}  # over the workers
            texts = await asyncio.gather(
                *(asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics") for port in ports)
            )
            for text in texts:
                for name, value in metric_totals(text or "").items():
                    summed[name] = summed.get(name, 0.0) + value
            return summed

        async def on_done() -> dict[str, Any]:
            summed = await totals()
            return {"metrics": summed} if summed else {}

        result = await self.group_contender(
            contender, procs, app_id, self.args.max_seconds, on_done, probe=totals
        )
        interval = _commit_interval(procs[0][1], guarantee)
        result["checkpoints"] = checkpoint_rates(result.pop("probe", None), interval)
        result["config"] = (
            f"defaults ({guarantee}, {interval:g} s commits): 600 s tier window in 10 s "
            "steps, 60 s tumbling, snapshots per commit"
        )
        if workers > 1:
            result["config"] += (
                f"; {workers} worker processes, one consumer group, their own metrics ports and "
                "data dirs; CPU and peak RSS summed over them (peak RSS: the sum of each "
                "one's peak)"
            )
        if result.get("records_done"):
            result["state"] = await state_size(
                self.bootstrap, f"{app_id}.state", self.workload.partitions
            )
        return result

    async def latency(self, rate: float, guarantee: str = DEFAULT_GUARANTEE) -> dict[str, Any]:
        """A fresh worker on a fresh topic, fed at ``rate`` events/s by bench.latency."""
        contender = "latency" if guarantee == DEFAULT_GUARANTEE else "latency-eos"
        app_id = self.name(contender)
        events_topic = f"{app_id}.events"
        partitions = self.workload.partitions
        await create_topics(self.bootstrap, [events_topic], partitions)
        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        worker = self.start(
            "latency-worker",
            [sys.executable, "-m", "processor.cli", "worker"],
            self.livepulse_env(app_id, events_topic, port, guarantee=guarantee),
        )
        try:
            if not await wait_assigned(metrics_url, partitions, worker, timeout=90):
                return {
                    "error": f"worker not consuming after 90s; log {worker.log_path}:\n{worker.tail()}"
                }
            result_path = self.tmp / "latency.json"
            say(
                f"  latency ({guarantee}): {rate:,.0f} ev/s for {self.args.latency_seconds:.0f}s "
                f"({self.workload.streams:,} fresh streams, ts = wall clock at send)"
            )
            pacer = Child(
                "latency-producer",
                [
                    sys.executable,
                    "-m",
                    "bench.latency",
                    "--broker",
                    self.bootstrap,
                    "--topic",
                    events_topic,
                    "--alerts-topic",
                    f"{app_id}.alerts",
                    "--partitions",
                    str(partitions),
                    "--rate",
                    f"{rate:.0f}",
                    "--duration",
                    f"{self.args.latency_seconds:g}",
                    "--streams",
                    str(self.workload.streams),
                    "--warmup",
                    f"{min(5.0, self.args.latency_seconds / 4):g}",
                    "--result",
                    str(result_path),
                ],
                self.env({}),
                self.logs / "latency-producer.log",
            )
            # Checkpoint cost at a steady, paced load: the counters as the pacer starts
            # and once it is done (warm-up and the last second's drain included).
            probe: dict[str, Any] = {}
            text = await asyncio.to_thread(scrape, metrics_url)
            probe["start"] = {"t": time.time(), "metrics": metric_totals(text or "")}
            try:
                code = await pacer.wait(self.args.latency_seconds + 240)
            finally:
                pacer.stop()
            text = await asyncio.to_thread(scrape, metrics_url)
            probe["end"] = {"t": time.time(), "metrics": metric_totals(text or "")}
            if code != 0:
                return {
                    "error": f"bench.latency exit {code}; log {pacer.log_path}:\n{pacer.tail()}"
                }
            result: dict[str, Any] = json.loads(result_path.read_text())
            text = await asyncio.to_thread(scrape, metrics_url)
            result["worker_histogram"] = histogram_quantiles(
                text or "", "livepulse_alert_latency_seconds"
            )
            result["worker_peak_rss_mb"] = round(worker.monitor.peak_rss / 2**20, 1)
            interval = _commit_interval(
                self.livepulse_env(app_id, events_topic, port, guarantee=guarantee), guarantee
            )
            result["checkpoints"] = checkpoint_rates(probe, interval)
            result["guarantee"] = guarantee
            result["commit_interval_s"] = interval
            return result
        finally:
            self.stop_children()
            with contextlib.suppress(Exception):
                await self.cleanup_topics(contender)


# ---------------------------------------------------------------------------- helpers


def scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body.decode()
    except OSError:
        return None


def metric_totals(text: str) -> dict[str, float]:
    """A few counters of the worker's /metrics, summed over labels."""
    wanted = (
        "livepulse_events_total",
        "livepulse_invalid_events_total",
        "livepulse_alerts_published_total",
        "livepulse_windows_closed_total",
        "livepulse_active_streams",
        "livepulse_checkpoint_records_total",
        "livepulse_checkpoint_bytes_total",
        "livepulse_restore_seconds",
    )
    out: dict[str, float] = {}
    for line in text.splitlines():
        for name in wanted:
            if line.startswith(name + " ") or line.startswith(name + "{"):
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def histogram_quantiles(text: str, name: str) -> dict[str, Any]:
    """p50/p99 of a Prometheus histogram, interpolated in its buckets like histogram_quantile."""
    buckets: list[tuple[float, float]] = []
    pattern = re.compile(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$')
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            le = float("inf") if match.group(1) == "+Inf" else float(match.group(1))
            buckets.append((le, float(match.group(2))))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0, "p50_ms": None, "p99_ms": None}
    total = buckets[-1][1]

    def quantile(q: float) -> float:
        rank = q * total
        prev_le, prev_count = 0.0, 0.0
        for le, count in buckets:
            if count >= rank:
                if le == float("inf"):
                    return prev_le
                span = count - prev_count
                return prev_le + (le - prev_le) * ((rank - prev_count) / span if span else 1.0)
            prev_le, prev_count = le, count
        return prev_le

    return {
        "count": int(total),
        "p50_ms": round(quantile(0.5) * 1000, 1),
        "p99_ms": round(quantile(0.99) * 1000, 1),
        "note": "event's Kafka timestamp to the worker's publish, interpolated in histogram buckets",
    }


async def wait_assigned(url: str, partitions: int, worker: Child, timeout: float) -> bool:
    """True once the worker's /metrics shows consumer lag for every partition (assigned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        text = await asyncio.to_thread(scrape, url)
        if text and text.count("livepulse_consumer_lag_messages{") >= partitions:
            return True
        await asyncio.sleep(0.5)
    return False


CHECKPOINT_NOTE = "follows the streams that change, not the streams held"


def checkpoint_rates(probe: dict[str, Any] | None, interval_s: float) -> dict[str, Any]:
    """Checkpoint bytes and records per second and per commit over the measured span, from
    the workers' livepulse_checkpoint_* counters read at its start and its end."""
    if not probe:
        return {"error": "the workers' /metrics were not read at both ends of the measured span"}
    start, end = probe["start"], probe["end"]
    span = end["t"] - start["t"]

    def delta(name: str) -> float | None:
        if name not in end["metrics"] or name not in start["metrics"]:
            return None
        return float(end["metrics"][name] - start["metrics"][name])

    size = delta("livepulse_checkpoint_bytes_total")
    records = delta("livepulse_checkpoint_records_total")
    if size is None or records is None or span <= 0:
        return {"error": "the workers export no livepulse_checkpoint_* counters"}
    # Each commit takes one checkpoint; the harness sees each as a step of the committed
    # offsets (polled every few hundred ms, commits are LIVEPULSE_COMMIT_INTERVAL_SECONDS
    # apart); without any step seen, count one per interval.
    seen = int(probe.get("commits_seen") or 0)
    commits = seen or max(1, round(span / interval_s))
    held = end["metrics"].get("livepulse_active_streams")
    return {
        "bytes_per_s": round(size / span, 1),
        "records_per_s": round(records / span, 1),
        "bytes_per_commit": round(size / commits, 1),
        "records_per_commit": round(records / commits, 1),
        "commits": commits,
        "commits_counted": "committed-offset steps seen" if seen else "span / commit interval",
        "commit_interval_s": interval_s,
        "span_s": round(span, 2),
        "bytes": int(size),
        "records": int(records),
        "streams_held_at_end": None if held is None else int(held),
        "note": CHECKPOINT_NOTE,
        "method": "livepulse_checkpoint_bytes_total / _records_total (record values, one "
        "record per changed stream plus one per partition) read from the workers' /metrics "
        "when the measured span starts and ends",
    }


async def state_size(bootstrap: str, topic: str, partitions: int) -> dict[str, Any]:
    """The state the worker's compacted state topic holds once the last record of each key
    is kept: its stream records and their bytes, per active stream.

    Never raises: a state topic it cannot read gives ``{"error": ...}``, so the run goes on.
    """
    try:
        ends = await end_offsets(bootstrap, topic)
        parts = [await read_state(bootstrap, topic, p, ends.get(p, 0)) for p in range(partitions)]
    except Exception as exc:  # the throughput numbers matter more than this one
        return {"error": f"state topic {topic}: {type(exc).__name__}: {exc}"}
    streams = sum(p["live_stream_records"] for p in parts)
    size = sum(p["live_stream_value_bytes"] for p in parts)
    return {
        "bytes": size,
        "streams": streams,
        "ended_streams_remembered": sum(p["ended_records"] for p in parts),
        "bytes_per_stream": round(size / streams, 1) if streams else None,
        "topic_records": sum(p["records"] for p in parts),
        "topic_bytes": sum(p["bytes"] for p in parts),
        "format": "a record per stream (MessagePack)",
        "method": "every record of the state topic, the last of each key kept: the values of "
        "the live 's:' (stream) records summed, divided by their number",
    }


def state_memory() -> dict[str, Any]:
    """bench.state_memory's tracemalloc measure of the engine's memory per stream with a
    full window, if that module is there."""
    try:
        from bench import state_memory as module
    except ImportError:
        return {"skipped": "not measured: bench.state_memory is not there"}
    measure = getattr(module, "measure", None)
    if not callable(measure):
        return {"skipped": "not measured: bench.state_memory has no measure()"}
    say("measuring memory per stream with a full window (bench.state_memory)")
    try:
        result = measure()
        full_top = getattr(module, "measure_full_top", None)
        if callable(full_top) and isinstance(result, dict):  # the worst case
            top = full_top()["top_users_bytes_per_stream"]
            result["top_users_at_capacity_bytes_per_stream"] = top
    except Exception as exc:
        return {"error": f"bench.state_memory.measure: {type(exc).__name__}: {exc}"}
    if not isinstance(result, dict) or not isinstance(result.get("bytes_per_stream"), int | float):
        return {"error": f"bench.state_memory.measure gave no bytes_per_stream: {result!r:.200}"}
    return dict(result)


def state_writes() -> dict[str, Any]:
    """bench.state_writes: state bytes per second while 100 of 50,000 streams get events."""
    from bench import state_writes as module

    say("measuring state writes while 100 of 50,000 streams get events (bench.state_writes)")
    try:
        return dict(module.measure())
    except Exception as exc:
        return {"error": f"bench.state_writes.measure: {type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------------------- main


def _commit_interval(env: dict[str, str], guarantee: str) -> float:
    """The commit interval of a livepulse worker started with ``env``."""
    given = env.get("LIVEPULSE_COMMIT_INTERVAL_SECONDS")
    return float(given) if given else Settings(processing_guarantee=guarantee).commit_interval


async def settle() -> float:
    """Wait until the machine is quiet (two seconds in a row below :data:`SETTLE_BUSY`),
    at most :data:`SETTLE_MAX_S`; the seconds waited."""
    start = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - start < SETTLE_MAX_S:
        busy = await asyncio.to_thread(psutil.cpu_percent, 1.0)
        quiet = quiet + 1 if busy < SETTLE_BUSY * 100 else 0
    return round(time.monotonic() - start, 1)


async def measure_workload(run: Run, durations: dict[str, float]) -> dict[str, Any]:
    """Every contender of ``--only`` on ``run``'s workload, one after another."""
    measure: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "ceiling": run.ceiling,
        "faust-floor": run.faust_floor,
        "naive-faust": run.naive_faust,
        "quix": run.quix,
        "kstreams": run.kstreams,
        "livepulse": run.livepulse,
        "livepulse-eos": functools.partial(run.livepulse, guarantee="exactly_once"),
        "livepulse-pure": functools.partial(run.livepulse, pure=True),
        "livepulse-2": functools.partial(run.livepulse, workers=2),
    }
    kind = run.workload.kind
    contenders: dict[str, Any] = {}
    for name in CONTENDERS:
        if name not in run.args.only:
            continue
        durations[f"{kind}_{name}_settle_s"] = await settle()
        say(f"measuring {name} ({kind} workload)")
        t = time.monotonic()
        try:
            outcome = await measure[name]()
        except Exception as exc:  # one broken contender must not lose the others' numbers
            outcome = {"error": f"bench harness: {type(exc).__name__}: {exc}\n{format_exc()}"}
        finally:
            run.stop_children()
            await run.cleanup_topics(name)
        durations[f"{kind}_{name}_s"] = round(time.monotonic() - t, 1)
        # Other work on the machine skews the numbers: keep the 1-minute load with them.
        outcome["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        contenders[name] = outcome
        if outcome.get("error"):
            say(f"  {name} FAILED: {outcome['error']}")
        elif outcome.get("skipped"):
            say(f"  {name} skipped: {outcome['skipped']}")
        else:
            say(
                f"  {name}: {outcome['events_per_s'] or 0:,.0f} ev/s, "
                f"{outcome['cpu_s_per_million'] or 0:,.1f} CPU s/M, {outcome['peak_rss_mb']:,.0f} MB peak"
                + (f" ({outcome['note']})" if outcome.get("note") else "")
            )
    return contenders


def micro(kind: str, quick: bool) -> dict[str, Any]:
    """bench.micro's in-process µs per event (apply, checkpoint) on one workload."""
    argv = ["-m", "bench.micro", "--json", "--workload", kind]
    if quick:
        argv += ["--events", "200000"]
    say(f"in-process micro-benchmark: python {' '.join(argv)}")
    try:
        done = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=900, cwd=ROOT
        )
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result | {"command": f"python {' '.join(argv)}"}


async def bench(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    run_id = time.strftime("%Y%m%d-%H%M%S")
    durations: dict[str, float] = {}
    t_start = time.monotonic()
    broker: Broker | None = None
    started_broker = False
    runs: list[Run] = []
    try:
        if args.broker:
            bootstrap = args.broker
            say(f"using the broker at {bootstrap}")
        else:
            broker = Broker(args.port, args.controller_port, args.kafka_home)
            bootstrap = broker.bootstrap
            if broker.running():
                say(f"bench broker already running on {bootstrap}; leaving it running afterwards")
            else:
                say(f"starting the bench broker on {bootstrap} ({args.kafka_home})")
                t = time.monotonic()
                await asyncio.to_thread(broker.up)
                started_broker = True
                durations["broker_start_s"] = round(time.monotonic() - t, 1)
        stale = {t for t in await list_topics(bootstrap) if MARK in t}
        if stale:
            say(f"deleting {len(stale)} topics left by an earlier interrupted run")
            await delete_topics(bootstrap, stale)
        if "kstreams" in args.only:
            t = time.monotonic()
            with contextlib.suppress(Exception):  # the contender reports the failure
                await asyncio.to_thread(kstreams_jar)
            durations["kstreams_build_s"] = round(time.monotonic() - t, 1)
        results: dict[str, Any] = {
            "started_at": started_at,
            "command": "python -m bench.run " + " ".join(sys.argv[1:]),
            "machine": machine() | {"loadavg_1m_at_start": round(os.getloadavg()[0], 2)},
            "versions": versions(),
            "judged": args.workloads[0],
            "workloads": {},
            "durations": durations,
        }
        for kind in args.workloads:
            workload = (
                Workload.heavy(args.events)
                if kind == "heavy"
                else Workload(args.events, args.streams, args.partitions, args.seed, args.rate)
            )
            t = time.monotonic()
            filled = await ensure_prefilled(bootstrap, workload, args.refill)
            durations[f"{kind}_prefill_s"] = round(time.monotonic() - t, 1)
            run = Run(args, bootstrap, workload, run_id)
            runs.append(run)
            run.tmp.mkdir(parents=True, exist_ok=True)
            entry: dict[str, Any] = {
                "workload": asdict(workload) | {"topic": workload.topic, "prefill": filled},
                "contenders": await measure_workload(run, durations),
            }
            entry["ratios"] = report.ratios(entry)
            results["workloads"][kind] = entry
        judged = results["workloads"][results["judged"]]
        results["state"] = (judged["contenders"].get("livepulse") or {}).get("state") or {}
        # Latency at half of livepulse's rate on the simulator's events, which the pacer
        # writes (fresh streams); on the heavy workload's rate if that is all there is.
        run = runs[-1]
        lp = results["workloads"][run.workload.kind]["contenders"].get("livepulse") or {}
        if lp.get("events_per_s") and args.latency_seconds > 0:
            say("measuring livepulse alert latency at half its maximum")
            t = time.monotonic()
            # both guarantees at the same rate: what exactly_once costs a subscriber
            for key, guarantee in (
                ("latency", DEFAULT_GUARANTEE),
                ("latency_exactly_once", "exactly_once"),
            ):
                results[key] = await run.latency(lp["events_per_s"] / 2, guarantee)
                results[key]["rate_of"] = run.workload.kind
                if results[key].get("error"):
                    say(f"  latency ({guarantee}) FAILED: {results[key]['error']}")
            durations["latency_s"] = round(time.monotonic() - t, 1)
        else:
            results["latency"] = {"skipped": "livepulse not measured or --latency-seconds 0"}
        if args.restore_streams > 0:
            say(f"measuring the restore of {args.restore_streams:,} streams after kill -9")
            t = time.monotonic()
            try:
                results["restore"] = await restore.measure(
                    bootstrap, run.name("restore"), args.restore_streams, logs=run.logs
                )
            except Exception as exc:
                results["restore"] = {"error": f"bench harness: {type(exc).__name__}: {exc}"}
            durations["restore_s"] = round(time.monotonic() - t, 1)
            say(f"  {restore.summary(results['restore'])}")
        else:
            results["restore"] = {"skipped": "--restore-streams 0"}
        results["memory"] = state_memory()
        results["state_writes"] = state_writes()
        results["micro"] = {kind: micro(kind, args.quick) for kind in args.workloads}
        results["targets"] = report.targets(results)
        durations["total_s"] = round(time.monotonic() - t_start, 1)
        stamp = started_at.replace(":", "").replace("-", "")
        paths = report.write(results, args.out, stamp)
        print()
        print(report.table(results))
        print()
        say(
            "results: "
            + ", ".join(
                str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths
            )
        )
        say(
            f"logs: {(LOCAL / 'logs' / run_id).relative_to(ROOT)}/; total {durations['total_s']:.0f}s"
        )
        failed = [
            n
            for w in results["workloads"].values()
            for n, c in w["contenders"].items()
            if c.get("error")
        ]
        return 1 if failed else 0
    finally:
        for run in runs:
            run.stop_children()
        shutil.rmtree(LOCAL / "tmp" / run_id, ignore_errors=True)
        if broker is not None and started_broker and not args.keep_broker:
            say("stopping the bench broker")
            await asyncio.to_thread(broker.down)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def guarded() -> int:
        # SIGTERM cancels the run like Ctrl-C does, so the same cleanup runs.
        task = asyncio.current_task()
        if task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(args)

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; every process this run started has been stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
