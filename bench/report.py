"""Results of one bench run: the JSON files, the PNG chart and the printed table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ORDER = (
    "ceiling",
    "faust-floor",
    "naive-faust",
    "quix",
    "kstreams",
    "livepulse",
    "livepulse-eos",
    "livepulse-pure",
    "livepulse-2",
)
LABELS = {
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
# livepulse's targets. Events/s and CPU are judged on the judged workload (heavy, unless
# the run had only the simulator's); the rest do not depend on the bench topic.
TARGETS = {
    "vs_kstreams": 1.5,
    "vs_quix": 4.0,
    "cpu_s_per_million": 12.0,  # the worker at full load
    "two_workers_cpu": 1.10,  # two workers' CPU per event against one's
    "latency_p99_ms": 250.0,
    # exactly_once would be the default if it cost at most 15% of at_least_once's events/s
    # and kept a read_committed subscriber's alert latency within 1 s at p99
    "exactly_once_throughput": 0.85,
    "latency_committed_p99_ms": 1000.0,
    "state_bytes_per_stream": 2048.0,
    # full tier window, one liker and one gifter a minute
    "memory_bytes_per_stream": 2048.0,
    # top likers and gifters at capacity: a quarter of the 113,672 B measured before
    "memory_top_users_at_capacity": 28_418.0,
    # 100 of 50,000 streams get events, 1 s commits, as the worker's lz4 producer sends it
    "state_writes_bytes_per_s": 100 * 1024.0,
    "checkpoint_bytes_per_commit": None,  # no number: it must follow what changed
    "restore_100k_s": 5.0,
}


def _rate(results: dict[str, Any], name: str) -> float | None:
    entry = results["contenders"].get(name)
    if not entry or not entry.get("events_per_s"):
        return None
    rate: float = entry["events_per_s"]
    return rate


def _cpu(results: dict[str, Any], name: str) -> float | None:
    entry = results["contenders"].get(name)
    if not entry or entry.get("error") or not entry.get("cpu_s_per_million"):
        return None
    cpu: float = entry["cpu_s_per_million"]
    return cpu


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """On one workload (``results["contenders"]``): livepulse against each reference, every
    contender against the ceiling, two workers against one (events/s and CPU seconds per
    million events)."""
    ceiling = _rate(results, "ceiling")
    out: dict[str, float | None] = {}
    for name in ORDER:
        out[f"{name}_vs_ceiling"] = _div(_rate(results, name), ceiling)
    lp = _rate(results, "livepulse")
    for ref in ("naive-faust", "quix", "kstreams"):
        out[f"livepulse_vs_{ref.replace('-', '_')}"] = _div(lp, _rate(results, ref))
    two = results["contenders"].get("livepulse-2") or {}
    # Not comparable when the topic was done before both workers were in the group.
    shared = two.get("all_workers_joined_s", 0) is not None
    out["exactly_once_vs_at_least_once_events_per_s"] = _div(_rate(results, "livepulse-eos"), lp)
    out["exactly_once_vs_at_least_once_cpu_s_per_million"] = _div(
        _cpu(results, "livepulse-eos"), _cpu(results, "livepulse")
    )
    out["two_workers_vs_one_events_per_s"] = (
        _div(_rate(results, "livepulse-2"), lp) if shared else None
    )
    out["two_workers_vs_one_cpu_s_per_million"] = (
        _div(_cpu(results, "livepulse-2"), _cpu(results, "livepulse")) if shared else None
    )
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _why_missing(results: dict[str, Any], *names: str) -> str:
    """Why a target has no value: the first contender among ``names`` not measured."""
    for name in names:
        c = results["contenders"].get(name)
        if c is None:
            return f"{name} not run"
        for key in ("error", "skipped"):
            if c.get(key):
                return f"{name} {key.replace('error', 'failed')}: {_first_line(c[key])}"
        if not c.get("events_per_s"):
            return f"{name} measured nothing"
    return "not measured"


def normalise(results: dict[str, Any]) -> dict[str, Any]:
    """A results file from before the heavy workload: its one workload, the simulator's."""
    if "workloads" not in results:
        results["workloads"] = {
            "simulator": {k: results[k] for k in ("workload", "contenders") if k in results}
        }
        results["judged"] = "simulator"
    for entry in results["workloads"].values():
        entry["ratios"] = ratios(entry)
    return results


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """livepulse against each target of TARGETS: its value, the limit and met or missed.

    A target whose value could not be measured (contender not run, failed) is missed.
    """
    kind = results["judged"]
    judged = results["workloads"][kind]
    r = judged.get("ratios") or ratios(judged)
    lp = judged["contenders"].get("livepulse") or {}
    lat = results.get("latency") or {}
    e2e = lat.get("end_to_end") or {}
    state = results.get("state") or {}
    rows: list[dict[str, Any]] = []

    def add(
        key: str,
        label: str,
        value: float | None,
        op: str,
        unit: str,
        why: str,
        met: bool | None = None,
    ) -> None:
        limit = TARGETS[key]
        if limit is None:  # reported, judged by its detail line
            met = None
        elif met is None or met:
            met = value is not None and (value >= limit if op == ">=" else value <= limit)
        row: dict[str, Any] = {
            "target": key,
            "label": label,
            "value": value,
            "op": op,
            "limit": limit,
            "unit": unit,
            "met": met,
        }
        if value is None:
            row["not_measured"] = why
        rows.append(row)

    add(
        "vs_kstreams",
        f"events/s vs Kafka Streams ({kind})",
        r.get("livepulse_vs_kstreams"),
        ">=",
        "x",
        _why_missing(judged, "livepulse", "kstreams"),
    )
    add(
        "vs_quix",
        f"events/s vs Quix Streams ({kind})",
        r.get("livepulse_vs_quix"),
        ">=",
        "x",
        _why_missing(judged, "livepulse", "quix"),
    )
    add(
        "cpu_s_per_million",
        f"CPU s per million events ({kind})",
        _cpu(judged, "livepulse") if lp else None,
        "<=",
        "s",
        _why_missing(judged, "livepulse"),
    )
    add(
        "two_workers_cpu",
        f"two workers' CPU/event vs one ({kind})",
        r.get("two_workers_vs_one_cpu_s_per_million"),
        "<=",
        "x",
        _why_missing(judged, "livepulse-2", "livepulse"),
    )
    add(
        "latency_p99_ms",
        "alert latency p99, half max rate",
        e2e.get("p99_ms"),
        "<=",
        "ms",
        _first_line(lat.get("error") or lat.get("skipped") or "no alert after the warm-up"),
    )
    add(
        "exactly_once_throughput",
        f"exactly_once events/s vs at_least_once ({kind})",
        r.get("exactly_once_vs_at_least_once_events_per_s"),
        ">=",
        "x",
        _why_missing(judged, "livepulse-eos", "livepulse"),
    )
    eos = results.get("latency_exactly_once") or {}
    add(
        "latency_committed_p99_ms",
        "exactly_once alert latency p99, read_committed",
        (eos.get("end_to_end_committed") or {}).get("p99_ms"),
        "<=",
        "ms",
        _first_line(eos.get("error") or eos.get("skipped") or "not measured"),
    )
    add(
        "state_bytes_per_stream",
        "state per active stream",
        state.get("bytes_per_stream"),
        "<=",
        "B",
        state.get("error")
        or (_why_missing(judged, "livepulse") if not lp.get("events_per_s") else "no snapshot"),
    )
    memory = results.get("memory") or {}
    why = _first_line(memory.get("error") or memory.get("skipped") or "not measured")
    window, top = memory.get("bytes_per_stream"), memory.get("top_users_bytes_per_stream")
    add(
        "memory_bytes_per_stream",
        "memory per stream, window + top users",
        None if window is None else window + (top or 0),
        "<=",
        "B",
        why,
    )
    add(
        "memory_top_users_at_capacity",
        "top users per stream at capacity",
        memory.get("top_users_at_capacity_bytes_per_stream"),
        "<=",
        "B",
        why,
    )
    writes = results.get("state_writes") or {}
    add(
        "state_writes_bytes_per_s",
        "state writes, 100 of 50,000 streams active",
        writes.get("lz4_bytes_per_s"),
        "<=",
        "B/s",
        _first_line(writes.get("error") or "not measured"),
    )
    cp = lp.get("checkpoints") or {}
    add(
        "checkpoint_bytes_per_commit",
        "checkpoint bytes per commit",
        cp.get("bytes_per_commit"),
        "",
        "B",
        _first_line(cp.get("error") or "")
        or (_why_missing(judged, "livepulse") if not lp.get("events_per_s") else "no checkpoint"),
    )
    rs = results.get("restore") or {}
    add(
        "restore_100k_s",
        f"{rs.get('streams', 100_000):,} streams restored, processing",
        rs.get("processing_again_s"),
        "<=",
        "s",
        _first_line(rs.get("error") or rs.get("skipped") or "not measured"),
        # every stream must be back, not only the offsets committed
        met=rs.get("restored_streams") == rs.get("streams") and rs.get("streams") == 100_000,
    )
    return rows


