"""Quix Streams: the same per-stream tumbling like count, the way its documentation writes it.

A StreamingDataFrame keeps like events, takes their ``count`` and sums it in a 60 s tumbling
window per message key (the stream id) on event time (the event's ``ts``), with state in
RocksDB and Quix's changelog topics (its defaults). ``.final()`` emits each window once
when it closes.

Run by the harness as ``python -m bench.quix`` with ``BENCH_BROKER``, ``BENCH_TOPIC``,
``BENCH_GROUP`` and ``BENCH_STATE_DIR`` in the environment. Stop it with SIGTERM.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from quixstreams import Application
from quixstreams.models import TimestampType


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: TimestampType) -> int:
    ts: int = value["ts"]
    return ts


def main() -> None:
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app = Application(
        broker_address=os.environ.get("BENCH_BROKER", "127.0.0.1:39092"),
        consumer_group=os.environ.get("BENCH_GROUP", "bench-quix"),
        auto_offset_reset="earliest",
        # as livepulse's default commit interval (bench.run passes it)
        commit_interval=float(os.environ.get("BENCH_COMMIT_SECONDS", "5")),
        state_dir=os.environ.get("BENCH_STATE_DIR", ".local/bench/quix-state"),
        loglevel="WARNING",
    )
    topic = app.topic(
        os.environ.get("BENCH_TOPIC", "bench.events"),
        value_deserializer="json",
        key_deserializer="bytes",
        timestamp_extractor=event_time,
    )
    sdf = app.dataframe(topic)
    sdf = sdf.filter(lambda event: event["type"] == "like")
    sdf = sdf.apply(lambda event: event["count"])
    sdf = sdf.tumbling_window(duration_ms=60_000).sum().final()
    app.run()


if __name__ == "__main__":
    main()
