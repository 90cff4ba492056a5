"""Profile ``livepulse worker`` on the bench workload: where does the hot path spend its time?

Starts the bench broker if needed (as bench.run does), pre-fills (or reuses) the workload
topic, runs a real worker process under cProfile or pyinstrument until its committed offsets
reach the end of the topic, stops it with SIGTERM (so the profile is written) and prints
the top functions. The profile file stays in .local/bench/profile/ for snakeviz / pstats.

  python -m bench.profile_worker                       # 300k events, 10,000 streams, cProfile
  python -m bench.profile_worker --profiler pyinstrument --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import pstats
import sys
import time
from pathlib import Path

from bench.common import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_HOME,
    DEFAULT_PORT,
    LOCAL,
    Broker,
    Child,
    OffsetWatcher,
    delete_topics,
    free_port,
    list_topics,
    quiet_kafka_logs,
    say,
)
from bench.workload import Workload, ensure_prefilled


def child_main(profiler: str, out: str) -> int:
    """In the worker process: run ``livepulse worker`` with a profiler around it."""
    from processor.cli import main

    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005, async_mode="disabled")
        prof.start()
        try:
            return main(["worker"])
        finally:
            prof.stop()
            Path(out).write_text(prof.output_text(unicode=False, color=False, show_all=False))
    import cProfile

    cprof = cProfile.Profile()
    cprof.enable()
    try:
        return main(["worker"])
    finally:
        cprof.disable()
        cprof.dump_stats(out)


def print_cprofile(path: Path, top: int) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


async def profile(args: argparse.Namespace) -> int:
    quiet_kafka_logs()
    broker = Broker(args.port, args.controller_port, args.kafka_home)
    started = False
    child: Child | None = None
    try:
        if not broker.running():
            say(f"starting the bench broker on {broker.bootstrap}")
            await asyncio.to_thread(broker.up)
            started = True
        bootstrap = broker.bootstrap
        workload = Workload(args.events, args.streams, args.partitions, args.seed)
        await ensure_prefilled(bootstrap, workload, refill=False)
        run_id = time.strftime("%Y%m%d-%H%M%S")
        app_id = f"benchc-{run_id}-profile"
        out_dir = LOCAL / "profile"
        out_dir.mkdir(parents=True, exist_ok=True)
        suffix = "txt" if args.profiler == "pyinstrument" else "prof"
        out = out_dir / f"worker-{run_id}.{suffix}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPULSE_")} | {
            "LIVEPULSE_BROKER": bootstrap,
            "LIVEPULSE_EVENTS_TOPIC": workload.topic,
            "LIVEPULSE_ALERTS_TOPIC": f"{app_id}.alerts",
            "LIVEPULSE_DLQ_TOPIC": f"{app_id}.dlq",
            "LIVEPULSE_WINDOWS_TOPIC": f"{app_id}.windows",
            "LIVEPULSE_APP_ID": app_id,
            "LIVEPULSE_DATA_DIR": str(LOCAL / "tmp" / app_id),
            "LIVEPULSE_METRICS_PORT": str(free_port()),
        }
        say(f"profiling the worker ({args.profiler}) on {workload.events:,} events")
        child = Child(
            "profiled-worker",
            [
                sys.executable,
                "-m",
                "bench.profile_worker",
                "--child",
                str(out),
                "--profiler",
                args.profiler,
            ],
            env,
            LOCAL / "logs" / f"profile-{run_id}.log",
        )
        t0 = time.time()
        first: tuple[float, int] | None = None
        async with OffsetWatcher(bootstrap, app_id, workload.topic) as watcher:
            while child.alive():
                committed = await watcher.committed()
                if committed and first is None:
                    first = (time.time(), committed)
                if committed >= workload.events:
                    break
                await asyncio.sleep(0.25)
        if first is not None:
            rate = (workload.events - first[1]) / max(time.time() - first[0], 1e-6)
            say(f"worker under the profiler: {rate:,.0f} ev/s ({time.time() - t0:.0f}s)")
        code = child.stop(grace_s=60)
        child = None
        if not out.exists():
            say(f"no profile written (worker exit {code})")
            return 1
        text = out.read_text() if args.profiler == "pyinstrument" else print_cprofile(out, args.top)
        print(text)
        say(f"profile: {out}")
        mine = {t for t in await list_topics(bootstrap) if app_id in t}
        await delete_topics(bootstrap, mine)
        return 0
    finally:
        if child is not None:
            child.stop()
        if started:
            await asyncio.to_thread(broker.down)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--top", type=int, default=30, help="functions to print (cProfile)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--controller-port", type=int, default=DEFAULT_CONTROLLER_PORT)
    parser.add_argument("--kafka-home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.profiler, args.child)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(profile(args))
    say("interrupted")
    return 130


if __name__ == "__main__":
    sys.exit(main())
