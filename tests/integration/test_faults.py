"""The fault suite: two workers in one group on 8 partitions while live input
flows, through faults that a process or a broker meets in production.

1. A worker frozen with SIGSTOP past the session timeout, its partitions taken over by the
   other, then resumed with SIGCONT (a zombie: it does not know it was expelled, and still
   holds the work it had applied but not committed); then the other worker killed -9 and
   restarted, so every partition is restored from the state topic. Before fenced transactions the
   zombie's stale checkpoint records won the next restore: tens of streams ended with
   gifts and coins short (likes, from running totals, came out right).
2. Five kill -9s of a worker holding partitions, at random moments, each worker restarted.
3. The broker killed -9 in the middle of the run and started again (a broker of the test's
   own, on its own ports and data dir: the session's broker stays up for the other tests).

Every test asserts, for a ``read_committed`` reader of the alerts topic (what a subscriber
gets once outputs are written in transactions):

- every stream's ``stream_ended`` totals (likes, gifts, coins, reason, start and end time)
  equal the totals worked out from the input by docs/domain.md's rules (``expected_sessions``);
- the ids of every other alert (tier changes, spikes, goals) equal those of one engine fed
  the whole input in order, without faults (``expected_tier_alerts``);
- no alert id is read twice (nor a window id), and no transaction is left open.

The moments of the faults are random; each test prints its seed, and
``LIVEPULSE_FAULT_SEED=<seed>`` replays them (the input itself is always the same).

**Live input with exact answers.** The input is produced in chunks, one every
``FEED_INTERVAL_S``, while the faults happen. A caught-up partition lets a silent stream's
time follow the wall clock (idle decay), so on live input the result could depend on timing.
It does not here: chunk ``k`` holds each live stream's events of event time
``[k, k + 1/3) x CHUNK_MS``, so a stream's next events are at least 80 s of event time
after its last ones, while its idle clock can run only as long as its partition waits on
the wall clock for more (a feed interval; at most the ~20-30 s of a fault). The idle clock
then evaluates exactly the tier-window boundaries the next event would have, and no event
arrives behind its stream's time: the result is the one answer the engine gives without any
idle time. A chunk's part of a partition is appended as one record batch (:class:`Feed`),
so no partition is caught up in the middle of a chunk. The broker is only killed between
two chunks (every chunk is on it whole).

A worker that exits by itself during a fault (say, one that stops on being fenced) is
started again, as a supervisor would, and its exit is in the timeline; at the end both
must stop cleanly (exit 0) on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from tests.integration.conftest import (
    KAFKA_SH,
    KILL_TEST_ENGINE,
    Topics,
    WorkerProcess,
    free_port,
    kill_test_env,
    new_topics,
    worker_env_for,
)
from tests.integration.kafka import (
    committed_offsets,
    end_offsets,
    keyed,
    read_all,
)
from tests.integration.scenario import (
    duplicated_ids,
    expected_sessions,
    expected_tier_alerts,
    group_members,
    ready_partitions,
    restores,
    session_of,
)
from tests.support.events import T0, StreamScript

SEED_ENV = "LIVEPULSE_FAULT_SEED"
PARTITIONS = 8
STREAMS = 400
CHUNKS = 48
HOLD = CHUNKS - 6  # the feed holds this chunk back until the scenario's faults are over
CHUNK_MS = 120_000  # event time per chunk
ACTIVE_MS = 40_000  # a stream's events of a chunk lie in the chunk's first 40 s
FEED_INTERVAL_S = 0.4
DEADLINE_S = 60.0  # for every wait on the group, the offsets or a worker
ENGINE = KILL_TEST_ENGINE  # small windows and thresholds: every kind of alert, many times
MAX_SILENT = 6  # chunks: 720 s of event time, well within the 1,800 s inactivity timeout
GIFTS = ((1, True), (5, True), (30, False), (500, False), (1_000, False))  # (coins, streakable)


# -- the input ------------------------------------------------------------------------


def live_input(seed: int = 16) -> list[list[dict[str, Any]]]:
    """``CHUNKS`` chunks of events of ``STREAMS`` streams, each stream in time order.

    Two thirds of the streams start in chunk 0, the rest in the first third; each ends
    (``live_end``) at a chunk between a quarter of the way and the last, so streams end
    before, during and after the faults. A stream is active in a chunk with its own
    probability (busy streams in every chunk, quiet ones in one of six or seven, never
    silent for more than ``MAX_SILENT`` chunks): a checkpoint record of a quiet stream stays
    its latest for seconds, as on a real platform. In a chunk it is active in, it gets like
    events whose running total grows by a heavy-tailed amount (some like events never
    delivered), streakable combos and single gifts, a comment, and now and then a viewer
    count or a join.
    """
    rng = random.Random(seed)
    chunks: list[list[dict[str, Any]]] = [[] for _ in range(CHUNKS)]
    for i in range(STREAMS):
        script = StreamScript(f"s-{i:04d}", creator_id=f"c-{i:04d}")
        first = 0 if i < STREAMS * 2 // 3 else rng.randrange(1, CHUNKS // 3)
        last = rng.randrange(max(first + 3, CHUNKS // 4), CHUNKS)
        base = rng.lognormvariate(math.log(250), 1.0)  # likes per active chunk
        activity = rng.choice((0.15, 0.15, 0.3, 0.6, 1.0))
        users = [f"u-{i}-{n}" for n in range(12)]
        silent = 0
        for k in range(first, last + 1):
            if k not in (first, last) and silent < MAX_SILENT and rng.random() > activity:
                silent += 1
                continue
            silent = 0
            start = T0 + k * CHUNK_MS
            ts = sorted(rng.randrange(start + 1, start + ACTIVE_MS) for _ in range(12))
            events: list[dict[str, Any]] = []
            if k == first:
                events.append(script.start(start))
            likes = max(6, int(base * rng.choice((0.2, 1.0, 1.0, 3.0))))
            for n in range(6):
                count = rng.randint(1, 15)
                dropped = max(0, likes // 6 - count)
                events.append(script.likes(ts[n], count, dropped, user=rng.choice(users)))
            for n in range(rng.randint(0, 3)):
                coins, streakable = rng.choice(GIFTS)
                user = rng.choice(users)
                if streakable:
                    steps = rng.randint(1, 4)
                    events += script.combo(ts[6 + n], coins, steps, f"k{k}-{n}", user)
                else:
                    events.append(script.gift(ts[6 + n], coins, 1, False, True, f"k{k}-{n}", user))
            events.append(script.comment(ts[9]))
            if rng.random() < 0.3:
                events.append(script.viewers(ts[10], rng.randint(5, 5_000)))
            if rng.random() < 0.3:
                events.append(script.join(ts[10], rng.choice(users)))
            if k == last:
                end = script.end(ts[11])
                end["reason"] = rng.choice(("ended", "ended", "suspended"))
                events.append(end)
            events.sort(key=lambda e: e["ts"])  # stable: a combo stays in its order
            chunks[k] += events
    for chunk in chunks:
        chunk.sort(key=lambda e: e["ts"])
    return chunks


# -- the scenario machinery -----------------------------------------------------------


@dataclass
class Feed:
    """Produces the chunks in order, one every ``FEED_INTERVAL_S``, each acknowledged whole
    before the next; never chunk ``allowed`` or later (the scenario moves the gate)."""

    broker: str
    topic: str
    chunks: list[list[tuple[bytes | None, bytes]]]
    allowed: int = HOLD
    produced: int = 0  # chunks on the broker

    async def run(self) -> None:
        # idempotent: a retried send cannot put an event on the topic twice. A chunk's
        # records of one partition go as one record batch (a partition's part of a chunk
        # is under 100 KB), so the broker appends them at once: a worker never finds a
        # partition caught up in the middle of a chunk, where its idle clock would move a
        # stream's time past events still to come (it once did, when a chunk went out in
        # several batches: a tier change at a later event than an uninterrupted run's).
        producer = AIOKafkaProducer(
            bootstrap_servers=self.broker,
            acks="all",
            enable_idempotence=True,
            max_batch_size=1_000_000,
        )
        await producer.start()
        try:
            partitions = sorted(await producer.partitions_for(self.topic))
            by_key = DefaultPartitioner()  # where the producer would put each key
            for k, chunk in enumerate(self.chunks):
                while k >= self.allowed:
                    await asyncio.sleep(0.01)
                batches: dict[int, Any] = {}
                for key, value in chunk:
                    partition = by_key(key, partitions, partitions)
                    batch = batches.get(partition)
                    if batch is None:
                        batch = batches[partition] = producer.create_batch()
                    assert batch.append(key=key, value=value, timestamp=None) is not None
                sent = [
                    await producer.send_batch(batch, self.topic, partition=partition)
                    for partition, batch in batches.items()
                ]
                await asyncio.gather(*sent)
                self.produced = k + 1
                await asyncio.sleep(FEED_INTERVAL_S)
        finally:
            await producer.stop()


@dataclass
class Harness:
    """Two workers, the feed and the group, as a scenario drives them.

    A worker that exits by itself (not killed by the scenario) is restarted, as a
    supervisor would, once the broker is up; each such exit is in the timeline.
    """

    broker: str
    topics: Topics
    workers: dict[str, WorkerProcess]
    feed: Feed
    seed: int
    rng: random.Random
    began: float = field(default_factory=time.monotonic)
    timeline: list[str] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # killed by the scenario, restarted by it
    crashed: set[str] = field(default_factory=set)  # exited by themselves, not restarted yet
    broker_up: bool = True
    admin: AIOKafkaAdminClient | None = None

    def note(self, what: str) -> None:
        self.timeline.append(
            f"{time.monotonic() - self.began:5.1f}s chunk {self.feed.produced:2d}: {what}"
        )

    def report(self) -> str:
        logs = "".join(f"\n--- {n} log (tail):\n{w.log()}" for n, w in self.workers.items())
        return (
            f"\n{SEED_ENV}={self.seed}\ntimeline:\n  "
            + "\n  ".join(self.timeline)
            + f"\nrestores:\n{restores(*self.workers.values())}{logs}"
        )

    # the broker's view; empty while it cannot say (a rebalance, a broker restart)

    async def _admin(self) -> AIOKafkaAdminClient:
        if self.admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.broker, request_timeout_ms=5_000)
            await admin.start()
            self.admin = admin
        return self.admin

    async def close(self) -> None:
        admin, self.admin = self.admin, None
        if admin is not None:
            with contextlib.suppress(Exception):  # a client of a broker that went away
                await admin.close()

    async def members(self) -> dict[str, set[int]]:
        try:
            return await group_members(await self._admin(), self.topics.app_id, self.topics.events)
        except Exception:  # the broker is away or restarting: ask again with a new client
            await self.close()
            return {}

    async def committed(self) -> dict[int, int]:
        try:
            offsets = await committed_offsets(
                await self._admin(), self.topics.app_id, self.topics.events
            )
        except Exception:
            await self.close()
            return {}
        return {tp.partition: o for tp, o in (offsets or {}).items()}

    async def split_between_two(self) -> bool:
        parts = list((await self.members()).values())
        return len(parts) == 2 and all(parts) and set.union(*parts) == set(range(PARTITIONS))

    async def one_owns_all(self) -> bool:
        return list((await self.members()).values()) == [set(range(PARTITIONS))]

    async def wait_for(
        self, what: str, condition: Callable[[], Awaitable[bool]], deadline_s: float = DEADLINE_S
    ) -> None:
        give_up = time.monotonic() + deadline_s
        while not await condition():
            self.supervise()
            if time.monotonic() > give_up:
                raise AssertionError(f"timed out after {deadline_s:g}s: {what}{self.report()}")
            await asyncio.sleep(0.02)
        self.note(what)

    async def chunks_produced(self, n: int) -> None:
        """Let the feed go on to chunk ``n`` (exclusive) and wait until it is on the broker."""
        self.feed.allowed = max(self.feed.allowed, n)

        async def produced() -> bool:
            return self.feed.produced >= n

        await self.wait_for(f"{n} chunks produced", produced)

    async def hold_at(self, n: int) -> None:
        """Chunks up to ``n`` (exclusive) on the broker, and the feed held there."""
        assert self.feed.produced <= n, (self.feed.produced, n)
        self.feed.allowed = n
        await self.chunks_produced(n)

    async def committed_past_input_so_far(self, what: str) -> None:
        """Wait until the group has committed every input record produced by now."""
        ends = await end_offsets(self.broker, self.topics.events)

        async def committed_past() -> bool:
            done = await self.committed()
            return all(done.get(tp.partition, 0) >= end for tp, end in ends.items())

        await self.wait_for(what, committed_past)

    def release(self) -> None:
        """The feed goes on, up to ``HOLD``."""
        self.feed.allowed = max(self.feed.allowed, HOLD)

    async def moment(self) -> None:
        """A random moment within one feed interval."""
        await asyncio.sleep(self.rng.uniform(0, FEED_INTERVAL_S))

    # the workers

    def start(self, name: str) -> None:
        self.workers[name].start()
        self.held.discard(name)
        self.crashed.discard(name)
        self.note(f"{name} started")

    def kill_9(self, name: str) -> None:
        assert self.workers[name].stop(signal.SIGKILL) == -signal.SIGKILL, self.report()
        self.held.add(name)
        self.note(f"{name} killed -9")

    def signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.workers[name].proc
        assert proc is not None and proc.poll() is None, f"{name} is not running{self.report()}"
        proc.send_signal(sig)
        self.note(f"{name} sent {sig.name}")

    def supervise(self) -> None:
        for name, worker in self.workers.items():
            proc = worker.proc
            if name in self.held or proc is None or proc.poll() is None:
                continue
            if name not in self.crashed:
                self.crashed.add(name)
                worker.exit_codes.append(proc.returncode)
                self.note(f"{name} exited by itself with code {proc.returncode}")
            if self.broker_up:
                self.start(name)

    async def ready(self, name: str) -> bool:
        """Whether ``name`` is ready (``/readyz``) with partitions to process."""
        return bool(await asyncio.to_thread(ready_partitions, self.workers[name]))

    async def events_applied(self, name: str) -> float:
        """``livepulse_events_total`` of a worker, all types (-1 if it does not answer)."""
        url = f"http://127.0.0.1:{self.workers[name].metrics_port}/metrics"

        def get() -> str:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())

        try:
            text = await asyncio.to_thread(get)
        except (urllib.error.URLError, OSError):
            return -1.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("livepulse_events_total{")
        )


def seed_of_run() -> int:
    """The seed of this run's random moments: ``LIVEPULSE_FAULT_SEED``, or a new one."""
    given = os.environ.get(SEED_ENV)
    seed = int(given) if given else random.SystemRandom().randrange(2**31)
    print(f"fault moments: {SEED_ENV}={seed}{' (given)' if given else ''}")
    return seed


