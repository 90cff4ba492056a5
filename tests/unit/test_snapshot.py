"""A restored engine continues exactly as if it had never stopped."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core import snapshot
from processor.core.engine import Engine
from tests.unit.test_engine_vs_reference import CONFIG, build, step


def records(engine: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        outcome = engine.process(event)
        out.extend(o.to_record(0) for o in outcome.outputs)
        out.append({"late": outcome.late})
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(step, min_size=30, max_size=100), st.floats(0.0, 1.0))
def test_restore_at_any_point_gives_the_same_outputs(steps: list[Any], cut: float) -> None:
    events = build(steps)
    at = int(len(events) * cut)
    uninterrupted = records(Engine(CONFIG), events)

    first = Engine(CONFIG)
    before = records(first, events[:at])
    data = snapshot.encode(first, offset=at - 1, pending=[["alerts", "k", {"x": 1}]])
    restored = snapshot.decode(data, CONFIG, wall_ms=0)
    assert (restored.offset, restored.pending) == (at - 1, [["alerts", "k", {"x": 1}]])
    assert before + records(restored.engine, events[at:]) == uninterrupted


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported snapshot format"):
        snapshot.decode(b'{"format": 99}', CONFIG, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(step, min_size=30, max_size=100), st.lists(st.floats(0.0, 1.0), max_size=4))
def test_incremental_snapshots_equal_full_ones(steps: list[Any], cuts: list[float]) -> None:
    """Checkpoints at any points, with idle ticks between, re-encode only what changed."""
    events = build(steps)
    engine = Engine(CONFIG)
    writer = snapshot.SnapshotWriter()
    points = sorted({int(len(events) * c) for c in cuts} | {len(events)})
    done = 0
    for point in points:
        for event in events[done:point]:
            engine.process(event)
        done = point
        engine.tick(wall_ms=point * 7_000)
        incremental = orjson.loads(writer.encode(engine, point, []))
        full = orjson.loads(snapshot.encode(engine, point, []))
        for doc in (incremental, full):  # stream order is not part of the format
            doc["streams"].sort()
        assert incremental == full
