"""Quix Streams: the per-stream tumbling like count, the way its documentation writes it.

Likes' ``count`` summed in a 60 s tumbling window per message key (the stream id) on event
time (the event's ``ts``), in RocksDB with Quix's changelog topics (its defaults); ``.final()``
emits each window once when it closes. Run by bench.run with its settings in ``BENCH_*``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from quixstreams import Application


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    ts: int = value["ts"]
    return ts


if __name__ == "__main__":
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    env = os.environ
    app = Application(
        broker_address=env["BENCH_BROKER"],
        consumer_group=env["BENCH_GROUP"],
        auto_offset_reset="earliest",
        commit_interval=float(env["BENCH_COMMIT_SECONDS"]),
        state_dir=env["BENCH_STATE_DIR"],
        loglevel="WARNING",
    )
    # values as JSON, keys as bytes: Quix's defaults
    topic = app.topic(env["BENCH_TOPIC"], timestamp_extractor=event_time)
    sdf = app.dataframe(topic).filter(lambda event: event["type"] == "like")
    sdf.apply(lambda event: event["count"]).tumbling_window(duration_ms=60_000).sum().final()
    app.run()
