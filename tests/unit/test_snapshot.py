"""A restored engine continues exactly as if it had never stopped."""

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core import snapshot
from processor.core.engine import Engine
from processor.core.windows import Totals
from processor.records import OutputRecord
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_engine_vs_reference import CONFIG, build, step


def records(engine: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        outcome = engine.process(typed(event))
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
    pending = [OutputRecord("alerts", b"k", b'{"x":1}', (("h", b"\x00\xff"),), 3)]
    data = snapshot.encode(first, offset=at - 1, pending=pending)
    restored = snapshot.decode(data, CONFIG, 0, OutputRecord)
    assert (restored.offset, restored.pending) == (at - 1, pending)
    assert before + records(restored.engine, events[at:]) == uninterrupted


def test_fields_are_stored_by_name_with_a_format_number() -> None:
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    for event in (s.start(T0), s.likes(T0 + 1_000, 5), s.gift(T0 + 2_000, 5, 1, False, True)):
        engine.process(typed(event))
    doc = msgspec.msgpack.decode(snapshot.encode(engine, 41, []))
    assert list(doc) == ["format", "offset", "streams", "ended", "pending"]
    assert (doc["format"], doc["offset"]) == (snapshot.FORMAT_VERSION, 41)
    (stream,) = doc["streams"]
    assert list(stream) == list(snapshot.StreamSnapshot.__struct_fields__)
    assert stream["session"] == [5, 1, 5]
    assert stream["window"] == [[T0, 5, 1, 5]]


def snapshot_bytes(**changes: object) -> bytes:
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    engine.process(typed(s.likes(T0, 5)))
    doc = msgspec.msgpack.decode(snapshot.encode(engine, 7, []))
    doc.update(changes)
    return msgspec.msgpack.encode(doc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (msgspec.msgpack.encode({"format": 99}), "unsupported snapshot format 99; this version"),
        (b'{"format":1,"offset":3,"streams":[]}', "snapshot format 1 (JSON"),
        (b"\xc1garbage", "not a livepulse snapshot"),
        (snapshot_bytes(offset="seven"), "corrupt snapshot (format 2): Expected `int`"),
        (snapshot_bytes(extra=1), "corrupt snapshot (format 2): Object contains unknown field"),
        (snapshot_bytes(streams=[{"stream_id": "s1"}]), "corrupt snapshot (format 2)"),
    ],
)
def test_a_snapshot_of_another_format_or_corrupt_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(snapshot.SnapshotError) as info:
        snapshot.decode(data, CONFIG, 0, OutputRecord)
    assert message in str(info.value)


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
            engine.process(typed(event))
        done = point
        engine.tick(wall_ms=point * 7_000)
        incremental = msgspec.msgpack.decode(writer.encode(engine, point, []))
        full = msgspec.msgpack.decode(snapshot.encode(engine, point, []))
        for doc in (incremental, full):  # stream order is not part of the format
            doc["streams"].sort(key=lambda stream: stream["stream_id"])
        assert incremental == full


def stream_bytes(**changes: object) -> bytes:
    """A one-stream snapshot (a full minute of buckets) with the stream's fields changed."""
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    for k in range(6):
        engine.process(typed(s.likes(T0 + k * 10_000, 5)))
    doc = msgspec.msgpack.decode(snapshot.encode(engine, 7, []))
    doc["streams"][0].update(changes)
    return msgspec.msgpack.encode(doc)


def test_rows_in_any_order_restore_the_same_windows() -> None:
    """Snapshots written before the ring kept rows in insertion order, not by start."""
    doc = msgspec.msgpack.decode(stream_bytes())
    window = doc["streams"][0]["window"]
    assert [row[0] for row in window] == [T0 + k * 10_000 for k in range(6)]
    shuffled = stream_bytes(window=window[::-1])
    restored = snapshot.decode(shuffled, CONFIG, 0, OutputRecord).engine
    assert msgspec.msgpack.decode(snapshot.encode(restored, 7, [])) == doc


def test_rows_under_another_window_config_restore_what_fits() -> None:
    """The tier window setting changed between two runs: rows older than the window are
    left out (they would have expired), rows off the step count in their bucket."""
    data = stream_bytes(
        window=[[T0 - 60_000, 1, 0, 0], [T0 + 5, 2, 0, 0], [T0 + 10_000, 3, 1, 1]],
        tumbling=[[T0 + 5, 4, 0, 0]],
    )
    state = snapshot.decode(data, CONFIG, 0, OutputRecord).engine.streams["s1"]
    assert state.window.rows() == [(T0, 2, 0, 0), (T0 + 10_000, 3, 1, 1)]
    assert state.window.totals == Totals(5, 1, 1)
    assert state.tumbling.rows() == [(T0, 4, 0, 0)]


def test_a_count_beyond_64_bits_is_refused() -> None:
    with pytest.raises(snapshot.SnapshotError) as info:
        snapshot.decode(stream_bytes(window=[[T0, 2**63, 0, 0]]), CONFIG, 0, OutputRecord)
    assert str(info.value).startswith("corrupt snapshot (format 2): ")
    assert "too big" in str(info.value)
