"""Spike-alert quality: the engine's ``spike`` alerts scored against the simulator's hype bursts.

A seeded simulator run goes through the engine in order (wall clock = event time). A burst
*covers* the minutes from the one holding its start to the one after the one holding its end
(its tail lands there). A spike is **true** if its minute is covered by a burst of its
stream (**precision**: true / spikes); a burst is **detected** if a spike (of the metric; for
*either*, of any) of its stream has a covered minute (**recall**: detected / bursts), also
over the bursts the detector can see by design: *eligible* (``spike_history`` of history by
then) and *above-floor* (a covered minute reached the floor). Coin spikes fired by one gift
worth the threshold alone are counted apart. ``--sweep`` ranks a grid of settings by F1.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from processor import contract
from processor.contract import Event, Gift, InvalidRecord, Like, LiveStart
from processor.core.alerts import Output, Spike
from processor.core.engine import Engine, EngineConfig
from processor.core.rules import gift_value, like_growth
from processor.simulator.generator import Burst, SimulationConfig, generate

METRICS = ("likes", "coins")
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: minutes and tier steps align


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The simulated run: `livepulse simulate`'s 25 events/s a stream, more streams."""

    streams: int = 60
    rate: float = 1_500.0
    duration_s: float = 1_800.0
    seed: int = 10

    def simulation(self) -> SimulationConfig:
        fields = {"streams": self.streams, "rate": self.rate, "seed": self.seed}
        return SimulationConfig(start_ms=START_MS, duration_s=self.duration_s, **fields)


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    """The engine's spike settings (EngineConfig's names)."""

    spike_ratio: float
    spike_rearm_ratio: float
    spike_min_likes: int
    spike_min_coins: int
    spike_history_ms: int

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
    config = EngineConfig()
    return SpikeSettings(*(getattr(config, f.name) for f in dataclasses.fields(SpikeSettings)))


@dataclass(slots=True)
class Truth:
    """What happened in the run, whatever the detector saw."""

    minute_ms: int
    step_ms: int
    bursts: list[Burst]
    started: dict[str, int]  # stream -> its live_start's ts
    minutes: dict[tuple[str, int], list[int]]  # (stream, minute start) -> [likes, coins]
    events: int

    def covered(self, burst: Burst) -> tuple[int, int]:
        """The first and last (inclusive) minute starts a burst covers."""
        m, last = self.minute_ms, burst.end_ms - 1
        return burst.start_ms - burst.start_ms % m, last - last % m + m

    def peak(self, burst: Burst, metric: str) -> int:
        """The most ``metric`` in one covered minute of the burst's stream."""
        first, last = self.covered(burst)
        minutes = range(first, last + 1, self.minute_ms)
        sums = (self.minutes.get((burst.stream_id, ms), [0, 0]) for ms in minutes)
        return max(s[METRICS.index(metric)] for s in sums)

    def eligible(self, burst: Burst, history_ms: int) -> bool:
        """Whether the engine evaluates spikes in a covered minute (enough history)."""
        started = self.started[burst.stream_id]
        return self.covered(burst)[1] - (started - started % self.step_ms) >= history_ms


def prepare(
    run: RunConfig, minute_ms: int = 60_000, step_ms: int = 10_000
) -> tuple[list[Event], Truth]:
    """The run's events (decoded as Kafka records are) and its ground truth."""
    truth = Truth(minute_ms, step_ms, [], {}, {}, 0)
    events: list[Event] = []
    like_totals: dict[str, int | None] = {}
    for obj in generate(run.simulation(), truth.bursts.append):
        event = contract.decode_event(contract.encode_event(obj), obj.stream_id.encode())
        if isinstance(event, InvalidRecord):  # pragma: no cover - the simulator is valid
            raise ValueError(f"simulator produced an invalid event: {event}")
        events.append(event)
        sid = event.stream_id
        minute = truth.minutes.setdefault((sid, event.ts - event.ts % minute_ms), [0, 0])
        if isinstance(event, Like):
            likes, like_totals[sid] = like_growth(like_totals.get(sid), event.count, event.total)
            minute[0] += likes
        elif isinstance(event, Gift):
            minute[1] += _coins(event)
        elif isinstance(event, LiveStart):
            truth.started[sid], like_totals[sid] = event.ts, 0
    truth.events = len(events)
    truth.bursts.sort(key=lambda b: (b.start_ms, b.stream_id))
    return events, truth


