"""Unit tests of the event simulator (no broker needed)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from jsonschema import Draft7Validator

from processor.contract import encode_event
from processor.settings import Settings
from processor.simulator import cli
from processor.simulator.generator import (
    GIFTS,
    SimulationConfig,
    generate,
    read_ndjson,
    record_key,
    record_key_and_ts,
    write_ndjson,
)
from processor.simulator.producer import BrokerError, produce
from processor.simulator.progress import ProgressReporter
from tests.support.events import plain

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "event.v1.schema.json"
START = 1_700_000_000_000
MIDNIGHT = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NO_USER_TYPES = {"live_start", "live_end", "viewers"}
Event = dict[str, Any]  # an event as the JSON object of its record

CONFIGS: dict[str, SimulationConfig] = {
    "default-30s": SimulationConfig(start_ms=START, duration_s=20),
    "turnover": SimulationConfig(
        start_ms=START, streams=8, rate=300, duration_s=60, seed=7, mean_lifetime_s=10
    ),
    "one-stream": SimulationConfig(start_ms=START, streams=1, rate=50, duration_s=60, seed=3),
    "max-events": SimulationConfig(start_ms=START, streams=30, max_events=5_000, seed=11),
    "hype-heavy": SimulationConfig(
        start_ms=START, streams=5, duration_s=30, seed=5, hype_every_s=5, hype_duration_s=(1, 3)
    ),
    # nine creators taking turns in six streams, from a minute before midnight for three
    "creators": SimulationConfig(
        start_ms=MIDNIGHT - 60_000,
        streams=6,
        rate=200,
        duration_s=180,
        seed=9,
        mean_lifetime_s=20,
        creators=9,
    ),
}


@cache
def events_of(name: str) -> tuple[Event, ...]:
    return tuple(plain(generate(CONFIGS[name])))


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@cache
def fast_validator() -> Callable[[Any], Any]:
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema())
    return validate


def by_stream(events: tuple[Event, ...]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        out[event["stream_id"]].append(event)
    return out


def streaks(events: tuple[Event, ...]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event["type"] == "gift" and event["streakable"]:
            out[event["streak_id"]].append(event)
    return out


def test_same_config_same_events() -> None:
    config = SimulationConfig(start_ms=START, duration_s=10, seed=42)
    assert list(generate(config)) == list(generate(config))


@pytest.mark.parametrize(
    "change",
    [{"seed": 2}, {"streams": 19}, {"rate": 499.0}],
    ids=["seed", "streams", "rate"],
)
def test_different_config_different_events(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {"start_ms": START, "duration_s": 10}
    assert list(generate(SimulationConfig(**base))) != list(
        generate(SimulationConfig(**(base | change)))
    )


def test_start_ms_only_shifts_time_and_ids() -> None:
    a = plain(generate(SimulationConfig(start_ms=START, duration_s=5)))
    b = plain(generate(SimulationConfig(start_ms=START + 1_000, duration_s=5)))
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert y["ts"] == x["ts"] + 1_000
        assert x["event_id"] != y["event_id"]
        strip = {"ts", "event_id", "stream_id", "streak_id"}
        assert {k: v for k, v in x.items() if k not in strip} == {
            k: v for k, v in y.items() if k not in strip
        }


def test_sample_validates_with_jsonschema() -> None:
    validator = Draft7Validator(schema())
    Draft7Validator.check_schema(schema())
    sample: list[Event] = plain(generate(SimulationConfig(start_ms=START, duration_s=1)))
    seen: dict[tuple[Any, ...], int] = defaultdict(int)
    for name in CONFIGS:
        for event in events_of(name):
            shape = (event["type"], event.get("streakable"), event.get("repeat_end"))
            if seen[shape] < 25:
                seen[shape] += 1
                sample.append(event)
    assert {shape[0] for shape in seen} == {
        "live_start", "like", "gift", "comment", "follow", "share", "join", "viewers", "live_end"
    }  # fmt: skip
    for event in sample:
        errors = list(validator.iter_errors(event))
        assert not errors, (event, [e.message for e in errors])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_event_validates(name: str) -> None:
    validate = fast_validator()
    for event in events_of(name):
        validate(event)
        assert ("user_id" in event) == (event["type"] not in NO_USER_TYPES)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_event_ids_unique_and_ts_ordered(name: str) -> None:
    events = events_of(name)
    assert len({e["event_id"] for e in events}) == len(events)
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    start = CONFIGS[name].start_ms
    assert ts[0] == start
    duration = CONFIGS[name].duration_s
    if duration is not None:
        assert ts[-1] < start + duration * 1000


@pytest.mark.parametrize("name", list(CONFIGS))
def test_streams_start_first_and_end_last(name: str) -> None:
    streams = by_stream(events_of(name))
    assert len(streams) >= CONFIGS[name].streams
    for events in streams.values():
        assert events[0]["type"] == "live_start"
        assert events[-1]["type"] == "live_end"
        assert events[-1]["reason"] in {"ended", "suspended"}
        middle = {e["type"] for e in events[1:-1]}
        assert not middle & {"live_start", "live_end"}
        assert len({e["creator_id"] for e in events}) == 1


def test_turnover_keeps_streams_concurrent() -> None:
    config = CONFIGS["turnover"]
    live: set[str] = set()
    peak_after_start = []
    for event in events_of("turnover"):
        if event["type"] == "live_start":
            live.add(event["stream_id"])
        elif event["type"] == "live_end":
            live.discard(event["stream_id"])
        elif event["type"] == "like":
            peak_after_start.append(len(live))
    assert len(by_stream(events_of("turnover"))) > config.streams * 2
    assert min(peak_after_start) == max(peak_after_start) == config.streams


def sessions_of_creators(events: tuple[Event, ...]) -> dict[str, list[tuple[int, int]]]:
    """Each creator's sessions as (live_start ts, live_end ts), in order."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for stream in by_stream(events).values():
        out[stream[0]["creator_id"]].append((stream[0]["ts"], stream[-1]["ts"]))
    return {creator: sorted(sessions) for creator, sessions in out.items()}


