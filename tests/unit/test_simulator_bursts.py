"""Hype-burst ground truth and repeat gifters of the simulator (no broker needed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from itertools import pairwise
from typing import Any

import pytest

from processor.simulator.generator import (
    Burst,
    SimulationConfig,
    generate,
    generate_with_bursts,
)
from tests.support.events import plain

Event = dict[str, Any]  # an event as the JSON object of its record

START = 1_700_000_000_000

CONFIGS: dict[str, SimulationConfig] = {
    "many-streams": SimulationConfig(
        start_ms=START, streams=40, rate=800, duration_s=1_200, seed=4
    ),
    "turnover": SimulationConfig(
        start_ms=START,
        streams=10,
        rate=300,
        duration_s=900,
        seed=7,
        mean_lifetime_s=200,
        hype_every_s=60,
    ),
    "open-ended": SimulationConfig(
        start_ms=START,
        streams=12,
        rate=400,
        max_events=40_000,
        seed=9,
        end_streams=False,
        hype_every_s=30,
        hype_duration_s=(20, 40),
    ),
}


@cache
def run(name: str) -> tuple[tuple[Event, ...], tuple[Burst, ...]]:
    events, bursts = generate_with_bursts(CONFIGS[name])
    return tuple(plain(events)), tuple(bursts)


def lifetimes(events: tuple[Event, ...]) -> dict[str, tuple[int, int]]:
    """stream_id -> (ts of live_start, ts of its last event)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for event in events:
        first.setdefault(event["stream_id"], event["ts"])
        last[event["stream_id"]] = event["ts"]
    return {sid: (first[sid], last[sid]) for sid in first}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reporting_bursts_does_not_change_the_events(name: str) -> None:
    events, bursts = run(name)
    assert bursts
    assert tuple(plain(generate(CONFIGS[name]))) == events


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bursts_are_well_formed(name: str) -> None:
    config = CONFIGS[name]
    events, bursts = run(name)
    life = lifetimes(events)
    ended = {e["stream_id"] for e in events if e["type"] == "live_end"}
    low, high = config.hype_duration_s
    per_stream: dict[str, list[Burst]] = defaultdict(list)
    for burst in bursts:
        per_stream[burst.stream_id].append(burst)
        start, last = life[burst.stream_id]
        if burst.stream_id not in ended:
            last = events[-1]["ts"]  # still live when the run stopped
        assert start <= burst.start_ms < burst.end_ms <= last + 1
        assert config.hype_multiplier[0] <= burst.multiplier <= config.hype_multiplier[1]
        length = burst.end_ms - burst.start_ms
        if burst.cut:
            assert burst.end_ms == last + 1  # cut by its stream's end (or the run's)
            assert length <= high * 1_000 + 1
        else:
            # the drawn duration, rounded to the tick grid
            assert low * 1_000 - 1 <= length <= high * 1_000 + 1_000 / config.rate + 1
    for stream_bursts in per_stream.values():
        for a, b in pairwise(stream_bursts):
            assert a.end_ms <= b.start_ms  # one burst at a time per stream


def test_a_stream_ending_cuts_its_open_burst() -> None:
    events, bursts = run("turnover")
    ends = {e["stream_id"]: e["ts"] for e in events if e["type"] == "live_end"}
    cut = [b for b in bursts if b.cut]
    assert cut
    for burst in cut:
        assert burst.end_ms == ends[burst.stream_id] + 1
    # turnover: streams end mid-run, not only at the end of the run
    assert any(b.end_ms <= max(ends.values()) - 60_000 for b in cut)


def test_open_ended_runs_still_report_open_bursts() -> None:
    events, bursts = run("open-ended")
    assert not [e for e in events if e["type"] == "live_end"]
    assert [b for b in bursts if b.cut and b.end_ms == events[-1]["ts"] + 1]


def test_bursts_raise_a_stream_s_event_rate_and_viewers() -> None:
    """Per stream, events per second and viewers inside its bursts vs outside. Rates are
    checked on streams with a small share of all ticks: a dominant stream's burst mostly
    takes ticks from itself (the total rate is fixed), so its rate rises less."""
    events, bursts = run("many-streams")
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for burst in bursts:
        spans[burst.stream_id].append((burst.start_ms, burst.end_ms))

    def hyped(event: Event) -> bool:
        return any(a <= event["ts"] < b for a, b in spans.get(event["stream_id"], ()))

    counts: Counter[tuple[str, bool]] = Counter()
    viewers: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for event in events:
        if event["type"] == "viewers":
            viewers[event["stream_id"], hyped(event)].append(event["count"])
        elif event["type"] not in ("live_start", "live_end"):
            counts[event["stream_id"], hyped(event)] += 1
    duration_ms = 1_000 * (CONFIGS["many-streams"].duration_s or 0)
    total = counts.total()
    rate_ratios = []
    viewer_ratios = []
    for sid, stream_spans in spans.items():
        inside_ms = sum(b - a for a, b in stream_spans)
        n = counts[sid, True] + counts[sid, False]
        if n / total < 0.05 and n >= 1_000:
            inside = counts[sid, True] / inside_ms
            outside = counts[sid, False] / (duration_ms - inside_ms)
            rate_ratios.append(inside / outside)
        on, off = viewers[sid, True], viewers[sid, False]
        if len(on) >= 10 and sum(off) >= 100 * len(off):
            viewer_ratios.append((sum(on) / len(on)) / (sum(off) / len(off)))
    for ratios in (rate_ratios, viewer_ratios):
        assert len(ratios) >= 6, ratios
        ratios.sort()
        assert 2.5 <= ratios[len(ratios) // 2] <= 5.5, ratios
        assert min(ratios) > 1.5, ratios


def test_gifters_come_back_and_stay_in_the_stream_s_pool() -> None:
    """Each stream has a fixed pool of users; its gifters are a fixed part of it, so the same
    users gift again all through the stream and the top gifters of its first half are
    still among its top gifters in the second half."""
    config = CONFIGS["many-streams"]
    half = START + int(config.duration_s * 500)  # type: ignore[operator]
    events, _ = run("many-streams")
    users: dict[str, set[str]] = defaultdict(set)
    gifts: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if "user_id" in event:
            users[event["stream_id"]].add(event["user_id"])
        if event["type"] == "gift" and event["repeat_end"]:
            gifts[event["stream_id"]].append(event)
    streams = [sid for sid, g in gifts.items() if len(g) >= 500]
    assert len(streams) >= 5
    for sid in streams:
        senders = [g["user_id"] for g in gifts[sid]]
        repeat = sum(n - 1 for n in Counter(senders).values()) / len(senders)
        assert repeat > 0.5, (sid, repeat)  # most gifts come from someone who gifted before
        first = Counter(g["user_id"] for g in gifts[sid] if g["ts"] < half)
        second = Counter(g["user_id"] for g in gifts[sid] if g["ts"] >= half)
        top_first = {u for u, _ in first.most_common(10)}
        assert top_first & set(second), sid  # the first half's top gifters gift again
        # gifters are few of the stream's users, and no user is shared with other streams
        assert len(set(senders)) < 0.6 * len(users[sid])
    all_users = [u for sid in users for u in users[sid]]
    assert len(all_users) - len(set(all_users)) < 0.001 * len(all_users)
