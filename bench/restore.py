"""Restore time for 100,000 streams: kill -9 a worker holding them, restart it, time it.

A fresh one-partition topic gets ``--streams`` live streams (a ``live_start`` and one
like each, keyed by stream id). One `livepulse worker` processes them until its committed
offset reaches the end (so every stream is in its checkpoint), is killed with SIGKILL,
one more like goes to each of ``--touched`` streams, and the worker is started again.
Measured from the restart (the new process's launch):

  restored_s          until the worker logs "partition 0 restored at offset ..."
  restore_seconds     the worker's livepulse_restore_seconds gauge: the restore itself
  before_restore_s    restored_s - restore_seconds: start-up and the wait for the group
  processing_again_s  until its committed offset covers the new events (the target)

Both runs of the worker are one static group member (LIVEPULSE_GROUP_INSTANCE_ID, as a
StatefulSet pod's name gives it in deploy/k8s): the restarted process takes the killed
one's partition back as soon as it joins. With --dynamic it is a dynamic member, as
before static membership: the killed member then holds its partition until its session
times out (the worker's LIVEPULSE_SESSION_TIMEOUT_SECONDS, default 10 s; see
--session-timeout), and that wait is part of restored_s and processing_again_s. Also
reported: the state topic as the restore read it (records and bytes), and the restarted
worker's peak RSS. Every topic it creates is deleted at the end.

  python -m bench.restore --broker 127.0.0.1:39092
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    LOCAL,
    Child,
    OffsetWatcher,
    create_topics,
    delete_topics,
    end_offsets,
    free_port,
    list_topics,
    quiet_kafka_logs,
    say,
)

MARK = "benchc-"  # as bench.run's: its stale-topic cleanup finds ours too
STREAMS = 100_000
TOUCHED = 1_000
TARGET_S = 5.0  # 100,000 streams processing again after kill -9 and restart
INSTANCE_ID = "restore-worker-0"
POLL_S = 0.05
# the worker's commit interval here (the at_least_once default is 5 s): processing again is
# seen as a commit that covers the new events
RESTORE_COMMIT_S = 1.0
RESTORED = re.compile(
    r"partition 0 restored at offset (-?\d+): (\d+) streams, (\d+) ended, from (\d+) records"
)


def worker_env(
    bootstrap: str,
    app_id: str,
    events_topic: str,
    metrics_port: int,
    data_dir: Path,
    session_timeout_s: float | None,
    group_instance_id: str | None = None,
) -> dict[str, str]:
    """The environment of a `livepulse worker` of ``app_id`` (as bench.run gives its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEPULSE_", "BENCH_"))}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "LIVEPULSE_BROKER": bootstrap,
        "LIVEPULSE_EVENTS_TOPIC": events_topic,
        "LIVEPULSE_ALERTS_TOPIC": f"{app_id}.alerts",
        "LIVEPULSE_DLQ_TOPIC": f"{app_id}.dlq",
        "LIVEPULSE_WINDOWS_TOPIC": f"{app_id}.windows",
        "LIVEPULSE_APP_ID": app_id,
        "LIVEPULSE_DATA_DIR": str(data_dir),
        "LIVEPULSE_METRICS_PORT": str(metrics_port),
        # processing again is seen as a commit that covers the new events: with the
        # at_least_once default of 5 s the first one would come up to 5 s after the events
        # were processed, so the bench commits every RESTORE_COMMIT_S
        "LIVEPULSE_COMMIT_INTERVAL_SECONDS": f"{RESTORE_COMMIT_S:g}",
    }
    if session_timeout_s is not None:
        env["LIVEPULSE_SESSION_TIMEOUT_SECONDS"] = f"{session_timeout_s:g}"
    if group_instance_id is not None:
        env["LIVEPULSE_GROUP_INSTANCE_ID"] = group_instance_id
    return env