def test_a_pool_of_creators_take_turns_and_none_is_live_twice_at_once() -> None:
    sessions = sessions_of_creators(events_of("creators"))
    assert len(sessions) == 9
    for creator, spans in sessions.items():
        assert len(spans) >= 2, creator  # every creator came back
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start, creator  # one session at a time


def test_some_sessions_cross_midnight_and_creators_live_on_both_days() -> None:
    sessions = sessions_of_creators(events_of("creators"))
    across = [s for spans in sessions.values() for s in spans if s[0] < MIDNIGHT <= s[1]]
    assert across
    both_days = [c for c, spans in sessions.items() if spans[0][0] < MIDNIGHT <= spans[-1][1]]
    assert len(both_days) >= 6  # the six live at the start are still going live after midnight


def test_a_creator_keeps_her_fans_and_her_gifters_come_back() -> None:
    streams = by_stream(events_of("creators"))
    fans: dict[str, set[str]] = defaultdict(set)
    gifters_by_session: dict[str, list[set[str]]] = defaultdict(list)
    for stream in streams.values():
        creator = stream[0]["creator_id"]
        users = {e["user_id"] for e in stream if "user_id" in e}
        fans[creator] |= users
        gifters_by_session[creator].append({e["user_id"] for e in stream if e["type"] == "gift"})
    returning = [
        creator
        for creator, sessions in gifters_by_session.items()
        if any(a & b for a, b in pairwise(sessions))
    ]
    assert returning  # a gifter of one session gifts in her next one too
    for a, b in pairwise(fans.values()):
        assert not a & b  # fans are a creator's own (ids drawn from 100,000,000)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_like_totals_include_dropped_likes(name: str) -> None:
    dropped = 0
    for events in by_stream(events_of(name)).values():
        previous = 0
        for event in (e for e in events if e["type"] == "like"):
            assert 1 <= event["count"] <= 15
            growth = event["total"] - previous
            assert growth >= event["count"]
            dropped += growth - event["count"]
            previous = event["total"]
    assert dropped > 0


def test_like_drop_rate_is_about_ten_percent() -> None:
    likes = [e for e in events_of("default-30s") if e["type"] == "like"]
    emitted = sum(e["count"] for e in likes)
    grown = sum(max(e["total"] for e in ls if e["type"] == "like") for ls in _likes_by_stream())
    assert 0.05 < 1 - emitted / grown < 0.15