def _show(value: float, unit: str) -> str:
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:,.1f} s"
    return f"{value:,.0f} {unit}"


def _limit(row: dict[str, Any]) -> str:
    limit, unit = row["limit"], row["unit"]
    if limit is None:
        return "no target"
    shown = f"{100 * limit:g}%" if unit == "%" else f"{limit:g}x" if unit == "x" else None
    return f"{row['op']} {shown or f'{limit:,.0f} {unit}'}"


def table(results: dict[str, Any]) -> str:
    """The printed summary: per workload, one row per contender and two workers against
    one; bench.micro's in-process figures; livepulse against its targets (met or missed)."""
    lines: list[str] = []
    for kind, entry in results["workloads"].items():
        w = entry.get("workload") or {}
        lines.append(
            f"{kind} workload: {w.get('events', 0):,} events, {w.get('streams', 0):,} streams, "
            f"{w.get('partitions', 0)} partitions"
            + (" (the targets are judged on it)" if kind == results["judged"] else "")
        )
        lines += [*_contenders(entry), "", *_two_workers(entry), ""]
    for kind, m in (results.get("micro") or {}).items():
        if m.get("error"):
            lines.append(f"in-process ({kind}): FAILED: {_first_line(m['error'])}")
            continue
        lines.append(
            f"in-process ({kind}, `{m['command']}`): apply {m['apply_us_per_event']} µs/event, "
            f"checkpoint {m['checkpoint_us_per_event']} µs/event, total "
            f"{m['total_us_per_event']} µs/event over {m['events']:,} events, "
            f"{m['streams']:,} streams"
        )
    if results.get("micro"):
        lines.append("")
    lines.append("livepulse against its targets:")
    lines.append(f"  {'target':<42} {'measured':>10}  {'wanted':<11} verdict")
    for row in results.get("targets") or targets(results):
        shown = "n/a" if row["value"] is None else _show(row["value"], row["unit"])
        verdict = {True: "met", False: "missed", None: "reported"}[row["met"]]
        if row.get("not_measured"):
            verdict += f" (not measured: {row['not_measured']})"
        lines.append(f"  {row['label']:<42} {shown:>10}  {_limit(row):<11} {verdict}")
        detail = _detail(results, row["target"])
        if detail:
            lines.append(f"      {detail}")
    return "\n".join(lines)


