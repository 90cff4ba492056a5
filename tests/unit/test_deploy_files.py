"""deploy/: Prometheus config and rules, the Grafana dashboard and provisioning, the compose
file (against the Compose Specification's schema) and the Dockerfile.

Pure Python: no external binary. promtool's own checks of the same files are in
tests/integration/test_deploy_promtool.py.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from processor.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
RULES = PROM / "rules"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "livepulse.json"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOC = ROOT / "README.md"
DATASOURCE_UID = "livepulse-prometheus"
# Grafana's own variables; the dashboard's are in its templating list
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}
# a series name in PromQL, not the middle of a recorded name (job:livepulse_events:rate1m)
SERIES = re.compile(r"(?<![\w:])livepulse_\w+")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


# --- Prometheus -------------------------------------------------------------------------


def rules_of(name: str) -> list[dict[str, Any]]:
    return [r for g in load_yaml(RULES / name)["groups"] for r in g["rules"]]


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_each_prometheus_config_names_the_two_rule_files_that_exist(config: str) -> None:
    rule_files = load_yaml(PROM / config)["rule_files"]
    assert rule_files == ["rules/recording.yml", "rules/alerts.yml"]
    for rule_file in rule_files:
        assert (PROM / rule_file).is_file(), rule_file


def test_the_rule_files_hold_14_recordings_and_4_alerts_in_the_expected_shape() -> None:
    recorded = rules_of("recording.yml")
    assert len(recorded) == 14
    names = [r["record"] for r in recorded]
    assert len(set(names)) == len(names)
    for rule in recorded:
        assert set(rule) == {"record", "expr"}, rule
        # Prometheus' level:metric:operations naming convention
        assert re.fullmatch(r"[a-z_]+:livepulse_[a-z_]+:[a-z0-9_]+", rule["record"]), rule
    alerts = rules_of("alerts.yml")
    assert len(alerts) == 4
    for rule in alerts:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def exposed_series() -> set[str]:
    """Every series name the metrics module can expose."""
    registry = CollectorRegistry(auto_describe=True)
    Metrics(registry)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_every_series_the_rules_and_the_dashboard_query_is_one_the_worker_exposes() -> None:
    queries = [r["expr"] for name in ("recording.yml", "alerts.yml") for r in rules_of(name)]
    queries += [expr for _, exprs in panel_queries() for expr in exprs]
    used = {name for query in queries for name in SERIES.findall(query)}
    assert "livepulse_events_total" in used  # the pattern finds what it should
    assert used - exposed_series() == set()


def test_every_alert_has_a_firing_and_a_silent_rule_test() -> None:
    alerts = [r["alert"] for g in load_yaml(RULES / "alerts.yml")["groups"] for r in g["rules"]]
    assert alerts == [
        "LivepulseWorkerDown",
        "LivepulseConsumerLagGrowing",
        "LivepulseDeadLetterRateHigh",
        "LivepulseNoEvents",
    ]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(RULES / "tests.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert fires == silent == set(alerts)
    assert load_yaml(RULES / "tests.yml")["rule_files"] == ["recording.yml", "alerts.yml"]


def test_the_local_and_compose_configs_differ_only_in_the_target() -> None:
    local, docker = load_yaml(PROM / "prometheus.yml"), load_yaml(PROM / "prometheus.compose.yml")
    assert local["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:6066"]}]
    assert docker["scrape_configs"][0]["static_configs"] == [{"targets": ["worker:6066"]}]
    for config in (local, docker):
        config["scrape_configs"][0]["static_configs"] = []
    assert local == docker
    assert local["global"]["scrape_interval"] == "5s"
    assert local["scrape_configs"][0]["job_name"] == "livepulse"
    assert local["scrape_configs"][0]["metrics_path"] == "/metrics"


# --- Grafana ----------------------------------------------------------------------------


def panel_queries() -> list[tuple[str, list[str]]]:
    return [(p["title"], [t["expr"] for t in p["targets"]]) for p in dashboard()["panels"]]


def substitute(expr: str, job: str = "livepulse", window: str = "1m") -> str:
    """A panel query as Grafana would send it, for one job and rate window."""
    return expr.replace("$__rate_interval", window).replace("$job", job)


def test_dashboard_structure() -> None:
    d = dashboard()
    assert (d["uid"], d["title"]) == ("livepulse", "livepulse")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert set(variables) == {"datasource", "job"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    assert variables["job"]["query"]["query"] == "label_values(livepulse_events_total, job)"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    assert variables["job"]["datasource"] == ds

    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) == 20
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["datasource"] == ds, p["title"]
        assert p["description"], p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["targets"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == ds, p["title"]
            used = set(re.findall(r"\$\{?(\w+)", t["expr"]))
            assert used <= set(variables) | GRAFANA_BUILTINS, (p["title"], used)
            assert 'job=~"$job"' in t["expr"], p["title"]  # every query follows the job picker


def test_the_dashboard_queries_every_series_an_operator_needs() -> None:
    queries = " ".join(expr for _, exprs in panel_queries() for expr in exprs)
    for needed in (
        "livepulse_events_total",
        "livepulse_likes_total",
        "livepulse_gifts_total",
        "livepulse_coins_total",
        "livepulse_streams{",
        "livepulse_tier_transitions_total",
        "livepulse_alert_latency_seconds_bucket",
        "livepulse_consumer_lag_messages",
        "livepulse_stream_time_lag_seconds",
        "livepulse_invalid_events_total",
        "livepulse_top_stream_likes",
        "livepulse_top_stream_coins",
        "livepulse_creator_usd_total",
        "livepulse_spikes_total",
        "livepulse_top_stream_coins_per_minute",
        "livepulse_top_creator_coins_today",
    ):
        assert needed in queries, needed
    tables = [p for p in dashboard()["panels"] if p["type"] == "table"]
    assert [t["targets"][0]["format"] for t in tables] == ["table"] * 4
    assert all(t["targets"][0]["instant"] for t in tables)


def test_spike_and_coins_per_minute_panels_and_their_rule() -> None:
    """Spikes by metric, and the coins-per-minute top-K table ranked like the other two."""
    panels = {p["title"]: p for p in dashboard()["panels"]}
    spikes = panels["Spikes by metric"]
    assert spikes["type"] == "timeseries"
    assert [t["expr"] for t in spikes["targets"]] == [
        'sum by (metric) (rate(livepulse_spikes_total{job=~"$job"}[$__rate_interval])) * 60'
    ]
    assert "{{metric}}" in spikes["targets"][0]["legendFormat"]
    table = panels["Top streams by coins per minute"]
    (target,) = table["targets"]
    assert target["expr"] == (
        'topk(10, max by (stream_id) (livepulse_top_stream_coins_per_minute{job=~"$job"}))'
    )
    renamed = table["transformations"][0]["options"]["renameByName"]
    assert renamed == {"stream_id": "stream", "Value": "coins in last minute"}
    assert table["transformations"][1]["options"]["sort"] == [
        {"field": "coins in last minute", "desc": True}
    ]
    # the two panels share a row, above the creators' row, the dashboard's last
    creators = panels["Top creators by coins today"]
    assert spikes["gridPos"]["y"] == table["gridPos"]["y"] < creators["gridPos"]["y"]
    assert creators["gridPos"]["y"] == max(p["gridPos"]["y"] for p in dashboard()["panels"])
    assert creators["targets"][0]["expr"] == (
        'topk(10, max by (creator_id, day) (livepulse_top_creator_coins_today{job=~"$job"}))'
    )
    rules = {
        r["record"]: r["expr"]
        for g in load_yaml(RULES / "recording.yml")["groups"]
        for r in g["rules"]
    }
    assert rules["job_metric:livepulse_spikes:rate5m"] == (
        "sum by (job, metric) (rate(livepulse_spikes_total[5m]))"
    )
    tested = [
        check["expr"]
        for case in load_yaml(RULES / "tests.yml")["tests"]
        for check in case.get("promql_expr_test", [])
    ]
    assert "job_metric:livepulse_spikes:rate5m" in tested


def test_grafana_provisioning_matches_the_dashboard_and_compose() -> None:
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert (datasource["uid"], datasource["type"]) == (DATASOURCE_UID, "prometheus")
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    mounts = dict(bind_mounts(compose()["services"]["grafana"]))
    assert mounts[provider["options"]["path"]] == GRAFANA / "dashboards"
    home = compose()["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == provider["options"]["path"] + "/livepulse.json"


# --- docs -------------------------------------------------------------------------------


def doc_table(title: str) -> list[list[str]]:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows[2:]]


def test_the_panel_table_matches_the_dashboard() -> None:
    documented = [
        (title, [q.strip("`") for q in query.split("<br>")])
        for title, _, query in doc_table("Dashboard panels")
    ]
    assert documented == panel_queries()


def test_the_rule_tables_list_exactly_the_rules() -> None:
    recorded = [
        r["record"] for g in load_yaml(RULES / "recording.yml")["groups"] for r in g["rules"]
    ]
    alerts = [r["alert"] for g in load_yaml(RULES / "alerts.yml")["groups"] for r in g["rules"]]
    assert [row[0].strip("`") for row in doc_table("Recording rules")] == recorded
    assert [row[0].strip("`") for row in doc_table("Prometheus alerts")] == alerts


# --- Docker Compose and the Dockerfile --------------------------------------------------


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, Path]]:
    """(container path, host path) of a service's bind mounts (host paths start with . or /)."""
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out.append((target, (COMPOSE.parent / source).resolve()))
    return out


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "compose-spec.schema.json").read_text())
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    # and the validator does reject a broken file
    broken = compose()
    broken["services"]["worker"]["ports"] = [{"no": "such key"}]
    broken["services"]["kafka"]["healthcheck"]["retries"] = "many"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_compose_services_are_wired_together() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"kafka", "topics", "worker", "simulator", "prometheus", "grafana"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for key, value in service.get("environment", {}).items():
            assert isinstance(value, str), f"{name}: {key} must be a string"
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), f"{name}: {port}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in c["volumes"], f"{name}: undeclared volume {source}"

    # the images livepulse runs
    assert services["worker"]["image"] == services["simulator"]["image"] == "livepulse:local"
    assert services["worker"]["command"] == ["worker"]
    assert services["simulator"]["command"][0] == "simulate"
    # the worker and the simulator reach the broker on the kafka service's internal listener
    listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("worker", "simulator"):
        assert services[name]["environment"]["LIVEPULSE_BROKER"] == "kafka:19092"
    assert "INTERNAL://kafka:19092" in listeners.split(",")
    # Prometheus scrapes the worker where it serves metrics
    worker_env = services["worker"]["environment"]
    assert (worker_env["LIVEPULSE_METRICS_HOST"], worker_env["LIVEPULSE_METRICS_PORT"]) == (
        "0.0.0.0",
        "6066",
    )
    topics_script = services["topics"]["command"][0]
    for topic in ("live.events", "live.alerts", "live.events.dlq"):
        assert topic in topics_script


