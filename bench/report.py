"""A bench run's results: livepulse against its targets, the tables and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LABELS = {  # the contenders, in the order they run
    "ceiling": "ceiling (aiokafka + orjson)",
    "faust-floor": "Faust floor (agent, no work)",
    "naive-faust": "naive Faust (windowed tables)",
    "quix": "Quix Streams (tumbling sum)",
    "kstreams": "Kafka Streams (tumbling sum)",
    "livepulse": "livepulse worker",
    "livepulse-eos": "livepulse, exactly_once",
    "livepulse-pure": "livepulse, pure Python core",
    "livepulse-2": "livepulse, two workers",
}
# livepulse's targets: name, op, limit ("-": none, reported), unit, where the value is in the
# results (contenders and ratios: the judged workload's, the run's first), what it is
TARGETS = [
    line.split(None, 5)
    for line in """
vs_kstreams >= 1.5 x ratios.livepulse_vs_kstreams events/s vs Kafka Streams
vs_quix >= 4 x ratios.livepulse_vs_quix events/s vs Quix Streams
cpu_s_per_million <= 12 s livepulse.cpu_s_per_million CPU s per million events at full load
two_workers_cpu <= 1.1 x ratios.two_workers_vs_one_cpu two workers' CPU per event vs one's
latency_p99_ms <= 250 ms latency.end_to_end.p99_ms alert latency p99, half the max rate
exactly_once_throughput >= 0.85 x ratios.eos_vs_alo exactly_once events/s vs at_least_once
latency_committed_p99_ms <= 1000 ms latency_exactly_once.end_to_end_committed.p99_ms eos, committed
state_bytes_per_stream <= 2048 B state.bytes_per_stream checkpoint per live stream
memory_bytes_per_stream <= 2048 B memory.with_top_users memory per stream (window, top users)
memory_top_users_at_capacity <= 28418 B memory.top_users_at_capacity top users at capacity
state_writes_bytes_per_s <= 102400 B/s state_writes.lz4_bytes_per_s state writes, 100 of 50,000 active
checkpoint_bytes_per_commit - - B livepulse.checkpoints.bytes_per_commit checkpoint per commit
restore_100k_s <= 5 s restore.processing_again_s 100,000 streams processing again
""".strip().splitlines()
]
# how each was measured: figures of the same step shown under the target
DETAILS = {
    "latency_p99_ms": "offered_rate achieved_rate end_to_end.count end_to_end.p50_ms "
    "end_to_end_committed.p50_ms end_to_end_committed.p99_ms emitted.p50_ms emitted.p99_ms "
    "worker_histogram.p50_ms worker_histogram.p99_ms ts_to_create_time.p99_ms "
    "checkpoints.records_per_commit checkpoints.bytes_per_s",
    "latency_committed_p99_ms": "end_to_end.p50_ms end_to_end.p99_ms "
    "end_to_end_committed.p50_ms checkpoints.commit_interval_s",
    "state_bytes_per_stream": "stream_bytes streams records bytes",
    "memory_bytes_per_stream": "bytes_per_stream top_users_bytes_per_stream snapshot_bytes_per_stream",
    "checkpoint_bytes_per_commit": "checkpoints.records_per_commit checkpoints.commits "
    "checkpoints.bytes_per_s checkpoints.records_per_s checkpoints.streams_held_at_end",
    "restore_100k_s": "restored_s restore_seconds before_restore_s restored_streams "
    "state_records_read state_topic.records state_topic.bytes peak_rss_mb membership",
}


def get(data: Any, path: str) -> Any:
    """``data[a][b]...`` for the path ``a.b...``; None where a step is missing."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def ratios(entry: dict[str, Any]) -> dict[str, float | None]:
    """Against the ceiling, livepulse against each peer, eos against alo, two workers vs one."""
    c = entry["contenders"]

    def div(a: str, b: str, field: str = "events_per_s") -> float | None:
        x, y = (None if get(c, f"{n}.error") else get(c, f"{n}.{field}") for n in (a, b))
        return round(x / y, 4) if x and y else None

    out = {f"{name}_vs_ceiling": div(name, "ceiling") for name in LABELS}
    out |= {f"livepulse_vs_{p}": div("livepulse", p) for p in ("naive-faust", "quix", "kstreams")}
    out["eos_vs_alo"] = div("livepulse-eos", "livepulse")
    out["eos_vs_alo_cpu"] = div("livepulse-eos", "livepulse", "cpu_s_per_million")
    # not comparable when one worker did the whole topic before the other joined
    if get(c, "livepulse-2.all_workers_joined_s") is not None:
        out["two_workers_vs_one"] = div("livepulse-2", "livepulse")
        out["two_workers_vs_one_cpu"] = div("livepulse-2", "livepulse", "cpu_s_per_million")
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """livepulse against each target: value, limit, met (not when unmeasured: why), how."""
    judged = results["workloads"][results["judged"]]
    view = results | judged["contenders"] | {"ratios": judged["ratios"]}
    memory = results.get("memory") or {}
    if memory.get("bytes_per_stream") is not None:
        memory["with_top_users"] = memory["bytes_per_stream"] + memory["top_users_bytes_per_stream"]
    rows = []
    for name, op, limit, unit, path, label in TARGETS:
        value, step = get(view, path), get(view, path.split(".")[0]) or {}
        met = (
            value is not None
            and limit != "-"
            and (value >= float(limit) if op == ">=" else value <= float(limit))
        )
        if name == "restore_100k_s":  # every stream back, not only the offsets committed
            met = met and step.get("restored_streams") == step.get("streams") == 100_000
        how = ", ".join(f"{f} {number(get(step, f))}" for f in DETAILS.get(name, "").split())
        row = {"target": name, "label": label, "value": value, "op": op, "unit": unit, "how": how}
        row |= {"limit": None, "met": None} if limit == "-" else {"limit": float(limit), "met": met}
        if value is None:
            row["not_measured"] = step.get("error") or step.get("skipped") or "not measured"
        rows.append(row)
    return rows


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    return "n/a" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def one_line(c: dict[str, Any]) -> str:
    """An outcome in a few words: a contender's figures, a failure or a skip."""
    if c.get("error") or c.get("skipped"):
        return f"FAILED: {c['error']}" if c.get("error") else f"skipped: {c['skipped']}"
    if "events_per_s" not in c:
        return ", ".join(f"{k} {number(v)}" for k, v in c.items() if not isinstance(v, dict))
    figures = f"{number(c['events_per_s'])} ev/s, {number(c['cpu_s_per_million'])} CPU s/M"
    return f"{figures}, {number(c['peak_rss_mb'])} MB peak {c.get('note', '')}".rstrip()


