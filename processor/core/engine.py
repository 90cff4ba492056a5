"""Per-stream state and the engine that turns validated events into alerts and windows.

Pure: no Kafka, no Faust, no clock. The Faust layer feeds one engine per input partition
with events in partition order (and the wall-clock time it saw them, which only drives
idle decay) and publishes what it returns.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from operator import itemgetter

import msgspec

from processor.contract import Event, Gift, Like, LiveEnd, LiveStart, Reason, Viewers
from processor.core import contributors
from processor.core.alerts import (
    Gifter,
    GoalReached,
    Liker,
    Minute,
    Output,
    Session,
    Spike,
    StreamEnded,
    TierChanged,
    TopUsers,
    ViewerFigures,
    WindowClosed,
    WindowSnapshot,
    goal_id,
    spike_id,
    stream_ended_id,
    tier_change_id,
)
from processor.core.contributors import Summary
from processor.core.creators import DayLedger, StreamDay, day_part
from processor.core.days import Calendar
from processor.core.panes import minutes_of, pack, seal, start_of, unseal
from processor.core.rules import gift_value, like_growth
from processor.core.tiers import Tier, TierPolicy
from processor.core.windows import SlidingTotals, Totals, TumblingTotals
from processor.settings import Settings, engine_values

WINDOW_LIKES_POLICY = "window_likes"
SESSION_LIKES_POLICY = "session_likes"
LIKES = "likes"
COINS = "coins"
ARMED = -1  # a spike detector's state when armed; else the minute it last fired or checked in
NO_END = 2**62  # a time past every event's


# the settings' defaults, in the engine's units: each setting is declared (with its
# default and the rule its value follows) once, in processor/settings.py
_DEFAULT = engine_values(Settings())


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine needs from the settings (times in milliseconds):
    :meth:`from_settings` builds it from validated settings; the engine checks nothing
    again. Each field's default is its setting's."""

    tier_window_ms: int = _DEFAULT["tier_window_ms"]
    tier_step_ms: int = _DEFAULT["tier_step_ms"]
    tumbling_ms: int = _DEFAULT["tumbling_ms"]
    grace_ms: int = _DEFAULT["grace_ms"]
    moderate: int = _DEFAULT["moderate"]
    high: int = _DEFAULT["high"]
    hysteresis: float = _DEFAULT["hysteresis"]
    session_moderate: int = _DEFAULT["session_moderate"]
    session_high: int = _DEFAULT["session_high"]
    inactivity_ms: int = _DEFAULT["inactivity_ms"]
    usd_per_coin: float = _DEFAULT["usd_per_coin"]
    ended_memory: int = 10_000  # ended streams remembered (not a setting)
    top_users: int = _DEFAULT["top_users"]
    top_users_tracked: int = _DEFAULT["top_users_tracked"]
    spike_ratio: float = _DEFAULT["spike_ratio"]
    spike_rearm_ratio: float = _DEFAULT["spike_rearm_ratio"]
    spike_min_likes: int = _DEFAULT["spike_min_likes"]
    spike_min_coins: int = _DEFAULT["spike_min_coins"]
    spike_history_ms: int = _DEFAULT["spike_history_ms"]
    like_goals: tuple[int, ...] = _DEFAULT["like_goals"]
    coin_goals: tuple[int, ...] = _DEFAULT["coin_goals"]
    time_zone: str = _DEFAULT["time_zone"]

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The engine's configuration from the settings (each setting says which field it
        sets, in which unit)."""
        return cls(**engine_values(settings))

    @property
    def spikes_possible(self) -> bool:
        """Whether the tier window leaves room for the baseline history a spike needs."""
        return self.spike_history_ms <= self.tier_window_ms - self.tumbling_ms


@dataclass(slots=True)
class StreamState:
    """Everything the engine remembers about one live stream."""

    stream_id: str
    creator_id: str
    window: SlidingTotals
    tumbling: TumblingTotals
    started_ms: int
    stream_time_ms: int
    max_event_ms: int
    # the idle clock (wall clock minus the engine's downtime) when max_event_ms was seen;
    # drives idle decay only
    seen_wall_ms: int = 0
    like_total: int | None = None
    tier: Tier = Tier.LOW
    peak_tier: Tier = Tier.LOW
    session_tier: Tier = Tier.LOW
    transitions: int = 0
    session_transitions: int = 0
    session: Totals = field(default_factory=Totals)
    # who sent what: over the session, and per tumbling window (minute) of the tier window
    top: Summary | None = None
    panes: list[Summary] | None = None  # the minutes still open, in order of their start
    sealed: bytes | None = None  # the closed minutes of the tier window (panes.pack)
    sealed_from: int = 0  # the start of the oldest of them
    # viewers events: the latest count (by ts), the peak, and the sum and number of counts
    viewers_ts: int = 0
    viewers_current: int = 0
    viewers_peak: int = 0
    viewers_sum: int = 0
    viewers_samples: int = 0
    # spike detectors: ARMED, or the minute start they last fired or checked in
    likes_spike: int = ARMED
    coins_spike: int = ARMED
    # calendar days: the stream time at which the next midnight (or, once past one, the
    # end of its grace period) needs the day ledger; the ledger exists from a stream's
    # first midnight on (a session within one day is its own day's part)
    day_turn_ms: int = 0
    ledger: DayLedger | None = None


def _time_shown(state: StreamState) -> tuple[int, int, int, int, int, int]:
    """What of a stream's table row time alone can change: its tier window's likes, gifts
    and coins, and those of its current minute (zero once the minute is past)."""
    window, minute = state.window, state.tumbling
    if minute.start != state.stream_time_ms - state.stream_time_ms % minute.size_ms:
        return (window.likes, window.gifts, window.coins, 0, 0, 0)
    return (window.likes, window.gifts, window.coins, minute.likes, minute.gifts, minute.coins)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one event produced (the convenient, per-event form of :meth:`Engine.apply`)."""

    outputs: tuple[Output, ...] = ()
    late: Reason | None = None  # why the event was not counted, if it was not
    likes: int = 0
    gifts: int = 0
    coins: int = 0


