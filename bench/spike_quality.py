"""Spike-alert quality: the engine's ``spike`` alerts scored against the simulator's hype bursts.

A seeded simulator run (no Kafka) is fed, event by event and in order, through
:class:`processor.core.engine.Engine` (wall clock = event time); its ``Spike`` alerts are
compared with the hype bursts the simulator reports (:class:`Burst`: stream, start, end,
multiplier), which are the ground truth.

Matching. A burst ``b`` of stream ``s`` *covers* the minutes (tumbling windows) from the one
holding ``b.start_ms`` to the one right after the one holding its last ms: a burst's tail
lands in the next minute (a combo started in the burst is only counted at its
``repeat_end``, and likes from the burst's last seconds are in the next minute), so a spike
there is still the burst's.

* A spike is a **true positive** if its minute is covered by a burst of its stream.
  **Precision** = true positives / spikes.
* A burst is **detected** (for a metric) if at least one spike (of that metric) of its stream
  has a covered minute; for *either*, a spike of any metric. **Recall** = detected / bursts.

Recall is also given on two subsets, since the detector cannot see every burst by design:
*eligible* bursts (the stream had ``spike_history`` of history by the burst's last covered
minute) and *above-floor* bursts (a covered minute of the stream reached ``spike_min_likes``
/ ``spike_min_coins``; counted as the engine does: growth of ``total``, gifts at
``repeat_end``). Cold streams (most of a heavy-tailed population) never reach the floors, which
is what the floors are for.

Coin spikes set off by one gift (a Money Gun is 500 coins, a Galaxy 1,000, a Lion 29,999, a
Universe 44,999) outside a burst are real money surges but count as false positives here: they
are counted separately ("one gift": the gift that fired the spike was worth the threshold on
its own) and a precision without them is given too.

``--sweep`` tries a small grid (``--grid-*``; likes and coin floors are paired by position,
since the likes and coins detectors are independent) and ranks settings by F1 per metric,
of precision and recall over all bursts (above-floor recall is shown, not ranked on: its
denominator shrinks as the floor rises).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from processor.contract import (
    Event,
    Gift,
    InvalidRecord,
    Like,
    LiveStart,
    decode_event,
    encode_event,
)
from processor.core.alerts import Output, Spike
from processor.core.engine import Engine, EngineConfig
from processor.core.rules import gift_value, like_growth
from processor.simulator.generator import (
    Burst,
    SimulationConfig,
    generate,
)

METRICS = ("likes", "coins")
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: minutes and tier steps align


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The simulated run (``livepulse simulate`` defaults are 20 streams at 500 events/s:
    25 events/s per stream, kept here with more streams for more bursts)."""

    streams: int = 60
    rate: float = 1_500.0
    duration_s: float = 1_800.0
    seed: int = 10
    lifetime_s: float | None = None

    def simulation(self) -> SimulationConfig:
        return SimulationConfig(
            start_ms=START_MS,
            streams=self.streams,
            rate=self.rate,
            duration_s=self.duration_s,
            seed=self.seed,
            mean_lifetime_s=self.lifetime_s,
        )


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    """The engine's spike settings (EngineConfig names; defaults are the engine's)."""

    spike_ratio: float
    spike_rearm_ratio: float
    spike_min_likes: int
    spike_min_coins: int
    spike_history_ms: int

    @classmethod
    def of(cls, config: EngineConfig) -> SpikeSettings:
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    def engine_config(self, base: EngineConfig | None = None) -> EngineConfig:
        return dataclasses.replace(base or EngineConfig(), **dataclasses.asdict(self))

    def floor(self, metric: str) -> int:
        return self.spike_min_likes if metric == "likes" else self.spike_min_coins

    def label(self) -> str:
        return (
            f"ratio={self.spike_ratio:g} rearm={self.spike_rearm_ratio:g} "
            f"min_likes={self.spike_min_likes} min_coins={self.spike_min_coins} "
            f"history={self.spike_history_ms // 1000}s"
        )


def default_settings() -> SpikeSettings:
    return SpikeSettings.of(EngineConfig())


# --------------------------------------------------------------------------- progress


