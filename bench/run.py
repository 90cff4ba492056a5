"""Benchmark livepulse against a raw-consumer ceiling, Faust, Quix Streams and Kafka Streams.

Starts the bench's own broker (unless it runs), pre-fills a topic with each workload, runs
each contender (report.LABELS) as its own process on it, one after another, then measures
livepulse's latency, restore, memory, state writes and batch step (bench.latency, .restore,
.state, .apply) and sets it against its targets. Results: bench-results/<time>.json,
latest.json and tables on stdout. The README's Benchmarks section says how each is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from traceback import format_exc
from typing import Any

import psutil

from bench import common, latency, report, restore, state
from bench.common import LOCAL, MARK, ROOT, Child, say
from bench.workload import Workload, ensure_prefilled
from processor.settings import Settings

CONTENDERS = tuple(report.LABELS)
GUARANTEE = Settings().processing_guarantee
COMMIT_SECONDS = Settings().commit_interval  # every contender commits as often as livepulse
KSTREAMS = ROOT / "bench" / "kstreams"
COUNTERS = ("checkpoint_bytes_total", "checkpoint_records_total", "active_streams")
WORKER = [sys.executable, "-m", "processor.cli", "worker"]
LATENCIES = {"latency": GUARANTEE, "latency_exactly_once": "exactly_once"}
Reading = tuple[float, dict[str, float]]  # the time and the workers' COUNTERS
Point = tuple[float, int, float]  # the time, the records done and the CPU seconds
Result = dict[str, Any]
Proc = tuple[list[str], dict[str, str]]  # a process's argv and environment
Probe = Callable[[], Awaitable[Reading]] | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser("python -m bench.run", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="1M events a workload, 40 s caps, no Faust")
    add("--workload", choices=("heavy", "simulator", "both"), default="both")
    add("--events", type=int, help="a workload's records (default 2,000,000; quick 1,000,000)")
    add("--only", help="comma-separated contenders (default: all but livepulse-pure)")
    add("--latency-seconds", type=float, help="of paced load (default 60, quick 15; 0: none)")
    add("--eos-commit-interval", type=float, help="the exactly_once worker's, in seconds")
    add("--restore-streams", type=int, default=restore.STREAMS, help="(0: no restore step)")
    add("--port", type=int, default=common.Broker.port, help="the bench broker's (39092)")
    add("--controller-port", type=int, default=common.Broker.controller_port)
    args = parser.parse_args(argv)
    full = not args.quick
    args.events = args.events or (2_000_000 if full else 1_000_000)
    args.streams, args.partitions = (10_000, 8) if full else (1_000, 4)  # the simulator's
    args.cap, args.faust_cap = (900, 150) if full else (40, 15)  # then it reports what it did
    if args.latency_seconds is None:
        args.latency_seconds = 60 if full else 15
    default = [c for c in CONTENDERS if c != "livepulse-pure" and (full or "faust" not in c)]
    args.only = args.only.split(",") if args.only else default
    if unknown := set(args.only) - set(CONTENDERS):
        parser.error(f"--only: unknown contender(s) {', '.join(sorted(unknown))}")
    args.workloads = ("heavy", "simulator") if args.workload == "both" else (args.workload,)
    return args


def kstreams_jar() -> Path:
    """bench/kstreams's jar, built by Maven unless it is from the current sources."""
    sources = [KSTREAMS / "pom.xml", *sorted((KSTREAMS / "src").rglob("*.java"))]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    jar, stamp = KSTREAMS / "target" / "kstreams-bench.jar", KSTREAMS / "target" / "sources"
    if jar.exists() and stamp.exists() and stamp.read_text() == digest:
        return jar
    say("building the Kafka Streams contender: mvn package in bench/kstreams")
    for offline in (["-o"], []):  # online the first time, for the dependencies
        mvn = ["mvn", "-B", "-q", *offline, "-f", str(KSTREAMS / "pom.xml"), "package"]
        if subprocess.run(mvn, capture_output=True).returncode == 0:
            stamp.write_text(digest)
            return jar
    raise RuntimeError(f"mvn package failed in {KSTREAMS}: run it there to see why")


def counters(ports: list[int]) -> Reading:
    texts = [common.scrape(port) for port in ports]
    return time.time(), {
        n: sum(common.metric(t, "livepulse_" + n) or 0 for t in texts) for n in COUNTERS
    }


