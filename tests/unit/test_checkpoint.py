"""A restored engine continues exactly as if it had never stopped; checkpoints cost change."""

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core import checkpoint
from processor.core.alerts import TierChanged, WindowClosed
from processor.core.engine import Engine, EngineConfig
from processor.core.windows import Totals
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
@given(st.lists(step, min_size=30, max_size=100), st.lists(st.floats(0.0, 1.0), max_size=4))
def test_restore_after_any_checkpoints_gives_the_same_outputs(
    steps: list[Any], cuts: list[float]
) -> None:
    """Checkpoints at any points (each writing only what changed, ticks between) append to
    one log; restoring from the log at the end continues like the uninterrupted engine."""
    events = build(steps)
    uninterrupted = records(Engine(CONFIG), events)
    points = sorted({int(len(events) * c) for c in cuts} | {len(events) // 2})
    engine, log, done, before = Engine(CONFIG), [], 0, []
    for point in points:
        before += records(engine, events[done:point])
        done = point
        log += checkpoint.changes(engine, offset=point - 1)
    restored = checkpoint.restore(log, CONFIG, wall_ms=0)
    assert (restored.offset, restored.ahead) == (done - 1, {})
    assert before + records(restored.engine, events[done:]) == uninterrupted


def test_a_checkpoint_writes_what_changed_and_a_tombstone_for_what_ended() -> None:
    engine = Engine(CONFIG)
    a, b, c = StreamScript("a"), StreamScript("b"), StreamScript("c")
    for event in (a.start(T0), b.start(T0), c.start(T0), b.likes(T0 + 1, 3)):
        engine.process(typed(event))
    first = checkpoint.changes(engine, offset=3)
    assert {k for k, _ in first[:-1]} == {b"s:a", b"s:b", b"s:c"}
    assert first[-1][0] == b"p"  # the partition record comes last

    engine.process(typed(a.likes(T0 + 2, 5)))
    engine.process(typed(c.end(T0 + 3)))
    second = dict(checkpoint.changes(engine, offset=5))
    assert set(second) == {b"s:a", b"s:c", b"e:c", b"p"}  # b did not change
    assert second[b"s:c"] is None  # ended: its state goes
    assert checkpoint.changes(engine, offset=5) == [(b"p", second[b"p"])]  # nothing changed

    restored = checkpoint.restore(first + list(second.items()), CONFIG, wall_ms=0)
    assert set(restored.engine.streams) == {"a", "b"}
    assert dict(restored.engine.ended) == {"c": T0 + 3}
    assert restored.offset == 5


def test_ended_streams_forgotten_from_memory_get_a_tombstone() -> None:
    """Once the partition record that covers its end is written: a stream that ended and
    was forgotten within one checkpoint keeps a marker until the next one."""
    config = EngineConfig(ended_memory=1)
    engine = Engine(config)
    for stream_id in ("a", "b"):
        s = StreamScript(stream_id)
        engine.process(typed(s.start(T0)))
        engine.process(typed(s.end(T0 + 1)))
    log = checkpoint.changes(engine, offset=3)
    keys = [key for key, _ in log]  # markers in the order the streams ended, tombstones
    assert keys[:2] == [b"e:a", b"e:b"] and set(keys[2:4]) == {b"s:a", b"s:b"}
    assert keys[4] == b"p"
    assert dict(checkpoint.restore(log, config, 0).engine.ended) == {"b": T0 + 1}
    log += checkpoint.changes(engine, offset=3)
    assert log[-2:] == [log[4], (b"e:a", None)]  # the partition record, then the tombstone
    assert dict(checkpoint.restore(log, config, 0).engine.ended) == {"b": T0 + 1}


def test_a_marker_written_before_a_crash_outranks_the_state_it_ends() -> None:
    """A crash between an ended stream's marker and its state tombstone: the stream is
    restored ended, its records up to the marker's offset skipped."""
    engine = Engine(CONFIG)
    s = StreamScript("a")
    engine.process(typed(s.start(T0)))
    log = checkpoint.changes(engine, offset=0)
    engine.process(typed(s.end(T0 + 1)))
    cut_short = [r for r in checkpoint.changes(engine, offset=1) if r[0] == b"e:a"]
    restored = checkpoint.restore(log + cut_short, CONFIG, 0)
    assert (restored.engine.streams, dict(restored.engine.ended)) == ({}, {"a": T0 + 1})
    assert (restored.offset, restored.ahead) == (0, {"a": 1})


def test_too_many_ended_markers_are_forgotten_as_the_engine_would() -> None:
    """A crash after the partition record and before the tombstones of forgotten markers:
    the restore forgets the oldest, and the next checkpoint removes their markers."""
    config = EngineConfig(ended_memory=2)
    markers = [
        (f"e:{sid}".encode(), msgspec.msgpack.encode({"format": 4, "offset": 5, "ended_at": at}))
        for at, sid in enumerate("abc", start=T0)
    ]
    restored = checkpoint.restore(markers, config, 0)
    assert dict(restored.engine.ended) == {"b": T0 + 1, "c": T0 + 2}
    assert checkpoint.changes(restored.engine, offset=6)[-1] == (b"e:a", None)


def test_a_checkpoint_cut_short_is_detected_per_stream() -> None:
    """A crash after some stream records of a checkpoint and before its partition record:
    those streams are ahead of the partition offset, and say by how much."""
    engine = Engine(CONFIG)
    a, b = StreamScript("a"), StreamScript("b")
    for event in (a.start(T0), b.start(T0)):
        engine.process(typed(event))
    log = checkpoint.changes(engine, offset=1)
    engine.process(typed(a.likes(T0 + 1, 5)))
    engine.process(typed(b.likes(T0 + 2, 5)))
    cut_short = [r for r in checkpoint.changes(engine, offset=3) if r[0] == b"s:a"]
    restored = checkpoint.restore(log + cut_short, CONFIG, wall_ms=0)
    assert (restored.offset, restored.ahead) == (1, {"a": 3})
    assert restored.engine.streams["a"].session.likes == 5
    assert restored.engine.streams["b"].session.likes == 0


def test_fields_are_stored_by_name_with_a_format_number() -> None:
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    for event in (s.start(T0), s.likes(T0 + 1_000, 5), s.gift(T0 + 2_000, 5, 1, False, True)):
        engine.process(typed(event))
    (stream_key, stream_value), (key, value) = checkpoint.changes(engine, 41)
    assert (stream_key, key) == (b"s:s1", b"p")
    assert msgspec.msgpack.decode(value) == {
        "format": checkpoint.FORMAT_VERSION,
        "offset": 41,
        "ticked_ms": -1,  # no idle tick yet
        "downtime_ms": 0,
        "event_ms": T0 + 2_000,  # the partition's latest event, seen at idle clock 0
        "event_seen_ms": 0,
        "time_ms": T0 + 2_000,  # its time: no idle time yet
    }
    doc = msgspec.msgpack.decode(stream_value)
    assert list(doc) == ["format", "offset", "stream"]
    assert list(doc["stream"]) == list(checkpoint.StreamSnapshot.__struct_fields__)
    assert doc["stream"]["session"] == [5, 1, 5]
    assert doc["stream"]["window"] == [[T0, 5, 1, 5]]  # a sparse window: its rows
    assert doc["stream"]["packed"] is None


def test_a_dense_window_is_written_as_its_ring_whole() -> None:
    """Every bucket used: the ring's counts (likes, gifts, coins of the 6 buckets, bucket
    T0 in slot 0), cheaper to copy than 6 rows to build."""
    ((_, value),) = one_stream()
    doc = msgspec.msgpack.decode(value or b"")["stream"]
    assert doc["window"] == []
    packed = doc["packed"]
    assert (packed["size_ms"], packed["step_ms"], packed["used"]) == (60_000, 10_000, 0b111111)
    assert packed["counts"] == [5] * 6 + [0] * 12
    state = checkpoint.restore(one_stream(), CONFIG, 0).engine.streams["s1"]
    assert state.window.rows() == [(T0 + k * 10_000, 5, 0, 0) for k in range(6)]


def stream_value(**changes: object) -> bytes:
    engine = Engine(CONFIG)
    engine.process(typed(StreamScript("s1").likes(T0, 5)))
    doc = msgspec.msgpack.decode(checkpoint.changes(engine, 7)[0][1] or b"")
    doc.update(changes)
    return msgspec.msgpack.encode(doc)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ((b"p", msgspec.msgpack.encode({"format": 99, "offset": 1})), "checkpoint format 99;"),
        ((b"0", b'{"format":1,"offset":3}'), "whole-partition snapshot (key '0', format 2"),
        ((b"s:s1", b"\xc1garbage"), "stream 's1': not a livepulse checkpoint record"),
        ((b"s:s1", stream_value(offset="seven")), "stream 's1': corrupt checkpoint record"),
        ((b"s:s1", stream_value(extra=1)), "Object contains unknown field `extra`"),
        ((b"x:what", b"\x80"), "unknown checkpoint record key 'x:what'"),
    ],
)
def test_a_record_of_another_format_or_corrupt_is_refused(
    record: tuple[bytes, bytes], message: str
) -> None:
    with pytest.raises(checkpoint.SnapshotError) as info:
        checkpoint.restore([record], CONFIG, 0)
    assert message in str(info.value)


