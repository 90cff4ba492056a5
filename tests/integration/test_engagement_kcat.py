"""Spikes, goals, top users and viewers end to end, through a non-Python producer: kcat
writes a hand-made scenario and reads back the spike, goal and stream_ended alerts, every
figure of which is worked out by hand below from the README's engagement section (not by
the engine, nor by a reference model).

Settings (this test's): M = 60 s tumbling, S = 10 s step, W = 600 s tier window, grace 10 s
(the defaults, pinned); spike_min_likes = spike_min_coins = 100, spike_ratio 3.0,
spike_rearm_ratio 1.5, spike_history_seconds 180, top_users 3 (so the lists are cut),
top_users_tracked 32 (every summary stays exact), like_goals "100,500,550", coin_goals "600".
Tiers stay at 1,000 / 10,000 and the scenario stays below them (700 likes in all): no
tier_changed may appear.

Stream A (times are seconds after T0; "m3" = minute [180, 240); likes = growth of `total`,
the liker is credited the event's `count`):

    min | likes events (user count total -> growth)            | room likes | coins
    m0  | ann 10 t10 +10, bob 15 t25 +15, cat 15 t40 +15       |  40        | gil Rose combo x5 = 5
    m1  | ann 10 t55 +15, bob 15 t70 +15                       |  30        | hal Doughnut 30
    m2  | cat 12 t90 +20, dan 15 t110 +20, ann 10 t120 +10     |  50        | gil Rose combo x5 = 5
    m3  | bob 15 t135 +15, (cat 7 t118 at ts 175: reordered,   | 130        | ivy Finger Heart combo
        |  +0, credited to cat in m2), eve 15 t165 +30,        |            | x12 = 60, hal 30, jay
        |  ann 15 t200 +35, bob 15 t230 +30, dan 14 t244 +14,  |            | FH combo x4 = 20,
        |  eve 6 t250 +6                                       |            | ivy Money Gun 500
    m4  | fay 15 t300 +50, ann 15 t380 +80, bob 15 t440 +60    | 190        |
    m5  | cat 10 t460 +20                                      |  20        |
    m6  | dan 15 t560 +100, eve 15 t700 +140                   | 240        |
    late| zed 15 t800 at ts 350 when stream time is 370 (350 < 370 - 10): dead letter

Spikes (base_start = max(window.start, bucket(T0)) = T0 throughout: the window reaches back
before T0 until stream time 590 s; span = ms - T0):
- m0-m2: span < 180,000: nothing evaluated.
- likes, m3: base_sum = 40 + 30 + 50 = 120, span 180,000, baseline = 120 * 60000 / 180000 =
  40.0, threshold = max(100, 3 * 40) = 120. Running value 15, 45, 80, 110, 124: fires at the
  215 s like (dan, total 244) with value 124, ratio round(124 / 40, 2) = 3.1,
  baseline_minutes 180000 / 60000 = 3.0. Disarmed.
- coins, m3: base_sum = 5 + 30 + 5 = 40, baseline = 40 * 60000 / 180000 = 13.333..
  (-> 13.33), threshold = max(100, 40.0) = 100. The combo steps count nothing (had they
  counted, 5 * (1 + 2 + ...) passes 100 at the 6th step); at repeat_end (232 s) value 60,
  Doughnut (233 s) 90, jay's repeat_end (238 s) 110 >= 100: fires, ratio round(110 / 13.333..,
  2) = 8.25. The Money Gun at 239 s (value 610) fires nothing: disarmed, same minute.
- likes, m4: re-arm check, P = m3: 130 >= floor 100 and 130 > 1.5 * baseline_P (= 1.5 * 120 *
  60000 / 180000 = 60): not calm, stays disarmed. Threshold = 3 * 250 * 60000 / 240000 =
  187.5 and the minute reaches 190 at 255 s: no alert (disarmed).
- likes, m5: P = m4: 190 > 1.5 * (250 * 60000 / 240000 = 62.5) = 93.75: not calm.
- likes, m6: P = m5: 20 < floor 100: calm, re-armed. base_sum = 700 - 240 = 460 (at 365 s:
  560 - 100), span 360,000, baseline = 460 * 60000 / 360000 = 76.666.. (-> 76.67),
  threshold = max(100, 230.0) = 230. Value 100 at 365 s, 240 at 370 s: fires, ratio
  round(240 / 76.666.., 2) = 3.13, baseline_minutes 6.0.

Goals (session totals): likes 90 -> 110 at 150 s crosses 100; 460 -> 560 at 365 s crosses 500
and 550 (two alerts, ascending, value 560 both); coins 150 -> 650 at 239 s (Money Gun) crosses
600. Outputs of one event: spike before goals.

Viewers of A, in arrival order (ts: count): 5: 10, 65: 20, 181: 40, 198: 55, 196: 30
(reordered: `current` stays the greatest ts), 320: 26, and 300: 1000 late (ignored).
- at 150 s: current 20, peak 20, average 30 / 2 = 15.0
- at 215, 238, 239 s: current 55 (ts 198), peak 55, average 155 / 5 = 31.0
- at 365, 370, 400 s: current 26 (ts 320), peak 55, average 181 / 6 = 30.1666 -> 30.17
likes_per_viewer = round(700 * 6 / 181, 4) = round(23.20442, 4) = 23.2044;
coins_per_viewer = round(650 * 6 / 181, 4) = round(21.54696, 4) = 21.547.

Session of A: likes 700; gifts 5 + 1 + 5 + 12 + 1 + 4 + 1 = 29 (a combo of k counts k
gifts); coins 5 + 30 + 5 + 60 + 30 + 20 + 500 = 650; USD 650 * 0.005 = 3.25.
Likers (sum of `count`): bob 15*5 = 75, ann 10+10+10+15+15 = 60, cat 15+12+7+10 = 44,
dan 15+14+15 = 44, eve 15+6+15 = 36, fay 15 (zed's late like not credited) -> top 3: bob,
ann, cat (cat before dan: tie at 44, user id ascending; without the reordered like cat
would have 37 and dan would be third).
Gifters: ivy 560 / 13, hal 60 / 2, jay 20 / 4, gil 10 / 10 -> top 3: ivy, hal, jay.
Spike panes: m3 at 215 s likers bob 15+15 = 30, ann 15, eve 15 (tie, ann first), dan 14
(cut); gifters none yet. m3 at 238 s: same likers, gifters ivy 60/12, hal 30/1, jay 20/4.
m6 at 370 s: likers dan 15, eve 15; no gifters.

Stream B: live_start 1 s, like ann 3 t3 (+3), Rose combo x2 by kim (2 coins, 2 gifts at
4 s), like bob 4 t9 (+6, 2 dropped), live_end 5 s, then a like of cat at 6 s: after_end
(dead letter, not credited). Session: 9 likes, 2 gifts, 2 coins, USD 0.01; no viewers event:
viewers null, per-viewer figures null. Span 0 < 180,000: no spike.

alert_id = sha256("\\x1f".join(parts)).hexdigest()[:32]: spike (stream, "spike", metric,
minute_start), goal (stream, "goal", metric, goal), stream_ended (stream, "stream_ended",
event_time) as the README and alerts contract have it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections import defaultdict
from typing import Any

import orjson
from jsonschema import Draft7Validator

from processor.contract import ALERT_SCHEMA
from processor.core.engine import EngineConfig
from tests.integration.conftest import Topics, WorkerProcess, engine_env
from tests.integration.kafka import kcat, wait_until_committed

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of 60 s
A, B = "kcat-eng-a", "kcat-eng-b"

SETTINGS = engine_env(EngineConfig()) | {  # the default windows and tiers, pinned
    "LIVEPULSE_SPIKE_MIN_LIKES": "100",
    "LIVEPULSE_SPIKE_MIN_COINS": "100",
    "LIVEPULSE_SPIKE_RATIO": "3.0",
    "LIVEPULSE_SPIKE_REARM_RATIO": "1.5",
    "LIVEPULSE_SPIKE_HISTORY_SECONDS": "180",
    "LIVEPULSE_TOP_USERS": "3",
    "LIVEPULSE_TOP_USERS_TRACKED": "32",
    "LIVEPULSE_LIKE_GOALS": "100,500,550",
    "LIVEPULSE_COIN_GOALS": "600",
}


def at(seconds: float) -> int:
    """Event time ``seconds`` after T0, in ms."""
    return T0 + round(seconds * 1000)


def digest(*parts: object) -> str:
    """The spec's alert id: first 32 hex digits of SHA-256 over the parts joined by 0x1f."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


