"""The metrics module: exact values, naming rules, top-K, consumer lag, and the doc table."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from processor.contract import Reason
from processor.core.alerts import (
    Gifter,
    GoalReached,
    Liker,
    Minute,
    Spike,
    TierChanged,
    TopUsers,
    ViewerFigures,
    WindowSnapshot,
)
from processor.core.engine import Engine, EngineConfig
from processor.core.standings import (
    minute_coins,
    standings,
)
from processor.core.tiers import Tier
from processor.metrics import (
    ALERT_LATENCY_BUCKETS,
    ALERT_METRICS,
    DEAD_LETTER_REASONS,
    EVENT_TYPES,
    Metrics,
)
from processor.settings import ConfigError, load_settings
from processor.worker.partitions import Applied
from tests.support.events import T0, StreamScript, typed

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "README.md"


def new_metrics(top_k: int = 10) -> tuple[Metrics, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(registry, usd_per_coin=0.005, top_k=top_k), registry


def alert(from_tier: Tier = Tier.LOW, to_tier: Tier = Tier.MODERATE) -> TierChanged:
    return TierChanged(
        alert_id="a1",
        stream_id="s1",
        creator_id="c1",
        policy="window_likes",
        from_tier=from_tier,
        to_tier=to_tier,
        direction="up" if to_tier.rank > from_tier.rank else "down",
        value=1_000,
        threshold=1_000,
        event_time=T0,
        window=WindowSnapshot(T0 - 600_000, T0, 1_000, 0, 0, 0.0),
        top=TopUsers(T0 - 600_000, T0, True, (), (Liker("u1", 1_000),)),
        viewers=None,
    )


def spike(metric: str = "coins", minute_start: int = T0) -> Spike:
    return Spike(
        alert_id="s" + metric,
        stream_id="s1",
        creator_id="c1",
        metric=metric,
        value=3_400,
        baseline=210.5,
        baseline_minutes=9.17,
        ratio=16.15,
        threshold=631.5,
        minute=Minute(minute_start, minute_start + 60_000),
        event_time=minute_start + 1_000,
        top=TopUsers(minute_start, minute_start + 60_000, True, (Gifter("u1", 3_400, 2),), ()),
        viewers=ViewerFigures(40, 55, 41.5),
    )


def goal(metric: str = "likes", value: int = 5_000) -> GoalReached:
    return GoalReached(
        alert_id="g" + metric,
        stream_id="s1",
        creator_id="c1",
        metric=metric,
        goal=value,
        value=value,
        event_time=T0,
        viewers=None,
    )


def test_alert_latency_is_observed_only_for_alerts_an_event_caused() -> None:
    """Idle decay publishes alerts no event caused: no latency is observed for them (they
    were once observed at 0 s, which dragged every latency quantile down)."""
    m, r = new_metrics()
    caused = (alert(), T0 - 120)  # the record reached Kafka 120 ms before the publish
    idle = (alert(Tier.MODERATE, Tier.LOW), None)
    m.record_applied(Applied(alerts=[caused, idle]), now=T0 / 1000)
    assert r.get_sample_value("livepulse_alert_latency_seconds_count") == 1
    assert r.get_sample_value("livepulse_alert_latency_seconds_sum") == pytest.approx(0.12)
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "tier_changed"}) == 2


def test_counters_count_exactly_what_they_are_given() -> None:
    m, r = new_metrics()
    first = Applied(
        events={"like": 1, "gift": 1}, likes=40, gifts=10, coins=300, invalid={"invalid_json": 2}
    )
    second = Applied(
        events={"like": 1, "gift": 1, "comment": 1},
        likes=2,
        gifts=1,
        coins=1,
        invalid={"late": 1, "something_new": 1},  # unknown reasons are counted too
    )
    m.record_applied(first, now=T0 / 1000)
    m.record_applied(second, now=T0 / 1000)

    assert r.get_sample_value("livepulse_events_total", {"type": "like"}) == 2
    assert r.get_sample_value("livepulse_events_total", {"type": "gift"}) == 2
    assert r.get_sample_value("livepulse_events_total", {"type": "comment"}) == 1
    assert r.get_sample_value("livepulse_likes_total") == 42
    assert r.get_sample_value("livepulse_gifts_total") == 11
    assert r.get_sample_value("livepulse_coins_total") == 301
    assert r.get_sample_value("livepulse_creator_usd_total") == pytest.approx(1.505, abs=1e-12)
    reasons = {"invalid_json": 2, "late": 1, "something_new": 1, "contract_violation": 0}
    for reason, n in reasons.items():
        assert r.get_sample_value("livepulse_invalid_events_total", {"reason": reason}) == n


def test_known_label_values_exist_at_zero_from_the_start() -> None:
    _, r = new_metrics()
    for kind in EVENT_TYPES:
        assert r.get_sample_value("livepulse_events_total", {"type": kind}) == 0
    assert set(DEAD_LETTER_REASONS) == set(Reason)  # future_timestamp included
    for reason in DEAD_LETTER_REASONS:
        assert r.get_sample_value("livepulse_invalid_events_total", {"reason": reason}) == 0
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "tier_changed"}) == 0
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "stream_ended"}) == 0
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "spike"}) == 0
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "goal_reached"}) == 0
    assert ALERT_METRICS == ("likes", "coins")
    for metric in ALERT_METRICS:
        assert r.get_sample_value("livepulse_spikes_total", {"metric": metric}) == 0
        assert r.get_sample_value("livepulse_goals_total", {"metric": metric}) == 0
    pairs = [(a, b) for a in ("low", "moderate", "high") for b in ("low", "moderate", "high")]
    for a, b in pairs:
        labels = {"policy": "window_likes", "from_tier": a, "to_tier": b}
        want = None if a == b else 0
        assert r.get_sample_value("livepulse_tier_transitions_total", labels) == want
    for tier in ("low", "moderate", "high"):
        assert r.get_sample_value("livepulse_streams", {"tier": tier}) == 0
    assert r.get_sample_value("livepulse_alert_latency_seconds_count") == 0


def test_alerts_count_transitions_and_observe_latency_in_seconds() -> None:
    m, r = new_metrics()
    m.record_alert(alert(), 0.02)
    m.record_alert(alert(Tier.MODERATE, Tier.HIGH), 3.0)
    m.record_alert(alert(Tier.HIGH, Tier.LOW), -0.5)  # producer clock ahead: observed as 0
    m.record_alert(alert(Tier.MODERATE, Tier.LOW), None)  # caused by no event: not observed
    m.record_applied(Applied(windows=2), now=0.0)

    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "tier_changed"}) == 4
    assert r.get_sample_value("livepulse_windows_closed_total") == 2
    for a, b in (("low", "moderate"), ("moderate", "high"), ("high", "low"), ("moderate", "low")):
        labels = {"policy": "window_likes", "from_tier": a, "to_tier": b}
        assert r.get_sample_value("livepulse_tier_transitions_total", labels) == 1
    assert r.get_sample_value("livepulse_alert_latency_seconds_count") == 3
    assert r.get_sample_value("livepulse_alert_latency_seconds_sum") == pytest.approx(3.02)

    def bucket(le: str) -> float | None:
        return r.get_sample_value("livepulse_alert_latency_seconds_bucket", {"le": le})

    assert (bucket("0.005"), bucket("0.01"), bucket("0.025")) == (1, 1, 2)
    assert (bucket("2.5"), bucket("5.0"), bucket("+Inf")) == (2, 3, 3)
    assert len(ALERT_LATENCY_BUCKETS) == 13


class OtherAlert(NamedTuple):
    type: str


def test_other_alert_types_count_by_type_but_are_no_transition() -> None:
    m, r = new_metrics()
    m.record_alert(OtherAlert("stream_ended"), 0.2)
    m.record_alert(OtherAlert("something_new"), 0.2)
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "stream_ended"}) == 1
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "something_new"}) == 1
    assert r.get_sample_value("livepulse_alerts_published_total", {"type": "tier_changed"}) == 0
    transitions = [
        s
        for family in r.collect()
        if family.name == "livepulse_tier_transitions"
        for s in family.samples
        if s.value
    ]
    assert transitions == []
    assert r.get_sample_value("livepulse_alert_latency_seconds_count") == 2


def test_spikes_and_goals_count_by_type_and_by_metric() -> None:
    m, r = new_metrics()
    m.record_alert(spike("coins"), 0.05)
    m.record_alert(spike("coins", T0 + 60_000), 0.05)
    m.record_alert(spike("likes"), None)
    m.record_alert(goal("likes", 5_000), 0.01)
    m.record_alert(goal("likes", 10_000), 0.01)
    m.record_alert(goal("coins", 1_000), 0.01)
    m.record_alert(goal("coins", 5_000), 0.01)
    m.record_alert(goal("coins", 10_000), 0.01)

    def value(name: str, **labels: str) -> float | None:
        return r.get_sample_value(name, labels)

    assert value("livepulse_spikes_total", metric="coins") == 2
    assert value("livepulse_spikes_total", metric="likes") == 1
    assert value("livepulse_goals_total", metric="likes") == 2
    assert value("livepulse_goals_total", metric="coins") == 3
    assert value("livepulse_alerts_published_total", type="spike") == 3
    assert value("livepulse_alerts_published_total", type="goal_reached") == 5
    assert value("livepulse_alerts_published_total", type="tier_changed") == 0
    assert value("livepulse_alert_latency_seconds_count") == 7  # the likes spike: no event
    # neither is a tier transition
    assert (
        sum(
            s.value
            for family in r.collect()
            if family.name == "livepulse_tier_transitions"
            for s in family.samples
        )
        == 0
    )


def engine_with(events: list[dict[str, Any]], config: EngineConfig | None = None) -> Engine:
    engine = Engine(config or EngineConfig())
    for event in events:
        engine.process(typed(event))
    return engine


def sample_map(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    """{(rank, stream_id): value} of a top-K gauge."""
    return {
        (s.labels["rank"], s.labels["stream_id"]): s.value
        for family in registry.collect()
        if family.name == name
        for s in family.samples
    }


def test_refresh_sets_stream_gauges_lag_and_the_top_k_by_value_then_stream_id() -> None:
    m, r = new_metrics(top_k=3)
    a, b, c, d, e = (StreamScript(x) for x in ("a", "b", "c", "d", "e"))
    events = [
        *(s.start(T0) for s in (a, b, c, d, e)),
        a.likes(T0 + 1_000, 10, dropped=1_990),  # 2,000: moderate
        b.likes(T0 + 1_000, 5, dropped=495),  # 500 (ties with c, loses on stream id)
        c.likes(T0 + 2_000, 5, dropped=495),  # 500
        d.likes(T0 + 2_000, 1, dropped=299),  # 300: ranked 4th, outside top 3
        *c.combo(T0 + 3_000, coins=30, steps=2, streak="k"),  # 60 coins
        d.gift(T0 + 4_500, 500, 1, streakable=False, end=True),  # 500 coins
        b.gift(T0 + 4_000, 1, 1, streakable=False, end=True),  # 1 coin
    ]
    engine = engine_with(events)  # e has no likes and no coins: in neither top list
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 12.5)

    assert r.get_sample_value("livepulse_active_streams") == 5
    assert r.get_sample_value("livepulse_streams", {"tier": "low"}) == 4
    assert r.get_sample_value("livepulse_streams", {"tier": "moderate"}) == 1
    assert r.get_sample_value("livepulse_streams", {"tier": "high"}) == 0
    # newest stream time is T0 + 4.5 s; the wall clock is T0 + 12.5 s
    assert r.get_sample_value("livepulse_stream_time_lag_seconds") == 8.0
    assert sample_map(r, "livepulse_top_stream_likes") == {
        ("1", "a"): 2_000,
        ("2", "b"): 500,
        ("3", "c"): 500,
    }
    assert sample_map(r, "livepulse_top_stream_coins") == {
        ("1", "d"): 500,
        ("2", "c"): 60,
        ("3", "b"): 1,
    }

    # streams that end vanish from every gauge at the next refresh
    engine.process(typed(a.end(T0 + 5_000)))
    engine.process(typed(d.end(T0 + 5_000)))
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 20)
    assert r.get_sample_value("livepulse_active_streams") == 3
    assert sample_map(r, "livepulse_top_stream_likes") == {("1", "b"): 500, ("2", "c"): 500}
    assert sample_map(r, "livepulse_top_stream_coins") == {("1", "c"): 60, ("2", "b"): 1}
    assert r.get_sample_value("livepulse_stream_time_lag_seconds") == 16.0  # newest: c, +4 s

    # with no stream at all the lag is undefined: no series rather than a made-up number
    for s in (b, c, e):
        engine.process(typed(s.end(T0 + 6_000)))
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 30)
    assert r.get_sample_value("livepulse_stream_time_lag_seconds") is None
    assert sample_map(r, "livepulse_top_stream_likes") == {}
    assert r.get_sample_value("livepulse_active_streams") == 0


def test_refresh_over_several_engines_ranks_their_streams_together() -> None:
    m, r = new_metrics(top_k=2)
    a, b, c = StreamScript("a"), StreamScript("b"), StreamScript("c")
    one = engine_with([a.start(T0), a.likes(T0 + 1_000, 5, dropped=1_195)])  # 1,200
    two = engine_with(
        [
            b.start(T0),
            b.likes(T0 + 2_000, 5, dropped=95),  # 100
            c.start(T0),
            c.likes(T0 + 3_000, 5, dropped=195),  # 200
        ]
    )
    m.refresh(standings([one, two], m.top_k), now=T0 / 1000 + 10)
    assert r.get_sample_value("livepulse_active_streams") == 3
    assert r.get_sample_value("livepulse_streams", {"tier": "moderate"}) == 1
    assert r.get_sample_value("livepulse_streams", {"tier": "low"}) == 2
    assert r.get_sample_value("livepulse_stream_time_lag_seconds") == 7.0
    assert sample_map(r, "livepulse_top_stream_likes") == {("1", "a"): 1_200, ("2", "c"): 200}


def test_top_streams_by_coins_in_the_trailing_minute_of_stream_time() -> None:
    """Default engine: tier window 600 s in 10 s buckets, minute (tumbling window) 60 s. The
    trailing minute is the current bucket and the 5 before it, whatever the wall clock."""
    m, r = new_metrics(top_k=3)
    a, b, c, d, e, f = (StreamScript(x) for x in "abcdef")
    events = [
        *(s.start(T0) for s in (a, b, c, d, e, f)),
        a.gift(T0 + 5_000, 500, 1, streakable=False, end=True),  # bucket T0: out of a's minute
        a.gift(T0 + 20_000, 1, 7, streakable=False, end=True),  # bucket T0+20 s: first of it
        *a.combo(T0 + 75_000, coins=30, steps=2, streak="k"),  # 60 coins, current bucket
        b.gift(T0 + 10_000, 100, 1, streakable=False, end=True),  # 100 coins, stream time there
        c.gift(T0 + 3_000, 67, 1, streakable=False, end=True),  # 67 coins (ties d, wins on id)
        d.gift(T0 + 9_999, 67, 1, streakable=False, end=True),
        e.gift(T0 + 1_000, 200, 1, streakable=False, end=True),  # in e's window, not its minute
        e.likes(T0 + 61_000, 5),
        f.likes(T0 + 2_000, 5),  # no coins at all
    ]
    engine = engine_with(events)
    states = engine.streams
    assert [minute_coins(states[x], 60_000) for x in "abcdef"] == [67, 100, 67, 67, 0, 0]
    assert (states["a"].window.coins, states["e"].window.coins) == (567, 200)
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 80)
    assert sample_map(r, "livepulse_top_stream_coins_per_minute") == {
        ("1", "b"): 100,
        ("2", "a"): 67,
        ("3", "c"): 67,
    }
    # the windowed-coins top-K ranks the same streams by the whole tier window
    assert sample_map(r, "livepulse_top_stream_coins") == {
        ("1", "a"): 567,
        ("2", "e"): 200,
        ("3", "b"): 100,
    }

    # stream time moves on: b's coins leave its minute (still in its tier window)
    engine.process(typed(b.likes(T0 + 70_000, 1)))
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 81)
    assert minute_coins(states["b"], 60_000) == 0
    assert sample_map(r, "livepulse_top_stream_coins_per_minute") == {
        ("1", "a"): 67,
        ("2", "c"): 67,
        ("3", "d"): 67,
    }


def test_the_minute_of_coins_per_minute_is_the_engines_tumbling_window() -> None:
    config = EngineConfig(tier_window_ms=60_000, tier_step_ms=5_000, tumbling_ms=20_000)
    s = StreamScript("s")
    engine = engine_with(
        [
            s.start(T0),
            s.gift(T0 + 4_000, 10, 1, streakable=False, end=True),  # bucket T0
            s.gift(T0 + 15_000, 20, 1, streakable=False, end=True),  # bucket T0+15 s
            s.gift(T0 + 24_999, 40, 1, streakable=False, end=True),  # bucket T0+20 s (current)
        ],
        config,
    )
    # minute = 20 s: buckets T0+10 s .. T0+20 s
    assert minute_coins(engine.streams["s"], config.tumbling_ms) == 60
    m, r = new_metrics()
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 30)
    assert sample_map(r, "livepulse_top_stream_coins_per_minute") == {("1", "s"): 60}


def test_coins_per_minute_sums_buckets_only_for_streams_with_windowed_coins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refresh runs every 2 s over up to 100k streams: a stream without coins in its
    tier window has none in its minute, and costs no walk over its buckets."""
    import processor.core.standings as module

    summed: list[str] = []
    real = module.minute_coins

    def counting(state: Any, minute_ms: int) -> int:
        summed.append(state.stream_id)
        return real(state, minute_ms)

    monkeypatch.setattr(module, "minute_coins", counting)
    scripts = [StreamScript(f"s{i:02d}") for i in range(40)]
    events = [s.likes(T0 + 1_000, 3) for s in scripts]
    events += [s.gift(T0 + 2_000, 5, 1, False, True) for s in scripts[::10]]
    m, r = new_metrics()
    m.refresh(standings(engine_with(events), m.top_k), now=T0 / 1000 + 3)
    assert sorted(summed) == ["s00", "s10", "s20", "s30"]
    assert len(sample_map(r, "livepulse_top_stream_coins_per_minute")) == 4


