"""What the engine publishes: alerts (alert contract v1) and closed tumbling windows.

Each output is a frozen msgspec Struct whose fields, in declaration order, are the JSON
object subscribers get: :func:`encode_output` writes it with the contract's one encoder, and
``python -m processor.schemas`` writes ``schemas/alert.v1.schema.json`` and
``schemas/window.v1.schema.json`` from these classes (a unit test fails when the checked-in
files differ), so the published contract cannot drift from the code. Every field is always
written: defaults only fill in what the engine need not pass (``v``, ``type``, and
``emitted_at``, set at publication) and what an alert published before a field was added
lacks when ``livepulse alerts`` reads it back.

An alert type is one Struct in :data:`Alert`, with a ``line()`` for ``livepulse alerts``;
the registry :data:`ALERT_TYPES`, the metrics' labels and the schema follow from the union.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

import msgspec
from msgspec import Meta, Struct

from processor.contract import encode
from processor.core.tiers import Tier

ALERT_VERSION: Final = 1


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def tier_change_id(
    stream_id: str, policy: str, sequence: int, to_tier: str, event_time: int
) -> str:
    """Deterministic id of a tier change: the n-th transition of a stream under a policy.

    The same input replayed (after a restart, or by a second deployment) gives the same
    id, so subscribers can de-duplicate on it.
    """
    return _digest(stream_id, policy, sequence, to_tier, event_time)


def stream_ended_id(stream_id: str, ended_at: int) -> str:
    """Deterministic id of a stream's end."""
    return _digest(stream_id, "stream_ended", ended_at)


def spike_id(stream_id: str, metric: str, minute_start: int) -> str:
    """Deterministic id of a spike: at most one per stream, metric and minute."""
    return _digest(stream_id, "spike", metric, minute_start)


def goal_id(stream_id: str, metric: str, goal: int) -> str:
    """Deterministic id of a goal reached: once per stream, metric and goal."""
    return _digest(stream_id, "goal", metric, goal)


# --- field types: the JSON Schema constraints travel with them ------------------------------

Version = Literal[1]
AlertId = Annotated[str, Meta(pattern="^[0-9a-f]{32}$")]
Id = Annotated[str, Meta(min_length=1)]
Count = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
Amount = Annotated[float, Meta(ge=0)]
EventTime = Annotated[int, Meta(description="stream time (ms) at which it happened")]
EmittedAt = Annotated[int, Meta(description="wall clock (ms) when the worker published it")]
# Plain str in Python (the engine passes its own constants); the schema lists the values.
Metric = Annotated[str, Meta(extra_json_schema={"enum": ["likes", "coins"]})]
Policy = Annotated[
    str,
    Meta(
        extra_json_schema={"enum": ["window_likes", "session_likes"]},
        description="window_likes: likes in the trailing tier window; session_likes: likes "
        "since the stream started (milestones, up only)",
    ),
]
EndReason = Annotated[str, Meta(extra_json_schema={"enum": ["ended", "suspended", "inactive"]})]
PerViewer = Annotated[float, Meta(ge=0)] | None


class ViewerFigures(Struct, frozen=True):
    """From viewers events: the latest count, the peak, the mean of the counts."""

    current: Count
    peak: Count
    average: Amount


MaybeViewers = Annotated[
    ViewerFigures | None,
    Meta(description="the stream's viewer figures; null when no viewers event was seen"),
]


class Gifter(Struct, frozen=True):
    """A top gifter: coins and gifts sent in the span."""

    user_id: Id
    coins: Positive
    gifts: Positive


class Liker(Struct, frozen=True):
    """A top liker: likes sent in the span."""

    user_id: Id
    likes: Positive


class TopUsers(Struct, frozen=True):
    """The top gifters (by coins) and likers (by likes sent) of a span of event time.

    ``exact`` is false once a summary behind it had to evict a user (more distinct users
    than it tracks): the values are then Space-Saving estimates (README, "Top gifters and
    likers").
    """

    start: int
    end: int
    exact: bool
    gifters: tuple[Gifter, ...]
    likers: tuple[Liker, ...]


# what an alert published before ``top`` existed reads back as (nobody named)
NO_TOP_USERS = TopUsers(0, 0, True, (), ())


class WindowSnapshot(Struct, frozen=True):
    """A window's content: the trailing tier window at an alert, or a closed tumbling one."""

    start: Annotated[int, Meta(description="window start, ms, inclusive")]
    end: Annotated[int, Meta(description="window end, ms, exclusive")]
    likes: Count
    gifts: Count
    coins: Count
    creator_usd: Amount


class Session(Struct, frozen=True):
    """A session's totals."""

    likes: Count
    gifts: Count
    coins: Count
    creator_usd: Amount


class Minute(Struct, frozen=True):
    """A tumbling window's span: [start, end) in ms."""

    start: int
    end: int