class Script:
    """Contract-v1 events of one stream, written out literally (no running totals kept)."""

    def __init__(self, stream_id: str, creator_id: str) -> None:
        self.stream_id = stream_id
        self.creator_id = creator_id
        self._ids = itertools.count()

    def _event(self, kind: str, seconds: float, user: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "v": 1,
            "event_id": f"{self.stream_id}-{next(self._ids)}",
            "type": kind,
            "stream_id": self.stream_id,
            "creator_id": self.creator_id,
            "ts": at(seconds),
        }
        if user is not None:
            event["user_id"] = user
        return event

    def start(self, seconds: float) -> dict[str, Any]:
        return self._event("live_start", seconds) | {"title": "engagement by hand"}

    def end(self, seconds: float) -> dict[str, Any]:
        return self._event("live_end", seconds) | {"reason": "ended"}

    def viewers(self, seconds: float, count: int) -> dict[str, Any]:
        return self._event("viewers", seconds) | {"count": count}

    def like(self, seconds: float, user: str, count: int, total: int) -> dict[str, Any]:
        return self._event("like", seconds, user) | {"count": count, "total": total}

    def gift(
        self,
        seconds: float,
        user: str,
        name: str,
        coins: int,
        *,
        repeat: int = 1,
        streakable: bool = False,
        end: bool = True,
        streak: str = "",
    ) -> dict[str, Any]:
        return self._event("gift", seconds, user) | {
            "gift_id": {"Rose": 5655, "Finger Heart": 5487, "Doughnut": 5879}.get(name, 7168),
            "gift_name": name,
            "coins": coins,
            "repeat_count": repeat,
            "streakable": streakable,
            "streak_id": streak or f"{user}-{name}",
            "repeat_end": end,
        }

    def combo(
        self, first_second: float, user: str, name: str, coins: int, steps: int, streak: str
    ) -> list[dict[str, Any]]:
        """A streak: steps 1..n one second apart (not counted), then repeat_end (counted)."""
        events = [
            self.gift(first_second + i - 1, user, name, coins, repeat=i, streakable=True, end=False)
            | {"streak_id": streak}
            for i in range(1, steps + 1)
        ]
        events.append(
            self.gift(first_second + steps, user, name, coins, repeat=steps, streakable=True)
            | {"streak_id": streak}
        )
        return events