class Progress:
    """Progress lines on stderr, at most one per ``interval_s`` for :meth:`due`."""

    def __init__(self, quiet: bool = False, interval_s: float = 2.0) -> None:
        self.quiet = quiet
        self.interval_s = interval_s
        self._t0 = time.monotonic()
        self._next = self._t0 + interval_s

    def say(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = int(time.monotonic() - self._t0)
        with contextlib.suppress(OSError, ValueError):
            print(
                f"[spike_quality {elapsed // 60:2d}:{elapsed % 60:02d}] {message}",
                file=sys.stderr,
                flush=True,
            )

    def due(self) -> bool:
        """Whether a periodic line is due (then the next one is ``interval_s`` away)."""
        now = time.monotonic()
        if self.quiet or now < self._next:
            return False
        self._next = now + self.interval_s
        return True


# --------------------------------------------------------------------------- ground truth


@dataclass(slots=True)
class Truth:
    """What actually happened in the run, independent of the detector."""

    minute_ms: int
    step_ms: int
    bursts: list[Burst]
    started: dict[str, int]  # stream -> live_start ts
    minutes: dict[tuple[str, int], list[int]]  # (stream, minute start) -> [likes, coins]
    events: int

    def covered(self, burst: Burst) -> tuple[int, int]:
        """First and last (inclusive) minute starts a burst covers."""
        m = self.minute_ms
        last = burst.end_ms - 1
        return burst.start_ms - burst.start_ms % m, last - last % m + m

    def peak(self, burst: Burst, metric: str) -> int:
        """The largest value of ``metric`` in one covered minute of the burst's stream."""
        index = METRICS.index(metric)
        first, last = self.covered(burst)
        return max(
            (
                self.minutes.get((burst.stream_id, ms), (0, 0))[index]
                for ms in range(first, last + 1, self.minute_ms)
            ),
            default=0,
        )

    def eligible(self, burst: Burst, history_ms: int) -> bool:
        """Whether the engine evaluates spikes in some covered minute (enough history)."""
        started = self.started[burst.stream_id]
        return self.covered(burst)[1] - (started - started % self.step_ms) >= history_ms


def prepare(
    run: RunConfig, progress: Progress, minute_ms: int = 60_000, step_ms: int = 10_000
) -> tuple[list[Event], Truth]:
    """Generate the run: typed events (decoded like Kafka records) and the ground truth."""
    bursts: list[Burst] = []
    truth = Truth(minute_ms, step_ms, bursts, {}, {}, 0)
    events: list[Event] = []
    like_totals: dict[str, int | None] = {}
    minutes = truth.minutes
    for obj in generate(run.simulation(), bursts.append):
        event = decode_event(encode_event(obj), obj.stream_id.encode())
        if isinstance(event, InvalidRecord):  # pragma: no cover - the simulator is valid
            raise ValueError(f"simulator produced an invalid event: {event}")
        events.append(event)
        sid = event.stream_id
        key = (sid, event.ts - event.ts % minute_ms)
        if isinstance(event, Like):
            likes, like_totals[sid] = like_growth(like_totals.get(sid), event.count, event.total)
            if likes:
                minutes.setdefault(key, [0, 0])[0] += likes
        elif isinstance(event, Gift):
            _, coins = gift_value(
                event.coins, event.repeat_count, event.streakable, event.repeat_end
            )
            if coins:
                minutes.setdefault(key, [0, 0])[1] += coins
        elif isinstance(event, LiveStart):
            truth.started[sid] = event.ts
            like_totals[sid] = 0
        if not len(events) & 0xFFFF and progress.due():
            progress.say(f"generating: {len(events):,} events")
    truth.events = len(events)
    bursts.sort(key=lambda b: (b.start_ms, b.stream_id))
    progress.say(f"generated {truth.events:,} events, {len(bursts)} hype bursts")
    return events, truth


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True, slots=True)
class Detected:
    """The part of a ``Spike`` alert the scoring needs."""

    stream_id: str
    metric: str
    minute_start: int
    event_time: int
    value: int
    threshold: float
    one_gift: bool  # a coin spike fired by one gift worth the threshold on its own