class AlertBase(Struct, frozen=True, kw_only=True):
    """The fields every alert starts with. ``type`` is a plain field (not a msgspec tag, which
    would be written first) so the JSON keeps its order: ``v``, ``alert_id``, ``type``..."""

    v: Version = ALERT_VERSION
    alert_id: AlertId
    type: str
    stream_id: Id
    creator_id: Id

    def line(self) -> str:
        """One readable line for ``livepulse alerts``; a type without its own prints JSON."""
        return encode(self).decode()

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        """The published JSON object as Python values (what tests and models compare)."""
        return _to_record(self, emitted_at)


class TierChanged(AlertBase, frozen=True, kw_only=True):
    """A stream moved from one tier to another under a policy."""

    type: Literal["tier_changed"] = "tier_changed"
    policy: Policy
    from_tier: Tier
    to_tier: Tier
    direction: Literal["up", "down"]
    value: Annotated[int, Meta(ge=0, description="the policy's metric at the transition")]
    threshold: Annotated[
        int, Meta(ge=0, description="entry threshold of the higher of the two tiers")
    ]
    event_time: EventTime
    emitted_at: EmittedAt = 0
    window: WindowSnapshot
    top: Annotated[
        TopUsers,
        Meta(
            description="top senders of the tumbling windows (minutes) overlapping the tier window"
        ),
    ] = NO_TOP_USERS
    viewers: MaybeViewers = None

    def line(self) -> str:
        extra = _top_brief(self.top) + _current_viewers(self.viewers)
        head = f"{_when(self.event_time)} {{}} {self.stream_id} ({self.creator_id})"
        if self.policy == "session_likes":
            return (
                f"{head.format('★')} reached {self.to_tier}: {self.value:,} likes this session"
                + extra
            )
        w = self.window
        return (
            f"{head.format('▲' if self.direction == 'up' else '▼')} {self.from_tier} -> "
            f"{self.to_tier}: {self.value:,} likes in the last {(w.end - w.start) // 1000}s, "
            f"{w.gifts:,} gifts, {w.coins:,} coins (~${w.creator_usd:,.2f} to the creator)" + extra
        )


class StreamEnded(AlertBase, frozen=True, kw_only=True):
    """A stream's session is over: by ``live_end`` or by inactivity."""

    type: Literal["stream_ended"] = "stream_ended"
    reason: EndReason
    started_at: Annotated[int, Meta(description="ts of live_start, or of the first event seen")]
    event_time: EventTime
    duration_ms: Count  # event_time - started_at
    emitted_at: EmittedAt = 0
    session: Session
    peak_tier: Tier
    final_tier: Tier
    top: Annotated[TopUsers, Meta(description="top senders of the session")] = NO_TOP_USERS
    viewers: MaybeViewers = None
    likes_per_viewer: Annotated[
        PerViewer, Meta(description="session likes / average viewers; null without viewers data")
    ] = None
    coins_per_viewer: Annotated[
        PerViewer, Meta(description="session coins / average viewers; null without viewers data")
    ] = None

    def line(self) -> str:
        s = self.session
        line = (
            f"{_when(self.event_time)} ■ {self.stream_id} ({self.creator_id}) ended "
            f"({self.reason}) after {self.duration_ms / 60_000:.1f} min: {s.likes:,} likes, "
            f"{s.gifts:,} gifts, {s.coins:,} coins (~${s.creator_usd:,.2f} to the creator), "
            f"peak tier {self.peak_tier}"
        )
        line += _top_brief(self.top)
        if self.viewers:
            line += f"; viewers peak {self.viewers.peak:,}, avg {_num(self.viewers.average)}"
            likes, coins = self.likes_per_viewer, self.coins_per_viewer
            if likes is not None and coins is not None:
                line += f", {_num(likes)} likes and {_num(coins)} coins per viewer"
        return line


# How many of a spike's top contributors its line names.
SPIKE_CONTRIBUTORS = 3


