"""deploy/k8s/: every manifest against the Kubernetes API schemas, the PodMonitor against
the fields of prometheus-operator's CRD it uses, and the references between them.

The Kubernetes schemas come with the kubernetes-validate package (no cluster, no network).
It knows no custom resources, so the PodMonitor is checked against POD_MONITOR_SCHEMA
below: a strict subset of the PodMonitor CRD (monitoring.coreos.com/v1) that names the
fields a PodMonitor for livepulse may use, with the CRD's types and patterns, and uses
Kubernetes' own ObjectMeta and LabelSelector schemas for metadata and the selector.

The cross-checks are functions that list problems: each test runs one on the manifests
(no problem) and on a copy broken on purpose (the problem is found).
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from processor.settings import load_settings, settings_table
from processor.worker.cli import SHUTDOWN_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "rules" / "alerts.yml"
# Not applied by the kustomization, so that `kubectl apply -k` cannot overwrite the real
# Secret with placeholders; validated and cross-checked all the same.
EXAMPLE_SECRET = "secret.example.yaml"
# The oldest Kubernetes the manifests target (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is GA from 1.31) and the newest that kubernetes-validate ships.
K8S_VERSIONS = ("1.31", "1.37")

# Settings that name a file: in the pod, a key of a mounted Secret.
FILE_SETTINGS = {
    "LIVEPULSE_SASL_PASSWORD_FILE",
    "LIVEPULSE_SSL_CAFILE",
    "LIVEPULSE_SSL_CERTFILE",
    "LIVEPULSE_SSL_KEYFILE",
}

Bundle = dict[str, dict[str, Any]]  # kind -> the one manifest of that kind
# The worker pods' controller: a StatefulSet, whose pods keep their names across restarts,
# as static group membership needs (each pod's name is its group instance id).
WORKLOAD = "StatefulSet"
INSTANCE_ID = "LIVEPULSE_GROUP_INSTANCE_ID"


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


def manifest_files() -> list[str]:
    return sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def bundle() -> Bundle:
    """Every manifest in deploy/k8s (the example Secret included), by kind."""
    out: Bundle = {}
    for name in manifest_files():
        for doc in load_docs(K8S / name):
            assert doc["kind"] not in out, f"{name}: a second {doc['kind']}"
            out[doc["kind"]] = doc
    return out


def pod_spec(b: Bundle) -> dict[str, Any]:
    spec: dict[str, Any] = b[WORKLOAD]["spec"]["template"]["spec"]
    return spec


def worker(b: Bundle) -> dict[str, Any]:
    (container,) = pod_spec(b)["containers"]
    assert isinstance(container, dict)
    return container


def pod_labels(b: Bundle) -> dict[str, str]:
    labels: dict[str, str] = b[WORKLOAD]["spec"]["template"]["metadata"]["labels"]
    return labels


def first_pod_name(b: Bundle) -> str:
    """The name of the StatefulSet's pod 0: ``<StatefulSet name>-0``."""
    return f"{b[WORKLOAD]['metadata']['name']}-0"


def container_env(b: Bundle) -> dict[str, str]:
    """The environment the worker sees: the ConfigMaps it names, then its own env (the
    pod's name, from the downward API, as pod 0's)."""
    env: dict[str, str] = {}
    config_map = b["ConfigMap"]
    for source in worker(b).get("envFrom", []):
        if source.get("configMapRef", {}).get("name") == config_map["metadata"]["name"]:
            env.update(config_map["data"])
    for var in worker(b).get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            assert field == "metadata.name", f"{var['name']}: a plain value or the pod's name"
            env[var["name"]] = first_pod_name(b)
    return env


def declared_ports(b: Bundle) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in worker(b)["ports"]}


# --- the schemas ------------------------------------------------------------------------