def test_the_latest_value_of_each_key_wins_and_tombstones_delete() -> None:
    log = [(b"k1", b"1"), (b"k2", b"2"), (b"k1", b"3"), (b"k2", None), (b"k3", b"4")]
    assert list(checkpoint.latest(log)) == [(b"k1", b"3"), (b"k3", b"4")]


def one_stream(**changes: object) -> list[tuple[bytes, bytes | None]]:
    """A one-stream checkpoint record (a full minute of buckets), its fields changed; with
    ``window`` rows, as format 4 wrote it (no packed ring, no idle clock)."""
    engine = Engine(CONFIG)
    s = StreamScript("s1")
    for k in range(6):
        engine.process(typed(s.likes(T0 + k * 10_000, 5)))
    key, value = checkpoint.changes(engine, 7)[0]
    doc = msgspec.msgpack.decode(value or b"")
    if "window" in changes:
        doc["format"] = 4
        del doc["stream"]["packed"], doc["stream"]["seen_wall_ms"]
        names = ("start", "exact", "likers", "gifters")
        doc["stream"]["panes"] = [dict(zip(names, p, strict=True)) for p in doc["stream"]["panes"]]
    doc["stream"].update(changes)
    return [(key, msgspec.msgpack.encode(doc))]


def format_4(rows: list[tuple[int, int, int, int]]) -> list[tuple[bytes, bytes | None]]:
    return one_stream(window=[list(row) for row in rows])