def test_consumer_lag_series_follow_the_assignment() -> None:
    m, r = new_metrics()
    m.set_consumer_lag({0: 10, 1: 0, 2: 5, 3: 0})
    got = {
        p: r.get_sample_value("livepulse_consumer_lag_messages", {"partition": str(p)})
        for p in range(5)
    }
    assert got == {0: 10, 1: 0, 2: 5, 3: 0, 4: None}
    m.set_consumer_lag({2: 5, 3: 0})  # a rebalance took partitions 0 and 1 away
    got = {
        p: r.get_sample_value("livepulse_consumer_lag_messages", {"partition": str(p)})
        for p in range(4)
    }
    assert got == {0: None, 1: None, 2: 5, 3: 0}


def populated() -> tuple[Metrics, CollectorRegistry]:
    """Metrics with at least one sample in every family."""
    m, r = new_metrics()
    s = StreamScript("s1")
    engine = engine_with([s.start(T0), s.likes(T0 + 1, 5), s.gift(T0 + 2, 5, 1, False, True)])
    m.record_applied(
        Applied(events={"like": 1, "gift": 1}, likes=5, gifts=1, coins=5, windows=1), now=0.0
    )
    m.record_alert(alert(), 0.1)
    m.refresh(standings(engine, m.top_k), now=T0 / 1000 + 1)
    m.set_consumer_lag({0: 0})
    m.set_top_creators("2026-01-01", [("c-1", 5)])
    return m, r