def _contenders(entry: dict[str, Any]) -> list[str]:
    r = entry.get("ratios") or ratios(entry)
    lines = [
        f"  {'contender':<31} {'events/s':>10} {'% ceiling':>10} {'CPU s/M ev':>11} "
        f"{'peak RSS MB':>12} {'records done':>21}  note",
    ]
    for name in ORDER:
        c = entry["contenders"].get(name)
        if c is None:
            continue
        if c.get("skipped"):
            lines.append(f"  {LABELS[name]:<31} {'skipped':>10}  {c['skipped']}")
            continue
        pct = r.get(f"{name}_vs_ceiling")
        done = f"{c.get('records_done', 0):,}/{c.get('records_total', 0):,}"
        note = c.get("note", "")
        if c.get("error"):
            note = f"FAILED: {_first_line(c['error'])}" + (f"; {note}" if note else "")
        lines.append(
            f"  {LABELS[name]:<31} {_fmt(c.get('events_per_s'), ',.0f'):>10} "
            f"{_fmt(None if pct is None else 100 * pct, '.1f', '%'):>10} "
            f"{_fmt(c.get('cpu_s_per_million'), ',.1f'):>11} "
            f"{_fmt(c.get('peak_rss_mb'), ',.0f'):>12} {done:>21}  {note}"
        )
    shown = [
        f"{ref} {_fmt(r.get(f'livepulse_vs_{ref.replace(chr(45), chr(95))}'), '.2f', 'x')}"
        for ref in ("kstreams", "quix", "naive-faust")
        if ref in entry["contenders"]
    ]
    if shown:
        lines.append(f"  livepulse's events/s against: {', '.join(shown)}")
    return lines