def _coins(gift: Gift) -> int:
    return gift_value(gift.coins, gift.repeat_count, gift.streakable, gift.repeat_end)[1]


@dataclass(frozen=True, slots=True)
class Detected:
    """What the scoring needs of a ``Spike`` alert."""

    stream_id: str
    metric: str
    minute_start: int
    event_time: int
    value: int
    threshold: float
    one_gift: bool  # a coin spike fired by one gift worth the threshold on its own


def detect(
    events: Sequence[Event], settings: SpikeSettings, base: EngineConfig | None = None
) -> list[Detected]:
    """Every spike the engine emits for ``events`` (in order, wall clock = ts)."""
    apply = Engine(settings.engine_config(base)).apply
    outputs: list[Output] = []
    spikes: list[Detected] = []
    for event in events:
        apply(event, event.ts, outputs)
        coins = _coins(event) if outputs and isinstance(event, Gift) else 0
        for s in outputs:
            if isinstance(s, Spike):
                one_gift = s.metric == "coins" and coins >= s.threshold
                fields = (s.minute.start, s.event_time, s.value, s.threshold, one_gift)
                spikes.append(Detected(s.stream_id, s.metric, *fields))
        outputs.clear()
    return spikes


def _of(a: int, b: int) -> float | None:
    return a / b if b else None


@dataclass(slots=True)
class Score:
    """Precision and recall of one metric (or of ``either``)."""

    metric: str
    spikes: int = 0
    true_spikes: int = 0
    one_gift_false: int = 0  # false spikes fired by one gift worth the threshold alone
    bursts: int = 0
    detected: int = 0
    eligible: int = 0
    eligible_detected: int = 0
    above_floor: int = 0
    above_floor_detected: int = 0
    delays_s: list[float] = field(default_factory=list)

    precision = property(lambda s: _of(s.true_spikes, s.spikes))
    precision_without_one_gift = property(lambda s: _of(s.true_spikes, s.spikes - s.one_gift_false))
    recall = property(lambda s: _of(s.detected, s.bursts))
    recall_eligible = property(lambda s: _of(s.eligible_detected, s.eligible))
    recall_above_floor = property(lambda s: _of(s.above_floor_detected, s.above_floor))
    median_delay_s = property(lambda s: statistics.median(s.delays_s) if s.delays_s else None)

    @property
    def f1(self) -> float:  # of recall over all bursts: the same denominator for any floor
        p, r = self.precision or 0.0, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Quality:
    """One setting's scores."""

    settings: SpikeSettings
    scores: dict[str, Score]  # likes, coins, either


def score(truth: Truth, spikes: Sequence[Detected], settings: SpikeSettings) -> Quality:
    """Score ``spikes`` against the bursts of ``truth`` (see the module's doc)."""
    spans: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # (first, last, burst)
    for b in truth.bursts:
        spans[b.stream_id].append((*truth.covered(b), id(b)))
    scores = {name: Score(name) for name in (*METRICS, "either")}
    first: dict[tuple[int, str], int] = {}  # (burst, metric) -> its first spike's time
    for spike in spikes:
        found = (i for low, high, i in spans[spike.stream_id] if low <= spike.minute_start <= high)
        match = next(found, None)
        for name in (spike.metric, "either"):
            s, key = scores[name], (match, name)
            s.spikes += 1
            s.true_spikes += match is not None
            s.one_gift_false += match is None and spike.one_gift
            if match is not None:
                first[key] = min(first.get(key, spike.event_time), spike.event_time)
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