def exposed(registry: CollectorRegistry) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{name as queried: (type, label names)} of every family in the registry."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        out[name] = (family.type, tuple(sorted(labels)))
    return out


def test_names_follow_prometheus_conventions_and_stream_ids_stay_bounded() -> None:
    _, r = populated()
    families = list(r.collect())
    assert len(families) == 25
    for family in families:
        assert family.name.startswith("livepulse_"), family.name
        assert not family.name.endswith("_total"), family.name  # the client adds it once
        assert not re.search(r"_(milliseconds|ms|minutes|hours)\b", family.name)
        for s in family.samples:
            assert not s.name.endswith("_created"), s.name
            assert not s.name.endswith("_total_total"), s.name
            if "stream_id" in s.labels:
                assert family.name.startswith("livepulse_top_stream_"), s
    text = generate_latest(r).decode()
    assert "_created" not in text
    m, r2 = new_metrics(top_k=5)
    engine = engine_with(
        [StreamScript(f"s{i}").likes(T0 + i, 1 + i % 15, dropped=i) for i in range(1_000)]
    )
    m.refresh(standings(engine, m.top_k), now=T0 / 1000)
    assert len(sample_map(r2, "livepulse_top_stream_likes")) == 5  # 1,000 streams, 5 series


def test_top_k_setting_is_validated() -> None:
    assert load_settings(env={}).top_k == 10
    assert load_settings(env={"LIVEPULSE_TOP_K": "25"}).top_k == 25
    for bad in ("0", "101", "x"):
        with pytest.raises(ConfigError, match="LIVEPULSE_TOP_K: expected an integer 1-100"):
            load_settings(env={"LIVEPULSE_TOP_K": bad})
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        Metrics(CollectorRegistry(), top_k=0)