def scenario() -> list[dict[str, Any]]:
    """Both streams' events, each stream's in the order the partition gets them."""
    a = Script(A, "creator-a")
    events_a = [
        a.start(0),
        a.viewers(5, 10),
        # m0: likes 40
        a.like(10, "u-ann", 10, 10),
        a.like(20, "u-bob", 15, 25),
        *a.combo(30, "g-gil", "Rose", 1, 5, "gil-1"),  # 5 coins at 35 s
        a.like(40, "u-cat", 15, 40),
        # m1: likes 30
        a.viewers(65, 20),
        a.like(70, "u-ann", 10, 55),
        a.gift(80, "g-hal", "Doughnut", 30),
        a.like(100, "u-bob", 15, 70),
        # m2: likes 50
        a.like(125, "u-cat", 12, 90),
        *a.combo(140, "g-gil", "Rose", 1, 5, "gil-2"),  # 5 coins at 145 s
        a.like(150, "u-dan", 15, 110),  # goal likes 100
        a.like(170, "u-ann", 10, 120),
        # m3: the surge
        a.viewers(181, 40),
        a.like(182, "u-bob", 15, 135),
        a.like(175, "u-cat", 7, 118),  # reordered: in grace, no growth, credited in m2
        a.like(190, "u-eve", 15, 165),
        a.viewers(198, 55),
        a.like(200, "u-ann", 15, 200),
        a.viewers(196, 30),  # reordered: current stays 55 (ts 198)
        a.like(210, "u-bob", 15, 230),
        a.like(215, "u-dan", 14, 244),  # spike likes: 124 >= 120
        *a.combo(220, "g-ivy", "Finger Heart", 5, 12, "ivy-1"),  # 60 coins at 232 s
        a.gift(233, "g-hal", "Doughnut", 30),
        *a.combo(234, "g-jay", "Finger Heart", 5, 4, "jay-1"),  # 20 at 238 s: spike coins
        a.gift(239, "g-ivy", "Money Gun", 500),  # goal coins 600; no second spike
        a.like(239.5, "u-eve", 6, 250),
        # m4: 190 likes, past the threshold 187.5 but disarmed
        a.like(245, "u-fay", 15, 300),
        a.like(250, "u-ann", 15, 380),
        a.like(255, "u-bob", 15, 440),
        # m5: calm
        a.like(310, "u-cat", 10, 460),
        a.viewers(320, 26),
        # m6: re-armed, second likes spike
        a.like(365, "u-dan", 15, 560),  # goals likes 500 and 550
        a.like(370, "u-eve", 15, 700),  # spike likes: 240 >= 230
        a.like(350, "u-zed", 15, 800),  # late: dead letter
        a.viewers(300, 1000),  # late: dead letter
        a.end(400),
    ]
    b = Script(B, "creator-b")
    events_b = [
        b.start(1),
        b.like(2, "u-ann", 3, 3),
        b.gift(3, "g-kim", "Rose", 1, repeat=1, streakable=True, end=False, streak="kim-1"),
        b.gift(3.5, "g-kim", "Rose", 1, repeat=2, streakable=True, end=False, streak="kim-1"),
        b.gift(4, "g-kim", "Rose", 1, repeat=2, streakable=True, end=True, streak="kim-1"),
        b.like(4.5, "u-bob", 4, 9),
        b.end(5),
        b.like(6, "u-cat", 5, 14),  # after_end: dead letter
    ]
    return events_a + events_b