def checkpoints(start: Reading, end: Reading, env: dict[str, str], commits: int = 0) -> Result:
    """Checkpoint bytes and records per second and per commit between two readings of the
    counters of workers started with ``env``. A commit is seen as a step of the committed
    offsets; if none was, one is counted per commit interval."""
    settings = Settings(processing_guarantee=env["LIVEPULSE_PROCESSING_GUARANTEE"])
    interval = float(env.get("LIVEPULSE_COMMIT_INTERVAL_SECONDS") or settings.commit_interval)
    (t0, a), (t1, b) = start, end
    if not b["checkpoint_bytes_total"] or t1 <= t0:
        return {"error": "no checkpoint counters read at both ends", "commit_interval_s": interval}
    size, records = (b[n] - a[n] for n in COUNTERS[:2])
    commits = commits or max(1, round((t1 - t0) / interval))
    return {
        "bytes_per_s": round(size / (t1 - t0), 1),
        "records_per_s": round(records / (t1 - t0), 1),
        "bytes_per_commit": round(size / commits, 1),
        "records_per_commit": round(records / commits, 1),
        "commits": commits,
        "commit_interval_s": interval,
        "span_s": round(t1 - t0, 2),
        "streams_held_at_end": b["active_streams"],
    }


def quantiles(text: str, name: str) -> dict[str, float | None]:
    """p50 and p99 (ms) of a Prometheus histogram, interpolated as histogram_quantile does."""
    prefix = f'{name}_bucket{{le="'
    found = (s[len(prefix) :].split('"} ') for s in text.splitlines() if s.startswith(prefix))
    buckets = sorted((float(le), float(count)) for le, count in found)
    out: dict[str, float | None] = {"p50_ms": None, "p99_ms": None}
    for q, key in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        low = below = 0.0
        for le, count in buckets if buckets and buckets[-1][1] else ():
            if count >= q * buckets[-1][1]:
                share = (q * buckets[-1][1] - below) / (count - below) if count > below else 1
                out[key] = round(
                    1000 * (low if le == float("inf") else low + (le - low) * share), 1
                )
                break
            low, below = le, count
    return out


def measured(children: list[Child], start: Point, end: Point, total: int) -> Result:
    """What ``children`` did from ``start`` to ``end``."""
    (t0, done0, cpu0), (t1, done1, cpu1) = start, end
    wall, done, cpu = max(t1 - t0, 1e-6), done1 - done0, cpu1 - cpu0
    return {
        "events_per_s": round(done / wall, 1) if done > 0 else None,
        "cpu_s_per_million": round(cpu / done * 1e6, 1) if done > 0 else None,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "records_done": done1,
        "complete": done1 >= total,
        "peak_rss_mb": round(sum(child.peak_rss() for child in children) / 2**20, 1),
    }