def _two_workers(entry: dict[str, Any]) -> list[str]:
    r = entry.get("ratios") or ratios(entry)
    one = entry["contenders"].get("livepulse") or {}
    two = entry["contenders"].get("livepulse-2") or {}
    lines = ["  one worker against two on the same topic (livepulse, two workers / livepulse):"]
    for label, key, field, spec in (
        ("events/s", "two_workers_vs_one_events_per_s", "events_per_s", ",.0f"),
        (
            "CPU s per million events",
            "two_workers_vs_one_cpu_s_per_million",
            "cpu_s_per_million",
            ",.1f",
        ),
    ):
        lines.append(
            f"    {label:<34} {_fmt(r.get(key), '.2f', 'x'):>10}  "
            f"({_fmt(two.get(field), spec)} vs {_fmt(one.get(field), spec)})"
        )
    if two.get("error") or two.get("skipped") or "livepulse-2" not in entry["contenders"]:
        lines.append(f"    (not measured: {_why_missing(entry, 'livepulse-2', 'livepulse')})")
        return lines
    if two.get("all_workers_joined_s", 0) is None:
        lines.append(
            "    (not comparable: the first worker had done the topic before the second one "
            "got partitions; run with more --events)"
        )
    busy = [_cores(c) for c in (two, one)]
    lines.append(
        f"    {'cores busy (CPU s / wall s)':<34} {'':>10}  "
        f"({_fmt(busy[0], '.2f')} vs {_fmt(busy[1], '.2f')})"
    )
    split = two.get("records_per_worker") or []
    if len(split) > 1 and sum(split):
        shares = [n / sum(split) for n in split]
        parts = two.get("partitions_per_worker") or []
        lines.append(
            f"    {'records per worker, measured span':<34} {'':>10}  "
            f"({' / '.join(f'{n:,}' for n in split)} = "
            f"{' / '.join(f'{100 * x:.0f}%' for x in shares)}"
            + (f", partitions {' / '.join(','.join(map(str, p)) for p in parts)}" if parts else "")
            + f": keyed records, so at best {1 / max(shares):.2f}x)"
        )
    if two.get("committed_before_all_joined"):
        lines.append(
            f"    ({two['committed_before_all_joined']:,} records were committed before both "
            "workers were in the group, outside the measured span)"
        )
    return lines


def _cores(c: dict[str, Any]) -> float | None:
    """CPU seconds per wall second over the measured span: how many cores it kept busy."""
    if not c.get("cpu_s") or not c.get("wall_s"):
        return None
    cores: float = c["cpu_s"] / c["wall_s"]
    return cores


LOAD_GENERATOR_LAG_P99_MS = 100.0


def _load_generator(lat: dict[str, Any]) -> str:
    """Whether bench.latency's producer kept pace: rates and ts -> CreateTime lag.

    ``ts`` is stamped when an event is due; CreateTime when the Kafka client takes it. A
    large gap means events waited in the load generator, which the end-to-end numbers
    then include although the worker never saw them.
    """
    lag = lat.get("ts_to_create_time") or {}
    if not lag.get("count"):
        return ""
    text = (
        f"; producer {_fmt(lat.get('achieved_rate'), ',.0f')} ev/s achieved of "
        f"{_fmt(lat.get('offered_rate'), ',.0f')} offered, ts->CreateTime "
        f"p50 {_fmt(lag.get('p50_ms'), ',.0f')} / p99 {_fmt(lag.get('p99_ms'), ',.0f')} ms"
    )
    if lag["p99_ms"] > LOAD_GENERATOR_LAG_P99_MS:
        text += " -- load generator fell behind: end-to-end includes its lag"
    return text