def viewers(current: int, peak: int, average: float) -> dict[str, Any]:
    return {"current": current, "peak": peak, "average": average}


def likers(*rows: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"user_id": u, "likes": n} for u, n in rows]


def gifters(*rows: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"user_id": u, "coins": c, "gifts": g} for u, c, g in rows]


def spike(
    metric: str,
    minute: int,
    seconds: float,
    value: int,
    baseline: float,
    baseline_minutes: float,
    ratio: float | None,
    threshold: float,
    top_gifters: list[dict[str, Any]],
    top_likers: list[dict[str, Any]],
    seen: dict[str, Any],
) -> dict[str, Any]:
    start = T0 + minute * 60_000
    return {
        "v": 1,
        "alert_id": digest(A, "spike", metric, start),
        "type": "spike",
        "stream_id": A,
        "creator_id": "creator-a",
        "metric": metric,
        "value": value,
        "baseline": baseline,
        "baseline_minutes": baseline_minutes,
        "ratio": ratio,
        "threshold": threshold,
        "minute": {"start": start, "end": start + 60_000},
        "event_time": at(seconds),
        "top": {
            "start": start,
            "end": start + 60_000,
            "exact": True,
            "gifters": top_gifters,
            "likers": top_likers,
        },
        "viewers": seen,
    }


def goal(
    metric: str, goal: int, value: int, seconds: float, seen: dict[str, Any]
) -> dict[str, Any]:
    return {
        "v": 1,
        "alert_id": digest(A, "goal", metric, goal),
        "type": "goal_reached",
        "stream_id": A,
        "creator_id": "creator-a",
        "metric": metric,
        "goal": goal,
        "value": value,
        "event_time": at(seconds),
        "viewers": seen,
    }


V_150 = viewers(20, 20, 15.0)  # (10 + 20) / 2
V_M3 = viewers(55, 55, 31.0)  # (10 + 20 + 40 + 55 + 30) / 5 = 155 / 5
V_END = viewers(26, 55, 30.17)  # 181 / 6 = 30.1666..
M3_LIKERS = likers(("u-bob", 30), ("u-ann", 15), ("u-eve", 15))  # dan 14 cut

EXPECTED_A: list[dict[str, Any]] = [
    goal("likes", 100, 110, 150, V_150),
    # 124 likes in m3 against 120 = max(100, 3 * 120 * 60000 / 180000)
    spike("likes", 3, 215, 124, 40.0, 3.0, 3.1, 120.0, [], M3_LIKERS, V_M3),
    # 110 coins in m3 against 100 = max(100, 3 * 40 * 60000 / 180000 = 40)
    spike(
        "coins",
        3,
        238,
        110,
        13.33,
        3.0,
        8.25,
        100.0,
        gifters(("g-ivy", 60, 12), ("g-hal", 30, 1), ("g-jay", 20, 4)),
        M3_LIKERS,
        V_M3,
    ),
    goal("coins", 600, 650, 239, V_M3),
    goal("likes", 500, 560, 365, V_END),
    goal("likes", 550, 560, 365, V_END),
    # 240 likes in m6 against 230 = max(100, 3 * 460 * 60000 / 360000); re-armed by calm m5
    spike(
        "likes",
        6,
        370,
        240,
        76.67,
        6.0,
        3.13,
        230.0,
        [],
        likers(("u-dan", 15), ("u-eve", 15)),
        V_END,
    ),
    {
        "v": 1,
        "alert_id": digest(A, "stream_ended", at(400)),
        "type": "stream_ended",
        "stream_id": A,
        "creator_id": "creator-a",
        "reason": "ended",
        "started_at": T0,
        "event_time": at(400),
        "duration_ms": 400_000,
        "session": {"likes": 700, "gifts": 29, "coins": 650, "creator_usd": 3.25},
        "peak_tier": "low",
        "final_tier": "low",
        "top": {
            "start": T0,
            "end": at(400),
            "exact": True,
            "gifters": gifters(("g-ivy", 560, 13), ("g-hal", 60, 2), ("g-jay", 20, 4)),
            "likers": likers(("u-bob", 75), ("u-ann", 60), ("u-cat", 44)),
        },
        "viewers": V_END,
        "likes_per_viewer": 23.2044,  # round(700 * 6 / 181, 4)
        "coins_per_viewer": 21.547,  # round(650 * 6 / 181, 4)
    },
]