def doc_section(title: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]  # no header


def test_the_metric_table_lists_exactly_what_the_registry_exposes() -> None:
    _, r = populated()
    documented: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, kind, labels, meaning in table_rows(doc_section("Metrics")):
        label_names = tuple(sorted(re.findall(r"`([a-z_]+)`", labels)))
        documented[name.strip("`")] = (kind, label_names)
        assert meaning, name
    assert documented == exposed(r)


def test_the_text_exposition_parses_back_to_the_same_finite_samples() -> None:
    _, r = populated()
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(r).decode())
        for s in family.samples
    }
    direct = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in r.collect()
        for s in family.samples
    }
    assert parsed == direct
    assert all(math.isfinite(v) for v in direct.values())


def test_transactions_and_lost_partitions_count_by_result_and_cause() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert registry.get_sample_value("livepulse_transactions_total", {"result": "failed"}) == 0
    assert registry.get_sample_value("livepulse_partitions_lost_total", {"cause": "fenced"}) == 0
    metrics.record_transactions(committed=3, failed=1)
    metrics.record_transactions(committed=2, failed=0)
    metrics.record_partition_lost(fenced=True)
    metrics.record_partition_lost(fenced=False)
    metrics.record_partition_lost(fenced=True)
    sample = registry.get_sample_value
    assert sample("livepulse_transactions_total", {"result": "committed"}) == 5
    assert sample("livepulse_transactions_total", {"result": "failed"}) == 1
    assert sample("livepulse_partitions_lost_total", {"cause": "fenced"}) == 2
    assert sample("livepulse_partitions_lost_total", {"cause": "failed"}) == 1


def test_the_metrics_module_only_records_and_imports_nothing_above_it() -> None:
    """What the gauges show is measured by the domain (standings) and the worker (lag);
    the metrics module imports neither the worker nor any command."""
    import ast

    tree = ast.parse((ROOT / "processor" / "metrics.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    inside = {name for name in imported if name.startswith("processor")}
    assert inside <= {"processor.contract", "processor.core.alerts", "processor.core.engine"} | {
        "processor.core.standings",
        "processor.core.tiers",
    }


def test_top_creators_of_the_day_are_a_ranked_family_replaced_whole() -> None:
    r = CollectorRegistry()
    m = Metrics(r, top_k=2)
    m.set_top_creators("2026-01-01", [("c-2", 1_200), ("c-1", 530)])
    assert creators(r) == {("1", "c-2", "2026-01-01"): 1_200, ("2", "c-1", "2026-01-01"): 530}
    m.set_top_creators(None, [])
    assert creators(r) == {}


def creators(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["rank"], s.labels["creator_id"], s.labels["day"]): s.value
        for family in registry.collect()
        if family.name == "livepulse_top_creator_coins_today"
        for s in family.samples
    }
