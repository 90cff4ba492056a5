"""Naive Faust: likes per stream in Faust's own windowed tables, ``+=`` per like event.

As Faust's documentation teaches windowed counts: a tumbling table (60 s) and a hopping one
(600 s every 60 s), in memory with changelog topics. With ``BENCH_MODE=floor`` the agent only
iterates and decodes: the **Faust floor**, what any Faust agent pays a message.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import faust
import orjson

env = os.environ
PARTITIONS, EXPIRES = int(env["BENCH_PARTITIONS"]), timedelta(minutes=15)
app = faust.App(
    env["BENCH_GROUP"],
    broker=f"kafka://{env['BENCH_BROKER']}",
    datadir=env["BENCH_STATE_DIR"],
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=float(env["BENCH_COMMIT_SECONDS"]),
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
)
raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
events = app.topic(env["BENCH_TOPIC"], **raw)
table = app.Table("likes_tumbling", default=int, partitions=PARTITIONS)
tumbling = table.tumbling(60.0, expires=EXPIRES)
table = app.Table("likes_hopping", default=int, partitions=PARTITIONS)
hopping = table.hopping(600.0, 60.0, expires=EXPIRES)


@app.agent(events)
async def count_likes(stream: Any) -> None:
    floor = env.get("BENCH_MODE") == "floor"
    async for value in stream:
        event = orjson.loads(value)
        if not floor and event["type"] == "like":
            tumbling[event["stream_id"]] += event["count"]
            hopping[event["stream_id"]] += event["count"]


if __name__ == "__main__":
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    faust.Worker(
        app, loglevel="warning", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
