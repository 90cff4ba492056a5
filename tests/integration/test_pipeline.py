"""The whole pipeline on the real broker: exact alerts, dead letters and metrics."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Topics, WorkerProcess
from tests.integration.kafka import keyed, produce, read_all, wait_until_committed
from tests.support.events import T0, StreamScript
from tests.support.reference import Params, expected_outcome

YEAR_2200 = 7_258_118_400_000


def scenario() -> tuple[list[dict[str, Any]], list[tuple[bytes | None, bytes, str]]]:
    """Three streams plus malformed records; returns (valid events, [(key, bytes, reason)])."""
    alpha, beta = StreamScript("alpha", "creator-a"), StreamScript("beta", "creator-b")
    gamma = StreamScript("gamma", "creator-c", like_total=4_990)  # joined mid-stream
    events = [
        alpha.start(T0),
        beta.start(T0),
        alpha.likes(T0 + 1_000, 10, dropped=490),
        gamma.likes(T0 + 1_000, 10),
        beta.likes(T0 + 2_000, 5, dropped=95),
        gamma.likes(T0 + 2_000, 10, dropped=990),
        *beta.combo(T0 + 2_500, coins=30, steps=3, streak="d1"),
        beta.end(T0 + 3_000),
        alpha.likes(T0 + 5_000, 10, dropped=490),
        *alpha.combo(T0 + 6_000, coins=1, steps=7, streak="r1"),
        alpha.gift(T0 + 6_000, 500, 1, streakable=False, end=True),
        alpha.likes(T0 + 60_000, 15, dropped=8_985),
        # 5 s out of order, within the 10 s grace: counted in its own bucket and window
        alpha.gift(T0 + 55_000, 500, 1, streakable=False, end=True),
        alpha.comment(T0 + 605_000),
        alpha.comment(T0 + 660_000),
    ]
    late = alpha.gift(T0 + 10_000, 500, 1, streakable=False, end=True)
    after_end = beta.comment(T0 + 3_500)
    events += [late, alpha.end(T0 + 662_000), after_end]
    bad_like = dict(alpha.likes(T0 + 1, 3)) | {"count": 99}
    negative = alpha.gift(T0 + 1, 500, 1, streakable=False, end=True) | {"coins": -5}
    anonymous = {k: v for k, v in alpha.comment(T0 + 1).items() if k != "stream_id"}
    # a million coins to a parser that keeps the last "coins", five to one that keeps the first
    twice = orjson.dumps(alpha.gift(T0 + 1, 5, 1, streakable=False, end=True))
    twice = twice[:-1] + b',"coins":1000000}'
    # the year 2200, sent now: taken, it would make every later event of alpha late
    future = alpha.gift(YEAR_2200, 500, 1, streakable=False, end=True)
    malformed = [
        (b"alpha", b"{not json", "invalid_json"),
        (b"alpha", orjson.dumps(bad_like), "contract_violation"),
        (b"beta", orjson.dumps(beta.comment(T0) | {"type": "dance"}), "contract_violation"),
        (b"beta", orjson.dumps(gamma.comment(T0)), "key_mismatch"),
        (b"gamma", b"[]", "not_an_object"),
        (b"alpha", b'{"pad": "' + b"x" * 70_000 + b'"}', "too_large"),
        (b"alpha", orjson.dumps(negative), "contract_violation"),
        (b"alpha", orjson.dumps(anonymous), "contract_violation"),
        (b"alpha", twice, "contract_violation"),
        (b"alpha", orjson.dumps(future), "future_timestamp"),
        (b"alpha", orjson.dumps(late), "late"),
        (b"beta", orjson.dumps(after_end), "after_end"),
    ]
    return events, malformed


def interleave(
    events: list[dict[str, Any]], malformed: list[tuple[bytes | None, bytes, str]]
) -> list[tuple[bytes | None, bytes]]:
    """The valid events in order, with a malformed record after every third one."""
    # late and after_end records are valid events, already among the events
    bad = [(k, v) for k, v, reason in malformed if reason not in ("late", "after_end")]
    out: list[tuple[bytes | None, bytes]] = []
    for i, record in enumerate(keyed(events)):
        out.append(record)
        if i % 3 == 0 and bad:
            out.append(bad.pop())
    return out + bad


def without_emitted_at(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if k != "emitted_at"}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for_sample(url: str, name: str, labels: dict[str, str], value: float) -> None:
    """Gauges refresh on a 2 s timer: poll until the value is there, up to a deadline."""
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + 30
    seen = None
    while time.monotonic() < deadline:
        seen = scrape(url).get(key)
        if seen == value:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}{labels} = {seen}, expected {value}")


def test_scenario_gives_exactly_the_expected_alerts_dead_letters_and_metrics(
    broker: str, topics: Topics, worker: WorkerProcess
) -> None:
    events, malformed = scenario()
    records = interleave(events, malformed)
    asyncio.run(produce(broker, topics.events, records))
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    alerts = [
        without_emitted_at(orjson.loads(r.value))
        for r in asyncio.run(read_all(broker, topics.alerts))
    ]
    by_stream = sorted(
        alerts, key=lambda a: (a["stream_id"], a["event_time"], a["type"], a.get("policy", ""))
    )

    # worked out by hand from the scenario (defaults: 600 s window in 10 s steps, 10 %
    # hysteresis, session milestones at 1,000 and 10,000 likes, 60 s tumbling windows)
    def summary(a: dict[str, Any]) -> tuple[Any, ...]:
        if a["type"] == "stream_ended":
            return (
                a["stream_id"],
                "ended",
                a["event_time"] - T0,
                a["duration_ms"],
                tuple(a["session"].values()),
                a["peak_tier"],
                a["final_tier"],
            )
        return (
            a["stream_id"],
            a["policy"],
            a["from_tier"],
            a["to_tier"],
            a["value"],
            a["event_time"] - T0,
        )

    assert [summary(a) for a in by_stream] == [
        ("alpha", "session_likes", "low", "moderate", 1_000, 5_000),
        ("alpha", "window_likes", "low", "moderate", 1_000, 5_000),
        ("alpha", "session_likes", "moderate", "high", 10_000, 60_000),
        ("alpha", "window_likes", "moderate", "high", 10_000, 60_000),
        # at +600 s bucket +0 s left, 9,000 likes remain: not below 9,000, still high; at
        # +650 s the out-of-order gift's bucket left (no likes); at +660 s bucket +60 s
        ("alpha", "window_likes", "high", "low", 0, 660_000),
        ("alpha", "ended", 662_000, 662_000, (10_000, 9, 1_007, 5.035), "high", "low"),
        ("beta", "ended", 3_000, 3_000, (100, 3, 90, 0.45), "low", "low"),
        ("gamma", "session_likes", "low", "moderate", 1_010, 2_000),
        ("gamma", "window_likes", "low", "moderate", 1_010, 2_000),
    ]
    high = next(a for a in alerts if a.get("to_tier") == "high" and a["policy"] == "window_likes")
    assert high["window"] == {
        "start": T0 - 530_000,
        "end": T0 + 70_000,
        "likes": 10_000,
        "gifts": 8,
        "coins": 507,
        "creator_usd": 2.535,
    }
    windows = [
        without_emitted_at(orjson.loads(r.value))
        for r in asyncio.run(read_all(broker, topics.windows))
    ]
    assert sorted((w["window_id"], tuple(w["window"].values())) for w in windows) == [
        (f"alpha@{T0}", (T0, T0 + 60_000, 1_000, 9, 1_007, 5.035)),
        (f"alpha@{T0 + 60_000}", (T0 + 60_000, T0 + 120_000, 9_000, 0, 0, 0.0)),
        (f"beta@{T0}", (T0, T0 + 60_000, 100, 3, 90, 0.45)),
    ]
    # and by the independent brute-force model, field for field, in each stream's order
    expected = expected_outcome(events, Params())

    def per_stream(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            grouped.setdefault(r["stream_id"], []).append(r)
        return grouped

    assert per_stream(alerts) == per_stream(expected.alerts)
    assert per_stream(windows) == per_stream(expected.windows)

    dead = asyncio.run(read_all(broker, topics.dlq))
    got = sorted((r.key, r.value, dict(r.headers)["livepulse.reason"].decode()) for r in dead)
    assert got == sorted(malformed)
    for r in dead:
        headers = dict(r.headers)
        assert headers["livepulse.source.topic"] == topics.events.encode()
        assert int(headers["livepulse.source.offset"]) >= 0

    url = worker.metrics_url
    samples = scrape(url)
    assert samples[("livepulse_likes_total", ())] == 11_110
    assert samples[("livepulse_gifts_total", ())] == 12
    assert samples[("livepulse_coins_total", ())] == 1_097
    assert (expected.likes, expected.gifts, expected.coins) == (11_110, 12, 1_097)
    assert [reason for _, reason in expected.rejected] == ["late", "after_end"]
    assert samples[("livepulse_alerts_published_total", (("type", "tier_changed"),))] == 7
    assert samples[("livepulse_alerts_published_total", (("type", "stream_ended"),))] == 2
    assert samples[("livepulse_windows_closed_total", ())] == 3
    for reason in (
        "invalid_json",
        "contract_violation",
        "key_mismatch",
        "not_an_object",
        "too_large",
        "future_timestamp",
        "late",
        "after_end",
    ):
        want = sum(1 for *_, r in malformed if r == reason)
        assert samples[("livepulse_invalid_events_total", (("reason", reason),))] == want
    for kind, count in expected.events_by_type.items():
        assert samples[("livepulse_events_total", (("type", kind),))] == count
    wait_for_sample(url, "livepulse_active_streams", {}, 1)  # only gamma never ended
    wait_for_sample(url, "livepulse_streams", {"tier": "moderate"}, 1)