def test_a_format_4_record_restores_the_same_window() -> None:
    """Checkpoints written before the ring was packed kept its rows; they still restore."""
    rows = [(T0 + k * 10_000, 5, 0, 0) for k in range(6)]
    restored = checkpoint.restore(format_4(rows), CONFIG, 0).engine
    assert restored.streams["s1"].window.rows() == rows
    assert checkpoint.full(restored, 7)[0] == one_stream()[0]


def test_rows_in_any_order_restore_the_same_windows() -> None:
    """Checkpoints written before the ring kept rows in insertion order, not by start."""
    window = [[T0 + k * 10_000, 5, 0, 0] for k in range(6)]
    restored = checkpoint.restore(one_stream(window=window[::-1]), CONFIG, 0).engine
    assert checkpoint.full(restored, 7)[0] == one_stream()[0]


def test_rows_under_another_window_config_restore_what_fits() -> None:
    """The tier window setting changed between two runs: rows older than the window are
    left out (they would have expired), rows off the step count in their bucket."""
    records = one_stream(
        window=[[T0 - 60_000, 1, 0, 0], [T0 + 5, 2, 0, 0], [T0 + 10_000, 3, 1, 1]],
        tumbling=[[T0 + 5, 4, 0, 0]],
    )
    state = checkpoint.restore(records, CONFIG, 0).engine.streams["s1"]
    assert state.window.rows() == [(T0, 2, 0, 0), (T0 + 10_000, 3, 1, 1)]
    assert state.window.totals == Totals(5, 1, 1)
    assert state.tumbling.rows() == [(T0, 4, 0, 0)]