class Spike(AlertBase, frozen=True, kw_only=True):
    """Likes or coins of a stream's current minute rose past ``ratio`` times its own baseline
    (and past an absolute floor)."""

    type: Literal["spike"] = "spike"
    metric: Metric
    value: Annotated[int, Meta(ge=1, description="the metric in the minute so far")]
    baseline: Annotated[
        float,
        Meta(ge=0, description="the metric per minute over the tier window before the minute"),
    ]
    baseline_minutes: Annotated[
        float, Meta(ge=0, description="minutes of history the baseline covers")
    ]
    ratio: Annotated[
        Annotated[float, Meta(ge=0)] | None,
        Meta(description="value / baseline; null when the baseline is 0"),
    ]
    threshold: Annotated[
        float,
        Meta(ge=0, description="max(floor, spike_ratio x baseline): what the minute had to reach"),
    ]
    minute: Minute
    event_time: EventTime
    emitted_at: EmittedAt = 0
    top: Annotated[TopUsers, Meta(description="top senders of the minute so far")] = NO_TOP_USERS
    viewers: MaybeViewers = None

    def line(self) -> str:
        metric = self.metric
        minute = datetime.fromtimestamp(self.minute.start / 1000, tz=UTC).strftime("%H:%M")
        versus = (
            f"{_num(self.ratio)}x the baseline of {_num(self.baseline)}/min"
            if self.ratio is not None
            else "from a baseline of 0/min"
        )
        line = (
            f"{_when(self.event_time)} ⚡ {self.stream_id} ({self.creator_id}) {metric} spike: "
            f"{self.value:,} {metric} in the minute from {minute}, {versus} over "
            f"{_num(self.baseline_minutes)} min"
        )
        top = self.top
        approx = "" if top.exact else "~"
        if metric == "coins":
            named = [f"{g.user_id} ({approx}{g.coins:,})" for g in top.gifters]
            label = "top gifter"
        else:
            named = [f"{u.user_id} ({approx}{u.likes:,})" for u in top.likers]
            label = "top liker"
        named = named[:SPIKE_CONTRIBUTORS]
        if named:
            line += f"; {label}{'s' if len(named) > 1 else ''} " + ", ".join(named)
        return line + _current_viewers(self.viewers)


class GoalReached(AlertBase, frozen=True, kw_only=True):
    """A stream's session likes or coins reached one of the configured goals."""

    type: Literal["goal_reached"] = "goal_reached"
    metric: Metric
    goal: Positive
    value: Annotated[
        int, Meta(ge=1, description="the session total just after the goal was reached")
    ]
    event_time: EventTime
    emitted_at: EmittedAt = 0
    viewers: MaybeViewers = None

    def line(self) -> str:
        return (
            f"{_when(self.event_time)} ◎ {self.stream_id} ({self.creator_id}) reached its goal "
            f"of {self.goal:,} {self.metric}: {self.value:,} {self.metric} this session"
            + _current_viewers(self.viewers)
        )


class WindowClosed(Struct, frozen=True, kw_only=True):
    """A closed tumbling window of one stream: published once per stream and non-empty
    window, when stream time passes the window's end plus the grace period (or the stream
    ends). ``window_id`` = ``stream_id@start`` is unique; de-duplicate on it."""

    v: Version = ALERT_VERSION
    type: Literal["window_closed"] = "window_closed"
    window_id: str  # stream_id@start
    stream_id: Id
    creator_id: Id
    emitted_at: int = 0
    window: WindowSnapshot

    def to_record(self, emitted_at: int) -> dict[str, Any]:
        """The published JSON object as Python values (what tests and models compare)."""
        return _to_record(self, emitted_at)


Alert = TierChanged | StreamEnded | Spike | GoalReached
Output = Alert | WindowClosed
ALERT_CLASSES: tuple[type[AlertBase], ...] = get_args(Alert)


def type_of(cls: type[AlertBase] | type[WindowClosed]) -> str:
    """The ``type`` a class of output writes."""
    (default,) = (f.default for f in msgspec.structs.fields(cls) if f.name == "type")
    assert isinstance(default, str)
    return default


ALERT_TYPES: dict[str, type[AlertBase]] = {type_of(cls): cls for cls in ALERT_CLASSES}
"""Each alert type's class, by its ``type``: the one list of alert types."""


def encode_output(output: AlertBase | WindowClosed, emitted_at: int) -> bytes:
    """The record value of ``output`` published at wall clock ``emitted_at`` (ms)."""
    return encode(msgspec.structs.replace(output, emitted_at=emitted_at))


def _to_record(output: AlertBase | WindowClosed, emitted_at: int) -> dict[str, Any]:
    record: dict[str, Any] = msgspec.json.decode(encode_output(output, emitted_at))
    return record


# --- parts of the lines of livepulse alerts -------------------------------------------------


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def _num(x: float) -> str:
    """A count or a rounded float as a reader wants it: 1,234 / 210.5 / 16.15 / 0.0042."""
    if float(x).is_integer():
        return f"{int(x):,}"
    if abs(x) < 1:
        return f"{x:.2g}"  # 0.0042, not 0.00
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _top_brief(top: TopUsers) -> str:
    """'; top gifter u1 (500 coins), top liker u2 (120 likes)': the first of each, if any;
    values marked ~ when the summaries behind them are estimates."""
    approx = "" if top.exact else "~"
    parts = []
    if top.gifters:
        g = top.gifters[0]
        parts.append(f"top gifter {g.user_id} ({approx}{g.coins:,} coins)")
    if top.likers:
        u = top.likers[0]
        parts.append(f"top liker {u.user_id} ({approx}{u.likes:,} likes)")
    return "; " + ", ".join(parts) if parts else ""


def _current_viewers(viewers: ViewerFigures | None) -> str:
    return f"; {viewers.current:,} viewers" if viewers else ""