def table(results: dict[str, Any]) -> str:
    """Per workload the contenders and their ratios, the µs in process, the targets."""
    lines = []
    for kind, entry in results["workloads"].items():
        w, c, r = entry["workload"], entry["contenders"], entry["ratios"]
        size = f"{w['events']:,} events, {w['streams']:,} streams, {w['partitions']} partitions"
        lines.append(f"{kind}: {size}")
        for name in (n for n in LABELS if n in c):
            vs = r[name + "_vs_ceiling"]
            share = f" ({vs:.1%} of the ceiling)" if vs else ""
            lines.append(f"  {LABELS[name]:<30} {one_line(c[name]).splitlines()[0]}{share}")
        lines.append(
            "  " + ", ".join(f"{k} {v:.2f}" for k, v in r.items() if v and "ceil" not in k)
        )
        split = get(c, "livepulse-2.records_per_worker") or []
        if sum(split):  # keyed records: the busier worker bounds what two can do
            shares = " / ".join(f"{100 * n / sum(split):.0f}%" for n in split)
            lines.append(
                f"  two workers: records {shares}, partitions "
                f"{c['livepulse-2']['partitions_per_worker']}: at best {sum(split) / max(split):.2f}x"
            )
    for kind, m in (results.get("micro") or {}).items():
        us = f"apply {m.get('apply_us_per_event')}, checkpoint {m.get('checkpoint_us_per_event')}"
        lines.append(f"in process, {kind}, {m.get('core')} core: {m.get('error') or us} µs/event")
    lines.append("livepulse against its targets:")
    for row in results["targets"]:
        wanted = "" if row["limit"] is None else f"{row['op']} {number(row['limit'])}"
        verdict = {True: "met", False: "missed", None: ""}[row["met"]]
        why = row.get("not_measured", "").split("\n")[0]
        lines.append(
            f"  {row['label']:<46} {number(row['value']):>8} {row['unit']:<3} {wanted:>9}  "
            f"{verdict} {why}".rstrip()
        )
        if row["how"] and row["value"] is not None:
            lines.append(f"      {row['how']}")
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path) -> Path:
    """``<start>.json`` and ``latest.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / (results["started_at"].replace(":", "").replace("-", "") + ".json")
    for each in (path, out / "latest.json"):
        each.write_text(json.dumps(results, indent=2) + "\n")
    return path