def detect(
    events: Sequence[Event],
    settings: SpikeSettings,
    base: EngineConfig | None = None,
    progress: Progress | None = None,
) -> list[Detected]:
    """Every spike alert the engine emits for ``events`` (in order, wall clock = ts)."""
    engine = Engine(settings.engine_config(base))
    apply = engine.apply
    outputs: list[Output] = []
    spikes: list[Detected] = []
    total = len(events)
    for i, event in enumerate(events):
        apply(event, event.ts, outputs)
        if outputs:
            spikes.extend(_spikes(outputs, event))
            outputs.clear()
        if progress is not None and not i & 0xFFFF and progress.due():
            progress.say(f"engine {settings.label()}: {i / total:.0%} of the events")
    return spikes


def _spikes(outputs: Iterable[Output], event: Event) -> Iterator[Detected]:
    coins = 0
    if isinstance(event, Gift):
        coins = gift_value(event.coins, event.repeat_count, event.streakable, event.repeat_end)[1]
    for out in outputs:
        if isinstance(out, Spike):
            one_gift = out.metric == "coins" and coins >= out.threshold
            yield Detected(
                out.stream_id,
                out.metric,
                out.minute.start,
                out.event_time,
                out.value,
                out.threshold,
                one_gift,
            )


# --------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class Score:
    """Precision and recall of one metric (or of ``either``)."""

    metric: str
    spikes: int = 0
    true_spikes: int = 0
    one_gift_false: int = 0  # false positives fired by one gift worth the threshold alone
    bursts: int = 0
    detected: int = 0
    eligible: int = 0
    eligible_detected: int = 0
    above_floor: int = 0
    above_floor_detected: int = 0
    delays_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_spikes / self.spikes if self.spikes else None

    @property
    def precision_without_one_gift(self) -> float | None:
        counted = self.spikes - self.one_gift_false
        return self.true_spikes / counted if counted else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.bursts if self.bursts else None

    @property
    def recall_eligible(self) -> float | None:
        return self.eligible_detected / self.eligible if self.eligible else None

    @property
    def recall_above_floor(self) -> float | None:
        return self.above_floor_detected / self.above_floor if self.above_floor else None

    @property
    def f1(self) -> float:
        # recall over all bursts: the same denominator for every setting (above-floor recall
        # is not: a higher floor leaves fewer, bigger bursts to find)
        p, r = self.precision or 0.0, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.delays_s) if self.delays_s else None

    def as_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "delays_s"
        }
        for name in (
            "precision",
            "precision_without_one_gift",
            "recall",
            "recall_eligible",
            "recall_above_floor",
            "f1",
            "median_delay_s",
        ):
            out[name] = getattr(self, name)
        return out


@dataclass(slots=True)
class Quality:
    settings: SpikeSettings
    scores: dict[str, Score]  # likes, coins, either

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": dataclasses.asdict(self.settings),
            "scores": {k: v.as_dict() for k, v in self.scores.items()},
        }


def score(truth: Truth, spikes: Sequence[Detected], settings: SpikeSettings) -> Quality:
    """Score ``spikes`` against the bursts of ``truth`` (see the module docstring)."""
    by_stream: dict[str, list[Burst]] = defaultdict(list)
    for burst in truth.bursts:
        by_stream[burst.stream_id].append(burst)
    scores = {name: Score(name) for name in (*METRICS, "either")}
    # first matching spike per (burst, metric): detection and its delay
    first: dict[tuple[int, str], int] = {}
    for spike in spikes:
        match = None
        for burst in by_stream.get(spike.stream_id, ()):
            low, high = truth.covered(burst)
            if low <= spike.minute_start <= high:
                match = burst
                break
        for name in (spike.metric, "either"):
            s = scores[name]
            s.spikes += 1
            if match is not None:
                s.true_spikes += 1
                key = (id(match), name)
                first[key] = min(first.get(key, spike.event_time), spike.event_time)
            elif spike.one_gift:
                s.one_gift_false += 1
    for burst in truth.bursts:
        eligible = truth.eligible(burst, settings.spike_history_ms)
        above = {m: truth.peak(burst, m) >= settings.floor(m) for m in METRICS}
        above["either"] = above["likes"] or above["coins"]
        for name, s in scores.items():
            hit = (id(burst), name) in first
            s.bursts += 1
            s.detected += hit
            s.eligible += eligible
            s.eligible_detected += hit and eligible
            s.above_floor += above[name]
            s.above_floor_detected += hit and above[name]
            if hit:
                s.delays_s.append((first[id(burst), name] - burst.start_ms) / 1000)
    return Quality(settings, scores)