def _row(s: Score) -> str:
    def _pct(value: float | None) -> str:
        return "   -  " if value is None else f"{value:6.1%}"

    delay = "-" if s.median_delay_s is None else f"{s.median_delay_s:.0f} s"
    return (
        f"{s.metric:<6} {s.spikes:6d} {s.true_spikes:5d}  {_pct(s.precision)} "
        f"({_pct(s.precision_without_one_gift)})  {s.bursts:6d} {s.detected:5d}  "
        f"{_pct(s.recall)}  {_pct(s.recall_eligible)} of {s.eligible:<4d}  "
        f"{_pct(s.recall_above_floor)} of {s.above_floor:<4d}  {delay:>5}  {s.f1:.3f}"
    )


HEADER = (
    "metric spikes  true  precision (w/o one-gift)  bursts  hits  recall  eligible recall"
    "  above-floor recall  median delay  F1"
)
_SWEPT: list[Event] = []  # the sweep's events, shared by its forked processes


def _detect_swept(settings: SpikeSettings) -> list[Detected]:
    return detect(_SWEPT, settings)


def sweep(events: list[Event], truth: Truth, args: argparse.Namespace) -> None:
    """Score each setting of the grid, in two processes, and print the best 8 per metric."""
    floors = list(zip(args.grid_min_likes, args.grid_min_coins, strict=True))
    grid = [
        SpikeSettings(ratio, rearm, likes, coins, int(history * 1000))
        for ratio in args.grid_ratio
        for rearm in args.grid_rearm
        if rearm < ratio
        for history in args.grid_history
        for likes, coins in floors
    ]
    _SWEPT[:] = events
    with multiprocessing.get_context("fork").Pool(2) as pool:
        found = pool.map(_detect_swept, grid)
    done = [score(truth, spikes, s) for s, spikes in zip(grid, found, strict=True)]
    for metric in (*METRICS, "either"):
        print(f"\n{metric}: the best 8 by F1\n{HEADER}")
        for q in sorted(done, key=lambda q: -q.scores[metric].f1)[:8]:
            print(f"{_row(q.scores[metric])}  {q.settings.label()}")


def main(argv: Sequence[str] | None = None) -> int:
    run, settings = RunConfig(), default_settings()
    parser = argparse.ArgumentParser("python -m bench.spike_quality", description=__doc__)
    for f in (*dataclasses.fields(run), *dataclasses.fields(settings)):  # defaults: the engine's
        value = getattr(run, f.name, getattr(settings, f.name, None))
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(value), default=value)
    grid = {"ratio": "2,2.5,3,4", "rearm": "1.5", "history": "120,180,300"}
    grid |= {"min-likes": "250,500,1000", "min-coins": "300,1000,3000"}  # paired by position
    for name, default in grid.items():
        kind = int if "min" in name else float
        values = lambda text, kind=kind: [kind(x) for x in text.split(",")]  # noqa: E731
        parser.add_argument(f"--grid-{name}", type=values, default=default, help="the sweep's")
    parser.add_argument("--sweep", action="store_true", help="score the --grid-* settings")
    args = parser.parse_args(argv)
    run = RunConfig(*(getattr(args, f.name) for f in dataclasses.fields(run)))
    base = EngineConfig()
    events, truth = prepare(run, base.tumbling_ms, base.tier_step_ms)
    print(
        f"run: {run.streams} streams, {run.rate:g} events/s, {run.duration_s:g} s of event time, "
        f"seed {run.seed}: {truth.events:,} events, {len(truth.bursts)} hype bursts "
        f"({sum(b.cut for b in truth.bursts)} cut by the end)\nmatching: a spike is true if its "
        "minute overlaps a burst of its stream or is the minute right after the burst's last"
    )
    if args.sweep:
        sweep(events, truth, args)
        return 0
    settings = SpikeSettings(*(getattr(args, f.name) for f in dataclasses.fields(settings)))
    quality = score(truth, detect(events, settings, base), settings)
    print(f"settings: {settings.label()}\n{HEADER}")
    print("\n".join(_row(s) for s in quality.scores.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