class Run:
    """The contenders on one workload: their names, processes and measurements."""

    def __init__(self, args: argparse.Namespace, bootstrap: str, workload: Workload, run_id: str):
        self.args, self.bootstrap, self.workload = args, bootstrap, workload
        self.run_id, self.children = f"{run_id}-{workload.kind}", list[Child]()
        self.tmp = LOCAL / "tmp" / self.run_id
        self.tmp.mkdir(parents=True, exist_ok=True)

    def name(self, contender: str) -> str:
        return f"{MARK}{self.run_id}-{contender}"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        self.children.append(Child(name, argv, env, LOCAL / "logs" / self.run_id / f"{name}.log"))
        return self.children[-1]

    def stop_children(self) -> list[int]:
        """Stop every process started since the last call (all signalled at once)."""
        children, self.children = self.children, []
        for child in children:
            child.terminate()
        return [child.stop() for child in children]

    def peer_env(self, contender: str, **extra: str) -> dict[str, str]:
        w = self.workload
        env = {"BROKER": self.bootstrap, "TOPIC": w.topic, "GROUP": self.name(contender)}
        env |= {"PARTITIONS": str(w.partitions), "STATE_DIR": str(self.tmp / contender)}
        return common.clean_env("BENCH_", env | {"COMMIT_SECONDS": f"{COMMIT_SECONDS:g}"} | extra)

    def worker_env(self, contender: str, topic: str, port: int, guarantee: str) -> dict[str, str]:
        data = self.tmp / f"{contender}.{port}"
        env = common.worker_env(self.bootstrap, self.name(contender), topic, port, data)
        env["LIVEPULSE_PROCESSING_GUARANTEE"] = guarantee
        if guarantee == "exactly_once" and self.args.eos_commit_interval:
            env["LIVEPULSE_COMMIT_INTERVAL_SECONDS"] = f"{self.args.eos_commit_interval:g}"
        return env

    async def ceiling(self) -> Result:
        argv = [sys.executable, "-m", "bench.ceiling"]
        child = self.start("ceiling", argv, self.peer_env("ceiling"))
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(child.proc.wait, self.args.cap)
        code = child.proc.poll()
        self.stop_children()
        if code != 0:
            return child.failed("did not finish in time" if code is None else f"exit code {code}")
        data = json.loads(child.log.read_text().splitlines()[-1])
        (t0, cpu0), (t1, cpu1), total = data["first"], data["last"], self.workload.events
        result = measured([], (t0, 0, cpu0), (t1, data["records"], cpu1), total)
        return result | {"peak_rss_mb": round(data["peak_rss"] / 2**20, 1)}

    async def peer(self, name: str, argv: list[str], cap: float, **env: str) -> Result:
        """A contender that commits as a consumer group named for it."""
        return await self.group(name, [(argv, self.peer_env(name, **env))], cap)

    async def group(self, name: str, procs: list[Proc], cap: float, probe: Probe = None) -> Result:
        """Processes ``procs`` in consumer group ``self.name(name)`` until its committed
        offsets reach the end of the topic or ``cap`` passes. With several, the measured span
        starts at the first commit once all are in the group. ``probe`` is read at both ends."""
        n, group = len(procs), self.name(name)
        topic, total = self.workload.topic, self.workload.events
        children = [self.start(f"{name}.{i}", *p) for i, p in enumerate(procs, 1)]
        launched = time.time()
        first_any = first = None  # (time, committed, CPU s): the first commit; with all n in
        at_first, held, commits, result, last = {}, [], 0, {}, (launched, 0, 0.0)
        async with common.admin(self.bootstrap) as client:
            while True:
                offsets = await common.committed(client, group, topic)
                if n > 1 and first is None:
                    held = await common.members(client, group, topic)
                now = (time.time(), sum(offsets.values()), sum(c.cpu() for c in children))
                first_any = first_any or (now if now[1] else None)
                if now[1] and first is None and (n == 1 or len(held) >= n):
                    first, at_first = now, offsets
                    if probe:
                        result["probe_start"] = await probe()
                elif first and now[1] != last[1]:
                    commits += 1
                last, dead = now, next((c for c in children if not c.alive()), None)
                if now[1] >= total or now[0] - launched > cap or dead:
                    break
                await asyncio.sleep(0.25)
        if n > 1 and first:  # what each worker committed in the span, by its partitions
            result["all_workers_joined_s"] = round(first[0] - launched, 2)
            result["partitions_per_worker"] = [sorted(h) for h in held]
            result["records_per_worker"] = [
                sum(offsets.get(p, 0) - at_first.get(p, 0) for p in h) for h in held
            ]
            result["committed_before_all_joined"] = first[1] - first_any[1]
        elif n > 1 and first_any:  # the topic was done before all were in: the first alone
            first, result["all_workers_joined_s"] = first_any, None
        if probe and first and not dead:
            result |= {"probe_end": await probe(), "commits_seen": commits}
        if dead and last[1] < total:
            result |= dead.failed(f"exited, code {dead.proc.returncode}")
        if first is None:
            self.stop_children()
            return result if "error" in result else children[0].failed("committed nothing")
        result |= measured(children, first, last, total)
        result["exit_codes"] = self.stop_children()
        notes = [] if result["complete"] else [f"partial: the {cap:.0f}s cap"]
        notes += [] if result["events_per_s"] else ["one commit held every record: more --events"]
        return result | ({"note": "; ".join(notes)} if notes else {})

    async def quix(self) -> Result:
        if importlib.util.find_spec("quixstreams") is None:
            return {"skipped": "quixstreams is not installed: pip install -e '.[bench]'"}
        return await self.peer("quix", [sys.executable, "-m", "bench.quix"], self.args.cap)

    async def kstreams(self) -> Result:
        jar = str(await asyncio.to_thread(kstreams_jar))
        out = self.name("kstreams") + ".out"
        await common.create_topics(self.bootstrap, [out], self.workload.partitions)
        argv = ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-jar", jar]
        return await self.peer("kstreams", argv, self.args.cap)

    async def livepulse(self, workers: int = 1, eos: bool = False, pure: bool = False) -> Result:
        """``workers`` `livepulse worker` processes in one group on the bench topic (``eos``:
        exactly_once; ``pure``: on the core's Python source)."""
        contender = "livepulse" + (f"-{workers}" if workers > 1 else "")
        contender += ("-eos" if eos else "") + ("-pure" if pure else "")
        guarantee = "exactly_once" if eos else GUARANTEE
        ports, pure_env = common.free_ports(workers), {"LIVEPULSE_PURE_PYTHON": "1"} if pure else {}
        envs = [self.worker_env(contender, self.workload.topic, p, guarantee) for p in ports]
        procs = [(WORKER, env | pure_env) for env in envs]
        probe = functools.partial(asyncio.to_thread, counters, ports)
        result = await self.group(contender, procs, self.args.cap, probe)
        start, end = result.pop("probe_start", None), result.pop("probe_end", None)
        if start and end:
            result["checkpoints"] = checkpoints(start, end, procs[0][1], result.pop("commits_seen"))
        if result.get("records_done"):  # what a restore would read of its state topic
            with contextlib.suppress(Exception):  # the throughput numbers matter more
                state = self.name(contender) + ".state"
                result["state"] = await restore.read_state(self.bootstrap, state)
        return result

    async def latency(self, rate: float, guarantee: str) -> Result:
        """A fresh worker on a fresh topic, fed at ``rate`` events/s by bench.latency."""
        contender = "latency" if guarantee == GUARANTEE else "latency-eos"
        topic, partitions = self.name(contender) + ".events", self.workload.partitions
        await common.create_topics(self.bootstrap, [topic], partitions)
        port = common.free_ports(1)[0]
        env = self.worker_env(contender, topic, port, guarantee)
        worker = self.start(f"{contender}-worker", WORKER, env)
        try:
            for _ in range(180):  # consuming every partition, within 90 s
                if common.scrape(port).count("livepulse_consumer_lag_messages{") >= partitions:
                    break
                await asyncio.sleep(0.5)
            else:
                return worker.failed("was not consuming after 90 s")
            seconds = self.args.latency_seconds
            say(f"  latency ({guarantee}): {rate:,.0f} ev/s for {seconds:.0f}s on fresh streams")
            load = {"broker": self.bootstrap, "topic": topic, "partitions": partitions}
            load |= {"alerts_topic": self.name(contender) + ".alerts", "rate": round(rate)}
            load |= {"duration": seconds, "streams": self.workload.streams}
            load["warmup"] = min(5.0, seconds / 4)
            start = counters([port])  # the checkpoints at a steady, paced load
            result = await latency.run(load)
            histogram = quantiles(common.scrape(port), "livepulse_alert_latency_seconds")
            return result | {
                "worker_histogram": histogram,
                "worker_peak_rss_mb": round(worker.peak_rss() / 2**20, 1),
                "checkpoints": checkpoints(start, counters([port]), env),
                "guarantee": guarantee,
            }
        finally:
            self.stop_children()
            await common.delete_topics(self.bootstrap, self.name(contender))

    async def measure(self, durations: dict[str, float]) -> Result:
        """Every contender of ``--only``, one after another."""
        faust, cap = [sys.executable, "-m", "bench.naive_faust"], self.args.faust_cap
        contenders: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "ceiling": self.ceiling,
            "faust-floor": lambda: self.peer("faust-floor", faust, cap, MODE="floor"),
            "naive-faust": lambda: self.peer("naive-faust", faust, cap),
            "quix": self.quix,
            "kstreams": self.kstreams,
            "livepulse": self.livepulse,
            "livepulse-eos": lambda: self.livepulse(eos=True),
            "livepulse-pure": lambda: self.livepulse(pure=True),
            "livepulse-2": lambda: self.livepulse(workers=2),
        }
        results = {}
        for name in (c for c in CONTENDERS if c in self.args.only):
            durations[f"{self.workload.kind}_{name}_settle_s"] = await settle()
            say(f"measuring {name} ({self.workload.kind} workload)")
            try:
                outcome = await contenders[name]()
            except Exception as exc:  # one broken contender must not lose the others' numbers
                outcome = {"error": f"bench harness: {type(exc).__name__}: {exc}\n{format_exc()}"}
            finally:
                self.stop_children()
                await common.delete_topics(self.bootstrap, self.name(name))
            # other work on the machine skews the numbers: its load goes with them
            results[name] = outcome | {"loadavg_1m_after": round(os.getloadavg()[0], 2)}
            say(f"  {name}: {report.one_line(outcome)}")
        return results


