"""Every livepulse metric, defined once against an injectable registry.

Naming follows Prometheus conventions: prefix ``livepulse_``, base units, ``_total`` only
on counters, and no per-stream labels (label values are bounded).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

from processor.core.alerts import TierChanged
from processor.core.engine import Engine, Outcome
from processor.core.tiers import TIERS

disable_created_metrics()  # type: ignore[no-untyped-call]

EVENT_TYPES = (
    "live_start",
    "like",
    "gift",
    "comment",
    "follow",
    "share",
    "join",
    "viewers",
    "live_end",
)


class Metrics:
    """The worker's metrics. Tests pass a fresh ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry, usd_per_coin: float = 0.005) -> None:
        self.registry = registry
        self.usd_per_coin = usd_per_coin
        self.events = Counter(
            "livepulse_events",
            "Valid events processed, by event type.",
            ["type"],
            registry=registry,
        )
        self.invalid_events = Counter(
            "livepulse_invalid_events",
            "Records sent to the dead-letter topic, by reason.",
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
        self.alerts = Counter(
            "livepulse_alerts_published",
            "Alerts published, by alert type.",
            ["type"],
            registry=registry,
        )
        self.tier_transitions = Counter(
            "livepulse_tier_transitions",
            "Tier changes, by policy and tiers.",
            ["policy", "from_tier", "to_tier"],
            registry=registry,
        )
        self.active_streams = Gauge(
            "livepulse_active_streams", "Streams with state in this worker.", registry=registry
        )
        self.streams_by_tier = Gauge(
            "livepulse_streams", "Active streams by current tier.", ["tier"], registry=registry
        )
        for event_type in EVENT_TYPES:
            self.events.labels(type=event_type)
        for tier in TIERS:
            self.streams_by_tier.labels(tier=str(tier))

    def record_event(self, event_type: str, outcome: Outcome) -> None:
        """A valid, in-time event and what it added."""
        self.events.labels(type=event_type).inc()
        if outcome.likes:
            self.likes.inc(outcome.likes)
        if outcome.gifts:
            self.gifts.inc(outcome.gifts)
            self.coins.inc(outcome.coins)
            self.creator_usd.inc(outcome.coins * self.usd_per_coin)

    def record_invalid(self, reason: str) -> None:
        """A record sent to the dead-letter topic."""
        self.invalid_events.labels(reason=reason).inc()

    def record_alert(self, alert: TierChanged, latency_seconds: float) -> None:
        """An alert published ``latency_seconds`` after its event reached Kafka."""
        self.alerts.labels(type=alert.type).inc()
        self.tier_transitions.labels(
            policy=alert.policy, from_tier=alert.from_tier, to_tier=alert.to_tier
        ).inc()

    def refresh(self, engine: Engine) -> None:
        """Gauges read from the engine's state, on a timer rather than per event."""
        self.active_streams.set(len(engine.streams))
        for tier, count in engine.tier_counts().items():
            self.streams_by_tier.labels(tier=str(tier)).set(count)