def _likes_by_stream() -> Iterator[list[Event]]:
    for events in by_stream(events_of("default-30s")).values():
        likes = [e for e in events if e["type"] == "like"]
        if likes:
            yield likes


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_streak_closes_once_with_its_max(name: str) -> None:
    found = streaks(events_of(name))
    assert found
    for streak_id, events in found.items():
        *steps, last = events
        assert last["repeat_end"] is True, streak_id
        assert steps, streak_id
        assert all(e["repeat_end"] is False for e in steps)
        counts = [e["repeat_count"] for e in steps]
        assert counts[0] == 1
        assert all(b > a for a, b in pairwise(counts))
        assert last["repeat_count"] == max(counts)
        assert len({(e["user_id"], e["gift_id"], e["stream_id"]) for e in events}) == 1


def test_non_streakable_gifts_are_single_events() -> None:
    gifts = [e for name in CONFIGS for e in events_of(name) if e["type"] == "gift"]
    singles = [e for e in gifts if not e["streakable"]]
    assert singles
    for event in singles:
        assert event["repeat_count"] == 1
        assert event["repeat_end"] is True
    assert len({e["streak_id"] for e in singles}) == len(singles)
    catalogue = {(g.gift_id, g.name, g.coins, g.streakable) for g in GIFTS}
    for event in gifts:
        key = (event["gift_id"], event["gift_name"], event["coins"], event["streakable"])
        assert key in catalogue


def test_catalogue_has_the_documented_prices() -> None:
    prices = {g.name: (g.coins, g.streakable) for g in GIFTS}
    assert prices["Rose"] == (1, True)
    assert prices["Finger Heart"] == (5, True)
    assert prices["Doughnut"] == (30, True)
    assert prices["Money Gun"] == (500, False)
    assert prices["Galaxy"] == (1000, False)
    assert prices["Lion"] == (29999, False)
    assert prices["Universe"] == (44999, False)
    assert next(g.gift_id for g in GIFTS if g.name == "Rose") == 5655


def test_a_fifth_of_users_send_most_gifts() -> None:
    config = SimulationConfig(start_ms=START, streams=1, rate=50, duration_s=600, seed=2)
    users: set[str] = set()
    gifts: dict[str, int] = defaultdict(int)
    for event in plain(generate(config)):
        if "user_id" in event:
            users.add(event["user_id"])
        if event["type"] == "gift" and event["repeat_end"]:
            gifts[event["user_id"]] += 1
    top = sorted(gifts.values(), reverse=True)[: len(users) // 5]
    assert sum(top) / sum(gifts.values()) > 0.7


@pytest.mark.parametrize("max_events", [2, 3, 41, 100, 999, 5_000])
def test_max_events_is_exact_and_streams_still_close(max_events: int) -> None:
    config = SimulationConfig(start_ms=START, max_events=max_events, seed=max_events)
    events = plain(generate(config))
    assert len(events) == max_events
    for stream_events in by_stream(tuple(events)).values():
        assert stream_events[0]["type"] == "live_start"
        assert stream_events[-1]["type"] == "live_end"
    for steps in streaks(tuple(events)).values():
        assert [e["repeat_end"] for e in steps].count(True) == 1


def test_without_end_streams_nothing_is_closed() -> None:
    config = SimulationConfig(start_ms=START, duration_s=10, end_streams=False)
    events = plain(generate(config))
    assert not [e for e in events if e["type"] == "live_end"]
    limited = list(generate(SimulationConfig(start_ms=START, max_events=777, end_streams=False)))
    assert len(limited) == 777


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("streams", 0),
        ("rate", 0.0),
        ("duration_s", -1.0),
        ("max_events", -1),
        ("start_ms", 1_700_000_000),
        ("like_drop", 1.0),
        ("mean_lifetime_s", 0.0),
        ("creators", 19),  # fewer than the 20 streams
    ],
)
def test_config_rejects_bad_values(field: str, value: Any) -> None:
    base: dict[str, Any] = {"start_ms": START}
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**(base | {field: value}))


