"""deploy/prometheus checked by Prometheus' own tool: ``promtool check config``, ``check
rules``, ``test rules`` and ``check metrics``, and every dashboard query parsed as PromQL.

promtool is Debian's (package prometheus, installed by deploy/system-deps.sh, which
`make test` runs). No broker is needed; what can be checked without promtool (YAML shape,
rule names, the dashboard's consistency) is in tests/unit/test_deploy_files.py.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from processor.core.engine import Engine, EngineConfig
from processor.core.standings import standings
from processor.metrics import Metrics
from processor.worker.partitions import Applied
from tests.support.events import T0, StreamScript, typed
from tests.unit.test_deploy_files import PROM, RULES, panel_queries, substitute


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: run `make system-deps` (Debian package prometheus)"
    return subprocess.run(
        [exe, *args], input=stdin, text=True, capture_output=True, timeout=60, check=False
    )


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config: str) -> None:
    result = promtool("check", "config", str(PROM / config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES / "recording.yml"), str(RULES / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 14 rules found" in result.stdout
    assert "SUCCESS: 4 rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", str(RULES / "tests.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_metrics_accepts_the_exposition() -> None:
    registry = CollectorRegistry(auto_describe=True)
    metrics = Metrics(registry)
    s = StreamScript("s1")
    engine = Engine(EngineConfig())
    for event in (s.start(T0), s.likes(T0 + 1, 5), s.gift(T0 + 2, 30, 1, False, True)):
        engine.process(typed(event))
    metrics.record_applied(Applied(events={"like": 1}, likes=5, invalid={"late": 1}), now=0.0)
    metrics.refresh(standings(engine, metrics.top_k), now=T0 / 1000 + 3)
    metrics.set_consumer_lag({0: 2, 1: 0})
    result = promtool("check", "metrics", stdin=generate_latest(registry).decode())
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_every_panel_query_is_valid_promql() -> None:
    """promtool parses each query (variables substituted) as an alerting rule's expression."""
    exprs = [expr for _, panel_exprs in panel_queries() for expr in panel_exprs]
    rules = [{"alert": f"PanelQuery{i}", "expr": substitute(e)} for i, e in enumerate(exprs)]
    text = yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]})
    result = promtool("check", "rules", "/dev/stdin", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout, result.stdout
    assert "FAILED" not in result.stdout, result.stdout