class Engine:
    """Windowed like and gift counts per stream, tier changes, sessions."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.policy = TierPolicy(
            WINDOW_LIKES_POLICY, config.moderate, config.high, config.hysteresis
        )
        self.session_policy = TierPolicy(
            SESSION_LIKES_POLICY, config.session_moderate, config.session_high, 0.0
        )
        # a tier holds while its value stays in its band: one compare per count, no classify
        self._window_band = {tier: self.policy.band(tier) for tier in Tier}
        self._session_up = {tier: self.session_policy.band(tier)[1] for tier in Tier}
        self.streams: dict[str, StreamState] = {}
        # recently ended streams (-> when), so a straggler event does not start a ghost
        # session; the oldest is forgotten first
        self.ended: OrderedDict[str, int] = OrderedDict()
        # streams whose state changed since a checkpoint last looked (ended ones included)
        self.changed: set[str] = set()
        # ended streams dropped from ``ended`` since a checkpoint last looked (-> when)
        self.forgotten: dict[str, int] = {}
        # the idle clock of the last :meth:`tick` (-1: none yet): what idle time did to the
        # streams by then, a restore recomputes from it
        self.ticked_ms = -1
        # Idle clocks run on the wall clock minus this: the time the partition's worker was
        # down, summed over restores, which is not idle time (a restore adds to it).
        self.downtime_ms = 0
        # The partition's time (:meth:`partition_time`): the largest event ts applied
        # (-1: none yet) and the idle clock when it was seen, as of the last look at the
        # changed streams; and the partition time as last worked out (-1: none)
        self.event_ms = -1
        self.event_seen_ms = 0
        self.partition_ms = -1
        # likes, gifts and coins counted since the caller last reset it (for metrics)
        self.counted = Totals()
        self.calendar = Calendar(config.time_zone)
        # streams whose tables' view changed by time alone (a tier change on the idle
        # clock, a calendar day finished): their table records are written again though
        # a checkpoint does not rewrite their state
        self.moved: set[str] = set()
        # the last day parts of streams that ended, until handed out
        self.ended_parts: list[StreamDay] = []
        self._tracked = config.top_users_tracked
        self._step = config.tier_step_ms
        self._grace = config.grace_ms
        # how far stream time runs past a tumbling window's start before it closes
        self._close_lag = config.grace_ms + config.tumbling_ms

    def tier_counts(self) -> dict[Tier, int]:
        """How many active streams are in each tier."""
        counts = dict.fromkeys(Tier, 0)
        for state in self.streams.values():
            counts[state.tier] += 1
        return counts

    def _new_state(self, event: Event, ts: int) -> StreamState:
        c = self.config
        state = StreamState(
            stream_id=event.stream_id,
            creator_id=event.creator_id,
            window=SlidingTotals(c.tier_window_ms, c.tier_step_ms),
            tumbling=TumblingTotals(c.tumbling_ms),
            started_ms=ts,
            stream_time_ms=ts,
            max_event_ms=ts,
        )
        state.day_turn_ms = self.calendar.bounds(self.calendar.day_of(ts))[1]
        state.window.advance(ts)
        self.streams[state.stream_id] = state
        return state

    def process(self, event: Event, wall_ms: int = 0) -> Outcome:
        """Apply one contract-valid event seen at ``wall_ms``; return what it caused."""
        outputs: list[Output] = []
        before = self.counted.as_list()
        late = self.apply(event, wall_ms, outputs)
        likes, gifts, coins = (a - b for a, b in zip(self.counted.as_list(), before, strict=True))
        return Outcome(tuple(outputs), late, likes, gifts, coins)

    def apply(self, event: Event, wall_ms: int, outputs: list[Output]) -> Reason | None:
        """Apply one contract-valid event seen at ``wall_ms``, appending what it caused to
        ``outputs``; returns why it was not counted (late, after the end), else None."""
        # The hot path of the whole worker: each event type is one branch, tested by exact
        # class, and the common cases (no new bucket, no window to close, the tier still in
        # its band) cost a compare each.
        stream_id = event.stream_id
        ts = event.ts
        state = self.streams.get(stream_id)
        if state is None:
            if stream_id in self.ended:
                return Reason.AFTER_END
            state = self._new_state(event, ts)
        if ts > state.stream_time_ms:
            if (
                ts - ts % self._step > state.window.current_bucket
                or state.tumbling.first_start <= ts - self._close_lag
                or ts >= state.day_turn_ms
            ):
                self._advance(state, ts, outputs)
            else:
                state.stream_time_ms = ts
        elif ts < state.stream_time_ms - self._grace:
            return Reason.LATE
        self.changed.add(stream_id)
        if ts >= state.max_event_ms:
            state.max_event_ms = ts
            state.seen_wall_ms = wall_ms - self.downtime_ms
        kind = type(event)
        if kind is Like:
            like: Like = event  # type: ignore[assignment]  # narrowed by the exact class
            count = like.count
            likes, state.like_total = like_growth(state.like_total, count, like.total)
            user = like.user_id
            tracked = self._tracked
            self._pane(state, ts).like(user, count, tracked)
            top = state.top
            if top is None:
                top = state.top = Summary()
            top.like(user, count, tracked)
            if likes:
                self._count_likes(state, ts, likes, outputs)
        elif kind is Gift:
            gift: Gift = event  # type: ignore[assignment]
            gifts, coins = gift_value(
                gift.coins, gift.repeat_count, gift.streakable, gift.repeat_end
            )
            if not gifts:
                return None  # a combo step: only its end counts
            user = gift.user_id
            tracked = self._tracked
            self._pane(state, ts).gift(user, coins, gifts, tracked)
            top = state.top
            if top is None:
                top = state.top = Summary()
            top.gift(user, coins, gifts, tracked)
            self._count_gift(state, ts, gifts, coins, outputs)
        elif kind is Viewers:
            count = event.count  # type: ignore[union-attr]
            if ts >= state.viewers_ts or not state.viewers_samples:
                state.viewers_ts = ts
                state.viewers_current = count
            if count > state.viewers_peak:
                state.viewers_peak = count
            ledger = state.ledger
            if ledger is not None:
                ledger.note_viewers(count, ts)
            state.viewers_sum += count
            state.viewers_samples += 1
        elif kind is LiveStart:
            if state.like_total is None:
                state.like_total = 0
            if ts < state.started_ms:
                state.started_ms = ts
        elif kind is LiveEnd:
            self._end(state, event.reason, state.stream_time_ms, outputs)  # type: ignore[union-attr]
        return None

    def _count_likes(self, state: StreamState, ts: int, likes: int, outputs: list[Output]) -> None:
        window = state.window
        window.add(ts, likes, 0, 0)
        tumbling = state.tumbling
        if ts - ts % tumbling.size_ms == tumbling.start:
            tumbling.likes += likes
        else:
            tumbling.add(ts, likes, 0, 0)
        session = state.session
        session.likes += likes
        self.counted.likes += likes
        # both tiers are by likes: gifts alone cannot move them
        value = window.likes
        low, high = self._window_band[state.tier]
        at = state.stream_time_ms
        if not low <= value < high:
            self._evaluate_window(state, at, outputs)
        if session.likes >= self._session_up[state.session_tier]:
            self._evaluate_session(state, at, outputs)
        config = self.config
        if tumbling.likes >= config.spike_min_likes:
            self._spike(state, ts, LIKES, outputs)
        if config.like_goals:
            self._goals(state, LIKES, session.likes - likes, session.likes, outputs)

    def _count_gift(
        self, state: StreamState, ts: int, gifts: int, coins: int, outputs: list[Output]
    ) -> None:
        state.window.add(ts, 0, gifts, coins)
        tumbling = state.tumbling
        tumbling.add(ts, 0, gifts, coins)
        session = state.session
        session.gifts += gifts
        session.coins += coins
        counted = self.counted
        counted.gifts += gifts
        counted.coins += coins
        config = self.config
        if tumbling.coins >= config.spike_min_coins:
            self._spike(state, ts, COINS, outputs)
        if config.coin_goals:
            self._goals(state, COINS, session.coins - coins, session.coins, outputs)

    def _pane(self, state: StreamState, ts: int) -> Summary:
        """The summary of who sent what in the tumbling window (minute) of ``ts``: one
        still open, as an event of a sealed minute is late."""
        minute = ts - ts % self.config.tumbling_ms
        panes = state.panes
        if panes is None:
            pane = Summary(minute)
            state.panes = [pane]
            return pane
        last = panes[-1]
        if last.start == minute:
            return last
        if last.start < minute:  # a new minute
            pane = Summary(minute)
            panes.append(pane)
            return pane
        for i in range(len(panes) - 2, -1, -1):  # a late event: newest first
            found = panes[i]
            if found.start == minute:
                return found
            if found.start < minute:
                pane = Summary(minute)
                panes.insert(i + 1, pane)
                return pane
        pane = Summary(minute)
        panes.insert(0, pane)
        return pane

    @staticmethod
    def _open_pane(state: StreamState, minute: int) -> Summary | None:
        for pane in state.panes or ():
            if pane.start == minute:
                return pane
        return None

    def age_panes(self, state: StreamState) -> None:
        """Seal the minutes that can no longer change (stream time is past their end plus
        the grace period) and forget those the tier window has left."""
        panes = state.panes
        closing: list[Summary] = []
        if panes:
            limit = state.stream_time_ms - self._close_lag
            closing = [pane for pane in panes if pane.start <= limit]
        oldest = state.window.start_ms - self.config.tumbling_ms  # up to here: gone
        if not closing and (state.sealed is None or state.sealed_from > oldest):
            return
        minutes: list[bytes | msgspec.Raw] = list(minutes_of(state.sealed))
        if panes and closing:
            minutes += [seal(pane.start, pane) for pane in closing]
            del panes[: len(closing)]  # the oldest: panes are in order of their start
            if not panes:
                state.panes = None
        kept = [(start, data) for data in minutes if (start := start_of(data)) > oldest]
        state.sealed = pack([data for _, data in kept])  # oldest first, as they were
        state.sealed_from = kept[0][0] if kept else 0

    def _top(self, summaries: list[Summary], start: int, end: int) -> TopUsers:
        exact, gifters, likers = contributors.top(summaries, self.config.top_users)
        return TopUsers(
            start,
            end,
            exact,
            tuple(Gifter(user, coins, gifts) for user, coins, gifts in gifters),
            tuple(Liker(user, likes) for user, likes in likers),
        )

    def _window_top(self, state: StreamState) -> TopUsers:
        """Who sent what in the tumbling windows that overlap the tier window."""
        window, size = state.window, self.config.tumbling_ms
        first, end = window.start_ms - window.start_ms % size, window.end_ms
        inside = [unseal(data) for data in minutes_of(state.sealed)]
        inside += ((pane.start, pane) for pane in state.panes or ())
        inside.sort(key=itemgetter(0))
        return self._top([pane for start, pane in inside if first <= start < end], first, end)

    @staticmethod
    def _viewers(state: StreamState) -> ViewerFigures | None:
        if not state.viewers_samples:
            return None
        return ViewerFigures(
            state.viewers_current,
            state.viewers_peak,
            round(state.viewers_sum / state.viewers_samples, 2),
        )

    def _spike(self, state: StreamState, ts: int, metric: str, outputs: list[Output]) -> None:
        """Fire a spike if this minute's ``metric`` has passed ``spike_ratio`` times the
        stream's baseline (its tier window before the minute, per minute). Called only when
        the minute is at or above the metric's floor."""
        c = self.config
        size = c.tumbling_ms
        now = state.stream_time_ms
        minute = now - now % size
        if ts - ts % size != minute or state.tumbling.start != minute:
            return  # an event of an earlier minute: only the current minute can spike
        window = state.window
        step = window.step_ms
        base_start = max(window.start_ms, state.started_ms - state.started_ms % step)
        span = minute - base_start
        if span < c.spike_history_ms:
            return
        if metric == LIKES:
            value, total = state.tumbling.likes, window.likes
            floor, flag = c.spike_min_likes, state.likes_spike
        else:
            value, total = state.tumbling.coins, window.coins
            floor, flag = c.spike_min_coins, state.coins_spike
        if flag != ARMED:
            if flag >= minute:
                return  # fired, or found no calm minute, in this minute already
            calm = self._calm_since(state, metric, flag, minute, floor, base_start)
            flag = ARMED if calm else minute
        if flag == ARMED:
            baseline = (total - value) * size / span if span > 0 else 0.0
            threshold = max(floor, c.spike_ratio * baseline)
            if value >= threshold:
                flag = minute
                outputs.append(
                    Spike(
                        alert_id=spike_id(state.stream_id, metric, minute),
                        stream_id=state.stream_id,
                        creator_id=state.creator_id,
                        metric=metric,
                        value=value,
                        baseline=round(baseline, 2),
                        baseline_minutes=round(span / 60_000, 2),
                        ratio=round(value / baseline, 2) if baseline else None,
                        threshold=round(float(threshold), 2),
                        minute=Minute(minute, minute + size),
                        event_time=now,
                        top=self._top(
                            [pane] if (pane := self._open_pane(state, minute)) else [],
                            minute,
                            minute + size,
                        ),
                        viewers=self._viewers(state),
                    )
                )
        if metric == LIKES:
            state.likes_spike = flag
        else:
            state.coins_spike = flag

    def _calm_since(
        self, state: StreamState, metric: str, last: int, minute: int, floor: int, base_start: int
    ) -> bool:
        """Whether one of the minutes after ``last`` (the minute the detector fired or last
        looked in) and before ``minute`` was calm: below the floor, or at most
        ``spike_rearm_ratio`` times its own baseline, as the tier window holds them now."""
        size, window = self.config.tumbling_ms, state.window
        for q in range(last + size, minute, size):
            inside = window.between(q, q + size)
            value = inside.likes if metric == LIKES else inside.coins
            if value < floor:
                return True
            span = q - base_start
            if span > 0:
                before = window.between(window.start_ms, q)
                base_sum = before.likes if metric == LIKES else before.coins
                if value <= self.config.spike_rearm_ratio * (base_sum * size / span):
                    return True
        return False

    def _goals(
        self, state: StreamState, metric: str, before: int, after: int, outputs: list[Output]
    ) -> None:
        goals = self.config.like_goals if metric == LIKES else self.config.coin_goals
        for goal in goals:
            if before < goal <= after:
                outputs.append(
                    GoalReached(
                        alert_id=goal_id(state.stream_id, metric, goal),
                        stream_id=state.stream_id,
                        creator_id=state.creator_id,
                        metric=metric,
                        goal=goal,
                        value=after,
                        event_time=state.stream_time_ms,
                        viewers=self._viewers(state),
                    )
                )

    def tick(self, wall_ms: int) -> list[Output]:
        """Let stream time follow the wall clock for streams that receive nothing.

        A stream idle for ``d`` ms of wall clock is at stream time ``max_ts + d``: its
        window slides, its tier decays, its tumbling windows close, and after the
        inactivity timeout it ends (reason ``inactive``) at ``max_ts + timeout``.

        Deterministic in ``wall_ms`` and the streams' state, and a no-op when repeated with
        the same ``wall_ms``: only an end is a change for the next checkpoint. A stream whose
        window or minute figures time changed is in :attr:`moved`, for its table row.
        """
        outputs: list[Output] = []
        inactivity = self.config.inactivity_ms
        wall_ms -= self.downtime_ms
        self.ticked_ms = wall_ms
        for state in list(self.streams.values()):
            idle_time = state.max_event_ms + max(0, wall_ms - state.seen_wall_ms)
            if idle_time - state.max_event_ms >= inactivity:
                end_time = state.max_event_ms + inactivity
                if end_time > state.stream_time_ms:
                    self._advance(state, end_time, outputs)
                self._end(state, "inactive", max(end_time, state.stream_time_ms), outputs)
            elif idle_time > state.stream_time_ms:
                shown = _time_shown(state)
                self._advance(state, idle_time, outputs)
                if _time_shown(state) != shown:  # its table row would say something else
                    self.moved.add(state.stream_id)
        self.partition_time()  # as of this tick: it never goes back, whatever comes next
        return outputs

    def partition_time(self) -> int:
        """The partition's time as of the last :meth:`tick` (-1 before its first event):
        the largest event ts applied, moved on by the idle clock since it was seen, as
        :meth:`tick` moves a silent stream (downtime is not idle time). It never goes back.

        Off the hot path: the streams changed since the last look are looked at here."""
        streams = self.streams
        for stream_id in self.changed:
            state = streams.get(stream_id)
            if state is not None:
                self.note_event_time(state)
        if self.event_ms >= 0:
            moved = self.event_ms + max(0, self.ticked_ms - self.event_seen_ms)
            if moved > self.partition_ms:
                self.partition_ms = moved
        return self.partition_ms

    def note_event_time(self, state: StreamState) -> None:
        """Count a stream's latest event in the partition's largest event ts."""
        if state.max_event_ms > self.event_ms or (
            state.max_event_ms == self.event_ms and state.seen_wall_ms > self.event_seen_ms
        ):
            self.event_ms = state.max_event_ms
            self.event_seen_ms = state.seen_wall_ms

    def _advance(self, state: StreamState, new_time: int, outputs: list[Output]) -> None:
        """Move a stream's time forward, evaluating the tier at every bucket expiry.

        Not a change a checkpoint writes by itself: where only time moved a stream, a
        restore recomputes it (:meth:`tick` at the wall clock the checkpoint recorded)."""
        if new_time >= state.day_turn_ms:  # before the window slides past midnight
            self._turn_days(state, new_time, outputs)
        window = state.window
        if new_time - new_time % window.step_ms > window.current_bucket:  # a new bucket
            for boundary in window.slide_to(new_time):
                self._evaluate_window(state, boundary, outputs)
        state.stream_time_ms = new_time
        tumbling = state.tumbling
        if tumbling.first_start <= new_time - self.config.grace_ms - tumbling.size_ms:
            for start, totals in tumbling.close_until(new_time, self.config.grace_ms):
                outputs.append(self._closed(state, start, totals))
        if state.panes is not None or state.sealed is not None:
            self.age_panes(state)

    def _turn_days(self, state: StreamState, new_time: int, outputs: list[Output]) -> None:
        """Stream time reaches ``state.day_turn_ms``: a midnight (the ledger starts
        telling the new day's peaks apart), or a midnight's grace period over (no event of
        the old day can count any more: the old day's part is finished, with the tier the
        stream has then: the window slides there first)."""
        calendar = self.calendar
        while new_time >= state.day_turn_ms:
            ledger = state.ledger
            if ledger is None:
                unset = state.day_turn_ms == 0  # restored from a checkpoint without days
                day = calendar.day_of(state.started_ms if unset else state.day_turn_ms - 1)
                start, end = calendar.bounds(day)
                if unset:
                    state.day_turn_ms = end
                    continue
                # the session's first midnight
                state.ledger = ledger = DayLedger(day, start, end)
                ledger.peak_tier = state.peak_tier
                ledger.peak_viewers = state.viewers_peak
                state.day_turn_ms = end + self._grace
            elif state.day_turn_ms == ledger.day_end_ms:  # a later midnight
                state.day_turn_ms = ledger.day_end_ms + self._grace
            else:  # the grace after midnight is over: the day's part is final as of then
                closes = ledger.day_end_ms + self._grace
                # A stream whose time jumps past it is closed before its window slides on
                # (the window must still hold what came since midnight), but its tier must
                # be as of the close, its changes up to then each noted on its own day.
                window = state.window
                if closes - closes % window.step_ms > window.current_bucket:
                    for boundary in window.slide_to(closes):
                        self._evaluate_window(state, boundary, outputs)
                self._close_day(state, ledger, closes)
                state.day_turn_ms = ledger.day_end_ms
                self.moved.add(state.stream_id)

    def _close_day(self, state: StreamState, ledger: DayLedger, as_of_ms: int) -> None:
        """Finish the ledger's day at midnight, its part stamped with stream time
        ``as_of_ms``. The stream's window (and its open minutes)
        still hold everything counted since: stream time is within midnight's grace, and
        grace <= tier window - step."""
        midnight = ledger.day_end_ms
        after = state.window.between(midnight, NO_END)
        gifters_after: dict[str, tuple[int, int]] = {}
        for pane in state.panes or ():
            if pane.start >= midnight:
                for user, (coins, gifts) in pane.gifter_map().items():
                    held = gifters_after.get(user, (0, 0))
                    gifters_after[user] = (held[0] + coins, held[1] + gifts)
        top = state.top
        session = state.session
        next_day = self.calendar.day_of(midnight)
        ledger.close_day(
            state.creator_id,
            state.stream_id,
            state.started_ms,
            (session.likes, session.gifts, session.coins),
            (after.likes, after.gifts, after.coins),
            {} if top is None else dict(top.gifter_map()),
            gifters_after,
            True if top is None else top.exact,
            as_of_ms,
            state.tier,
            (next_day, *self.calendar.bounds(next_day)),
        )

    def day_parts(self, state: StreamState, ended: bool = False) -> list[StreamDay]:
        """The stream's parts of calendar days not handed out yet (days it finished), then
        its part of the current day as it stands; the finished ones are handed out.

        Within a midnight's grace period, the old day's part is what it would be if it
        closed now, and the new day's part is what came since midnight: both may still
        change (a late event of the old day), and the close will say so."""
        top = state.top
        gifters = {} if top is None else top.gifter_map()
        exact = True if top is None else top.exact
        session = (state.session.likes, state.session.gifts, state.session.coins)
        ledger = state.ledger
        parts: list[StreamDay] = []
        if ledger is None:
            day = self.calendar.day_of(state.started_ms)
            start, end = self.calendar.bounds(day)
            if state.stream_time_ms < end:  # the common case: a session within its day
                return [
                    day_part(
                        state.creator_id,
                        day,
                        state.stream_id,
                        state.started_ms,
                        (state.started_ms, state.stream_time_ms),
                        session,
                        (state.peak_tier, state.viewers_peak),
                        gifters,
                        exact,
                        ended,
                        state.stream_time_ms,
                    )
                ]
            ledger = DayLedger(day, start, end)
            ledger.peak_tier = state.peak_tier
            ledger.peak_viewers = state.viewers_peak
        else:
            parts, ledger.finished = ledger.finished, []
        if state.stream_time_ms >= ledger.day_end_ms:  # within the grace of a midnight
            ledger = ledger.copy()
            self._close_day(state, ledger, state.stream_time_ms)
            parts += ledger.finished
        parts.append(
            ledger.part(
                state.creator_id,
                state.stream_id,
                state.started_ms,
                session,
                gifters,
                exact,
                state.stream_time_ms,
                ended,
            )
        )
        if ended:  # nothing can add to any of its days any more
            parts = [msgspec.structs.replace(part, ended=True) for part in parts]
        return parts

    def _closed(self, state: StreamState, start: int, totals: Totals) -> WindowClosed:
        return WindowClosed(
            window_id=f"{state.stream_id}@{start}",
            stream_id=state.stream_id,
            creator_id=state.creator_id,
            window=WindowSnapshot(
                start,
                start + self.config.tumbling_ms,
                totals.likes,
                totals.gifts,
                totals.coins,
                self._usd(totals.coins),
            ),
        )

    def _usd(self, coins: int) -> float:
        return round(coins * self.config.usd_per_coin, 4)

    def _evaluate_session(self, state: StreamState, at: int, outputs: list[Output]) -> None:
        """The session tier, which only goes up; called once its next threshold is reached."""
        value = state.session.likes
        new_tier = self.session_policy.tier_for(value)
        if new_tier.rank > state.session_tier.rank:
            old, state.session_tier = state.session_tier, new_tier
            state.session_transitions += 1
            outputs.append(
                self._tier_changed(
                    state,
                    self.session_policy,
                    state.session_transitions,
                    old,
                    new_tier,
                    value,
                    at,
                )
            )

    def _evaluate_window(self, state: StreamState, at: int, outputs: list[Output]) -> None:
        value = state.window.likes
        low, high = self._window_band[state.tier]
        if low <= value < high:
            return
        new_tier = self.policy.classify(value, state.tier)
        if new_tier is state.tier:
            return
        old, state.tier = state.tier, new_tier
        if new_tier.rank > state.peak_tier.rank:
            state.peak_tier = new_tier
        if state.ledger is not None:
            state.ledger.note_tier(old, new_tier, at)
        self.moved.add(state.stream_id)
        state.transitions += 1
        outputs.append(
            self._tier_changed(state, self.policy, state.transitions, old, new_tier, value, at)
        )

    def _tier_changed(
        self,
        state: StreamState,
        policy: TierPolicy,
        sequence: int,
        old: Tier,
        new: Tier,
        value: int,
        at: int,
    ) -> TierChanged:
        window = state.window
        entered = new if new.rank > old.rank else old
        return TierChanged(
            alert_id=tier_change_id(state.stream_id, policy.name, sequence, new, at),
            stream_id=state.stream_id,
            creator_id=state.creator_id,
            policy=policy.name,
            from_tier=old,
            to_tier=new,
            direction="up" if new.rank > old.rank else "down",
            value=value,
            threshold=policy.threshold(entered),
            event_time=at,
            window=WindowSnapshot(
                start=window.start_ms,
                end=window.end_ms,
                likes=window.likes,
                gifts=window.gifts,
                coins=window.coins,
                creator_usd=self._usd(window.coins),
            ),
            top=self._window_top(state),
            viewers=self._viewers(state),
        )

    def _end(self, state: StreamState, reason: str, at: int, outputs: list[Output]) -> None:
        self.changed.add(state.stream_id)
        for start, totals in state.tumbling.close_all():
            outputs.append(self._closed(state, start, totals))
        s = state.session
        samples, viewers_sum = state.viewers_samples, state.viewers_sum
        outputs.append(
            StreamEnded(
                alert_id=stream_ended_id(state.stream_id, at),
                stream_id=state.stream_id,
                creator_id=state.creator_id,
                reason=reason,
                started_at=state.started_ms,
                event_time=at,
                duration_ms=at - state.started_ms,
                session=Session(s.likes, s.gifts, s.coins, self._usd(s.coins)),
                peak_tier=state.peak_tier,
                final_tier=state.tier,
                top=self._top([state.top] if state.top else [], state.started_ms, at),
                viewers=self._viewers(state),
                likes_per_viewer=round(s.likes * samples / viewers_sum, 4) if viewers_sum else None,
                coins_per_viewer=round(s.coins * samples / viewers_sum, 4) if viewers_sum else None,
            )
        )
        self.ended_parts.extend(self.day_parts(state, ended=True))
        self.note_event_time(state)  # its events still count in the partition's time
        del self.streams[state.stream_id]
        self.remember_end(state.stream_id, at)

    def remember_end(self, stream_id: str, at: int) -> None:
        """Put a stream that ended at ``at`` in the memory of ended streams, forgetting the
        oldest beyond its size."""
        self.ended[stream_id] = at
        if len(self.ended) > self.config.ended_memory:
            forgotten, ended_at = self.ended.popitem(last=False)
            self.forgotten[forgotten] = ended_at