def test_hot_stream_property_at_defaults() -> None:
    """Hottest stream >= 1k likes in 20 s, one > 10k in 5 min, median < 1k in 10 min."""
    config = SimulationConfig(start_ms=START, duration_s=600)
    total_at: dict[str, dict[int, int]] = {}
    for event in plain(generate(config)):
        if event["type"] == "live_start":
            total_at[event["stream_id"]] = {20: 0, 300: 0, 600: 0}
        if event["type"] != "like":
            continue
        elapsed = event["ts"] - START
        marks = total_at[event["stream_id"]]
        for mark in (20, 300, 600):
            if elapsed <= mark * 1000:
                marks[mark] = event["total"]
    assert len(total_at) == config.streams
    assert max(m[20] for m in total_at.values()) >= 1_000
    assert max(m[300] for m in total_at.values()) > 10_000
    assert statistics.median(m[600] for m in total_at.values()) < 1_000


def test_ndjson_round_trip_is_byte_exact(tmp_path: Path) -> None:
    events = tuple(generate(CONFIGS["max-events"]))
    path = tmp_path / "events.ndjson"
    assert write_ndjson(events, path) == len(events)
    data = path.read_bytes()
    assert data == b"".join(encode_event(e) + b"\n" for e in events)
    lines = list(read_ndjson(path))
    assert lines == [encode_event(e) for e in events]
    assert [json.loads(line) for line in lines] == plain(events)


def test_read_ndjson_keeps_lines_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b'{"a": 1}\r\n\n   \nnot json\n{"stream_id":"s1"}  \n\xff\xfe\nlast')
    assert list(read_ndjson(path)) == [
        b'{"a": 1}',
        b"not json",
        b'{"stream_id":"s1"}  ',
        b"\xff\xfe",
        b"last",
    ]


@pytest.mark.parametrize(
    ("line", "key", "ts"),
    [
        (b'{"stream_id":"s-1","ts":1700000000000}', b"s-1", 1_700_000_000_000),
        ('{"stream_id":"caf\u00e9"}'.encode(), "caf\u00e9".encode(), None),
        (b'{"stream_id":42,"ts":"soon"}', None, None),
        (b'{"stream_id":"","ts":true}', None, None),
        (b'{"ts":1.5}', None, None),
        (b"[1,2,3]", None, None),
        (b"not json", None, None),
        (b'{"stream_id":"s', None, None),
        (b"\xff\xfe", None, None),
    ],
)
def test_record_key_never_raises(line: bytes, key: bytes | None, ts: int | None) -> None:
    assert record_key_and_ts(line) == (key, ts)
    assert record_key(line) == key