def worker_pair(env: dict[str, str], tmp_path: Path, **settings: str) -> dict[str, WorkerProcess]:
    """Two workers of one app id (one group), each with its own data dir and metrics port;
    ``settings``: LIVEPULSE_* variables on top of ``kill_test_env``'s."""
    pair = {}
    for name in ("a", "b"):
        port = free_port()
        worker_env = (
            kill_test_env(env)
            | {
                "LIVEPULSE_DATA_DIR": str(tmp_path / f"worker-{name}"),
                "LIVEPULSE_METRICS_PORT": str(port),
            }
            # exactly_once: outputs, checkpoints and input offsets in one transaction per input
            # partition. A worker from before it ignores the variable (settings only read
            # the LIVEPULSE_ names they know).
            | {"LIVEPULSE_PROCESSING_GUARANTEE": "exactly_once"}
            | settings
        )
        pair[name] = WorkerProcess(worker_env, tmp_path / f"worker-{name}.log", port)
    return pair


@pytest.fixture
def pairs() -> Iterator[list[dict[str, WorkerProcess]]]:
    """Worker pairs a test makes; whatever of them still runs at the end is killed -9
    (only after a failure: the tests stop their workers themselves)."""
    made: list[dict[str, WorkerProcess]] = []
    yield made
    for pair in made:
        for w in pair.values():
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()  # also ends a process stopped with SIGSTOP
                w.proc.wait()


