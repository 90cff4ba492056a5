"""In-process micro-benchmark of the batch step: µs per event for ``PartitionState.apply``
and for checkpoints, on the heavy workload or the simulator's, with no broker.

The records are generated once into memory, split over ``--partitions`` by key as a
producer would, then fed to one :class:`PartitionState` per partition in fetches of
``--batch`` records, round-robin over partitions as a worker's fetches come; a checkpoint of
every partition is taken after every ``--checkpoint-every`` events (the worker checkpoints
once per commit interval: at 100,000 events/s and 1 s, every 100,000). Wall clock for the
engine is the events' own time, so idle decay does what it would at full speed.

  python -m bench.micro                                  # heavy workload, 500k events
  python -m bench.micro --workload simulator
  python -m bench.micro --profile                        # cProfile of the whole loop
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import time
import zlib
from dataclasses import dataclass
from typing import Any

from processor.core.engine import EngineConfig
from processor.settings import Settings
from processor.worker.partitions import PartitionState, Routes


@dataclass(frozen=True, slots=True)
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def load(workload: str, events: int, streams: int | None) -> list[tuple[bytes, bytes]]:
    if workload == "heavy":
        from bench.heavy import Heavy, records

        return list(records(Heavy(events=events, streams=streams or 10_000)))
    from bench.workload import Workload
    from bench.workload import records as sim_records

    w = Workload(events=events, streams=streams or 1_000, partitions=8)
    return list(sim_records(w.simulation()))


def split(raw: list[tuple[bytes, bytes]], partitions: int) -> list[list[Rec]]:
    parts: list[list[Rec]] = [[] for _ in range(partitions)]
    for key, value in raw:
        part = parts[zlib.crc32(key) % partitions]
        ts = int(value[value.index(b'"ts":') + 5 : value.index(b'"ts":') + 18])
        part.append(Rec(len(part), key, value, ts))
    return parts


def run(args: argparse.Namespace) -> dict[str, Any]:
    raw = load(args.workload, args.events, args.streams)
    parts = split(raw, args.partitions)
    del raw
    settings = Settings()
    config = EngineConfig.from_settings(settings)
    routes = Routes.from_settings(settings)
    states = [PartitionState(p, _engine(config), routes) for p in range(args.partitions)]
    cursors = [0] * args.partitions
    apply_s = checkpoint_s = 0.0
    outputs = checkpoints = state_records = state_bytes = 0
    since = 0
    gc.collect()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    remaining = sum(len(p) for p in parts)
    while remaining:
        for p, part in enumerate(parts):
            batch = part[cursors[p] : cursors[p] + args.batch]
            if not batch:
                continue
            cursors[p] += len(batch)
            remaining -= len(batch)
            since += len(batch)
            t0 = time.perf_counter()
            result = states[p].apply(batch, batch[-1].timestamp)
            apply_s += time.perf_counter() - t0
            outputs += len(result.records)
        if since >= args.checkpoint_every or not remaining:
            since = 0
            t0 = time.perf_counter()
            for state in states:
                for record in state.checkpoint():
                    state_records += 1
                    state_bytes += len(record.key or b"") + len(record.value or b"")
            checkpoint_s += time.perf_counter() - t0
            checkpoints += 1
    if profiler:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
        print(text.getvalue())
    n = sum(len(p) for p in parts)
    return {
        "workload": args.workload,
        "events": n,
        "streams": sum(len(s.engine.streams) for s in states),
        "apply_us_per_event": round(apply_s / n * 1e6, 2),
        "checkpoint_us_per_event": round(checkpoint_s / n * 1e6, 2),
        "total_us_per_event": round((apply_s + checkpoint_s) / n * 1e6, 2),
        "checkpoints": checkpoints,
        "state_records": state_records,
        "state_bytes_per_event": round(state_bytes / n, 1),
        "outputs": outputs,
    }


def _engine(config: Any) -> Any:
    from processor.core.engine import Engine

    return Engine(config)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=("heavy", "simulator"), default="heavy")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--streams", type=int, default=None, help="heavy 10,000, simulator 1,000")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(
                f"{key:>26}: {value:,}" if isinstance(value, int | float) else f"{key:>26}: {value}"
            )


if __name__ == "__main__":
    main()
