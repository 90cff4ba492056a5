"""Restore after ``kill -9``: a worker holding 100,000 streams is killed, restarted and timed.

A worker processes ``--streams`` live streams (a ``live_start`` and a like each, on one
partition) until it has committed them all, is killed with SIGKILL; 1,000 streams get one
more like and it starts again. From the restart: ``restored_s`` (its "partition 0 restored"
log line), ``restore_seconds`` (its gauge: the restore itself), ``before_restore_s`` (start-up,
joining), ``processing_again_s`` (its commit covers the new events: the target). Both runs
are one static group member, as the StatefulSet's pods; ``--dynamic``: a dynamic one, whose
restart waits for the killed member's session to time out.

  python -m bench.restore --broker 127.0.0.1:39092
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from bench import common
from bench.common import Child, say

STREAMS, TOUCHED = 100_000, 1_000
RESTORED = re.compile(
    r"partition 0 restored at offset (-?\d+): (\d+) streams, (\d+) ended, from (\d+) records"
)


def events(streams: range, n: int, ts: int) -> Iterator[tuple[bytes, bytes]]:
    """Event ``n`` of each of ``streams``: a live_start, then likes."""
    for i in streams:
        sid = f"r{i:06d}"
        event = {"v": 1, "event_id": f"{sid}-{n}", "type": "like" if n else "live_start"}
        event |= {"stream_id": sid, "creator_id": f"c{i % 997}", "ts": ts}
        event |= {"user_id": "u-1", "count": 1, "total": n} if n else {"title": "restore bench"}
        yield sid.encode(), orjson.dumps(event)


async def read_state(
    bootstrap: str, topic: str, ends: dict[int, int] | None = None
) -> dict[str, Any]:
    """What a restore of state topic ``topic`` reads below ``ends`` (default: its end) now:
    its records and bytes, and the live streams' records (the last of each key), bytes."""
    records = size = 0
    last: dict[bytes, int] = {}  # key -> value bytes (0: a tombstone)
    ends = ends or await common.end_offsets(bootstrap, topic)
    async for r in common.read(bootstrap, topic, ends):
        records, size = records + 1, size + len(r.key or b"") + len(r.value or b"")
        last[r.key or b""] = len(r.value or b"")
    streams = [v for k, v in last.items() if k.startswith(b"s:") and v]  # live streams
    ended = sum(1 for k, v in last.items() if k.startswith(b"e:") and v)
    per_stream = round(sum(streams) / len(streams), 1) if streams else None
    live = {"streams": len(streams), "stream_bytes": sum(streams), "bytes_per_stream": per_stream}
    return {"records": records, "bytes": size, "ended_streams": ended} | live


async def measure(bootstrap: str, streams: int = STREAMS, static: bool = True) -> dict[str, Any]:
    """The restore measurement; a failure is ``{"error": ...}``. Leaves no process behind."""
    app_id = f"{common.MARK}{time.strftime('%Y%m%d-%H%M%S')}-restore"
    topic, port = f"{app_id}.events", common.free_ports(1)[0]
    # processing again is seen as a commit: the worker commits every second here
    data = common.LOCAL / "tmp" / app_id
    env = common.worker_env(bootstrap, app_id, topic, port, data)
    env["LIVEPULSE_COMMIT_INTERVAL_SECONDS"] = "1"
    if static:
        env["LIVEPULSE_GROUP_INSTANCE_ID"] = "restore-worker-0"
    argv, logs = [sys.executable, "-m", "processor.cli", "worker"], common.LOCAL / "logs"
    children: list[Child] = []
    try:
        await common.create_topics(bootstrap, [topic], 1)
        t0_ms = int(time.time() * 1000)
        say(f"  restore: producing {streams:,} streams ({2 * streams:,} events) to {topic}")
        await common.produce(bootstrap, topic, events(range(streams), 0, t0_ms))
        await common.produce(bootstrap, topic, events(range(streams), 1, t0_ms + 1_000))
        async with common.admin(bootstrap) as client:
            for run, total in enumerate((2 * streams, 2 * streams + TOUCHED)):
                worker = Child(f"{app_id}-{run}", argv, env, logs / f"{app_id}-{run}.log")
                children.append(worker)
                started, restored, found = time.time(), None, None
                while worker.alive() and time.time() - started < 300:
                    log = worker.log.read_text(errors="replace") if run and not found else ""
                    if found := found or RESTORED.search(log):
                        restored = restored or time.time() - started
                    offsets = await common.committed(client, app_id, topic)
                    if sum(offsets.values()) >= total and (found or not run):
                        break
                    await asyncio.sleep(0.05)
                else:
                    return worker.failed(f"did not commit {total:,} records in 300 s")
                committed, peak_rss = time.time() - started, worker.peak_rss()
                if not run:
                    say(f"  restore: {total:,} events committed in {committed:.1f}s; kill -9")
                    worker.kill()  # SIGKILL: no leaving the group, no last commit
                    state_ends = await common.end_offsets(bootstrap, f"{app_id}.state")
                    await common.produce(bootstrap, topic, events(range(TOUCHED), 2, t0_ms + 2_000))
        gauge = common.metric(common.scrape(port), "livepulse_restore_seconds")
        gauge = None if gauge is None else round(gauge, 2)
        offset, restored_streams, ended, records_read = map(int, found.groups())
        return {
            "streams": streams,
            "touched_after_kill": TOUCHED,
            "restored_s": round(restored, 2),
            "restore_seconds": gauge,
            "before_restore_s": None if gauge is None else round(restored - gauge, 2),
            "processing_again_s": round(committed, 2),
            "restored_offset": offset,
            "restored_streams": restored_streams,
            "restored_ended": ended,
            "state_records_read": records_read,  # the worker's log line
            # the state topic up to the kill, read now: the cleaner may have compacted it
            "state_topic": await read_state(bootstrap, f"{app_id}.state", state_ends),
            "peak_rss_mb": round(peak_rss / 2**20, 1),
            "membership": "static" if static else "dynamic",
        }
    finally:
        for child in children:
            child.stop()
        shutil.rmtree(data, ignore_errors=True)
        await common.delete_topics(bootstrap, app_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser("python -m bench.restore", description=__doc__)
    parser.add_argument("--broker", metavar="HOST:PORT", required=True, help="a running broker")
    parser.add_argument("--streams", type=int, default=STREAMS, help=f"default {STREAMS:,}")
    parser.add_argument("--dynamic", action="store_true", help="a dynamic group member")
    args = parser.parse_args()
    result = asyncio.run(measure(args.broker, args.streams, static=not args.dynamic))
    print(json.dumps(result, indent=2))
    sys.exit(1 if result.get("error") else 0)