def test_generation_is_fast_enough() -> None:
    import time

    config = SimulationConfig(start_ms=START, max_events=100_000, seed=9)
    started = time.perf_counter()
    count = sum(1 for _ in generate(config))
    elapsed = time.perf_counter() - started
    assert count == 100_000
    assert count / elapsed > 100_000  # ~400k/s on a laptop; loose for slow CI


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livepulse")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["simulate", "--streams", "0"], "--streams"),
        (["simulate", "--streams", "x"], "--streams"),
        (["simulate", "--rate", "0"], "--rate"),
        (["simulate", "--rate", "-5"], "--rate"),
        (["simulate", "--rate", "nan"], "--rate"),
        (["simulate", "--duration", "0"], "--duration"),
        (["simulate", "--events", "0"], "--events"),
        (["simulate", "--seed", "1.5"], "--seed"),
        (["simulate", "--start-ms", "1700000000"], "--start-ms"),
        (["simulate", "--lifetime", "0"], "--lifetime"),
        (["simulate", "--creators", "0"], "--creators"),
        (["replay", "--fast", "--realtime", "x.ndjson"], "--realtime"),
        (["replay"], "FILE.ndjson"),
    ],
)
def test_cli_rejects_bad_arguments(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["simulate", "--start-ms", "1700000000000"], "--start-ms"),
        (["simulate", "--streams", "10", "--creators", "9"], "--creators"),
        (["replay", "/nonexistent/file.ndjson"], "FILE.ndjson"),
    ],
)
def test_cli_rejects_bad_combinations(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = make_parser().parse_args(argv)
    with pytest.raises(SystemExit) as exit_info:
        args.handler(args, Settings())
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_cli_defaults() -> None:
    args = make_parser().parse_args(["simulate"])
    assert (args.streams, args.rate, args.seed, args.fast, args.quiet) == (
        20,
        500.0,
        1,
        False,
        False,
    )
    assert args.duration is None and args.events is None and args.output is None
    replay = make_parser().parse_args(["replay", "f.ndjson"])
    assert replay.realtime is False
    assert make_parser().parse_args(["replay", "--realtime", "f.ndjson"]).realtime is True


def test_cli_output_is_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for name in ("a.ndjson", "b.ndjson"):
        path = tmp_path / name
        argv = ["simulate", "--fast", "--start-ms", str(START), "--duration", "3"]
        args = make_parser().parse_args([*argv, "--output", str(path)])
        assert args.handler(args, Settings()) == 0
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    expected = SimulationConfig(start_ms=START, duration_s=3)
    assert outputs[0] == b"".join(encode_event(e) + b"\n" for e in generate(expected))
    assert "done:" in capsys.readouterr().err


def test_cli_output_default_duration_and_events(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    args = make_parser().parse_args(
        ["simulate", "--output", str(path), "--events", "1234", "--quiet"]
    )
    assert args.handler(args, Settings()) == 0
    assert len(path.read_bytes().splitlines()) == 1234
    args = make_parser().parse_args(["simulate", "--output", str(path), "--rate", "50", "--quiet"])
    assert args.handler(args, Settings()) == 0
    ts = [json.loads(line)["ts"] for line in path.read_bytes().splitlines()]
    assert 59_000 < ts[-1] - ts[0] < 60_000


NOW = 1_767_225_600_000


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--fast"], NOW - 60_000),  # the default 60 virtual seconds, ending now
        (["--fast", "--duration", "30"], NOW - 30_000),
        (["--fast", "--events", "1000", "--rate", "100"], NOW - 10_000),
        (["--fast", "--events", "1000", "--rate", "100", "--duration", "5"], NOW - 5_000),
        (["--fast", "--events", "10", "--rate", "3"], NOW - 3_334),
        (["--output", "-", "--duration", "30"], NOW - 30_000),
        (["--fast", "--start-ms", str(START)], START),
        ([], NOW),  # realtime: ts are the wall clock
    ],
)
def test_an_offline_run_ends_now_unless_told_where_to_start(
    argv: list[str], start: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --start-ms, --fast and --output runs are the recent past, not the future:
    the worker dead-letters events far ahead of their records' timestamps."""
    monkeypatch.setattr(cli, "_now_ms", lambda: NOW)
    assert cli._start_ms(make_parser().parse_args(["simulate", *argv])) == start


def test_an_offline_run_has_no_event_from_the_future(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    args = make_parser().parse_args(
        ["simulate", "--output", str(path), "--events", "2000", "--rate", "400", "--quiet"]
    )
    before = cli._now_ms()
    assert args.handler(args, Settings()) == 0
    ts = [json.loads(line)["ts"] for line in path.read_bytes().splitlines()]
    assert before - 5_000 <= min(ts) and max(ts) <= cli._now_ms()


def test_progress_reporter_lines() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = ProgressReporter("sim", interval_s=2.0, stream=out, clock=lambda: now[0])
    progress.start()
    progress.tick(10)
    now[0] = 102.5
    progress.tick(1_000)
    now[0] = 103.0
    progress.tick(1_100)
    now[0] = 110.0
    progress.finish(5_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "sim: 1,000 events, 400/s now, 400/s avg, 0:00:02 elapsed"
    assert lines[1] == "sim: done: 5,000 events in 0:00:10 (10.0 s, 500/s avg)"
    quiet = ProgressReporter("sim", quiet=True, stream=out, clock=lambda: now[0])
    now[0] = 200.0
    quiet.tick(1)
    quiet.finish(1, interrupted=True)
    assert out.getvalue().splitlines() == lines


def test_produce_reports_unreachable_broker() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(broker=f"127.0.0.1:{port}")
    progress = ProgressReporter("test", quiet=True)
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        asyncio.run(produce(settings, [(None, b"{}", None)], pace="fast", progress=progress))


def test_cli_broker_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = make_parser().parse_args(["simulate", "--fast", "--events", "10", "--quiet"])
    assert args.handler(args, Settings(broker=f"127.0.0.1:{port}")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"127.0.0.1:{port}" in err[0] and "Traceback" not in err[0]
