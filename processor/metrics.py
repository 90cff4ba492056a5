"""Every livepulse metric, defined once against an injectable registry.

Naming follows Prometheus conventions: prefix ``livepulse_``, base units (seconds),
``_total`` only on counters (prometheus_client appends it), ``_created`` series off, and
bounded label values. The one place a stream id appears is the top-K gauges, bounded by
``top_k`` rows each. README.md lists every metric; a unit test keeps it in step
with this module.

The worker calls methods on :class:`Metrics`, never metric objects: ``record_applied`` once
per fetched batch (and idle tick), ``refresh`` and ``set_consumer_lag`` on timers. This
module only records: what it is given, the domain (:mod:`processor.core.standings`) and the
worker (:mod:`processor.worker.lag`) measure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from processor.contract import EVENT_TYPES, Reason
from processor.core.alerts import ALERT_TYPES, GoalReached, Spike, TierChanged
from processor.core.engine import COINS, LIKES, WINDOW_LIKES_POLICY
from processor.core.standings import Ranked, Standings
from processor.core.tiers import TIERS

disable_created_metrics()  # type: ignore[no-untyped-call]

log = logging.getLogger("livepulse.metrics")

# Every dead-letter reason, exported at 0 from the start so rate() sees the first one.
DEAD_LETTER_REASONS = tuple(Reason)

# Event-to-alert latency: from a few milliseconds (caught up) to a minute (far behind).
ALERT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# The metrics a spike or a goal is about (label ``metric``), exported at 0 from the start.
ALERT_METRICS = (LIKES, COINS)

DEFAULT_TOP_K = 10


class SnapshotGauge(Collector):
    """A gauge family whose whole set of series is replaced at once.

    ``set`` swaps one tuple, so a scrape running in the metrics server's thread sees either
    the previous set or the new one, never a half-cleared family; series not in the new
    set vanish. Used where the label values themselves change (top-K stream ids, assigned
    partitions) and where a value can be undefined (no stream yet: no series).
    """

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._rows: tuple[tuple[tuple[str, ...], float], ...] = ()
        registry.register(self)

    def set(self, rows: Iterable[tuple[Sequence[str], float]]) -> None:
        """Replace every series: ``rows`` are (label values in ``labelnames`` order, value)."""
        new = tuple((tuple(labels), float(value)) for labels, value in rows)
        for labels, _ in new:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {labels}")
        self._rows = new

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self._rows:
            family.add_metric(list(labels), value)
        yield family


class Published(Protocol):
    """An alert the worker published (``TierChanged`` and the other alert types)."""

    @property
    def type(self) -> str: ...


class BatchOutcome(Protocol):
    """What one batch (or idle tick) did, as the worker's partition layer reports it
    (``processor.worker.partitions.Applied`` is one)."""

    @property
    def events(self) -> Mapping[str, int]: ...  # valid, counted events by type

    @property
    def invalid(self) -> Mapping[Reason, int]: ...  # dead letters by reason

    @property
    def likes(self) -> int: ...

    @property
    def gifts(self) -> int: ...

    @property
    def coins(self) -> int: ...

    @property
    def windows(self) -> int: ...  # closed tumbling windows published

    @property
    def alerts(self) -> Sequence[tuple[Published, int | None]]:
        """Each alert with the Kafka timestamp (ms) of the record that caused it (None:
        idle decay caused it)."""
        ...


class Metrics:
    """The worker's metrics. Tests pass a fresh ``CollectorRegistry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        usd_per_coin: float = 0.005,
        top_k: int = DEFAULT_TOP_K,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.registry = registry
        self.usd_per_coin = usd_per_coin
        self.top_k = top_k
        self.events = Counter(
            "livepulse_events",
            "Valid events processed, by event type.",
            ["type"],
            registry=registry,
        )
        self.invalid_events = Counter(
            "livepulse_invalid_events",
            "Records sent to the dead-letter topic, by reason (late events: reason late).",
            ["reason"],
            registry=registry,
        )
        self.likes = Counter(
            "livepulse_likes", "Likes counted (growth of the room like total).", registry=registry
        )
        self.gifts = Counter(
            "livepulse_gifts",
            "Gifts counted (combos counted once, at repeat_end).",
            registry=registry,
        )
        self.coins = Counter("livepulse_coins", "Coins of counted gifts.", registry=registry)
        self.creator_usd = Counter(
            "livepulse_creator_usd",
            "Estimated creator revenue in US dollars (coins x LIVEPULSE_USD_PER_COIN).",
            registry=registry,
        )
        self.windows_closed = Counter(
            "livepulse_windows_closed",
            "Closed per-stream tumbling windows published.",
            registry=registry,
        )
        self.alerts = Counter(
            "livepulse_alerts_published",
            "Alerts published, by alert type.",
            ["type"],
            registry=registry,
        )
        self.spikes = Counter(
            "livepulse_spikes",
            "Spike alerts published, by the metric that spiked (likes or coins).",
            ["metric"],
            registry=registry,
        )
        self.goals = Counter(
            "livepulse_goals",
            "Goal-reached alerts published, by metric (likes or coins).",
            ["metric"],
            registry=registry,
        )
        self.tier_transitions = Counter(
            "livepulse_tier_transitions",
            "Tier changes, by policy and tiers.",
            ["policy", "from_tier", "to_tier"],
            registry=registry,
        )
        self.alert_latency = Histogram(
            "livepulse_alert_latency_seconds",
            "Seconds from an event's arrival on Kafka (record timestamp) to its alert's publish.",
            buckets=ALERT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.checkpoint_records = Counter(
            "livepulse_checkpoint_records",
            "Checkpoint records written to the state topic (one per changed stream, plus one "
            "per partition).",
            registry=registry,
        )
        self.checkpoint_bytes = Counter(
            "livepulse_checkpoint_bytes",
            "Bytes of checkpoint records written to the state topic.",
            registry=registry,
        )
        self.transactions = Counter(
            "livepulse_transactions",
            "Kafka transactions of input partitions (outputs, checkpoint and offsets), by "
            "result: committed, or failed (nothing of it is visible to read_committed readers).",
            ["result"],
            registry=registry,
        )
        self.partitions_lost = Counter(
            "livepulse_partitions_lost",
            "Input partitions this worker stopped working on after a failed transaction, by "
            "cause: fenced (another worker took the partition over) or failed (taken back "
            "from the state topic).",
            ["cause"],
            registry=registry,
        )
        for result in ("committed", "failed"):
            self.transactions.labels(result)
        for cause in ("fenced", "failed"):
            self.partitions_lost.labels(cause)
        self.restore_seconds = Gauge(
            "livepulse_restore_seconds",
            "Seconds the last restore of assigned partitions from the state topic took.",
            registry=registry,
        )
        self.active_streams = Gauge(
            "livepulse_active_streams", "Streams with state in this worker.", registry=registry
        )
        self.streams_by_tier = Gauge(
            "livepulse_streams", "Active streams by current tier.", ["tier"], registry=registry
        )
        self.stream_time_lag = SnapshotGauge(
            "livepulse_stream_time_lag_seconds",
            "Wall clock minus the newest stream time (event time) of any active stream; "
            "absent while there is none.",
            [],
            registry,
        )
        self.consumer_lag = SnapshotGauge(
            "livepulse_consumer_lag_messages",
            "Records of the events topic not yet committed, by assigned partition.",
            ["partition"],
            registry,
        )
        self.top_likes = SnapshotGauge(
            "livepulse_top_stream_likes",
            f"Windowed likes of the top {top_k} streams by windowed likes "
            "(rank 1 = most; ties by stream_id).",
            ["rank", "stream_id"],
            registry,
        )
        self.top_coins = SnapshotGauge(
            "livepulse_top_stream_coins",
            f"Windowed coins of the top {top_k} streams by windowed coins "
            "(rank 1 = most; ties by stream_id).",
            ["rank", "stream_id"],
            registry,
        )
        self.top_coins_per_minute = SnapshotGauge(
            "livepulse_top_stream_coins_per_minute",
            f"Coins in the trailing minute (tumbling window) of stream time of the top {top_k} "
            "streams by that value (rank 1 = most; ties by stream_id).",
            ["rank", "stream_id"],
            registry,
        )
        self.top_creator_coins = SnapshotGauge(
            "livepulse_top_creator_coins_today",
            f"Coins of the top {top_k} creators of the newest calendar day (event time, "
            "LIVEPULSE_TIME_ZONE) among those whose days this worker keeps (rank 1 = most; "
            "ties by creator_id).",
            ["rank", "creator_id", "day"],
            registry,
        )
        # Known label values exist at 0 from the start, so rate() and increase() see the
        # first increment and dashboards show 0 rather than "no data".
        # children looked up once: .labels() per event costs a lock and a dict lookup
        self._events_by_type = {t: self.events.labels(type=t) for t in EVENT_TYPES}
        for reason in DEAD_LETTER_REASONS:
            self.invalid_events.labels(reason=reason)
        for alert_type in ALERT_TYPES:
            self.alerts.labels(type=alert_type)
        for metric in ALERT_METRICS:
            self.spikes.labels(metric=metric)
            self.goals.labels(metric=metric)
        for from_tier in TIERS:
            for to_tier in TIERS:
                if from_tier is not to_tier:
                    self.tier_transitions.labels(
                        policy=WINDOW_LIKES_POLICY, from_tier=str(from_tier), to_tier=str(to_tier)
                    )
        for tier in TIERS:
            self.streams_by_tier.labels(tier=str(tier))

    def record_applied(self, applied: BatchOutcome, now: float) -> None:
        """What one batch (or idle tick) did: events by type, counts, dead letters, windows,
        alerts. ``now`` (epoch seconds) is when its outputs were handed to the producer."""
        for event_type, n in applied.events.items():
            self._events_by_type[event_type].inc(n)
        if applied.likes:
            self.likes.inc(applied.likes)
        if applied.gifts:
            self.gifts.inc(applied.gifts)
            self.coins.inc(applied.coins)
            self.creator_usd.inc(applied.coins * self.usd_per_coin)
        for reason, n in applied.invalid.items():
            self.invalid_events.labels(reason=reason).inc(n)
        if applied.windows:
            self.windows_closed.inc(applied.windows)
        for alert, caused_at_ms in applied.alerts:
            self.record_alert(alert, None if caused_at_ms is None else now - caused_at_ms / 1000)

    def record_checkpoint(self, records: int, size: int) -> None:
        """A checkpoint of ``records`` records, ``size`` bytes, written to the state topic."""
        self.checkpoint_records.inc(records)
        self.checkpoint_bytes.inc(size)

    def record_transactions(self, committed: int, failed: int) -> None:
        """Partition transactions committed and failed in one commit."""
        if committed:
            self.transactions.labels("committed").inc(committed)
        if failed:
            self.transactions.labels("failed").inc(failed)

    def record_partition_lost(self, fenced: bool) -> None:
        """An input partition dropped after a failed transaction."""
        self.partitions_lost.labels("fenced" if fenced else "failed").inc()

    def record_restore(self, seconds: float) -> None:
        """Assigned partitions restored from the state topic in ``seconds``."""
        self.restore_seconds.set(seconds)

    def record_alert(self, alert: Published, latency_seconds: float | None) -> None:
        """An alert published ``latency_seconds`` after its event reached Kafka.

        Every alert counts by its ``type``; a tier change also counts as a transition, a
        spike or a goal reached by its metric.
        ``latency_seconds`` is None for an alert no event caused (idle decay on a timer):
        it is not observed. A negative latency (producer clock ahead of ours) is observed
        as 0, so the histogram's sum never decreases.
        """
        self.alerts.labels(type=alert.type).inc()
        if isinstance(alert, TierChanged):
            self.tier_transitions.labels(
                policy=alert.policy, from_tier=alert.from_tier, to_tier=alert.to_tier
            ).inc()
        elif isinstance(alert, Spike):
            self.spikes.labels(metric=alert.metric).inc()
        elif isinstance(alert, GoalReached):
            self.goals.labels(metric=alert.metric).inc()
        if latency_seconds is not None:
            self.alert_latency.observe(max(0.0, latency_seconds))

    def refresh(self, standings: Standings, now: float | None = None) -> None:
        """The stream gauges, from the engines' standings (taken with ``k`` = ``top_k``) on
        a timer rather than per event. ``now`` is the wall clock in epoch seconds (default:
        ``time.time()``)."""
        now = time.time() if now is None else now
        self.active_streams.set(standings.active)
        for tier in TIERS:
            self.streams_by_tier.labels(tier=str(tier)).set(standings.by_tier.get(tier, 0))
        newest = standings.newest_stream_time_ms
        self.stream_time_lag.set([] if newest is None else [((), now - newest / 1000)])
        self.top_likes.set(_ranked(standings.top_likes))
        self.top_coins.set(_ranked(standings.top_coins))
        self.top_coins_per_minute.set(_ranked(standings.top_coins_per_minute))

    def set_top_creators(self, day: str | None, top: Ranked) -> None:
        """The creator-days agent's top creators by coins on ``day`` (None: no day yet)."""
        self.top_creator_coins.set(
            ((str(rank), creator_id, day or ""), coins)
            for rank, (creator_id, coins) in enumerate(top, 1)
        )

    def set_consumer_lag(self, lag: Mapping[int, int]) -> None:
        """Lag per assigned partition; partitions not in ``lag`` (revoked) vanish."""
        self.consumer_lag.set(((str(p),), n) for p, n in sorted(lag.items()))


def _ranked(top: Ranked) -> list[tuple[tuple[str, str], int]]:
    return [((str(rank), stream_id), value) for rank, (stream_id, value) in enumerate(top, 1)]