def test_a_count_beyond_64_bits_is_refused() -> None:
    with pytest.raises(checkpoint.SnapshotError) as info:
        checkpoint.restore(one_stream(window=[[T0, 2**63, 0, 0]]), CONFIG, 0)
    assert str(info.value).startswith("stream 's1': corrupt checkpoint record: ")
    assert "too big" in str(info.value)


def test_a_checkpoint_of_100_active_streams_out_of_50_000_writes_101_records() -> None:
    """Checkpoint cost follows the streams that events changed, not the streams held, nor
    the wall clock."""
    engine = Engine(CONFIG)
    scripts = [StreamScript(f"s{i}") for i in range(50_000)]
    for s in scripts:
        engine.process(typed(s.start(T0)))
    checkpoint.changes(engine, offset=49_999)
    engine.tick(30_000)  # 30 s of wall clock: every window slides, no stream is rewritten
    for s in scripts[:100]:
        engine.process(typed(s.likes(T0 + 31_000, 5)), wall_ms=30_000)
    records = checkpoint.changes(engine, offset=50_099)
    assert len(records) == 101 and records[-1][0] == b"p"
    # about 420 B a stream: its window, its liker (session and minute), viewers and spikes
    assert sum(len(v or b"") for _, v in records) < 100 * 500


def test_the_memory_of_ended_streams_keeps_its_order_across_a_restore() -> None:
    """Which ended stream is forgotten first must not depend on a restart."""
    engine = Engine(EngineConfig(ended_memory=50))
    names = [f"x{i:03d}" for i in range(40)]
    for i, name in enumerate(names):
        s = StreamScript(name)
        engine.process(typed(s.start(T0 + i)))
    for i, name in enumerate(reversed(names)):  # they end in another order than they began
        engine.process(typed(StreamScript(name).end(T0 + 100 + i)))
    restored = checkpoint.restore(checkpoint.changes(engine, 99), EngineConfig(ended_memory=50), 0)
    assert list(restored.engine.ended) == list(engine.ended) == list(reversed(names))


def test_a_state_newer_than_its_marker_is_a_new_session_after_the_end_was_forgotten() -> None:
    """A straggler started a new session of a forgotten stream, and a crash came before
    the old marker's tombstone: the session is restored, the marker removed next time."""
    engine = Engine(CONFIG)
    s = StreamScript("a")
    engine.process(typed(s.start(T0)))
    state = checkpoint.changes(engine, offset=9)[0]
    gone = msgspec.msgpack.encode({"format": 4, "offset": 5, "ended_at": checkpoint.GONE})
    restored = checkpoint.restore([(b"e:a", gone), state], CONFIG, 0)
    assert list(restored.engine.streams) == ["a"] and not restored.engine.ended
    assert checkpoint.changes(restored.engine, offset=9)[-1] == (b"e:a", None)


Action = tuple[str, int, int]  # ("event", index, wall) or ("tick", -1, wall)


def schedule(events: int, ticks: list[tuple[float, int]]) -> list[Action]:
    """The events one a second of wall clock, and idle ticks between them, each after a
    jump of wall clock (an idle spell) at its place in the run."""
    at = sorted((int(place * events), jump) for place, jump in ticks)
    actions: list[Action] = []
    wall = T0
    for index in range(events):
        while at and at[0][0] <= index:
            wall += at.pop(0)[1]
            actions.append(("tick", -1, wall))
        wall += 1_000
        actions.append(("event", index, wall))
    return actions


