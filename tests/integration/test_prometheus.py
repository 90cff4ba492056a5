"""A real Prometheus scrapes a real worker fed by the simulator's events.

Prometheus is Debian's package (deploy/system-deps.sh), run in the foreground with
temporary storage, the project's recording and alerting rules, and a 1 s scrape interval.
Every dashboard panel query (template variables substituted) and every recording rule must
return a non-empty, finite result; the totals Prometheus sees must equal what the
independent reference model computes from the same events; and `promtool check metrics`
must accept a real scrape of the worker.

One hand-made stream spikes, in likes and in coins, under the default spike settings
(README, "Spikes"): the spike counters, their recording rule and the coins-per-minute top-K
are checked against it exactly.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from processor.simulator.generator import SimulationConfig, generate
from tests.integration.conftest import ROOT, Topics, WorkerProcess, free_port
from tests.integration.kafka import produce, wait_until_committed
from tests.support.events import StreamScript, plain
from tests.support.reference import Params, expected_outcome

RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "livepulse.json"
DOC = ROOT / "README.md"
JOB = "livepulse"  # the job name of deploy/prometheus/*.yml, which the alert rules use
PARTITIONS = 4  # conftest's topics
STREAMS = 24
TOP_K = 10
MINUTE_MS = 60_000  # the default tumbling window: the spike detector's minute
SPIKER = "spiker-1"
SPIKES = {"likes": 1, "coins": 1}  # what spiking_stream() makes the engine publish

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 45.0) -> T:
    """Poll ``probe`` until it returns something other than None (or False), or fail."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class Prometheus:
    """A Prometheus server process and its HTTP API."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path} {params}: HTTP {exc.code}: {exc.read()!r}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; returns the vector's samples."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of ``expr``, or None while it has no sample."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[Prometheus]:
    exe = shutil.which("prometheus")
    assert exe, "prometheus not found: run `make system-deps` (Debian package prometheus)"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [f"127.0.0.1:{worker.metrics_port}"]}],
                    }
                ],
            }
        )
    )
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(proc, f"http://127.0.0.1:{port}", log_path)
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"prometheus exited {proc.returncode}:\n{server.log()}"
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for("prometheus to be ready", ready, timeout_s=30)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"prometheus exited {proc.returncode}:\n{server.log()}"


def traffic(start_ms: int) -> tuple[list[dict[str, Any]], list[tuple[bytes | None, bytes, str]]]:
    """Simulated events (streams stay live) and invalid records with their dead-letter reason."""
    config = SimulationConfig(
        start_ms=start_ms, streams=STREAMS, rate=500.0, max_events=4_000, seed=7, end_streams=False
    )
    events = plain(generate(config))
    sample = events[100]
    invalid: list[tuple[bytes | None, bytes, str]] = []
    for i in range(6):
        invalid.append((b"bad", b"{not json " + str(i).encode(), "invalid_json"))
        bad = dict(sample) | {"event_id": f"bad-{i}", "type": "dance"}
        invalid.append((sample["stream_id"].encode(), orjson.dumps(bad), "contract_violation"))
    for i in range(3):
        invalid.append(
            (b"someone-else", orjson.dumps(sample | {"event_id": f"k{i}"}), "key_mismatch")
        )
        invalid.append((b"bad", b"[1, 2]", "not_an_object"))
    return events, invalid


def spiking_stream(now_ms: int) -> list[dict[str, Any]]:
    """A stream with 4 calm minutes, then one minute that spikes in likes and in coins.

    Default settings: a spike needs 180 s of history, its minute's value at least the floor
    (500 likes / 1,000 coins) and 2 x the baseline (per minute, over the history). B is a
    minute start 6-7 minutes ago, so the whole stream lies in the 10-minute tier window and
    in the past.
    - likes: 10 every 10 s from B+5 s to B+235 s (240 likes in 240 s: baseline 60/min);
      at B+245 s the room total jumps by 615 (600 in dropped events): 615 >= max(500, 2 x 60).
    - coins: a 10-coin gift every 30 s from B+15 s to B+225 s (80 coins: baseline 20/min);
      a 1,000-coin gift at B+250 s: 1,000 >= max(1,000, 2 x 20).
    No minute before B+240 s reaches a floor, so nothing fires early; 855 likes stay below
    every tier. A comment at B+320 s moves stream time on, so the spike minute's coins have
    left the stream's trailing minute by the time the gauges are read.
    """
    b = (now_ms - 400_000) // MINUTE_MS * MINUTE_MS
    s = StreamScript(SPIKER, creator_id="spiker-creator")
    calm = [s.likes(b + t, 10) for t in range(5_000, 236_000, 10_000)]
    calm += [s.gift(b + t, 10, 1, False, True) for t in range(15_000, 226_000, 30_000)]
    return [
        s.start(b),
        *sorted(calm, key=lambda e: int(e["ts"])),
        s.likes(b + 245_000, 15, dropped=600),
        s.gift(b + 250_000, 1_000, 1, False, True),
        s.comment(b + 320_000),
    ]


def interleave(
    events: list[dict[str, Any]], invalid: list[tuple[bytes | None, bytes, str]]
) -> list[tuple[bytes | None, bytes]]:
    """The events in order, with the invalid records spread evenly among them."""
    every = len(events) // (len(invalid) + 1)
    bad = [(key, value) for key, value, _ in invalid]
    out: list[tuple[bytes | None, bytes]] = []
    for i, event in enumerate(events):
        out.append((event["stream_id"].encode(), orjson.dumps(event)))
        if (i + 1) % every == 0 and bad:
            out.append(bad.pop(0))
    return out + bad


def window_top_k(events: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """Expected top-K gauges, computed from the events without the engine.

    Every stream starts with live_start (like total 0) and the run spans seconds of event
    time, well inside the 10-minute tier window: a stream's windowed likes are its highest
    like total, its coins those of gifts that count (not streakable, or repeat_end).
    """
    likes: Counter[str] = Counter()
    coins: Counter[str] = Counter()
    for e in events:
        if e["type"] == "like":
            likes[e["stream_id"]] = max(likes[e["stream_id"]], e["total"])
        elif e["type"] == "gift" and (not e["streakable"] or e["repeat_end"]):
            coins[e["stream_id"]] += e["coins"] * e["repeat_count"]

    def top(values: Counter[str]) -> dict[str, int]:
        ranked = sorted(((-v, s) for s, v in values.items() if v > 0))[:TOP_K]
        return {f"{rank}/{s}": -v for rank, (v, s) in enumerate(ranked, 1)}

    return top(likes), top(coins)


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def recording_rules() -> list[tuple[str, str]]:
    groups = yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
    return [(r["record"], r["expr"]) for g in groups for r in g["rules"]]


def documented_metrics() -> set[str]:
    section = DOC.read_text().split("## Metrics\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(livepulse_[a-z_]+)` \|", section, re.M))


def test_every_panel_query_and_recording_rule_has_data_from_a_real_worker(
    broker: str, topics: Topics, worker: WorkerProcess, prometheus: Prometheus
) -> None:
    # Baseline: Prometheus has scraped the worker with every partition assigned and the
    # counters still at 0, so rate() sees the increase that follows.
    wait_for(
        "a scrape of the worker with its partitions assigned",
        lambda: (
            prometheus.value(f'count(livepulse_consumer_lag_messages{{job="{JOB}"}})') == PARTITIONS
        ),
    )
    assert prometheus.value(f'sum(livepulse_events_total{{job="{JOB}"}})') == 0
    baseline = time.monotonic()

    now_ms = int(time.time() * 1000)
    simulated, invalid = traffic(start_ms=now_ms - 20_000)
    events = spiking_stream(now_ms) + simulated
    expected = expected_outcome(events, Params())
    assert len(expected.alerts) >= 1, "the traffic must cross the moderate tier (1,000 likes)"
    # the spiking stream publishes its spikes only (no tier, no end); the reference model
    # predicts them independently of the engine
    spiker = [a for a in expected.alerts if a["stream_id"] == SPIKER]
    assert Counter(a["metric"] for a in spiker if a["type"] == "spike") == SPIKES
    assert len(spiker) == sum(SPIKES.values())
    alerts_by_type = Counter(a["type"] for a in expected.alerts)
    top_likes, top_coins = window_top_k(events)
    # the simulated streams' events span 8 s ending 12 s ago: all in their trailing minute
    # when the gauges are read; the spiker's coins left its trailing minute (B+320 s)
    _, top_coins_per_minute = window_top_k(simulated)
    assert any(key.endswith(f"/{SPIKER}") for key in top_coins)
    with_likes = {e["stream_id"] for e in events if e["type"] == "like" and e["total"] > 0}
    assert len(with_likes) > TOP_K  # so the top-K really leaves streams out
    assert len(top_likes) == TOP_K and len(top_coins) >= 3

    records = interleave(events, invalid)
    asyncio.run(produce(broker, topics.events, records))
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    def q(expr: str) -> float | None:
        return prometheus.value(expr.replace("JOB", f'job="{JOB}"'))

    # Prometheus has scraped the final counters and the refreshed gauges
    wait_for(
        "the final state in Prometheus",
        lambda: (
            q("sum(livepulse_events_total{JOB})") == len(events)
            and q("sum(livepulse_active_streams{JOB})") == STREAMS + 1
            and q("count(livepulse_top_stream_likes{JOB})") == TOP_K
            and q("sum(livepulse_consumer_lag_messages{JOB})") == 0
        ),
    )
    assert q("sum(livepulse_likes_total{JOB})") == expected.likes
    assert q("sum(livepulse_gifts_total{JOB})") == expected.gifts
    assert q("sum(livepulse_coins_total{JOB})") == expected.coins
    assert q("sum(livepulse_creator_usd_total{JOB})") == pytest.approx(expected.coins * 0.005)
    for kind, n in alerts_by_type.items():
        assert q(f'livepulse_alerts_published_total{{JOB, type="{kind}"}}') == n, kind
    assert q('livepulse_alerts_published_total{JOB, type="goal_reached"}') == 0  # goals off
    n_alerts = sum(alerts_by_type.values())
    assert q("sum(livepulse_alerts_published_total{JOB})") == n_alerts
    assert q("sum(livepulse_alert_latency_seconds_count{JOB})") == n_alerts
    for metric, n in SPIKES.items():
        assert q(f'livepulse_spikes_total{{JOB, metric="{metric}"}}') == n, metric
        assert q(f'livepulse_goals_total{{JOB, metric="{metric}"}}') == 0, metric
    for kind, n in expected.events_by_type.items():
        assert q(f'livepulse_events_total{{JOB, type="{kind}"}}') == n, kind
    for reason, n in Counter(reason for *_, reason in invalid).items():
        assert q(f'livepulse_invalid_events_total{{JOB, reason="{reason}"}}') == n, reason
    transitions = Counter(
        (a["policy"], a["from_tier"], a["to_tier"])
        for a in expected.alerts
        if a["type"] == "tier_changed"
    )
    for (policy, a, b), n in transitions.items():
        labels = f'policy="{policy}", from_tier="{a}", to_tier="{b}"'
        assert q(f"livepulse_tier_transitions_total{{JOB, {labels}}}") == n, labels
    assert q("sum(livepulse_tier_transitions_total{JOB})") == sum(transitions.values())
    assert q("count(livepulse_consumer_lag_messages{JOB})") == PARTITIONS

    def top_k(name: str) -> dict[str, float]:
        return {
            f"{s['metric']['rank']}/{s['metric']['stream_id']}": float(s["value"][1])
            for s in prometheus.query(f'{name}{{job="{JOB}"}}')
        }

    # gauges are snapshots taken every 2 s: the one after the last event must arrive
    wait_for("the final top-K", lambda: top_k("livepulse_top_stream_likes") == top_likes, 15)
    assert top_k("livepulse_top_stream_coins") == top_coins
    assert top_k("livepulse_top_stream_coins_per_minute") == top_coins_per_minute
    lag = q("livepulse_stream_time_lag_seconds{JOB}")
    assert lag is not None and 0 < lag < 120
    # today's top creators: the creator-days agent's, from the parts of the last checkpoint
    wait_for(
        "today's top creators",
        lambda: (q("count(livepulse_top_creator_coins_today{JOB})") or 0) >= 1,
        15,
    )

    # Every panel query as Grafana sends it, and every recording rule's expression. The
    # rate window spans the run since the baseline scrape, as $__rate_interval would on a
    # dashboard showing the last minutes.
    since_baseline = time.monotonic() - baseline
    # the recording rules' fixed [1m] windows must still hold the baseline scrape
    assert since_baseline < 50, f"too slow: {since_baseline:.0f} s from baseline to queries"
    window = f"{math.ceil(since_baseline) + 5}s"
    queries = [
        (f"panel {title!r}", expr.replace("$__rate_interval", window).replace("$job", JOB))
        for title, expr in panel_queries()
    ] + [(f"rule {name}", expr) for name, expr in recording_rules()]
    assert len(queries) == 23 + 14
    empty_or_nan = []
    for what, expr in queries:
        result = prometheus.query(expr)
        values = [float(s["value"][1]) for s in result]
        if not values or not all(math.isfinite(v) for v in values):
            empty_or_nan.append((what, expr, result))
    assert empty_or_nan == []

    # the dashboard's job variable lists this job
    assert JOB in prometheus.api(
        "/api/v1/label/job/values", **{"match[]": "livepulse_events_total"}
    )

    # the rules loaded into Prometheus evaluate without error, and the recorded series exist
    groups = prometheus.api("/api/v1/rules")["groups"]
    assert sorted(g["name"] for g in groups) == ["livepulse.alerts", "livepulse.recording"]
    for group in groups:
        for rule in group["rules"]:
            assert (rule["name"], rule["health"], rule.get("lastError", "")) == (
                rule["name"],
                "ok",
                "",
            )
    for name, _ in recording_rules():
        wait_for(f"recorded series {name}", lambda n=name: prometheus.query(n) or None, 10)

    # The spike rule: one series per metric, positive, and exactly its expression evaluated
    # at the rule's own evaluation time. Only evaluations after the scrape that saw a
    # metric's spikes count (this point can be reached within the second after it); a
    # recorded sample's timestamp is read with a range selector. Retried: a scrape ingested
    # just after an evaluation, but timestamped before it, changes the raw query's window.
    rule = "job_metric:livepulse_spikes:rate5m"
    (expr,) = [e for n, e in recording_rules() if n == rule]
    counted_at: dict[str, float] = {}
    for series in prometheus.api(
        "/api/v1/query", query=f'livepulse_spikes_total{{job="{JOB}"}}[5m]'
    )["result"]:
        metric = series["metric"]["metric"]
        first = next(t for t, v in series["values"] if float(v) == SPIKES[metric])
        counted_at[metric] = float(first)
    assert sorted(counted_at) == sorted(SPIKES)

    def rule_matches_its_expression() -> bool:
        data = prometheus.api("/api/v1/query", query=f'{rule}{{job="{JOB}"}}[5s]')
        assert data["resultType"] == "matrix", data
        recorded = data["result"]
        assert sorted(s["metric"]["metric"] for s in recorded) == sorted(SPIKES), recorded
        for series in recorded:
            metric = series["metric"]["metric"]
            assert series["metric"] == {"__name__": rule, "job": JOB, "metric": metric}
            at, value = series["values"][-1]
            if float(at) <= counted_at[metric]:
                return False  # not evaluated since the spikes were scraped
            assert float(value) > 0, series
            raw = prometheus.api("/api/v1/query", query=expr, time=str(at))["result"]
            mine = [r["value"] for r in raw if r["metric"] == {"job": JOB, "metric": metric}]
            if mine != [[at, value]]:
                return False
        return True

    wait_for(f"{rule} to equal its expression", rule_matches_its_expression, 15)

    # promtool check metrics on a real scrape; the doc's metric table is what /metrics serves
    with urllib.request.urlopen(worker.metrics_url, timeout=10) as response:
        scrape = response.read().decode()
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape, text=True, capture_output=True, timeout=30
    )
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    served = {
        f.name + "_total" if f.type == "counter" else f.name
        for f in text_string_to_metric_families(scrape)
    }
    assert served == documented_metrics()