# --------------------------------------------------------------------------- reporting


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.1%}"


def report(quality: Quality, out: Any = None) -> None:
    """A table of one setting's figures."""
    out = out or sys.stdout
    print(f"settings: {quality.settings.label()}", file=out)
    print(
        "metric  spikes  true  precision  (w/o one-gift)  bursts  detected  recall"
        "  eligible recall  above-floor recall  median delay",
        file=out,
    )
    for name, s in quality.scores.items():
        delay = s.median_delay_s
        print(
            f"{name:<6} {s.spikes:7d} {s.true_spikes:5d}     {_pct(s.precision)}"
            f"           {_pct(s.precision_without_one_gift)}  {s.bursts:6d}  {s.detected:8d}"
            f"  {_pct(s.recall)}  {_pct(s.recall_eligible)} of {s.eligible:<4d}"
            f"  {_pct(s.recall_above_floor)} of {s.above_floor:<4d}"
            f"  {'-' if delay is None else f'{delay:.0f} s'}",
            file=out,
        )


# --------------------------------------------------------------------------- sweep

_SWEEP_EVENTS: list[Event] = []
_SWEEP_BASE: EngineConfig | None = None


def _sweep_one(settings: SpikeSettings) -> tuple[SpikeSettings, list[Detected]]:
    return settings, detect(_SWEEP_EVENTS, settings, _SWEEP_BASE)


def grid(args: argparse.Namespace) -> list[SpikeSettings]:
    """The sweep's settings: ratio x rearm x history x (likes floor, coins floor) pairs."""
    if len(args.grid_min_likes) != len(args.grid_min_coins):
        raise SystemExit("--grid-min-likes and --grid-min-coins need the same number of values")
    out = []
    for ratio in args.grid_ratio:
        for rearm in args.grid_rearm:
            if rearm >= ratio:
                continue
            for history in args.grid_history:
                for likes, coins in zip(args.grid_min_likes, args.grid_min_coins, strict=True):
                    out.append(SpikeSettings(ratio, rearm, likes, coins, int(history * 1000)))
    return out


def sweep(
    events: list[Event],
    truth: Truth,
    settings: list[SpikeSettings],
    jobs: int,
    progress: Progress,
    base: EngineConfig | None = None,
) -> list[Quality]:
    """Score every setting (in ``jobs`` forked processes sharing the events)."""
    global _SWEEP_BASE
    _SWEEP_EVENTS[:] = events
    _SWEEP_BASE = base
    results: list[Quality] = []
    try:
        if jobs > 1:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                done = pool.imap_unordered(_sweep_one, settings)
                for n, (s, spikes) in enumerate(done, 1):
                    results.append(score(truth, spikes, s))
                    progress.say(f"sweep {n}/{len(settings)}: {s.label()}")
        else:
            for n, s in enumerate(settings, 1):
                results.append(score(truth, detect(events, s, base, progress), s))
                progress.say(f"sweep {n}/{len(settings)}: {s.label()}")
    finally:
        _SWEEP_EVENTS.clear()
    order = {s: i for i, s in enumerate(settings)}
    results.sort(key=lambda q: order[q.settings])
    return results


def report_sweep(results: list[Quality], top: int, out: Any = None) -> None:
    out = out or sys.stdout
    for metric in (*METRICS, "either"):
        floor = {"likes": "min_likes", "coins": "min_coins", "either": "floors"}[metric]
        print(f"\n{metric}: best {top} by F1 (of precision and recall over all bursts)", file=out)
        print(
            f"ratio  rearm  history  {floor:>11}  spikes  precision  recall  eligible"
            "  above-floor    F1",
            file=out,
        )
        ranked = sorted(results, key=lambda q: -q.scores[metric].f1)
        for q in ranked[:top]:
            s, st = q.scores[metric], q.settings
            floors = {
                "likes": f"{st.spike_min_likes}",
                "coins": f"{st.spike_min_coins}",
                "either": f"{st.spike_min_likes}/{st.spike_min_coins}",
            }[metric]
            print(
                f"{st.spike_ratio:5g}  {st.spike_rearm_ratio:5g}  {st.spike_history_ms // 1000:5d} s"
                f"  {floors:>11}  {s.spikes:6d}     {_pct(s.precision)}  {_pct(s.recall)}"
                f"    {_pct(s.recall_eligible)}       {_pct(s.recall_above_floor)}  {s.f1:.3f}",
                file=out,
            )


