"""Naive Faust: likes per stream in Faust's own windowed tables, ``+=`` per like event.

With ``BENCH_MODE=floor`` the agent only iterates the stream and decodes each value with
orjson, touching no table: Faust's own per-message cost, the floor under any Faust agent.

This is how the Faust documentation teaches windowed counts: a tumbling table (60 s) and
a hopping table (``BENCH_HOP_SIZE`` s every ``BENCH_HOP_STEP`` s), both in memory with
Faust's changelog topics, windows on the record timestamp (Faust's default). Every
write sends one changelog record, and a hopping write touches size/step windows.

Run by the harness as ``python -m bench.naive_faust`` with its settings in the
environment: ``BENCH_BROKER``, ``BENCH_TOPIC``, ``BENCH_APP_ID``, ``BENCH_PARTITIONS``,
``BENCH_DATA_DIR``, ``BENCH_HOP_SIZE``, ``BENCH_HOP_STEP``, ``BENCH_MODE``. Stop it with SIGTERM.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import faust
import orjson

BROKER = os.environ.get("BENCH_BROKER", "127.0.0.1:39092")
TOPIC = os.environ.get("BENCH_TOPIC", "bench.events")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
HOP_SIZE = float(os.environ.get("BENCH_HOP_SIZE", "600"))
HOP_STEP = float(os.environ.get("BENCH_HOP_STEP", "60"))
FLOOR = os.environ.get("BENCH_MODE", "tables") == "floor"

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-naive-faust"),
    broker=f"kafka://{BROKER}",
    datadir=os.environ.get("BENCH_DATA_DIR", ".local/bench/naive-faust"),
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    # as livepulse's default commit interval (bench.run passes it)
    broker_commit_interval=float(os.environ.get("BENCH_COMMIT_SECONDS", "5")),
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
)

events = app.topic(
    TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)

likes_tumbling = app.Table("likes_tumbling", default=int, partitions=PARTITIONS).tumbling(
    60.0, expires=timedelta(minutes=15)
)
likes_hopping = app.Table("likes_hopping", default=int, partitions=PARTITIONS).hopping(
    HOP_SIZE, HOP_STEP, expires=timedelta(minutes=15)
)


@app.agent(events)
async def count_likes(stream: Any) -> None:
    if FLOOR:
        async for value in stream:
            orjson.loads(value)
        return
    async for value in stream:
        event = orjson.loads(value)
        if event["type"] == "like":
            stream_id = event["stream_id"]
            likes_tumbling[stream_id] += event["count"]
            likes_hopping[stream_id] += event["count"]


def main() -> None:
    from faust import Worker

    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