def test_the_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    k = kustomization()
    assert (k["apiVersion"], k["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    assert sorted(k["resources"]) == [n for n in manifest_files() if n != EXAMPLE_SECRET]
    assert bundle()["Secret"] == load_docs(K8S / EXAMPLE_SECRET)[0]
    # its image override names the image the StatefulSet runs
    (image,) = k["images"]
    assert worker(bundle())["image"].split(":")[0] == image["name"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", manifest_files())
def test_every_manifest_is_valid_against_the_kubernetes_schemas(name: str, version: str) -> None:
    for doc in load_docs(K8S / name):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a custom resource: test_the_pod_monitor_is_valid_against_its_crd
        # strict: no property the schema does not know (a misspelt field fails)
        assert kubernetes_validate.validate(doc, version, strict=True) == version


BROKEN_MANIFESTS: list[tuple[str, Callable[[Bundle], None]]] = [
    (
        "misspelt probe",
        lambda b: worker(b).update(livenesProbe=worker(b).pop("livenessProbe")),
    ),
    ("replicas as a string", lambda b: b[WORKLOAD]["spec"].update(replicas="2")),
    (
        "downward API field misspelt",
        lambda b: env_var(b, INSTANCE_ID)["valueFrom"].update(fieldref={}),
    ),
    ("port as a string", lambda b: worker(b)["ports"][0].update(containerPort="6066")),
    ("a ConfigMap value that is a number", lambda b: b["ConfigMap"]["data"].update(X=1)),
    ("Service port without a number", lambda b: b["Service"]["spec"]["ports"][0].pop("port")),
]


@pytest.mark.parametrize(("what", "breaks"), BROKEN_MANIFESTS, ids=[w for w, _ in BROKEN_MANIFESTS])
def test_the_kubernetes_schemas_reject_a_broken_manifest(
    what: str, breaks: Callable[[Bundle], None]
) -> None:
    b = bundle()
    before = copy.deepcopy(b)
    breaks(b)
    (kind,) = [k for k in b if b[k] != before[k]]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(b[kind], K8S_VERSIONS[-1], strict=True)


K8S_DEFS = (
    "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1."
)
# The CRD's duration pattern (monitoring.coreos.com/v1 Duration).
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {"$ref": K8S_DEFS + "ObjectMeta"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {"$ref": K8S_DEFS + "LabelSelector"},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}


def pod_monitor_validator() -> jsonschema.Draft202012Validator:
    # kubernetes-validate's own copy of the Kubernetes definitions (ObjectMeta, LabelSelector)
    definitions = (
        importlib.resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{K8S_VERSIONS[-1]}.0-local-strict"
        / "_definitions.json"
    )
    resource = Resource.from_contents(json.loads(definitions.read_text()))
    return jsonschema.Draft202012Validator(POD_MONITOR_SCHEMA, registry=resource @ Registry())


def test_the_pod_monitor_is_valid_against_its_crd() -> None:
    validator = pod_monitor_validator()
    monitor = bundle()["PodMonitor"]
    assert [e.message for e in validator.iter_errors(monitor)] == []
    broken = copy.deepcopy(monitor)
    broken["metadata"]["labels"]["n"] = 1  # ObjectMeta: label values are strings
    broken["spec"]["selector"]["matchLabel"] = {}  # LabelSelector: misspelt
    broken["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    broken["spec"]["podMetricsEndpoints"][0]["targetport"] = "metrics"
    assert len(list(validator.iter_errors(broken))) == 4


# --- cross-references -------------------------------------------------------------------


def selector_problems(b: Bundle) -> list[str]:
    """Every selector in the bundle selects the StatefulSet's pods."""
    labels = pod_labels(b)
    selectors = {
        WORKLOAD: b[WORKLOAD]["spec"]["selector"],
        "Service": {"matchLabels": b["Service"]["spec"]["selector"]},
        "PodMonitor": b["PodMonitor"]["spec"]["selector"],
        "PodDisruptionBudget": b["PodDisruptionBudget"]["spec"]["selector"],
        **{
            f"topologySpreadConstraints[{i}]": c["labelSelector"]
            for i, c in enumerate(pod_spec(b).get("topologySpreadConstraints", []))
        },
    }
    problems = []
    for where, selector in selectors.items():
        if set(selector) != {"matchLabels"} or not selector["matchLabels"]:
            problems.append(f"{where}: expected a non-empty matchLabels only, got {selector}")
        elif not selector["matchLabels"].items() <= labels.items():
            problems.append(f"{where}: {selector['matchLabels']} does not select {labels}")
    return problems


def port_problems(b: Bundle) -> list[str]:
    """Probes, the Service, the PodMonitor and the worker's own setting agree on the port."""
    declared = declared_ports(b)
    problems = []
    if "metrics" not in declared:
        problems.append(f"no container port named 'metrics' in {declared}")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = worker(b).get(probe, {}).get("httpGet", {}).get("port")
        if port not in declared:
            problems.append(f"{probe}: port {port!r} is not a declared container port")
    for port in b["Service"]["spec"]["ports"]:
        if port["targetPort"] not in declared:
            problems.append(f"Service: targetPort {port['targetPort']!r} is not declared")
    for endpoint in b["PodMonitor"]["spec"]["podMetricsEndpoints"]:
        if endpoint["port"] not in declared:
            problems.append(f"PodMonitor: port {endpoint['port']!r} is not declared")
    env = container_env(b)
    served = env.get("LIVEPULSE_METRICS_PORT")
    if served is None or int(served) != declared.get("metrics"):
        problems.append(f"LIVEPULSE_METRICS_PORT={served}, the 'metrics' port is {declared}")
    if env.get("LIVEPULSE_METRICS_HOST") != "0.0.0.0":
        problems.append("LIVEPULSE_METRICS_HOST must be 0.0.0.0 for probes and Prometheus")
    return problems


def probe_problems(b: Bundle) -> list[str]:
    wanted = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    problems = []
    for probe, path in wanted.items():
        got = worker(b).get(probe, {}).get("httpGet", {}).get("path")
        if got != path:
            problems.append(f"{probe}: path {got!r}, expected {path}")
    for endpoint in b["PodMonitor"]["spec"]["podMetricsEndpoints"]:
        if endpoint.get("path") != "/metrics":
            problems.append(f"PodMonitor: path {endpoint.get('path')!r}, expected /metrics")
    return problems


def secret_problems(b: Bundle) -> list[str]:
    """Each file setting points at a key of the mounted Secret, and each key mounted is used."""
    env = container_env(b)
    mounts = {m["mountPath"]: m["name"] for m in worker(b)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(b)["volumes"]}
    secret = b["Secret"]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    problems = []
    if not any(name in env for name in FILE_SETTINGS):
        problems.append("no setting reads a credential file")
    used: set[tuple[str, str]] = set()
    for name in sorted(FILE_SETTINGS & set(env)):
        directory, _, file_name = env[name].rpartition("/")
        volume = volumes.get(mounts.get(directory, ""), {}).get("secret")
        if volume is None:
            problems.append(f"{name}={env[name]}: {directory} is not a mounted Secret")
            continue
        if volume["secretName"] != secret["metadata"]["name"]:
            problems.append(f"{name}: mounts Secret {volume['secretName']!r}, not the example's")
        items = {item["path"]: item["key"] for item in volume.get("items", [])}
        key = items.get(file_name) if items else file_name
        if key is None:
            problems.append(f"{name}: {file_name} is not a path of the mounted items {items}")
        elif key not in keys:
            problems.append(f"{name}: key {key!r} is not in the Secret ({sorted(keys)})")
        else:
            used.add((volume["secretName"], key))
    for volume in volumes.values():
        for item in volume.get("secret", {}).get("items", []):
            if (volume["secret"]["secretName"], item["key"]) not in used:
                problems.append(f"Secret key {item['key']!r} is mounted but no setting reads it")
    return problems


def settings_problems(b: Bundle) -> list[str]:
    """Every LIVEPULSE_* variable the worker gets is a setting, and the known ones load."""
    known = {env_name for env_name, _, _ in settings_table()}
    env = container_env(b)
    config_map = b["ConfigMap"]["metadata"]["name"]
    sources = [s.get("configMapRef", {}).get("name") for s in worker(b).get("envFrom", [])]
    problems = [] if sources == [config_map] else [f"envFrom {sources}: expected [{config_map}]"]
    problems += [
        f"{name}: not a livepulse setting"
        for name in sorted(env)
        if name.startswith("LIVEPULSE_") and name not in known
    ]
    problems += [
        f"{name}: a password belongs in the Secret, not the ConfigMap"
        for name in b["ConfigMap"]["data"]
        if "PASSWORD" in name and not name.endswith("_FILE")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        # the mounted secret files exist in the pod (secret_problems checks the mounts)
        mounted = {}
        for name in FILE_SETTINGS & set(env):
            stand_in = Path(tmp) / name
            stand_in.write_text("stand-in\n")
            mounted[name] = str(stand_in)
        try:
            load_settings(env={k: v for k, v in env.items() if k in known} | mounted)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def filesystem_problems(b: Bundle) -> list[str]:
    """A read-only root: the data directory and /tmp are emptyDir volumes."""
    env = container_env(b)
    mounts = {m["mountPath"]: m["name"] for m in worker(b)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(b)["volumes"]}
    problems = []
    if worker(b).get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
        problems.append("the root filesystem is not read-only")
    for path in (env.get("LIVEPULSE_DATA_DIR", "(unset)"), "/tmp"):
        if "emptyDir" not in volumes.get(mounts.get(path, ""), {}):
            problems.append(f"{path} is not an emptyDir mount")
    return problems


def membership_problems(b: Bundle) -> list[str]:
    """Static group membership: every pod's group instance id is its own name, under a
    controller that keeps the name when it replaces the pod and never runs two pods of
    one name; and the StatefulSet's governing Service is the headless one of the bundle."""
    problems = []
    workload = b[WORKLOAD]
    if workload["kind"] != "StatefulSet":
        problems.append(f"a {workload['kind']}: its pods get new names on every restart")
    if INSTANCE_ID in b["ConfigMap"]["data"]:
        problems.append(f"{INSTANCE_ID} in the ConfigMap: one id for every pod")
    declared = [v for v in worker(b).get("env", []) if v["name"] == INSTANCE_ID]
    source = declared[0].get("valueFrom", {}).get("fieldRef", {}) if declared else {}
    if source.get("fieldPath") != "metadata.name":
        problems.append(f"{INSTANCE_ID}: expected the pod's name (metadata.name), got {declared}")
    service = b["Service"]
    if workload["spec"].get("serviceName") != service["metadata"]["name"]:
        problems.append(
            f"serviceName {workload['spec'].get('serviceName')!r}: expected the headless "
            f"Service {service['metadata']['name']!r}"
        )
    if service["spec"].get("clusterIP") != "None":
        problems.append("the governing Service is not headless (clusterIP: None)")
    return problems


CROSS_CHECKS: dict[str, Callable[[Bundle], list[str]]] = {
    "selectors": selector_problems,
    "ports": port_problems,
    "probes": probe_problems,
    "secret": secret_problems,
    "settings": settings_problems,
    "filesystem": filesystem_problems,
    "membership": membership_problems,
}


def env_var(b: Bundle, name: str) -> dict[str, Any]:
    (var,) = [v for v in worker(b)["env"] if v["name"] == name]
    assert isinstance(var, dict)
    return var


def _set_env(b: Bundle, name: str, value: str) -> None:
    env_var(b, name)["value"] = value


def _instance_id_from(b: Bundle, field: str) -> None:
    env_var(b, INSTANCE_ID)["valueFrom"]["fieldRef"]["fieldPath"] = field


BREAKS: list[tuple[str, str, Callable[[Bundle], None]]] = [
    ("selectors", "pod label renamed", lambda b: pod_labels(b).pop("app.kubernetes.io/name")),
    (
        "selectors",
        "PodMonitor selects other pods",
        lambda b: b["PodMonitor"]["spec"]["selector"]["matchLabels"].update(app="other"),
    ),
    ("selectors", "Service selector emptied", lambda b: b["Service"]["spec"].update(selector={})),
    ("ports", "port renamed", lambda b: worker(b)["ports"][0].update(name="http")),
    ("ports", "worker listens elsewhere", lambda b: _set_env(b, "LIVEPULSE_METRICS_PORT", "8080")),
    (
        "ports",
        "metrics on loopback",
        lambda b: b["ConfigMap"]["data"].update(LIVEPULSE_METRICS_HOST="127.0.0.1"),
    ),
    (
        "probes",
        "readiness on /healthz",
        lambda b: worker(b)["readinessProbe"]["httpGet"].update(path="/healthz"),
    ),
    (
        "probes",
        "no startup probe",
        lambda b: worker(b).pop("startupProbe"),
    ),
    (
        "secret",
        "CA file not mounted",
        lambda b: _set_env(b, "LIVEPULSE_SSL_CAFILE", "/etc/livepulse/kafka/ca.pem"),
    ),
    ("secret", "key missing from the Secret", lambda b: b["Secret"]["stringData"].pop("ca.crt")),
    (
        "secret",
        "a mounted key nobody reads",
        lambda b: worker(b)["env"].pop(
            [v["name"] for v in worker(b)["env"]].index("LIVEPULSE_SASL_PASSWORD_FILE")
        ),
    ),
    (
        "settings",
        "misspelt setting",
        lambda b: b["ConfigMap"]["data"].update(LIVEPULSE_EVENT_TOPIC="live.events"),
    ),
    ("settings", "bad broker", lambda b: b["ConfigMap"]["data"].update(LIVEPULSE_BROKER="kafka")),
    (
        "settings",
        "unknown SASL mechanism",
        lambda b: b["ConfigMap"]["data"].update(LIVEPULSE_SASL_MECHANISM="GSSAPI"),
    ),
    (
        "settings",
        "password in the ConfigMap",
        lambda b: b["ConfigMap"]["data"].update(LIVEPULSE_SASL_PASSWORD="hunter2"),
    ),
    (
        "settings",
        "envFrom names another ConfigMap",
        lambda b: worker(b)["envFrom"][0]["configMapRef"].update(name="other"),
    ),
    ("filesystem", "/tmp not mounted", lambda b: worker(b)["volumeMounts"].pop(1)),
    (
        "filesystem",
        "writable root",
        lambda b: worker(b)["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    ("membership", "a Deployment", lambda b: b[WORKLOAD].update(kind="Deployment")),
    # a new uid with every pod: the restarted worker would be a new member
    (
        "membership",
        "instance id from the pod's uid",
        lambda b: _instance_id_from(b, "metadata.uid"),
    ),
    (
        "membership",
        "one instance id for every pod",
        lambda b: b["ConfigMap"]["data"].update({INSTANCE_ID: "livepulse"}),
    ),
    (
        "membership",
        "instance id a fixed value",
        lambda b: worker(b)["env"].__setitem__(
            [v["name"] for v in worker(b)["env"]].index(INSTANCE_ID),
            {"name": INSTANCE_ID, "value": "livepulse-worker-0"},
        ),
    ),
    (
        "membership",
        "serviceName names no Service of the bundle",
        lambda b: b[WORKLOAD]["spec"].update(serviceName="livepulse"),
    ),
    (
        "membership",
        "governing Service not headless",
        lambda b: b["Service"]["spec"].pop("clusterIP"),
    ),
    (
        "settings",
        "a pod name that is no group instance id",
        lambda b: b[WORKLOAD]["metadata"].update(name="livepulse worker"),
    ),
]


@pytest.mark.parametrize("check", sorted(CROSS_CHECKS))
def test_the_manifests_agree_with_each_other(check: str) -> None:
    assert CROSS_CHECKS[check](bundle()) == []


@pytest.mark.parametrize(
    ("check", "what", "breaks"), BREAKS, ids=[f"{c}: {w}" for c, w, _ in BREAKS]
)
def test_each_cross_check_catches_a_broken_manifest(
    check: str, what: str, breaks: Callable[[Bundle], None]
) -> None:
    b = bundle()
    breaks(b)
    assert CROSS_CHECKS[check](b) != [], what


def test_every_cross_check_is_shown_to_fail() -> None:
    assert {check for check, _, _ in BREAKS} == set(CROSS_CHECKS)


# --- the pod ----------------------------------------------------------------------------


def test_the_pod_runs_livepulse_worker_from_the_image() -> None:
    assert worker(bundle())["command"] + worker(bundle())["args"] == ["livepulse", "worker"]
    assert 'livepulse = "processor.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_the_grace_period_outlasts_the_clean_shutdown() -> None:
    grace = pod_spec(bundle())["terminationGracePeriodSeconds"]
    assert grace > SHUTDOWN_TIMEOUT_S, f"{grace} s <= the worker's {SHUTDOWN_TIMEOUT_S} s"


def test_the_startup_probe_covers_start_up_before_liveness_applies() -> None:
    startup = worker(bundle())["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_the_pod_runs_as_the_images_non_root_user() -> None:
    b = bundle()
    context = pod_spec(b)["securityContext"]
    assert context["runAsNonRoot"] is True
    (user,) = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.M)
    # numeric, or the kubelet cannot verify runAsNonRoot
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}"
    uid, _, gid = user.partition(":")
    assert (context["runAsUser"], context.get("runAsGroup")) == (int(uid), int(gid or uid))
    assert int(uid) != 0
    assert worker(b)["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_container_has_requests_and_limits() -> None:
    resources = worker(bundle())["resources"]
    for bound in ("requests", "limits"):
        assert set(resources[bound]) >= {"cpu", "memory"}, bound


def test_no_service_links_can_set_a_livepulse_variable() -> None:
    assert pod_spec(bundle())["enableServiceLinks"] is False


def test_the_pod_monitor_gives_the_job_the_alert_rules_expect() -> None:
    b = bundle()
    job = pod_labels(b)[b["PodMonitor"]["spec"]["jobLabel"]]
    assert f'up{{job="{job}"}}' in ALERT_RULES.read_text()


def test_the_example_secret_is_marked_as_a_placeholder() -> None:
    secret = bundle()["Secret"]
    assert "data" not in secret
    assert all("REPLACE-ME" in value for value in secret["stringData"].values())
    assert "EXAMPLE ONLY" in (K8S / EXAMPLE_SECRET).read_text()


def test_each_pod_joins_the_group_as_a_static_member_named_after_itself() -> None:
    b = bundle()
    workload = b[WORKLOAD]
    settings = load_settings(
        env={k: v for k, v in container_env(b).items() if k not in FILE_SETTINGS}
        | {"LIVEPULSE_SECURITY_PROTOCOL": "PLAINTEXT", "LIVEPULSE_SASL_USERNAME": ""}
    )
    assert settings.group_instance_id == "livepulse-worker-0"
    # every replica's name is a valid id of its own
    names = [f"{workload['metadata']['name']}-{i}" for i in range(workload["spec"]["replicas"])]
    assert len({load_settings(env={INSTANCE_ID: n}).group_instance_id for n in names}) == len(names)
    # longer than the worker's default, so a pod replaced in a rollout is back in time
    assert settings.session_timeout_seconds > load_settings(env={}).session_timeout_seconds
    # pods are replaced one at a time under their own names, and hold no volume claims
    # (the state is in Kafka), so a pod can come back on any node
    assert workload["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert workload["spec"]["podManagementPolicy"] == "Parallel"
    assert "volumeClaimTemplates" not in workload["spec"]
