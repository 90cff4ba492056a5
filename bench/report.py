"""Results of one bench run: the JSON files, the PNG chart and the printed table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ORDER = ("ceiling", "faust-floor", "naive-faust", "quix", "livepulse")
LABELS = {
    "ceiling": "ceiling (aiokafka + orjson)",
    "faust-floor": "Faust floor (agent, no work)",
    "naive-faust": "naive Faust (windowed tables)",
    "quix": "Quix Streams (tumbling sum)",
    "livepulse": "livepulse worker",
}
TARGETS = {
    "vs_ceiling": 0.5,
    "vs_naive_faust": 3.0,
    "vs_quix": 1.5,
    "latency_p99_ms": 250.0,
    "state_bytes_per_stream": 2048.0,
}


def _rate(results: dict[str, Any], name: str) -> float | None:
    entry = results["contenders"].get(name)
    if not entry or not entry.get("events_per_s"):
        return None
    rate: float = entry["events_per_s"]
    return rate


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """livepulse against each reference, and every contender against the ceiling."""
    ceiling = _rate(results, "ceiling")
    out: dict[str, float | None] = {}
    for name in ORDER:
        rate = _rate(results, name)
        out[f"{name}_vs_ceiling"] = rate / ceiling if rate and ceiling else None
    lp = _rate(results, "livepulse")
    for ref in ("naive-faust", "quix"):
        rate = _rate(results, ref)
        out[f"livepulse_vs_{ref.replace('-', '_')}"] = lp / rate if lp and rate else None
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def table(results: dict[str, Any]) -> str:
    """The printed summary: one row per contender, then livepulse against the targets."""
    r = results["ratios"]
    lines = [
        f"{'contender':<31} {'events/s':>10} {'% ceiling':>10} {'CPU s/M ev':>11} "
        f"{'peak RSS MB':>12} {'records done':>21}  note",
    ]
    for name in ORDER:
        c = results["contenders"].get(name)
        if c is None:
            continue
        if c.get("skipped"):
            lines.append(f"{LABELS[name]:<31} {'skipped':>10}  {c['skipped']}")
            continue
        pct = r.get(f"{name}_vs_ceiling")
        done = f"{c.get('records_done', 0):,}/{c.get('records_total', 0):,}"
        lines.append(
            f"{LABELS[name]:<31} {_fmt(c.get('events_per_s'), ',.0f'):>10} "
            f"{_fmt(None if pct is None else 100 * pct, '.1f', '%'):>10} "
            f"{_fmt(c.get('cpu_s_per_million'), ',.1f'):>11} "
            f"{_fmt(c.get('peak_rss_mb'), ',.0f'):>12} {done:>21}  {c.get('note', '')}"
        )
    lines.append("")
    lines.append("livepulse against the issue's targets:")
    lines.append(_target_line("events/s vs ceiling", r.get("livepulse_vs_ceiling"), 0.5, "%"))
    lines.append(_target_line("vs naive Faust", r.get("livepulse_vs_naive_faust"), 3.0, "x"))
    lines.append(_target_line("vs Quix Streams", r.get("livepulse_vs_quix"), 1.5, "x"))
    lat = results.get("latency") or {}
    if lat.get("end_to_end"):
        e2e, em = lat["end_to_end"], lat["emitted"]
        hist = lat.get("worker_histogram") or {}
        ok = e2e["p99_ms"] is not None and e2e["p99_ms"] <= TARGETS["latency_p99_ms"]
        lines.append(
            f"  alert latency at {lat['offered_rate']:,.0f} ev/s offered (half of max), "
            f"{e2e['count']} alerts: end-to-end p50 {_fmt(e2e['p50_ms'], ',.0f')} ms, "
            f"p99 {_fmt(e2e['p99_ms'], ',.0f')} ms (target <= 250 ms: {'met' if ok else 'NOT met'}); "
            f"emitted_at p50 {_fmt(em['p50_ms'], ',.0f')} / p99 {_fmt(em['p99_ms'], ',.0f')} ms; "
            f"worker histogram p50 {_fmt(hist.get('p50_ms'), ',.0f')} / "
            f"p99 {_fmt(hist.get('p99_ms'), ',.0f')} ms"
        )
    elif lat.get("error") or lat.get("skipped"):
        lines.append(f"  alert latency: {lat.get('error') or lat.get('skipped')}")
    state = results.get("state") or {}
    if state.get("bytes_per_stream") is not None:
        ok = state["bytes_per_stream"] <= TARGETS["state_bytes_per_stream"]
        lines.append(
            f"  state: {state['bytes_per_stream']:,.0f} bytes per active stream "
            f"({state['bytes']:,} snapshot bytes / {state['streams']:,} streams; "
            f"target <= 2,048: {'met' if ok else 'NOT met'})"
        )
    return "\n".join(lines)


def _target_line(label: str, value: float | None, target: float, unit: str) -> str:
    if value is None:
        return f"  {label:<22} n/a"
    shown = f"{100 * value:.1f}%" if unit == "%" else f"{value:.2f}x"
    wanted = f">= {100 * target:.0f}%" if unit == "%" else f">= {target:g}x"
    verdict = "met" if value >= target else "NOT met"
    return f"  {label:<22} {shown:>8}  (target {wanted}: {verdict})"


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
    """Four bars per contender: events/s, % of ceiling, CPU s per M events, peak RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        n
        for n in ORDER
        if n in results["contenders"] and results["contenders"][n].get("events_per_s")
    ]
    contenders = results["contenders"]
    labels = [LABELS[n].replace(" (", "\n(") for n in names]
    colors = {
        "ceiling": "#888888",
        "faust-floor": "#e6ab02",
        "naive-faust": "#d95f02",
        "quix": "#7570b3",
        "livepulse": "#1b9e77",
    }
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    panels = [
        (
            "events/s (sustained, log scale)",
            [contenders[n]["events_per_s"] for n in names],
            "{:,.0f}",
        ),
        (
            "% of the ceiling's events/s (log scale)",
            [100 * (results["ratios"].get(f"{n}_vs_ceiling") or 0) for n in names],
            "{:.1f}%",
        ),
        (
            "CPU seconds per million events",
            [contenders[n].get("cpu_s_per_million") or 0 for n in names],
            "{:,.0f}",
        ),
        ("peak RSS (MB)", [contenders[n].get("peak_rss_mb") or 0 for n in names], "{:,.0f}"),
    ]
    for ax, (title, values, fmt) in zip(axes.flat, panels, strict=True):
        bars = ax.bar(labels, values, color=[colors.get(n, "#444444") for n in names])
        ax.set_title(title)
        if "log" in title:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelsize=8)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                fmt.format(value),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.margins(y=0.15)
    w = results["workload"]
    m = results["machine"]
    fig.suptitle(
        f"livepulse bench {results['started_at']}: {w['events']:,} events, {w['streams']:,} streams, "
        f"{w['partitions']} partitions; {m['nproc']} cores {m['cpu_model']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Print the table of a results file and draw its chart again (PNG beside it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("results", nargs="?", default="bench-results/latest.json", type=Path)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    results["ratios"] = ratios(results)
    print(table(results))
    png = args.results.with_suffix(".png")
    chart(results, png)
    print(f"chart: {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