def scrape_gauge(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Send ``events`` keyed by stream id, in order, and wait until all are acknowledged."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    try:
        chunk = 20_000
        for i in range(0, len(events), chunk):
            futures = [
                await producer.send(topic, orjson.dumps(e), key=e["stream_id"].encode())
                for e in events[i : i + chunk]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def workload(streams: int, t0_ms: int) -> list[dict[str, Any]]:
    """``streams`` streams: a live_start each, then a like each (all live at once)."""
    ids = [f"r{i:06d}" for i in range(streams)]
    starts = [
        {
            "v": 1,
            "event_id": f"{sid}-0",
            "type": "live_start",
            "stream_id": sid,
            "creator_id": f"c{i % 997}",
            "ts": t0_ms,
            "title": "restore bench",
        }
        for i, sid in enumerate(ids)
    ]
    return starts + [like(sid, f"c{i % 997}", 1, t0_ms + 1_000, 1) for i, sid in enumerate(ids)]


def like(sid: str, creator: str, n: int, ts: int, total: int) -> dict[str, Any]:
    return {
        "v": 1,
        "event_id": f"{sid}-{n}",
        "type": "like",
        "stream_id": sid,
        "creator_id": creator,
        "user_id": "u-1",
        "ts": ts,
        "count": 1,
        "total": total,
    }


async def read_state(bootstrap: str, topic: str, partition: int, end: int) -> dict[str, Any]:
    """What a restore of ``partition`` would read of state topic ``topic`` below offset
    ``end`` now: records and bytes (keys + values), and what is live once the last of each
    key is kept (stream records, their bytes). The log cleaner may have compacted the
    topic since an earlier restore read it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 2**20,
        max_partition_fetch_bytes=32 * 2**20,
    )
    await consumer.start()
    records = size = 0
    last: dict[bytes, int] = {}  # key -> value bytes (0: tombstone)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while end > 0 and await consumer.position(tp) < end:
            batch = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=1_000), 60)
            for r in batch.get(tp, []):
                if r.offset >= end:
                    break
                records += 1
                value = len(r.value) if r.value is not None else 0
                size += len(r.key or b"") + value
                last[r.key or b""] = value
    finally:
        await consumer.stop()
    streams = {k: v for k, v in last.items() if k.startswith(b"s:") and v}
    return {
        "records": records,
        "bytes": size,
        "live_stream_records": len(streams),
        "live_stream_value_bytes": sum(streams.values()),
        "ended_records": sum(1 for k, v in last.items() if k.startswith(b"e:") and v),
    }


async def wait_committed(
    watcher: OffsetWatcher, target: int, worker: Child, timeout: float
) -> float | None:
    """time.time() once the group's committed offset reaches ``target``; None on timeout or
    if the worker exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        if await watcher.committed() >= target:
            return time.time()
        await asyncio.sleep(POLL_S)
    return None


async def measure(
    bootstrap: str,
    app_id: str | None = None,
    streams: int = STREAMS,
    touched: int = TOUCHED,
    logs: Path | None = None,
    session_timeout_s: float | None = None,
    timeout_s: float = 300.0,
    static: bool = True,
) -> dict[str, Any]:
    """The restore measurement (see the module's doc). Never leaves a process or a topic
    behind; a failure is ``{"error": ...}``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    app_id = app_id or f"{MARK}{stamp}-restore"
    logs = logs or LOCAL / "logs" / f"restore-{stamp}"
    data_dir = LOCAL / "tmp" / f"{app_id}.data"
    events_topic = f"{app_id}.events"
    state_topic = f"{app_id}.state"
    touched = min(touched, streams)
    children: list[Child] = []
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last
        await create_topics(bootstrap, [events_topic], 1)
        t0_ms = int(time.time() * 1000)
        say(f"  restore: producing {streams:,} streams ({2 * streams:,} events) to {events_topic}")
        t = time.monotonic()
        await produce(bootstrap, events_topic, workload(streams, t0_ms))
        produce_s = time.monotonic() - t
        total = sum((await end_offsets(bootstrap, events_topic)).values())

        port = free_port()
        instance_id = INSTANCE_ID if static else None
        env = worker_env(
            bootstrap, app_id, events_topic, port, data_dir, session_timeout_s, instance_id
        )
        argv = [sys.executable, "-m", "processor.cli", "worker"]
        first = Child("restore-worker", argv, env, logs / "restore-worker.log")
        children.append(first)
        launched = time.time()
        async with OffsetWatcher(bootstrap, app_id, events_topic) as watcher:
            done_at = await wait_committed(watcher, total, first, timeout_s)
            if done_at is None:
                why = "exited" if not first.alive() else f"timed out after {timeout_s:.0f}s"
                return {
                    "error": f"first worker {why} before committing {total:,} records; "
                    f"log {first.log_path}:\n{first.tail()}"
                }
            first_rss = first.monitor.peak_rss
            say(f"  restore: {total:,} events committed in {done_at - launched:.1f}s; kill -9")
            first.kill_group()  # SIGKILL: no leave-group, no last commit
            first.stop()
            state_end = (await end_offsets(bootstrap, state_topic)).get(0, 0)

            more = [like(f"r{i:06d}", f"c{i % 997}", 2, t0_ms + 2_000, 2) for i in range(touched)]
            await produce(bootstrap, events_topic, more)
            target = total + len(more)

            second = Child("restore-worker-2", argv, env, logs / "restore-worker-2.log")
            children.append(second)
            restarted = time.time()
            say(f"  restore: restarted; waiting for the restore and {len(more):,} new events")
            restored_at: float | None = None
            found: tuple[int, ...] | None = None
            again_at: float | None = None
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and second.alive():
                now = time.time()
                if restored_at is None:
                    match = RESTORED.search(second.log_path.read_text(errors="replace"))
                    if match:
                        restored_at, found = now, tuple(map(int, match.groups()))
                if again_at is None and await watcher.committed() >= target:
                    again_at = now
                if restored_at is not None and again_at is not None:
                    break
                await asyncio.sleep(POLL_S)
            gauge = await asyncio.to_thread(scrape_gauge, port, "livepulse_restore_seconds")
            second_rss = second.monitor.peak_rss
            alive = second.alive()
            second.stop()
        if restored_at is None or again_at is None or found is None:
            why = "exited" if not alive else f"timed out after {timeout_s:.0f}s"
            return {
                "error": f"restarted worker {why} before "
                + ("restoring" if restored_at is None else "committing the new events")
                + f"; log {second.log_path}:\n{second.tail()}"
            }
        offset, restored_streams, ended, records_read = found
        state = await read_state(bootstrap, state_topic, 0, state_end)
        processing_again_s = again_at - restarted
        result: dict[str, Any] = {
            "streams": streams,
            "touched_after_kill": len(more),
            "events_before_kill": total,
            "produce_s": round(produce_s, 1),
            "first_run_s": round(done_at - launched, 1),
            "first_run_peak_rss_mb": round(first_rss / 2**20, 1),
            "restored_s": round(restored_at - restarted, 2),
            "restore_seconds": None if gauge is None else round(gauge, 2),
            "before_restore_s": None
            if gauge is None
            else round(restored_at - restarted - gauge, 2),
            "processing_again_s": round(processing_again_s, 2),
            "target_s": TARGET_S,
            "met": processing_again_s <= TARGET_S and restored_streams == streams,
            "restored_offset": offset,
            "restored_streams": restored_streams,
            "restored_ended": ended,
            "state_records_read": records_read,  # from the worker's log line
            # read by the bench after the measurement, up to the end at the kill; the
            # cleaner may have compacted it since the restore read it
            "state_topic": state,
            "peak_rss_mb": round(second_rss / 2**20, 1),
            "session_timeout_s": session_timeout_s,
            "membership": "static" if static else "dynamic",
            "method": "restart = the new process's launch, right after the new events are "
            "produced; restored_s = its 'restored' log line seen (polled every "
            f"{POLL_S:g}s); processing_again_s = its committed offset covers the new events "
            f"(the worker commits every {RESTORE_COMMIT_S:g} s here); both include "
            "start-up and joining the group"
            + (
                f" (a static member, {INSTANCE_ID!r}: it takes the killed one's partition back)"
                if static
                else " (a dynamic member: after the killed member's session times out)"
            ),
        }
        if restored_streams != streams:
            result["note"] = f"restored {restored_streams:,} streams of {streams:,}"
        return result
    finally:
        for child in children:
            if child.proc.returncode is None:  # not stopped (and reaped) yet
                child.stop()
        with contextlib.suppress(Exception):
            mine = {t for t in await list_topics(bootstrap) if t.startswith(app_id)}
            await delete_topics(bootstrap, mine)
        shutil.rmtree(data_dir, ignore_errors=True)


def summary(result: dict[str, Any]) -> str:
    if result.get("error"):
        return f"restore FAILED: {result['error']}"
    state = result["state_topic"]
    return (
        f"{result['restored_streams']:,} streams restored ({result['membership']} member): "
        f"'restored' logged "
        f"{result['restored_s']:.1f}s after the restart (restore itself "
        f"{result['restore_seconds']}s), processing again after "
        f"{result['processing_again_s']:.1f}s (target <= {result['target_s']:g}s: "
        f"{'met' if result['met'] else 'missed'}); the restore read "
        f"{result['state_records_read']:,} state records (the topic afterwards: "
        f"{state['records']:,} records, {state['bytes'] / 2**20:,.1f} MiB); "
        f"peak RSS {result['peak_rss_mb']:,.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--broker", metavar="HOST:PORT", required=True, help="a running broker")
    parser.add_argument("--streams", type=int, default=STREAMS, help=f"default {STREAMS:,}")
    parser.add_argument(
        "--touched",
        type=int,
        default=TOUCHED,
        help=f"streams that get an event between the kill and the restart (default {TOUCHED:,})",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        help="the worker's LIVEPULSE_SESSION_TIMEOUT_SECONDS (default: the worker's, 10 s)",
    )
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="restart the worker as a dynamic group member (no LIVEPULSE_GROUP_INSTANCE_ID), "
        "as before static membership: the restart waits for the killed member's session",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="cap per phase, seconds")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    quiet_kafka_logs()

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        if task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await measure(
            args.broker,
            streams=args.streams,
            touched=args.touched,
            session_timeout_s=args.session_timeout,
            timeout_s=args.timeout,
            static=not args.dynamic,
        )

    try:
        result = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; the workers this run started have been stopped")
        return 130
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    say(summary(result))
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
