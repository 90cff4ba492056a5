"""The batch step without a broker: replay skips, dead letters, outputs, checkpoints, and
the partition's time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import pytest

from processor.contract import Reason
from processor.core.alerts import TierChanged
from processor.core.creators import NO_TIME, PartitionTime
from processor.core.engine import Engine
from processor.records import OutputRecord
from processor.settings import Settings
from processor.worker.creators import (
    decode_part,
    decode_time,
    is_watermark_key,
    part_key,
    watermark_key,
)
from processor.worker.partitions import PartitionState, Routes
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_engine import CONFIG

ROUTES = Routes("ev", "al", "wi", "dl", "app.state", max_record_bytes=1_000)


@dataclass(frozen=True)
class Rec:
    """What the batch step reads of a consumer record."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = T0


def recs(events: list[Any], first: int = 0) -> list[Rec]:
    out = []
    for offset, event in enumerate(events, first):
        if isinstance(event, tuple):
            out.append(Rec(offset, *event))
        else:
            out.append(Rec(offset, event["stream_id"].encode(), orjson.dumps(event)))
    return out


def headers(record: OutputRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def scenario() -> list[Any]:
    s, t = StreamScript("s1"), StreamScript("s2")
    return [
        s.start(T0),
        s.likes(T0 + 1_000, 10, dropped=90),  # 100 likes: moderate
        (b"s1", b"{oops"),
        t.start(T0 + 1_000),
        t.gift(T0 + 2_000, 30, 2, False, True),
        t.end(T0 + 3_000),
        t.comment(T0 + 3_500),  # after the end
        s.likes(T0 + 70_000, 1),  # window [T0, T0+60s) closes at T0+70s
        s.gift(T0 + 50_000, 5, 1, False, True),  # 20 s behind stream time: late
        (None, b"x" * 1_001),
    ]


def test_a_batch_is_applied_and_dead_lettered_record_by_record() -> None:
    state = PartitionState(3, Engine(CONFIG), ROUTES)
    applied = state.apply(recs(scenario()), wall_ms=T0)

    assert state.applied_offset == 9 and state.dirty
    assert applied.events == {"live_start": 2, "like": 2, "gift": 1, "live_end": 1}
    assert (applied.likes, applied.gifts, applied.coins) == (101, 2, 60)
    dead = [r for r in applied.records if r.topic == "dl"]
    assert [
        (headers(r)["livepulse.reason"], headers(r)["livepulse.source.offset"]) for r in dead
    ] == [
        ("invalid_json", "2"),
        ("after_end", "6"),
        ("late", "8"),
        ("too_large", "9"),
    ]
    assert headers(dead[1])["livepulse.detail"] == "the stream has already ended"
    assert headers(dead[2])["livepulse.detail"] == "older than stream time minus the grace period"
    assert headers(dead[0])["livepulse.source.topic"] == "ev"
    assert headers(dead[0])["livepulse.source.partition"] == "3"
    assert dead[0].value == b"{oops" and dead[0].key == b"s1"
    assert dead[3].key is None and dead[3].value == b"x" * 1_001
    assert applied.invalid == {
        Reason.INVALID_JSON: 1,
        Reason.AFTER_END: 1,
        Reason.LATE: 1,
        Reason.TOO_LARGE: 1,
    }

    published = [
        (r.topic, r.key, orjson.loads(r.value or b"")["type"])
        for r in applied.records
        if r.topic != "dl"
    ]
    assert published == [
        ("al", b"s1", "tier_changed"),  # low -> moderate at the second event
        ("wi", b"s2", "window_closed"),  # s2's only window, closed by its end
        ("al", b"s2", "stream_ended"),
        ("al", b"s1", "tier_changed"),  # the 100 likes leave the 60 s window at T0+70s
        ("wi", b"s1", "window_closed"),  # [T0, T0+60s), closed at T0+70s
    ]
    assert applied.windows == 2
    assert [(type(a).__name__, at) for a, at in applied.alerts] == [
        ("TierChanged", T0),
        ("StreamEnded", T0),
        ("TierChanged", T0),
    ]


def as_log(records: list[OutputRecord]) -> list[tuple[bytes, bytes | None]]:
    return [(r.key or b"", r.value) for r in records]


def test_records_a_checkpoint_holds_are_skipped_whole() -> None:
    events = scenario()
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    first = state.apply(recs(events[:5]), wall_ms=T0)
    checkpoint = state.checkpoint()
    assert not state.dirty
    assert {(r.topic, r.partition) for r in checkpoint} == {("app.state", 0)}
    assert [r.key for r in checkpoint][-1] == b"p"

    restored = PartitionState.restore(0, as_log(checkpoint), CONFIG, ROUTES, T0)
    assert (restored.applied_offset, restored.ahead) == (4, {})
    # the consumer rewinds to an older commit: offsets 2..4 come again, then new ones
    again = restored.apply(recs(events[2:], first=2), wall_ms=T0)

    whole = PartitionState(0, Engine(CONFIG), ROUTES).apply(recs(events), wall_ms=T0)
    assert first.records + again.records == whole.records
    assert restored.applied_offset == 9


def test_after_a_checkpoint_cut_short_each_stream_skips_what_its_record_holds() -> None:
    """A crash after some records of a checkpoint were written and before its partition
    record: the streams written are ahead; replay skips their records up to that point
    and applies everything else, so the result equals an uninterrupted run's."""
    a, b = StreamScript("a"), StreamScript("b")
    events = [
        a.start(T0),
        b.start(T0),
        a.gift(T0 + 1, 5, 1, False, True),
        b.gift(T0 + 2, 5, 1, False, True),
        a.gift(T0 + 3, 5, 1, False, True),
        b.gift(T0 + 4, 5, 1, False, True),
    ]
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    state.apply(recs(events[:2]), wall_ms=T0)
    log = as_log(state.checkpoint())
    state.apply(recs(events[2:4], first=2), wall_ms=T0)
    cut_short = [r for r in as_log(state.checkpoint()) if r[0] == b"s:a"]  # then the crash

    restored = PartitionState.restore(0, log + cut_short, CONFIG, ROUTES, T0)
    assert (restored.applied_offset, restored.ahead) == (1, {"a": 3})
    again = restored.apply(recs(events[2:], first=2), wall_ms=T0)  # from the commit at 2
    assert again.gifts == 3  # b's two gifts, a's second: a's first is in its record
    sessions = {sid: st.session.gifts for sid, st in restored.engine.streams.items()}
    assert sessions == {"a": 2, "b": 2}
    assert restored.ahead == {}  # past the records that were ahead: no more lookups


def test_a_failing_record_becomes_a_processing_error_and_the_batch_goes_on() -> None:
    s1, s2 = StreamScript("s1"), StreamScript("s2")
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    state.apply(recs([s1.start(T0), s1.likes(T0 + 1, 5)]), wall_ms=T0)
    # A corrupt sealed minute stands in for a bug: the engine raises only once the record
    # has already closed s1's first minute, so a half-made output exists when it fails.
    state.engine.streams["s1"].sealed = b"not a pane"
    later = T0 + 120_000
    applied = state.apply(
        recs([s1.likes(later, 1), s2.start(later), s2.likes(later + 1, 3)], first=2),
        wall_ms=later,
    )
    (dead,) = applied.records  # the minute s1's record closed is not published
    assert headers(dead)["livepulse.reason"] == "processing_error"
    assert headers(dead)["livepulse.detail"] == "ValidationError: Expected `array`, got `int`"
    assert headers(dead)["livepulse.source.offset"] == "2"
    assert applied.events == {"live_start": 1, "like": 1}
    assert state.engine.streams["s2"].session.likes == 3


def test_idle_decay_alerts_carry_no_cause() -> None:
    s = StreamScript("s1")
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    state.apply(recs([s.start(T0), s.likes(T0 + 1, 15, dropped=200)]), wall_ms=0)
    state.checkpoint()
    applied = state.tick(wall_ms=300_000)  # inactive: windows close, tier decays, it ends
    kinds = [type(a).__name__ for a, _ in applied.alerts]
    assert kinds == ["TierChanged", "StreamEnded"]
    assert all(at is None for _, at in applied.alerts)
    assert isinstance(applied.alerts[0][0], TierChanged)
    assert state.dirty


def test_typed_events_and_dicts_give_the_same_engine_results() -> None:
    """The batch step decodes bytes; the tests feed the engine typed dicts: same outcome."""
    events = scenario()
    via_batch = PartitionState(0, Engine(CONFIG), ROUTES)
    via_batch.apply(recs(events), wall_ms=T0)
    direct = Engine(CONFIG)
    for event in events:
        if isinstance(event, dict):
            direct.process(typed(event), T0)
    assert via_batch.engine.streams.keys() == direct.streams.keys()
    assert via_batch.engine.streams["s1"] == direct.streams["s1"]


def test_a_consumer_that_goes_back_never_applies_a_record_twice() -> None:
    """The consumer's position can move back (a restart resumes at the committed offset,
    a rebalance resets to it): whatever comes again is skipped."""
    s = StreamScript("s1")
    events = [s.start(T0), *(s.gift(T0 + i, 5, 1, False, True) for i in range(1, 9))]
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    state.apply(recs(events[:6]), wall_ms=T0)
    again = state.apply(recs(events[3:], first=3), wall_ms=T0)  # 3..5 again, then 6..8
    assert again.events == {"gift": 3} and again.gifts == 3
    assert state.engine.streams["s1"].session.gifts == 8


@pytest.mark.parametrize("budget", [1, 2, 3, 100])
def test_a_checkpoint_encoded_over_several_batches_restores_exactly(budget: int) -> None:
    """Streams encoded after more input was applied are ahead of the partition record;
    replaying from the offset it covers gives the uninterrupted result."""
    scripts = [StreamScript(f"s{i}") for i in range(4)]
    events: list[Any] = [s.start(T0) for s in scripts]
    for k in range(1, 6):
        events += [s.gift(T0 + k * 1_000, 5, 1, False, True) for s in scripts]
    events += [scripts[0].end(T0 + 9_000)]
    records = recs(events)
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    state.apply(records[:8], wall_ms=T0)
    state.begin_checkpoint()  # covers offsets up to 7
    log: list[tuple[bytes, bytes | None]] = []
    for start in range(8, 20, 4):  # more batches arrive while it is encoded
        state.encode_some(budget)
        state.apply(records[start : start + 4], wall_ms=T0)
    checkpoint, covered = state.finish_checkpoint()
    log += as_log(checkpoint)
    assert covered == 7

    restored = PartitionState.restore(0, log, CONFIG, ROUTES, T0)
    assert restored.applied_offset == 7
    again = restored.apply(records[covered + 1 :], wall_ms=T0)  # from the commit, covered + 1
    whole = PartitionState(0, Engine(CONFIG), ROUTES)
    whole.apply(records, wall_ms=T0)
    sessions = {sid: st.session.gifts for sid, st in restored.engine.streams.items()}
    assert sessions == {sid: st.session.gifts for sid, st in whole.engine.streams.items()}
    assert dict(restored.engine.ended) == dict(whole.engine.ended)
    assert again.invalid == {}


def test_a_stream_that_ends_and_is_forgotten_while_a_checkpoint_is_encoded() -> None:
    """Its records up to where the checkpoint found it gone are never applied again: the
    result after a restore equals the uninterrupted one."""
    config = dataclasses.replace(CONFIG, ended_memory=1)
    a, b = StreamScript("a"), StreamScript("b")
    events = [
        a.start(T0),
        b.start(T0),
        a.gift(T0 + 1_000, 5, 1, False, True),
        b.gift(T0 + 1_000, 5, 1, False, True),
        a.gift(T0 + 2_000, 5, 1, False, True),  # after the checkpoint began
        a.end(T0 + 3_000),
        b.end(T0 + 3_000),  # the memory of one ended stream forgets a
        a.gift(T0 + 4_000, 5, 1, False, True),  # a straggler: a new session of a
    ]
    records = recs(events)
    state = PartitionState(0, Engine(config), ROUTES)
    state.apply(records[:4], wall_ms=T0)
    state.begin_checkpoint()  # covers up to 3: a and b live, both changed
    state.apply(records[4:7], wall_ms=T0)
    checkpoint, covered = state.finish_checkpoint()  # both found ended, a already forgotten
    assert covered == 3
    restored = PartitionState.restore(0, as_log(checkpoint), config, ROUTES, T0)
    assert restored.ahead == {"a": 6, "b": 6}
    again = restored.apply(records[4:], wall_ms=T0)
    assert again.records == []  # 4..6 skipped (their outputs went out before the crash)
    whole = PartitionState(0, Engine(config), ROUTES)
    whole.apply(records, wall_ms=T0)
    assert {sid: st.session.gifts for sid, st in restored.engine.streams.items()} == {"a": 1}
    assert dict(restored.engine.ended) == dict(whole.engine.ended) == {"b": T0 + 3_000}


def test_the_partition_maps_stream_ends_to_the_offsets_that_caused_them() -> None:
    """The engine knows no offsets: the partition records where each stream ended, its
    marker carries that offset, and the offset is dropped once the stream is forgotten."""
    config = dataclasses.replace(CONFIG, ended_memory=1)
    a, b = StreamScript("a"), StreamScript("b")
    events = [a.start(T0), a.end(T0 + 1_000), b.start(T0), b.end(T0 + 2_000)]
    state = PartitionState(0, Engine(config), ROUTES)
    state.apply(recs(events), wall_ms=T0)
    assert not hasattr(state.engine, "offset") and not hasattr(state.engine, "end_offsets")
    assert state.end_offsets == {"a": 1, "b": 3}  # a is forgotten, its marker not yet written
    written = state.checkpoint()
    markers = {r.key: msgspec.msgpack.decode(r.value) for r in written if r.value is not None}
    assert (markers[b"e:a"]["end_offset"], markers[b"e:b"]["end_offset"]) == (1, 3)
    state.checkpoint()  # a's marker goes: where it ended is needed no more
    assert state.end_offsets == {"b": 3}


def crash_scenario() -> tuple[list[Rec], int]:
    """Five streams around one checkpoint; returns the records and where it begins.

    Before it begins: ``a`` ends, ``e`` ends and is forgotten later. While it is encoded
    (one stream per batch): ``b`` ends, ``d`` ends and the memory of ended streams forgets
    ``e`` and then ``a``; ``c`` goes on. After it: a straggler of the forgotten ``a``.
    """
    a, b, c, d, e = (StreamScript(name) for name in "abcde")
    gift = 5, 1, False, True
    events = [
        *(s.start(T0) for s in (a, b, c, d, e)),
        *(s.gift(T0 + 1_000, *gift) for s in (a, b, c, d, e)),
        e.end(T0 + 1_500),
        a.end(T0 + 2_000),  # 11: the checkpoint begins after this one
        b.gift(T0 + 3_000, *gift),
        c.likes(T0 + 3_000, 40, dropped=60),
        b.end(T0 + 4_000),
        d.end(T0 + 4_000),  # the memory of two ended streams forgets e
        c.gift(T0 + 5_000, *gift),
        c.end(T0 + 6_000),  # ... and a
        a.gift(T0 + 7_000, *gift),  # a straggler: a new session of a
    ]
    return recs(events), 12


@pytest.mark.parametrize("ended_memory", [2, 10])
@pytest.mark.parametrize("budget", [1, 100])
def test_a_crash_anywhere_in_a_checkpoint_loses_nothing_and_applies_nothing_twice(
    budget: int, ended_memory: int
) -> None:
    """Whichever prefix of a checkpoint's records was written before a crash, restoring
    from it and replaying from the last commit gives the uninterrupted run's outputs (each
    one the same, however often it comes) and its state, down to which ended streams it
    remembers, in order, when the memory (of 2) forgets some.
    """
    config = dataclasses.replace(CONFIG, ended_memory=ended_memory)
    records, begin = crash_scenario()
    whole = PartitionState(0, Engine(config), ROUTES)
    expected = whole.apply(records, wall_ms=T0).records

    first = PartitionState(0, Engine(config), ROUTES)
    before = first.apply(records[:8], wall_ms=T0).records
    log = as_log(first.checkpoint())  # written and committed: covers up to 7
    before += first.apply(records[8:begin], wall_ms=T0).records
    first.begin_checkpoint()
    for start in range(begin, len(records) - 1, 2):  # more batches while it is encoded
        first.encode_some(budget)
        before += first.apply(records[start : start + 2], wall_ms=T0).records
    checkpoint = as_log(first.finish_checkpoint()[0])
    assert checkpoint[-1][0] == b"p"

    for written in range(len(checkpoint) + 1):
        restored = PartitionState.restore(0, log + checkpoint[:written], config, ROUTES, T0)
        again = restored.apply(records[8:], wall_ms=T0).records  # from the commit at 8
        assert set(before + again) == set(expected), f"crash after {written} records"
        assert restored.engine.streams.keys() == whole.engine.streams.keys()
        for sid, state in restored.engine.streams.items():
            assert state == whole.engine.streams[sid], (written, sid)
        assert list(restored.engine.ended.items()) == list(whole.engine.ended.items()), written


YEAR_2200 = 7_258_118_400_000
SKEW = 300_000  # the default LIVEPULSE_MAX_FUTURE_SKEW_SECONDS, in ms


def test_an_event_from_the_future_is_a_dead_letter_and_moves_no_stream_time() -> None:
    """A like stamped in the year 2200 would take its stream's time there and make every
    later event of it late, live_end included; it is dead-lettered instead."""
    s = StreamScript("s1")
    records = [
        Rec(0, b"s1", orjson.dumps(s.start(T0)), T0),
        Rec(1, b"s1", orjson.dumps(s.likes(YEAR_2200, 5)), T0 + 1_000),
        Rec(2, b"s1", orjson.dumps(s.likes(T0 + 1_500, 5)), T0 + 1_500),
        Rec(3, b"s1", orjson.dumps(s.end(T0 + 2_000)), T0 + 2_000),
    ]
    state = PartitionState(0, Engine(CONFIG), ROUTES)
    applied = state.apply(records, wall_ms=T0 + 2_000)

    assert applied.invalid == {Reason.FUTURE: 1}
    assert applied.events == {"live_start": 1, "like": 1, "live_end": 1}
    (dead,) = [r for r in applied.records if r.topic == "dl"]
    assert dead.value == records[1].value and headers(dead) == {
        "livepulse.reason": "future_timestamp",
        "livepulse.detail": f"ts is {YEAR_2200 - T0 - 1_000} ms ahead of the record's Kafka "
        f"timestamp {T0 + 1_000} (limit {SKEW} ms, LIVEPULSE_MAX_FUTURE_SKEW_SECONDS)",
        "livepulse.source.topic": "ev",
        "livepulse.source.partition": "0",
        "livepulse.source.offset": "1",
    }
    ended = [orjson.loads(r.value or b"") for r in applied.records if r.topic == "al"]
    assert [(a["type"], a["event_time"]) for a in ended] == [("stream_ended", T0 + 2_000)]


@pytest.mark.parametrize(
    ("ts", "record_ts", "skew_ms", "dead"),
    [
        (T0, T0, SKEW, False),
        (T0 + SKEW, T0, SKEW, False),  # exactly the limit ahead
        (T0 + SKEW + 1, T0, SKEW, True),
        (T0 - 86_400_000, T0, SKEW, False),  # behind the record: lateness is per stream
        (YEAR_2200, T0, SKEW, True),
        (T0 + 1, T0, 1, False),
        (T0 + 2, T0, 1, True),
        (YEAR_2200, -1, SKEW, False),  # a record without a timestamp is not judged
        (YEAR_2200, 0, SKEW, True),  # an epoch-0 timestamp is one
        (YEAR_2200, T0, 0, False),  # 0: the check is off
    ],
)
def test_how_far_ahead_an_event_may_be(ts: int, record_ts: int, skew_ms: int, dead: bool) -> None:
    routes = dataclasses.replace(ROUTES, max_future_skew_ms=skew_ms)
    state = PartitionState(0, Engine(CONFIG), routes)
    record = Rec(0, b"s1", orjson.dumps(StreamScript("s1").likes(ts, 3)), record_ts)
    applied = state.apply([record], wall_ms=T0)
    assert applied.invalid == ({Reason.FUTURE: 1} if dead else {})
    assert applied.events == ({} if dead else {"like": 1})


@pytest.mark.parametrize(("seconds", "skew_ms"), [(300, 300_000), (1, 1_000), (0, 0)])
def test_the_skew_setting_reaches_the_routes(seconds: int, skew_ms: int) -> None:
    routes = Routes.from_settings(Settings(max_future_skew_seconds=seconds))
    assert routes.max_future_skew_ms == skew_ms
    assert Routes.from_settings(Settings()).max_future_skew_ms == SKEW


# -- the partition's time, for the creator-days agent -----------------------------------

TIMED = dataclasses.replace(ROUTES, parts_topic="parts", parts_partitions=3)
S = StreamScript("s1", creator_id="c-1")
T = StreamScript("s2", creator_id="c-2")


def times(records: list[OutputRecord]) -> list[tuple[int | None, PartitionTime]]:
    """The partition times a checkpoint wrote, by parts partition."""
    return [
        (r.partition, decode_time(r.value or b""))
        for r in records
        if r.topic == "parts" and r.key is not None and is_watermark_key(r.key)
    ]


def time_of(records: list[OutputRecord]) -> int | None:
    """The one time a checkpoint wrote to every parts partition (None: none written)."""
    found = times(records)
    if not found:
        return None
    assert [p for p, _ in found] == [0, 1, 2]
    assert len({t for _, t in found}) == 1
    return found[0][1].time_ms


def state_log(records: list[OutputRecord]) -> list[tuple[bytes, bytes | None]]:
    """What the state topic holds of a checkpoint: what a restore reads after kill -9."""
    return [(r.key or b"", r.value) for r in records if r.topic == ROUTES.state_topic]


Action = tuple[str, Any, int]  # ("event", event, wall) or ("tick", None, wall)


def run(state: PartitionState, actions: list[Action]) -> None:
    for kind, event, wall in actions:
        if kind == "tick":
            state.tick(wall)
        else:
            state.apply(recs([event], first=state.applied_offset + 1), wall_ms=wall)


def event(e: dict[str, Any], wall: int) -> Action:
    return ("event", e, wall)


def tick(wall: int) -> Action:
    return ("tick", None, wall)


W = T0 + 3_600_000  # the wall clock of the runs below: an hour after their event time
TIME_RULES: list[tuple[list[Action], int]] = [
    ([], NO_TIME),
    ([event(S.start(T0 + 5_000), W), event(T.start(T0 + 2_000), W)], T0 + 5_000),
    ([event(S.start(T0 + 5_000), W), tick(W + 30_000)], T0 + 35_000),
    ([event(S.start(T0 + 5_000), W), tick(W - 1_000)], T0 + 5_000),
    (
        [event(S.start(T0), W), event(S.end(T0 + 5_000), W), tick(W + 30_000)],
        T0 + 35_000,
    ),
    (
        [
            event(S.start(T0 + 5_000), W),
            tick(W + 30_000),
            event(T.start(T0 + 10_000), W + 31_000),  # behind the time: it stays
        ],
        T0 + 35_000,
    ),
    (
        [
            event(S.start(T0 + 5_000), W),
            tick(W + 30_000),
            event(T.start(T0 + 10_000), W + 31_000),
            tick(W + 71_000),  # idle since the latest event: 40 s
        ],
        T0 + 50_000,
    ),
    (
        [
            event(S.start(T0 + 5_000), W),
            event(S.likes(T0 + 1_000, 5), W),  # older: no later
            event(S.likes(T0 + 5_000 + 2 * SKEW, 5), W),  # from the future: dead letter
        ],
        T0 + 5_000,
    ),
]

TIME_IDS = [
    "no-event-no-time",
    "largest-event-ts",
    "idle-clock-moves-it",
    "tick-before-the-event-adds-nothing",
    "ended-streams-still-count",
    "never-goes-back",
    "idle-from-the-latest-event",
    "older-and-dead-letters-do-not-count",
]


@pytest.mark.parametrize(
    ("actions", "time_ms"),
    TIME_RULES,
    ids=TIME_IDS,
)
def test_the_partitions_time(actions: list[Action], time_ms: int) -> None:
    state = PartitionState(2, Engine(CONFIG), TIMED)
    run(state, actions)
    assert time_of(state.checkpoint()) == time_ms


def test_the_time_goes_to_every_parts_partition_after_the_parts_once_it_moved() -> None:
    state = PartitionState(2, Engine(CONFIG), TIMED)
    run(state, [event(S.start(T0), W), event(S.likes(T0 + 5_000, 5), W)])
    records = state.checkpoint()
    parts = [i for i, r in enumerate(records) if r.topic == "parts"]
    assert [records[i].key for i in parts[:1]] == [part_key("c-1", "2026-01-01", "s1")]
    assert times(records) == [(p, PartitionTime(2, 3, T0 + 5_000)) for p in range(3)]
    assert [records[i].key for i in parts[1:]] == [watermark_key(2)] * 3  # after the part
    assert records[-1].key == b"p"
    run(state, [tick(W)])  # no time has passed: the stream is rewritten, not the time
    assert time_of(state.checkpoint()) is None
    run(state, [tick(W + 1_000)])
    assert time_of(state.checkpoint()) == T0 + 6_000


def test_a_partition_with_no_event_reports_no_time_once() -> None:
    """So the agent knows it has heard from it, and leaves it out of the least time."""
    state = PartitionState(2, Engine(CONFIG), TIMED)
    assert not state.dirty
    run(state, [tick(W)])
    assert state.dirty
    assert times(state.checkpoint()) == [(p, PartitionTime(2, 3, NO_TIME)) for p in range(3)]
    run(state, [tick(W + 60_000)])
    assert not state.dirty


def test_a_quiet_caught_up_partitions_time_follows_its_idle_clock() -> None:
    """Its streams ended long ago: nothing else would make it checkpoint, yet its time
    must go on, or it would hold every creator's day open."""
    state = PartitionState(2, Engine(CONFIG), TIMED)
    run(state, [event(S.start(T0), W), event(S.end(T0 + 5_000), W)])
    assert time_of(state.checkpoint()) == T0 + 5_000
    assert not state.engine.streams
    run(state, [tick(W + 60_000)])
    assert state.dirty
    assert time_of(state.checkpoint()) == T0 + 65_000


def test_no_time_is_written_without_the_parts_topics_partition_count() -> None:
    state = PartitionState(2, Engine(CONFIG), dataclasses.replace(TIMED, parts_partitions=0))
    run(state, [event(S.start(T0), W), tick(W + 60_000)])
    assert times(state.checkpoint()) == []


@pytest.mark.parametrize(
    ("actions", "time_ms"),
    TIME_RULES,
    ids=TIME_IDS,
)
@pytest.mark.parametrize("down_ms", [0, 120_000])
def test_the_time_after_a_kill_9_is_the_time_before(
    actions: list[Action], time_ms: int, down_ms: int
) -> None:
    """Restored from the state topic's records, whenever: the first checkpoint writes the
    time the last one did (downtime is not idle time), and idle time goes on from there as
    in a run that never stopped."""
    state = PartitionState(2, Engine(CONFIG), TIMED)
    last = max((wall for _, _, wall in actions), default=W)
    run(state, [*actions, tick(last)])  # killed right after a checkpoint at ``last``
    before = state.checkpoint()
    assert time_of(before) == time_ms
    restored = PartitionState.restore(2, state_log(before), CONFIG, TIMED, last + down_ms)
    assert time_of(restored.checkpoint()) == time_ms
    state.tick(last + 10_000)
    restored.tick(last + 10_000 + down_ms)
    assert time_of(restored.checkpoint()) == time_of(state.checkpoint())


# -- how often the tables are written ---------------------------------------------------

EVERY_THIRD = dataclasses.replace(TIMED, streams_topic="streams", table_every=3)


def table_writes(records: list[OutputRecord]) -> tuple[list[str], list[str], int | None]:
    """A checkpoint's stream-table keys (a tombstone as ``-id``), the streams whose day
    parts it wrote (``id!`` once ended), and the time it wrote."""
    rows = [
        ("" if r.value else "-") + (r.key or b"").decode() for r in records if r.topic == "streams"
    ]
    parts = [
        decode_part(r.value or b"")
        for r in records
        if r.topic == "parts" and r.key is not None and not is_watermark_key(r.key)
    ]
    return rows, [p.stream_id + ("!" if p.ended else "") for p in parts], time_of(records)


def test_the_tables_wait_for_their_checkpoint_but_an_end_does_not() -> None:
    """Every third checkpoint writes every stream changed since the last one that did, then
    the time; the others write only the ends (their state is gone from the checkpoint)."""
    state = PartitionState(2, Engine(CONFIG), EVERY_THIRD)
    run(state, [event(S.start(T0), W), event(S.likes(T0 + 1_000, 5), W)])
    run(state, [event(T.start(T0 + 1_000), W)])
    assert table_writes(state.checkpoint()) == ([], [], None)
    run(state, [event(T.end(T0 + 2_000), W)])
    assert table_writes(state.checkpoint()) == (["-s2"], ["s2!"], None)
    run(state, [event(S.likes(T0 + 3_000, 5), W)])
    rows, parts, time = table_writes(state.checkpoint())
    assert (rows, parts, time) == (["s1"], ["s1"], T0 + 3_000)
    assert table_writes(state.checkpoint()) == ([], [], None)  # nothing changed since


def test_after_a_kill_9_the_tables_of_every_restored_stream_are_written_again() -> None:
    """Which streams the tables had not caught up with is not in the state: all of them."""
    state = PartitionState(2, Engine(CONFIG), EVERY_THIRD)
    run(state, [event(S.start(T0), W), event(T.start(T0 + 1_000), W)])
    log = state_log(state.checkpoint())  # the tables not written yet
    restored = PartitionState.restore(2, log, CONFIG, EVERY_THIRD, W)
    restored.checkpoint()
    restored.checkpoint()
    rows, parts, time = table_writes(restored.checkpoint())
    assert (sorted(rows), sorted(parts), time) == (["s1", "s2"], ["s1", "s2"], T0 + 1_000)
    every_time = dataclasses.replace(EVERY_THIRD, table_every=1)
    state = PartitionState(2, Engine(CONFIG), every_time)
    run(state, [event(S.start(T0), W)])
    log = state_log(state.checkpoint())  # the tables written with it: nothing owed
    assert PartitionState.restore(2, log, CONFIG, every_time, W).table_pending == set()


@pytest.mark.parametrize(
    ("guarantee", "interval", "every"),
    [
        ("at_least_once", 5.0, 1),
        ("exactly_once", 5.0, 5),
        ("exactly_once", 0.2, 1),  # never more often than checkpoints
        ("at_least_once", 12.0, 2),  # rounded to whole commit intervals
    ],
)
def test_the_table_interval_in_checkpoints(guarantee: str, interval: float, every: int) -> None:
    settings = Settings(processing_guarantee=guarantee, table_interval_seconds=interval)
    assert Routes.from_settings(settings).table_every == every