async def settle() -> float:
    """Wait (at most 30 s) until under a quarter of the cores are busy two seconds in a row."""
    start, quiet = time.monotonic(), 0
    while quiet < 2 and time.monotonic() - start < 30:
        quiet = quiet + 1 if await asyncio.to_thread(psutil.cpu_percent, 1.0) < 25 else 0
    return round(time.monotonic() - start, 1)


def in_process(name: str, measure: Callable[[], dict[str, Any]]) -> Result:
    say(f"measuring {name}")
    try:
        return measure()
    except Exception as exc:
        return {"error": f"{name}: {type(exc).__name__}: {exc}"}


def micro(kind: str, quick: bool) -> Result:
    """bench.apply's µs per event on one workload, in a process of its own."""
    argv = ["-m", "bench.apply", "--workload", kind]
    command = "python " + " ".join(argv := argv + (["--events", "200000"] if quick else []))
    say(f"in process: {command}")
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return dict(json.loads(done.stdout.splitlines()[-1])) | {"command": command}


async def bench(args: argparse.Namespace, results: dict[str, Any]) -> int:
    broker, run_id = common.Broker(args.port, args.controller_port), time.strftime("%Y%m%d-%H%M%S")
    bootstrap, ours, runs, durations = broker.bootstrap, False, list[Run](), {}
    try:
        if broker.kafka_sh("status"):
            say(f"the bench broker runs on {bootstrap} already; it is left running")
        else:
            say(f"starting the bench broker on {bootstrap} ({broker.home})")
            ours = await asyncio.to_thread(broker.kafka_sh, "up")
        await common.delete_topics(bootstrap, MARK)  # an interrupted run's
        if "kstreams" in args.only:  # built before the first measurement; a failure: its result
            with contextlib.suppress(Exception):
                await asyncio.to_thread(kstreams_jar)
        for kind in args.workloads:
            simulator = Workload(args.events, args.streams, args.partitions)
            workload = Workload.heavy(args.events) if kind == "heavy" else simulator
            prefill = await ensure_prefilled(bootstrap, workload)
            entry = {"workload": asdict(workload) | {"prefill": prefill}}
            runs.append(run := Run(args, bootstrap, workload, run_id))
            entry["contenders"] = await run.measure(durations)
            results["workloads"][kind] = entry | {"ratios": report.ratios(entry)}
        judged = results["workloads"][results["judged"]]["contenders"]
        results["state"] = (judged.get("livepulse") or {}).get("state") or {}
        # latency on the last workload (the simulator's: the pacer writes its events)
        lp = results["workloads"][run.workload.kind]["contenders"].get("livepulse") or {}
        results["latency"] = {"skipped": "livepulse not measured or --latency-seconds 0"}
        if lp.get("events_per_s") and args.latency_seconds > 0:
            for key, guarantee in LATENCIES.items():
                outcome = await run.latency(lp["events_per_s"] / 2, guarantee)
                results[key] = outcome | {"rate_of": run.workload.kind}
        results["restore"] = {"skipped": "--restore-streams 0"}
        if args.restore_streams > 0:
            say(f"measuring the restore of {args.restore_streams:,} streams after kill -9")
            results["restore"] = await restore.measure(bootstrap, args.restore_streams)
            say(f"  restore: {report.one_line(results['restore'])}")
        memory = in_process("memory per stream (bench.state)", state.memory)
        full = in_process("the worst case of top users", state.top_users_at_capacity)
        top = full.get("top_users_bytes_per_stream")
        results["memory"] = memory | {"top_users_at_capacity": top}
        results["state_writes"] = in_process("state writes", state.writes)
        results["micro"] = {kind: micro(kind, args.quick) for kind in args.workloads}
        results["durations"] = durations
        report.write(results, ROOT / "bench-results")  # every figure, before judging them
        results["targets"] = report.targets(results)
        path = report.write(results, ROOT / "bench-results")
        print(f"\n{report.table(results)}\n")
        say(f"results: {path}; logs: {LOCAL / 'logs'}/{run_id}-*")
        failed = [c for w in results["workloads"].values() for c in w["contenders"].values()]
        return 1 if any(c.get("error") for c in failed) else 0
    finally:
        for each in runs:
            each.stop_children()
        for path in (LOCAL / "tmp").glob(f"{run_id}-*"):
            shutil.rmtree(path, ignore_errors=True)
        if ours:
            say("stopping the bench broker")
            await asyncio.to_thread(broker.kafka_sh, "down")


def main() -> int:
    args = parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # not its retries and rebalances
    cpu = [c for c in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in c]
    machine = {"nproc": os.cpu_count(), "cpu_model": cpu[0].split(":")[1].strip() if cpu else ""}
    machine |= {"python": platform.python_version(), "platform": platform.platform()}
    machine |= {"memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}
    machine["loadavg_1m_at_start"] = os.getloadavg()[0]
    results = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine}
    results |= {"command": "python -m bench.run " + " ".join(sys.argv[1:])}
    results |= {"judged": args.workloads[0], "workloads": {}}

    async def guarded() -> int:
        task = asyncio.current_task()  # SIGTERM cancels the run as Ctrl-C does: same cleanup
        if task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(args, results)

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; every process this run started has been stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