@pytest.fixture
def topics(broker: str) -> Topics:
    return new_topics(broker, partitions=PARTITIONS)


# -- running a scenario and judging its result ----------------------------------------

Scenario = Callable[[Harness], Awaitable[None]]


@dataclass
class Expected:
    chunks: list[list[dict[str, Any]]]
    events: list[dict[str, Any]]
    sessions: dict[str, dict[str, Any]]
    tier_alerts: dict[str, tuple[str, str, int]]  # id: type, stream, event time


_EXPECTED: list[Expected] = []


def expected() -> Expected:
    """The input and what it must give, worked out once per session."""
    if not _EXPECTED:
        chunks = live_input()
        events = [e for chunk in chunks for e in chunk]
        sessions = expected_sessions(events)
        tier_alerts = expected_tier_alerts(events, ENGINE)
        kinds = Counter(kind for kind, _, _ in tier_alerts.values())
        assert len(sessions) == STREAMS and min(kinds.values()) > 500, (len(sessions), kinds)
        _EXPECTED.append(Expected(chunks, events, sessions, tier_alerts))
    return _EXPECTED[0]


def run(
    broker: str, topics: Topics, workers: dict[str, WorkerProcess], scenario: Scenario
) -> tuple[Harness, list[str]]:
    """Start both workers, feed the input while ``scenario`` runs its faults, feed the rest,
    wait until everything is committed, stop both workers; then judge the topics."""
    seed = seed_of_run()
    want = expected()
    feed = Feed(broker, topics.events, [keyed(chunk) for chunk in want.chunks])
    h = Harness(broker, topics, workers, feed, seed, random.Random(seed))

    async def drive() -> None:
        feeding: asyncio.Task[None] | None = None
        try:
            h.start("a")
            h.start("b")
            await h.wait_for("a and b split the partitions", h.split_between_two)
            feeding = asyncio.ensure_future(feed.run())
            await scenario(h)
            await h.chunks_produced(CHUNKS)
            ends = {tp.partition: n for tp, n in (await end_offsets(broker, topics.events)).items()}
            assert sum(ends.values()) == len(want.events), "the input is not on the topic once"

            async def all_committed() -> bool:
                done = await h.committed()
                return all(done.get(p, 0) >= end for p, end in ends.items())

            await h.wait_for("every input record committed", all_committed, 2 * DEADLINE_S)
            await feeding
        finally:
            if feeding is not None and not feeding.done():
                feeding.cancel()
            await h.close()

    asyncio.run(drive())
    problems = []
    for name, worker in workers.items():
        code = worker.stop()
        if code != 0:
            problems.append(f"worker {name} exited {code} on SIGTERM")
    h.note(f"both stopped; exit codes { ({n: w.exit_codes for n, w in workers.items()}) }")
    return h, problems + judge(broker, topics, want)