# --------------------------------------------------------------------------- CLI


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None


def parser() -> argparse.ArgumentParser:
    d = default_settings()
    r = RunConfig()
    p = argparse.ArgumentParser(
        prog="python -m bench.spike_quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = p.add_argument_group("simulated run")
    run.add_argument("--streams", type=int, default=r.streams, help="(default: %(default)s)")
    run.add_argument(
        "--rate",
        type=float,
        default=r.rate,
        help="events/s over all streams (default: %(default)s)",
    )
    run.add_argument(
        "--duration",
        type=float,
        default=r.duration_s,
        help="event-time seconds (default: %(default)s)",
    )
    run.add_argument("--seed", type=int, default=r.seed, help="(default: %(default)s)")
    run.add_argument(
        "--lifetime", type=float, default=None, help="mean stream lifetime s (default: whole run)"
    )
    spike = p.add_argument_group("spike settings (default: the engine's)")
    spike.add_argument("--spike-ratio", type=float, default=d.spike_ratio)
    spike.add_argument("--spike-rearm-ratio", type=float, default=d.spike_rearm_ratio)
    spike.add_argument("--spike-min-likes", type=int, default=d.spike_min_likes)
    spike.add_argument("--spike-min-coins", type=int, default=d.spike_min_coins)
    spike.add_argument(
        "--spike-history",
        type=float,
        default=d.spike_history_ms / 1000,
        metavar="SECONDS",
        help="spike_history (default: %(default)s)",
    )
    sw = p.add_argument_group("sweep")
    sw.add_argument("--sweep", action="store_true", help="score a grid of settings instead")
    sw.add_argument("--grid-ratio", type=_floats, default=[2.0, 2.5, 3.0, 4.0], metavar="LIST")
    sw.add_argument("--grid-rearm", type=_floats, default=[1.5], metavar="LIST")
    sw.add_argument("--grid-history", type=_floats, default=[120, 180, 300], metavar="SECONDS")
    sw.add_argument(
        "--grid-min-likes",
        type=_ints,
        default=[250, 500, 1000],
        metavar="LIST",
        help="paired by position with --grid-min-coins",
    )
    sw.add_argument("--grid-min-coins", type=_ints, default=[300, 1000, 3000], metavar="LIST")
    sw.add_argument("--top", type=int, default=8, help="rows per metric in the sweep's ranking")
    sw.add_argument("--jobs", type=int, default=2, help="sweep processes (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    progress = Progress(args.quiet)
    run = RunConfig(args.streams, args.rate, args.duration, args.seed, args.lifetime)
    base = EngineConfig()
    progress.say(f"run: {run}")
    events, truth = prepare(run, progress, base.tumbling_ms, base.tier_step_ms)
    print(
        f"run: {run.streams} streams, {run.rate:g} events/s, {run.duration_s:g} s of event time, "
        f"seed {run.seed}, lifetime {run.lifetime_s or 'whole run'}: {truth.events:,} events, "
        f"{len(truth.bursts)} hype bursts ({sum(b.cut for b in truth.bursts)} cut by the end)"
    )
    print(
        "matching: a spike is true if its minute overlaps a burst of its stream or is the minute"
        " right after the burst's last minute"
    )
    if args.sweep:
        settings = grid(args)
        progress.say(f"sweep: {len(settings)} settings, {args.jobs} jobs")
        results = sweep(events, truth, settings, args.jobs, progress, base)
        report_sweep(results, args.top)
        payload: Any = [q.as_dict() for q in results]
    else:
        settings1 = SpikeSettings(
            args.spike_ratio,
            args.spike_rearm_ratio,
            args.spike_min_likes,
            args.spike_min_coins,
            int(args.spike_history * 1000),
        )
        quality = score(truth, detect(events, settings1, base, progress), settings1)
        report(quality)
        payload = quality.as_dict()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"run": dataclasses.asdict(run), "results": payload}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