EXPECTED_B: list[dict[str, Any]] = [
    {
        "v": 1,
        "alert_id": digest(B, "stream_ended", at(5)),
        "type": "stream_ended",
        "stream_id": B,
        "creator_id": "creator-b",
        "reason": "ended",
        "started_at": at(1),
        "event_time": at(5),
        "duration_ms": 4_000,
        "session": {"likes": 9, "gifts": 2, "coins": 2, "creator_usd": 0.01},
        "peak_tier": "low",
        "final_tier": "low",
        "top": {
            "start": at(1),
            "end": at(5),
            "exact": True,
            "gifters": gifters(("g-kim", 2, 2)),
            "likers": likers(("u-bob", 4), ("u-ann", 3)),
        },
        "viewers": None,
        "likes_per_viewer": None,
        "coins_per_viewer": None,
    }
]


def consume(broker: str, topic: str, fmt: str) -> list[list[bytes]]:
    """Every record of ``topic`` read by kcat, as its tab-separated ``fmt`` fields."""
    out = kcat("-b", broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt + "\n")
    return [line.split(b"\t", fmt.count("\t")) for line in out.splitlines()]


def test_engagement_scenario_from_kcat_gives_hand_computed_alerts(
    broker: str, topics: Topics, unstarted_worker: WorkerProcess
) -> None:
    worker = unstarted_worker
    worker.env = worker.env | SETTINGS
    worker.start()

    lines = b"".join(b"%s\t%s\n" % (e["stream_id"].encode(), orjson.dumps(e)) for e in scenario())
    # idempotence: a retried batch can never overtake another, per-stream order is the point
    kcat(
        "-b",
        broker,
        "-P",
        "-t",
        topics.events,
        "-K",
        "\t",
        "-X",
        "enable.idempotence=true",
        stdin=lines,
    )
    asyncio.run(wait_until_committed(broker, topics.app_id, topics.events))

    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    validator = Draft7Validator(json.loads(ALERT_SCHEMA.read_text()))
    schema_errors: list[str] = []
    for key, value in consume(broker, topics.alerts, "%k\t%s"):
        alert = json.loads(value)
        assert key.decode() == alert["stream_id"]
        schema_errors += [f"{alert['type']}: {e.message}" for e in validator.iter_errors(alert)]
        assert isinstance(alert.pop("emitted_at"), int)
        by_stream[alert["stream_id"]].append(alert)

    assert [a for alerts in by_stream.values() for a in alerts if a["type"] == "tier_changed"] == []
    assert by_stream[A] == EXPECTED_A
    assert by_stream[B] == EXPECTED_B
    assert set(by_stream) == {A, B}

    dead = []
    for _, value, headers in consume(broker, topics.dlq, "%k\t%s\t%h"):
        event = json.loads(value)
        reason = re.search(rb"livepulse\.reason=([a-z_]+)", headers)
        assert reason is not None, headers
        dead.append((event["stream_id"], event["type"], event["ts"], reason.group(1).decode()))
    assert sorted(dead) == [
        (A, "like", at(350), "late"),  # 350 s < stream time 370 s - grace 10 s
        (A, "viewers", at(300), "late"),
        (B, "like", at(6), "after_end"),
    ]

    # last: the records above are right even while the schema lags behind the alert types
    assert schema_errors == [], "\n".join(schema_errors)