def judge(broker: str, topics: Topics, want: Expected) -> list[str]:
    """What a read_committed subscriber got that it should not have; empty if exact."""
    problems = []
    open_txn = asyncio.run(open_transactions(broker, topics.alerts))
    if open_txn:
        problems.append(f"transactions still open on {topics.alerts}: {open_txn}")
    records = asyncio.run(read_all(broker, topics.alerts, "read_committed"))
    alerts = [orjson.loads(r.value) for r in records]

    twice = duplicated_ids(alerts)
    if twice:
        kinds = Counter(a["type"] for a in alerts if a["alert_id"] in twice)
        examples = [
            (a["alert_id"][:12], a["type"], a["stream_id"], twice[a["alert_id"]])
            for a in alerts
            if a["alert_id"] in twice
        ]
        problems.append(
            f"{len(twice)} alert ids read more than once ({sum(twice.values())} reads) by a "
            f"read_committed reader, by type {dict(kinds)}; e.g. (id, type, stream, times) "
            f"{sorted(set(examples))[:8]}"
        )
    # every distinct version of each id (a copy differs from its first in emitted_at only,
    # unless the worker computed the same alert twice from different states)
    versions: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        copy = {k: v for k, v in alert.items() if k != "emitted_at"}
        seen = versions.setdefault(alert["alert_id"], [])
        if copy not in seen:
            seen.append(copy)
    differing = {i: vs for i, vs in versions.items() if len(vs) > 1}
    if differing:

        def fields(vs: list[dict[str, Any]]) -> list[str]:
            return sorted(k for k in vs[0] if any(v.get(k) != vs[0][k] for v in vs[1:]))

        kinds = Counter(vs[0]["type"] for vs in differing.values())
        shown_differing = sorted(
            (i[:12], vs[0]["type"], vs[0]["stream_id"], fields(vs)) for i, vs in differing.items()
        )
        problems.append(
            f"{len(differing)} alert ids carry different alerts, by type {dict(kinds)}; "
            f"e.g. (id, type, stream, fields that differ) {shown_differing[:6]}"
        )

    got_tier_ids = {i for i, vs in versions.items() if vs[0]["type"] != "stream_ended"}
    missing = set(want.tier_alerts) - got_tier_ids
    extra = got_tier_ids - set(want.tier_alerts)
    if missing or extra:
        shown = sorted((want.tier_alerts[i][1:], want.tier_alerts[i][0], i[:12]) for i in missing)
        unexpected = sorted(
            ((v["stream_id"], v["event_time"]), v["type"], i[:12])
            for i in extra
            for v in versions[i][:1]
        )
        problems.append(
            f"tier/spike/goal alert ids differ from an uninterrupted run's "
            f"({len(want.tier_alerts)}): {len(missing)} missing, {len(extra)} unexpected; "
            f"missing e.g. ((stream, event time), type, id) {shown[:6]}; "
            f"unexpected e.g. {unexpected[:6]}"
        )

    got: dict[str, list[dict[str, Any]]] = {}
    for vs in versions.values():
        for v in vs:
            if v["type"] == "stream_ended":
                got.setdefault(v["stream_id"], []).append(session_of(v))
    never = sorted(set(want.sessions) - set(got))
    if never:
        problems.append(f"{len(never)} streams have no stream_ended: {never[:8]}")
    several = sorted(sid for sid, sessions in got.items() if len(sessions) > 1)
    if several:
        problems.append(
            f"{len(several)} streams have more than one distinct stream_ended: {several[:8]}"
        )
    wrong = {
        sid: (session, want.sessions[sid])
        for sid in sorted(want.sessions)
        for session in got.get(sid, [])
        if session != want.sessions[sid]
    }
    if wrong:
        by_field = Counter(
            k for g, w in wrong.values() for k in ("likes", "gifts", "coins") if g[k] != w[k]
        )
        off = {k: sum(g[k] - w[k] for g, w in wrong.values()) for k in ("likes", "gifts", "coins")}

        def diff(g: dict[str, Any], w: dict[str, Any]) -> str:
            return ", ".join(
                f"{k} {g[k]} (expected {w[k]}, {g[k] - w[k]:+})"
                if isinstance(w[k], int) and k in ("likes", "gifts", "coins")
                else f"{k} {g[k]!r} (expected {w[k]!r})"
                for k in w
                if g[k] != w[k]
            )

        problems.append(
            f"{len(wrong)} of {len(want.sessions)} streams end with wrong totals: wrong likes "
            f"in {by_field['likes']}, gifts in {by_field['gifts']}, coins in "
            f"{by_field['coins']} (summed got - expected: {off}); e.g.\n    "
            + "\n    ".join(f"{sid}: {diff(g, w)}" for sid, (g, w) in list(wrong.items())[:10])
        )

    windows = [
        orjson.loads(r.value)
        for r in asyncio.run(read_all(broker, topics.windows, "read_committed"))
    ]
    windows_twice = [i for i, n in Counter(w["window_id"] for w in windows).items() if n > 1]
    if windows_twice:
        problems.append(
            f"{len(windows_twice)} window ids read more than once by a read_committed reader"
        )
    dead = asyncio.run(read_all(broker, topics.dlq, "read_committed"))
    if dead:
        reasons = Counter(dict(r.headers).get("livepulse.reason", b"?").decode() for r in dead)
        problems.append(
            f"{len(dead)} valid input records reached the dead letters: {dict(reasons)}"
        )
    print(f"{len(alerts)} alerts read_committed ({len(versions)} ids), {len(windows)} windows")
    return problems