def test_every_file_the_services_point_at_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for target, host in bind_mounts(service):
            assert host.exists(), f"{name}: {host} (mounted at {target}) does not exist"
    build = services["worker"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    # Prometheus reads its config, and the rules the config names, through its mount
    prom = services["prometheus"]
    mounts = dict(bind_mounts(prom))
    (config_arg,) = [a for a in prom["command"] if a.startswith("--config.file=")]
    config_in_container = config_arg.split("=", 1)[1]
    mount, host_dir = next((t, h) for t, h in mounts.items() if config_in_container.startswith(t))
    host_config = host_dir / config_in_container[len(mount) :].lstrip("/")
    assert host_config == (PROM / "prometheus.compose.yml").resolve()
    for rule_file in load_yaml(host_config)["rule_files"]:
        assert (host_config.parent / rule_file).is_file(), rule_file
    # Grafana's provisioning folders hold the files
    for target, host in bind_mounts(services["grafana"]):
        if target.startswith("/etc/grafana/provisioning/"):
            assert list(host.glob("*.yml")), host


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_builds_the_livepulse_entrypoint_from_files_that_exist() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copies = [shlex.split(arg) for op, arg in instructions if op == "COPY"]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
    entrypoint = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoint == [["livepulse"]]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'livepulse = "processor.cli:main"' in pyproject
    assert [json.loads(arg) for op, arg in instructions if op == "CMD"] == [["worker"]]
    assert any(op == "RUN" and "pip install" in arg for op, arg in instructions)


def dockerfile_healthcheck() -> tuple[dict[str, str], str]:
    """The HEALTHCHECK's options and its command."""
    (arg,) = [arg for op, arg in dockerfile_instructions() if op == "HEALTHCHECK"]
    options, sep, command = arg.partition(" CMD ")
    assert sep, f"HEALTHCHECK {arg}: no CMD"
    return dict(o.removeprefix("--").split("=", 1) for o in options.split()), command.strip()


def test_dockerfile_healthcheck_asks_healthz_on_the_metrics_port() -> None:
    options, command = dockerfile_healthcheck()
    assert set(options) >= {"interval", "timeout", "start-period", "retries"}
    assert not command.startswith("["), "shell form: the command reads the environment"
    # python:3.11-slim has neither curl nor wget
    assert not re.search(r"\b(curl|wget)\b", command)
    assert "/healthz" in command and "LIVEPULSE_METRICS_PORT" in command
    # the worker's default port when the variable is unset
    assert "'6066'" in command


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1), (None, 1)])
def test_the_healthcheck_passes_only_on_a_2xx_from_healthz(
    status: int | None, exit_code: int
) -> None:
    """The HEALTHCHECK command itself, run by sh as Docker runs it, against a stand-in
    server: 200 passes; 503, and nothing listening, fail with 1 (Docker's "unhealthy")."""
    _, command = dockerfile_healthcheck()
    server = None
    if status is None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    else:
        handler = type("Handler", (_Healthz,), {"status": status})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "LIVEPULSE_METRICS_PORT": str(port),
        # a proxy that does not exist: the check must not go through it
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    try:
        result = subprocess.run(
            ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert result.returncode == exit_code, result.stderr


def test_compose_health_is_the_images_healthz_check_for_the_worker_only() -> None:
    services = compose()["services"]
    worker = services["worker"].get("healthcheck")
    assert worker is None or "/healthz" in str(worker["test"])
    # the simulator runs the same image but serves no /healthz
    assert services["simulator"]["healthcheck"] == {"disable": True}