def by_stream(record: dict[str, Any]) -> str:
    stream_id: str = record["stream_id"]
    return stream_id


def play(engine: Engine, events: list[dict[str, Any]], actions: list[Action]) -> list[Any]:
    out: list[Any] = []
    for kind, index, wall in actions:
        if kind == "tick":  # streams tick in the order the engine holds them: by stream
            out.extend(sorted((o.to_record(0) for o in engine.tick(wall)), key=by_stream))
            continue
        outcome = engine.process(typed(events[index]), wall)
        out.extend(o.to_record(0) for o in outcome.outputs)
        out.append({"late": outcome.late})
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(step, min_size=30, max_size=100),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 400_000)), max_size=6),
    st.floats(0.0, 1.0),
)
def test_what_idle_time_did_is_recomputed_on_restore_not_written(
    steps: list[Any], ticks: list[tuple[float, int]], cut: float
) -> None:
    """Checkpoints write only streams that events changed; idle ticks (windows sliding,
    tiers decaying, windows closing, streams ending) between them are redone by the
    restore, silently: the restored engine goes on exactly like the uninterrupted one,
    publishing nothing the uninterrupted one published before the checkpoint."""
    events = build(steps)
    actions = schedule(len(events), ticks)
    uninterrupted = play(Engine(CONFIG), events, actions)
    point = max(1, int(len(actions) * cut))
    engine, log = Engine(CONFIG), []
    before = play(engine, events, actions[: point // 2])
    log += checkpoint.changes(engine, offset=0)
    before += play(engine, events, actions[point // 2 : point])
    log += checkpoint.changes(engine, offset=0)
    restored = checkpoint.restore(log, CONFIG, wall_ms=0).engine
    assert sorted(checkpoint.full(restored, 0)) == sorted(checkpoint.full(engine, 0))
    assert before + play(restored, events, actions[point:]) == uninterrupted


def test_a_tick_rewrites_no_stream_and_the_restore_redoes_it() -> None:
    """A tier decaying with the wall clock is not a change to write: the checkpoint after
    it is its partition record, which says when the tick was."""
    engine = Engine(CONFIG)
    a, b = StreamScript("a"), StreamScript("b")
    for event in (a.start(T0), a.likes(T0 + 1_000, 15, dropped=45), b.start(T0)):
        engine.process(typed(event), wall_ms=T0)
    assert engine.streams["a"].tier == "moderate"
    log = checkpoint.changes(engine, offset=2)
    published = engine.tick(T0 + 61_000)  # a's likes leave its window: back to low
    decays = [o for o in published if isinstance(o, TierChanged)]
    assert [(o.stream_id, o.to_tier) for o in decays] == [("a", "low")]
    assert [o.stream_id for o in published if isinstance(o, WindowClosed)] == ["a"]
    after_tick = checkpoint.changes(engine, offset=2)
    assert after_tick == [(b"p", after_tick[0][1])]
    assert msgspec.msgpack.decode(after_tick[0][1])["ticked_ms"] == T0 + 61_000
    restored = checkpoint.restore(log + after_tick, CONFIG, wall_ms=T0 + 61_000).engine
    assert restored.streams["a"].tier == "low" and restored.streams["a"].transitions == 2
    assert sorted(checkpoint.full(restored, 2)) == sorted(checkpoint.full(engine, 2))
    assert restored.tick(T0 + 61_000) == []  # published before the checkpoint: not again
    # restored 38 s later: the downtime is not idle time, the clocks go on from the tick
    later = checkpoint.restore(log + after_tick, CONFIG, wall_ms=T0 + 99_000).engine
    assert later.downtime_ms == 38_000
    assert [s.seen_wall_ms for s in later.streams.values()] == [T0] * 2  # as written
    assert later.tick(T0 + 99_000) == [] and later.streams["a"].stream_time_ms == T0 + 62_000


def test_a_second_restore_does_not_take_the_first_downtime_for_idle_time() -> None:
    """Found by the fault suite (two kills 0.3 s apart): restores once shifted the streams'
    idle clocks in memory only, so a stream no checkpoint rewrote kept its clock from
    before the first crash while the partition record took the new tick, and the second
    restore counted the first downtime as idle time, silently passing window boundaries
    whose alerts nobody published. The downtime is now the partition's, in its record."""
    engine = Engine(CONFIG)
    a = StreamScript("a")
    for event in (a.start(T0), a.likes(T0 + 1_000, 5)):
        engine.process(typed(event), wall_ms=T0)
    engine.tick(T0 + 10_000)  # idle for 10 s: stream time T0 + 11 s
    log = checkpoint.changes(engine, offset=1)
    # down for 100 s, then 5 more idle seconds, a checkpoint that does not rewrite "a"
    first = checkpoint.restore(log, CONFIG, wall_ms=T0 + 110_000).engine
    first.tick(T0 + 115_000)
    assert first.streams["a"].stream_time_ms == T0 + 16_000
    again = checkpoint.changes(first, offset=1)
    assert [key for key, _ in again] == [b"p"]
    # and down again, for 30 s
    second = checkpoint.restore(log + again, CONFIG, wall_ms=T0 + 145_000).engine
    assert second.downtime_ms == 130_000
    assert second.streams["a"].stream_time_ms == T0 + 16_000
    assert second.tick(T0 + 146_000) == [] and second.streams["a"].stream_time_ms == T0 + 17_000


def as_format(value: bytes | None, version: int) -> bytes | None:
    """A record as livepulse wrote it in format ``version`` (7: no partition time)."""
    if value is None:
        return None
    doc = msgspec.msgpack.decode(value)
    doc["format"] = version
    for name in ("event_ms", "event_seen_ms", "time_ms"):
        doc.pop(name, None)
    return msgspec.msgpack.encode(doc)


def test_the_partitions_time_comes_back_from_its_record() -> None:
    """Every stream of the partition ended: its time is in the partition record alone."""
    engine = Engine(CONFIG)
    a = StreamScript("a")
    for event in (a.start(T0), a.end(T0 + 5_000)):
        engine.process(typed(event), wall_ms=T0)
    engine.tick(T0 + 30_000)
    log = checkpoint.changes(engine, offset=1)
    restored = checkpoint.restore(log, CONFIG, wall_ms=T0 + 90_000).engine
    assert not restored.streams
    assert restored.partition_time() == engine.partition_time() == T0 + 35_000
    assert checkpoint.restore([], CONFIG, wall_ms=T0).engine.partition_time() == -1


def test_a_format_7_checkpoint_gives_the_partitions_time_from_its_streams() -> None:
    """Format 7 kept no partition time: the restore takes the streams' latest events and
    their idle clocks (those of streams that had ended are not known any more)."""
    engine = Engine(CONFIG)
    a, b, c = StreamScript("a"), StreamScript("b"), StreamScript("c")
    engine.process(typed(a.start(T0)), wall_ms=T0 + 100)
    engine.process(typed(b.start(T0 + 5_000)), wall_ms=T0 + 200)
    engine.process(typed(c.start(T0 + 1_000)), wall_ms=T0 + 300)
    engine.tick(T0 + 30_200)
    log = [(key, as_format(value, 7)) for key, value in checkpoint.changes(engine, offset=2)]
    assert {msgspec.msgpack.decode(v or b"")["format"] for _, v in log} == {7}
    restored = checkpoint.restore(log, CONFIG, wall_ms=T0 + 60_000).engine
    assert restored.partition_time() == engine.partition_time() == T0 + 35_000
    # and the next checkpoint writes it in the current format
    (*_, (key, value)) = checkpoint.changes(restored, offset=2)
    doc = msgspec.msgpack.decode(value or b"")
    assert (key, doc["format"], doc["time_ms"]) == (b"p", 8, T0 + 35_000)