def _paced_checkpoints(results: dict[str, Any]) -> str:
    """The latency step's checkpoint cost: a steady load, paced at half the max rate."""
    lat = results.get("latency") or {}
    cp = lat.get("checkpoints") or {}
    if cp.get("bytes_per_commit") is None:
        return ""
    held = cp.get("streams_held_at_end")
    return (
        f"; paced at {_fmt(lat.get('achieved_rate'), ',.0f')} ev/s (latency step): "
        f"{cp['bytes_per_commit']:,.0f} B and {cp['records_per_commit']:,.0f} records per "
        f"commit, {cp['bytes_per_s']:,.0f} B/s"
        + (f", {held:,} streams held" if held is not None else "")
    )


def _detail(results: dict[str, Any], target: str) -> str:
    """The line under a target row that says how it was measured."""
    if target == "latency_p99_ms":
        lat = results.get("latency") or {}
        if not lat.get("end_to_end"):
            return ""
        e2e, em = lat["end_to_end"], lat["emitted"]
        hist = lat.get("worker_histogram") or {}
        return (
            f"{lat['offered_rate']:,.0f} ev/s offered (half of livepulse's max), "
            f"{e2e['count']} alerts: end-to-end p50 {_fmt(e2e['p50_ms'], ',.0f')} ms; "
            f"emitted_at p50 {_fmt(em['p50_ms'], ',.0f')} / p99 {_fmt(em['p99_ms'], ',.0f')} ms; "
            f"worker histogram p50 {_fmt(hist.get('p50_ms'), ',.0f')} / "
            f"p99 {_fmt(hist.get('p99_ms'), ',.0f')} ms"
            f"{_load_generator(lat)}"
        )
    if target == "latency_committed_p99_ms":
        parts = []
        for key, name in (("latency_exactly_once", "exactly_once"), ("latency", "at_least_once")):
            lat = results.get(key) or {}
            if not lat.get("end_to_end"):
                continue
            seen = {"read_uncommitted": lat["end_to_end"]}
            if lat.get("end_to_end_committed"):
                seen["read_committed"] = lat["end_to_end_committed"]
            parts.append(
                f"{name}: "
                + ", ".join(
                    f"{reader} p50 {_fmt(e['p50_ms'], ',.0f')} / p99 {_fmt(e['p99_ms'], ',.0f')} ms"
                    for reader, e in seen.items()
                )
            )
        return "; ".join(parts)
    if target == "memory_bytes_per_stream":
        memory = results.get("memory") or {}
        if memory.get("bytes_per_stream") is None:
            return ""
        text = (
            f"bench.state_memory (tracemalloc): {memory.get('streams')} streams, "
            f"{memory.get('buckets')} buckets; checkpoint "
            f"{_fmt(memory.get('snapshot_bytes_per_stream'), ',.0f')} B per stream"
        )
        if memory.get("top_users_bytes_per_stream") is not None:
            text += (
                f"; top gifters and likers add {_fmt(memory['top_users_bytes_per_stream'], ',.0f')}"
                " B per stream (one of each per minute), "
                f"{_fmt(memory.get('top_users_at_capacity_bytes_per_stream'), ',.0f')} B at capacity"
            )
        return text
    if target == "checkpoint_bytes_per_commit":
        lp = results["workloads"][results["judged"]]["contenders"].get("livepulse") or {}
        cp = lp.get("checkpoints") or {}
        if cp.get("bytes_per_commit") is None:
            return ""
        held = cp.get("streams_held_at_end")
        return (
            f"{cp['bytes_per_s']:,.0f} B/s, {cp['records_per_s']:,.0f} records/s, "
            f"{cp['records_per_commit']:,.0f} records per commit over {cp['commits']} commits "
            f"({cp['commits_counted']}) in {cp['span_s']:.1f}s at full load"
            + (f", {held:,} streams held at the end" if held is not None else "")
            + f"; {cp['note']}"
            + _paced_checkpoints(results)
        )
    if target == "restore_100k_s":
        rs = results.get("restore") or {}
        if rs.get("processing_again_s") is None:
            return ""
        st = rs.get("state_topic") or {}
        text = (
            f"from the restart: 'restored' logged at {rs['restored_s']:.1f}s (restore itself "
            f"{_fmt(rs.get('restore_seconds'), '.2f', 's')}, start-up and joining the group as "
            f"a {rs.get('membership', 'dynamic')} member before it "
            f"{_fmt(rs.get('before_restore_s'), '.1f', 's')}); "
            f"{rs['restored_streams']:,} streams from {rs['state_records_read']:,} state records "
            f"(the topic afterwards: {st.get('records', 0):,} records, "
            f"{st.get('bytes', 0) / 2**20:,.1f} MiB); peak RSS {rs['peak_rss_mb']:,.0f} MB"
        )
        if rs.get("restored_streams") != rs.get("streams"):
            text += f" -- MISSED: {rs['restored_streams']:,} of {rs['streams']:,} streams restored"
        return text
    if target == "state_bytes_per_stream":
        state = results.get("state") or {}
        if state.get("bytes_per_stream") is None:
            return ""
        return f"{state['bytes']:,} snapshot bytes / {state['streams']:,} active streams"
    return ""


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> list[Path]:
    """``<stamp>.json``, ``latest.json`` and ``<stamp>.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, sort_keys=False) + "\n"
    paths = [out_dir / f"{stamp}.json", out_dir / "latest.json"]
    for path in paths:
        path.write_text(text)
    png = out_dir / f"{stamp}.png"
    try:
        chart(results, png)
    except Exception as exc:  # the numbers matter more than the picture
        print(f"bench: chart not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        paths.append(png)
    return paths


def chart(results: dict[str, Any], path: Path) -> None:
    """A row per workload, three bars per contender: events/s, CPU s per M events, peak RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "ceiling": "#888888",
        "faust-floor": "#e6ab02",
        "naive-faust": "#d95f02",
        "quix": "#7570b3",
        "kstreams": "#e7298a",
        "livepulse": "#1b9e77",
        "livepulse-2": "#0b5d47",
    }
    workloads = results["workloads"]
    fig, axes = plt.subplots(len(workloads), 3, figsize=(16, 4.5 * len(workloads)), squeeze=False)
    for row, (kind, entry) in zip(axes, workloads.items(), strict=True):
        contenders = entry["contenders"]
        names = [n for n in ORDER if (contenders.get(n) or {}).get("events_per_s")]
        labels = [LABELS[n].replace(" (", "\n(").replace(", ", ",\n") for n in names]
        panels = [
            ("events/s (log scale)", [contenders[n]["events_per_s"] for n in names], "{:,.0f}"),
            (
                "CPU seconds per million events",
                [contenders[n].get("cpu_s_per_million") or 0 for n in names],
                "{:,.1f}",
            ),
            ("peak RSS (MB)", [contenders[n].get("peak_rss_mb") or 0 for n in names], "{:,.0f}"),
        ]
        for ax, (title, values, fmt) in zip(row, panels, strict=True):
            bars = ax.bar(labels, values, color=[colors.get(n, "#444444") for n in names])
            ax.set_title(f"{kind}: {title}")
            if "log" in title and any(v > 0 for v in values):
                ax.set_yscale("log")
            ax.tick_params(axis="x", labelsize=7)
            for bar, value in zip(bars, values, strict=True):
                ax.annotate(
                    fmt.format(value),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            ax.margins(y=0.15)
        if kind == results["judged"]:
            limit = TARGETS["cpu_s_per_million"]
            row[1].axhline(limit, color="#1b9e77", linestyle="--", linewidth=1)
            row[1].annotate(
                f"target <= {limit:g}",
                (0.995, limit),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="#1b9e77",
                ha="right",
                va="bottom",
            )
    m = results["machine"]
    sizes = ", ".join(
        f"{k} {e['workload']['events']:,} events / {e['workload']['streams']:,} streams / "
        f"{e['workload']['partitions']} partitions"
        for k, e in workloads.items()
    )
    fig.suptitle(
        f"livepulse bench {results['started_at']}: {sizes}; {m['nproc']} cores {m['cpu_model']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Print the table of a results file and draw its chart again (PNG beside it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("results", nargs="?", default="bench-results/latest.json", type=Path)
    args = parser.parse_args()
    results = normalise(json.loads(args.results.read_text()))
    results["targets"] = targets(results)
    print(table(results))
    png = args.results.with_suffix(".png")
    chart(results, png)
    print(f"chart: {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