async def open_transactions(
    broker: str, topic: str, deadline_s: float = 30.0
) -> dict[int, tuple[int, int]]:
    """Partitions whose last stable offset stays behind the high watermark (a transaction
    left open) for ``deadline_s``: partition -> (LSO, high watermark); empty once none."""
    give_up = time.monotonic() + deadline_s
    while True:
        lso = await end_offsets(broker, topic, "read_committed")
        hw = await end_offsets(broker, topic)
        behind = {tp.partition: (lso[tp], hw[tp]) for tp in hw if lso[tp] < hw[tp]}
        if not behind or time.monotonic() > give_up:
            return behind
        await asyncio.sleep(0.2)


# -- a broker of the test's own, to kill -------------------------------------------------


@dataclass
class OwnBroker:
    """A single-node broker started by deploy/kafka/kafka.sh on free ports, with its data
    in the test's tmp dir, so killing it leaves the session's broker alone."""

    home: Path
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        """Start it (again, on the same data) and return once it serves requests."""
        env = os.environ | {
            "LIVEPULSE_KAFKA_HOME": str(self.home),
            "LIVEPULSE_KAFKA_PORT": str(self.port),
            "LIVEPULSE_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LIVEPULSE_KAFKA_SECURE": "0",
        }
        up = subprocess.run(
            ["bash", str(KAFKA_SH), "up"], env=env, text=True, capture_output=True, check=False
        )
        assert up.returncode == 0, f"broker did not start:\n{up.stdout}\n{up.stderr}"

    def pid(self) -> int | None:
        """The broker's pid while it runs (kafka.sh's pid file), else None."""
        try:
            pid = int((self.home / "broker.pid").read_text().strip())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def kill_9(self, deadline_s: float = 30.0) -> bool:
        """kill -9 the broker if it runs and wait until it is gone; whether it ran."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        give_up = time.monotonic() + deadline_s
        while self.pid() is not None:
            assert time.monotonic() < give_up, f"broker pid {pid} survived kill -9"
            time.sleep(0.02)
        return True


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    port = free_port()
    while (controller := free_port()) == port:
        pass
    broker = OwnBroker(tmp_path / "kafka", port, controller)
    try:
        broker.up()
        yield broker
    finally:
        broker.kill_9()  # a throwaway broker: no need to stop it cleanly


# -- the scenarios ---------------------------------------------------------------------


def verdict(h: Harness, problems: list[str]) -> None:
    print("timeline:\n  " + "\n  ".join(h.timeline))
    assert not problems, "\n".join(problems) + h.report()


def test_a_zombie_resumed_after_sigstop_then_a_kill_9_leave_every_stream_exact(
    broker: str,
    topics: Topics,
    worker_env: dict[str, str],
    tmp_path: Path,
    pairs: list[dict[str, WorkerProcess]],
) -> None:
    """A worker frozen past the session timeout while it has work in hand (applied, not yet
    checkpointed), expelled, its partitions taken over; resumed, it rejoins as a zombie
    that still holds that work. Then the other is killed -9 and restarted: every partition
    is restored from the state topic, whoever wrote it last.

    The workers commit at the default interval (1 s), not kill_test_env's 0.2 s: the work
    a worker holds between two commits is what a zombie can write back stale."""
    workers = worker_pair(worker_env, tmp_path, LIVEPULSE_COMMIT_INTERVAL_SECONDS="1.0")
    pairs.append(workers)

    async def scenario(h: Harness) -> None:
        frozen, other = h.rng.sample(sorted(workers), 2)
        at = h.rng.randrange(4, 12)
        await h.hold_at(at)
        before = await h.events_applied(frozen)
        h.feed.allowed = at + 1

        async def applied_some() -> bool:
            return await h.events_applied(frozen) > before

        # frozen with events of the chunk applied, most likely before its next commit
        await h.wait_for(f"{frozen} applied part of chunk {at}", applied_some)
        h.signal(frozen, signal.SIGSTOP)
        h.release()
        await h.wait_for(f"{other} owns every partition ({frozen} expelled)", h.one_owns_all)
        # The zombie's work in hand goes stale: the new owner processes a few more chunks
        # and commits past all of it. The zombie wakes in a lull of the input (the feed
        # held until it has rejoined), so that nothing the new owner writes in the
        # meantime hides what the zombie writes: every stream it held is at stake.
        await h.chunks_produced(h.feed.produced + 2)
        await h.hold_at(h.feed.produced + 1)
        await h.committed_past_input_so_far(f"{other} committed past all {frozen} had")
        h.signal(frozen, signal.SIGCONT)
        await h.wait_for(f"{frozen} rejoined: the partitions split again", h.split_between_two)
        h.release()
        await h.chunks_produced(min(h.feed.produced + h.rng.randint(2, 6), HOLD))
        await h.moment()
        h.kill_9(other)
        await h.wait_for(f"{frozen} owns every partition", h.one_owns_all)
        h.start(other)
        await h.wait_for(f"{other} rejoined: the partitions split again", h.split_between_two)

    h, problems = run(broker, topics, workers, scenario)
    verdict(h, problems)


def test_five_kill_9s_at_random_moments_leave_every_stream_exact(
    broker: str,
    topics: Topics,
    worker_env: dict[str, str],
    tmp_path: Path,
    pairs: list[dict[str, WorkerProcess]],
) -> None:
    """Five times: at a random moment, a random worker of the two that holds partitions
    (it is ready: assigned and restored) is killed -9, and started again at once."""
    workers = worker_pair(worker_env, tmp_path)
    pairs.append(workers)

    async def scenario(h: Harness) -> None:
        # five chunks at least GAP apart, uniformly among such choices
        gap = 5
        picks = sorted(h.rng.sample(range(3, HOLD - 2 - 4 * gap), 5))
        moments = [pick + i * gap for i, pick in enumerate(picks)]
        h.note(f"kills planned at chunks {moments}, each once its victim is ready")
        for n, at in enumerate(moments, 1):
            await h.chunks_produced(at)
            victim = h.rng.choice(sorted(workers))

            async def victim_ready(victim: str = victim) -> bool:
                return await h.ready(victim)

            await h.wait_for(f"kill {n}: {victim} ready with partitions", victim_ready)
            await h.moment()
            h.kill_9(victim)
            h.start(victim)
        # the group is over its last kill once the records produced by then are committed
        # (the broker's view of the members lags: a killed member stays until its session
        # times out)
        await h.committed_past_input_so_far("every record produced by the last kill committed")
        await h.wait_for("both in the group: the partitions split", h.split_between_two)

    h, problems = run(broker, topics, workers, scenario)
    verdict(h, problems)


def test_the_broker_killed_9_mid_run_and_restarted_leaves_every_stream_exact(
    own_broker: OwnBroker, tmp_path: Path, pairs: list[dict[str, WorkerProcess]]
) -> None:
    """The broker dies (kill -9) right after a chunk reached it, while the workers are at
    it, and is started again on its data; workers that stop meanwhile are restarted."""
    topics = new_topics(own_broker.address, PARTITIONS)
    workers = worker_pair(worker_env_for(own_broker.address, topics, tmp_path), tmp_path)
    pairs.append(workers)

    async def scenario(h: Harness) -> None:
        await h.hold_at(h.rng.randrange(HOLD // 3, HOLD * 2 // 3))
        await h.moment()
        h.broker_up = False
        assert own_broker.kill_9(), "the broker was not running"
        h.note("broker killed -9")
        await asyncio.to_thread(own_broker.up)
        h.broker_up = True
        h.note("broker up again")
        await h.committed_past_input_so_far("all input before the kill committed")
        h.release()
        await h.wait_for("both in the group: the partitions split", h.split_between_two)

    h, problems = run(own_broker.address, topics, workers, scenario)
    verdict(h, problems)
