"""In-process micro-benchmark of the batch step: µs per event of ``PartitionState.apply``
and of checkpoints, on the heavy workload or the simulator's, with no broker.

The records, split over ``--partitions`` by key, go to one ``PartitionState`` per partition
in fetches of ``--batch``, round-robin as a worker's fetches come, with a checkpoint of every
partition each ``--checkpoint-every`` events; the wall clock is the events' time. One line of
JSON. ``LIVEPULSE_PURE_PYTHON=1``: on the core's Python source; ``--profile``: a cProfile too.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import time
import zlib
from dataclasses import dataclass
from typing import Any

from bench.workload import Workload
from processor import core_is_compiled
from processor.core.engine import Engine, EngineConfig
from processor.settings import Settings
from processor.worker.partitions import PartitionState, Routes


@dataclass(frozen=True, slots=True)
class Record:  # what ``apply`` reads of a consumer record
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def partitioned(workload: str, events: int, streams: int | None, n: int) -> list[list[Record]]:
    """The workload's records, split over ``n`` partitions by key, in order."""
    heavy = Workload.heavy(events, streams or 10_000)
    chosen = heavy if workload == "heavy" else Workload(events, streams or 1_000, n)
    parts: list[list[Record]] = [[] for _ in range(n)]
    for key, value in chosen.records():
        part = parts[zlib.crc32(key) % n]
        at = value.index(b'"ts":') + 5
        part.append(Record(len(part), key, value, int(value[at : at + 13])))
    return parts


def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = partitioned(args.workload, args.events, args.streams, args.partitions)
    settings = Settings()
    config, routes = EngineConfig.from_settings(settings), Routes.from_settings(settings)
    states = [PartitionState(p, Engine(config), routes) for p in range(len(parts))]
    cursors = [0] * len(parts)
    apply_s = checkpoint_s = 0.0
    outputs = checkpoints = state_records = state_bytes = since = 0
    remaining = total = sum(map(len, parts))
    gc.collect()
    profiler = cProfile.Profile()
    if args.profile:
        profiler.enable()
    while remaining:
        for p, part in enumerate(parts):
            batch = part[cursors[p] : cursors[p] + args.batch]
            if batch:
                cursors[p] += len(batch)
                remaining -= len(batch)
                since += len(batch)
                t0 = time.perf_counter()
                outputs += len(states[p].apply(batch, batch[-1].timestamp).records)
                apply_s += time.perf_counter() - t0
        if since >= args.checkpoint_every or not remaining:
            since = 0
            t0 = time.perf_counter()
            written = [r for state in states for r in state.checkpoint()]
            checkpoint_s += time.perf_counter() - t0
            checkpoints += 1
            state_records += len(written)
            state_bytes += sum(len(r.key or b"") + len(r.value or b"") for r in written)
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return {
        "workload": args.workload,
        "core": "compiled" if core_is_compiled() else "pure Python",
        "events": total,
        "streams": sum(len(s.engine.streams) for s in states),
        "apply_us_per_event": round(apply_s / total * 1e6, 2),
        "checkpoint_us_per_event": round(checkpoint_s / total * 1e6, 2),
        "total_us_per_event": round((apply_s + checkpoint_s) / total * 1e6, 2),
        "checkpoints": checkpoints,
        "state_records": state_records,
        "state_bytes_per_event": round(state_bytes / total, 1),
        "outputs": outputs,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser("python -m bench.apply", description=__doc__)
    add = parser.add_argument
    add("--workload", choices=("heavy", "simulator"), default="heavy")
    add("--events", type=int, default=500_000)
    add("--streams", type=int, help="default: heavy 10,000, simulator 1,000")
    add("--partitions", type=int, default=8)
    add("--batch", type=int, default=2_000, help="records a fetch")
    add("--checkpoint-every", type=int, default=100_000, help="events")
    add("--profile", action="store_true", help="print a cProfile of the loop first")
    print(json.dumps(run(parser.parse_args())))
