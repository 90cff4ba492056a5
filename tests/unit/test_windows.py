"""Event-time windows: the trailing tier window's ring of buckets and the tumbling windows."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.windows import NONE_OPEN, SlidingTotals, Totals, TumblingTotals

STEP = 10_000
SIZE = 60_000


def run(events: list[tuple[int, int]]) -> SlidingTotals:
    window = SlidingTotals(SIZE, STEP)
    for ts, likes in events:
        window.advance(ts)
        window.add(ts, likes, 0, 0)
    return window


@pytest.mark.parametrize(
    ("events", "likes", "start"),
    [
        pytest.param([(0, 5)], 5, -50_000, id="one-event"),
        pytest.param([(0, 5), (9_999, 1)], 6, -50_000, id="same-bucket"),
        pytest.param([(0, 5), (59_999, 1)], 6, 0, id="last-bucket-of-the-window"),
        # at 60_000 the window is [10_000, 70_000): the first bucket left
        pytest.param([(0, 5), (60_000, 1)], 1, 10_000, id="first-bucket-leaves-at-size"),
        pytest.param([(0, 5), (30_000, 2), (75_000, 1)], 3, 20_000, id="oldest-bucket-left"),
        pytest.param(
            [(0, 5), (30_000, 2), (10_000_000, 1)], 1, 9_950_000, id="far-future-expires-all"
        ),
        pytest.param([(50_000, 5), (20_000, 2)], 7, 0, id="out-of-order-counted-in-its-bucket"),
        pytest.param(
            [(50_000, 5), (20_000, 2), (85_000, 0)],
            5,
            30_000,
            id="out-of-order-expires-with-bucket",
        ),
    ],
)
def test_trailing_window_sums(events: list[tuple[int, int]], likes: int, start: int) -> None:
    window = run(events)
    assert window.totals.likes == likes
    assert window.start_ms == start
    assert window.end_ms == start + SIZE


def test_event_older_than_window_is_rejected_and_not_counted() -> None:
    window = run([(100_000, 5)])
    assert window.add(49_999, 7, 1, 1) is False
    assert window.totals == Totals(5, 0, 0)
    assert window.add(50_000, 7, 1, 1) is True
    assert window.totals == Totals(12, 1, 1)


def test_buckets_stay_bounded() -> None:
    window = SlidingTotals(SIZE, STEP)
    for ts in range(0, 1_000_000, 1_000):
        window.advance(ts)
        window.add(ts, 1, 0, 0)
    assert len(window.buckets) == SIZE // STEP
    assert window.totals.likes == 60


@pytest.mark.parametrize(
    ("size", "step"),
    [
        pytest.param(0, 1, id="zero-size"),
        pytest.param(10, 0, id="zero-step"),
        pytest.param(15, 10, id="size-not-a-multiple"),
    ],
)
def test_size_must_be_multiple_of_step(size: int, step: int) -> None:
    with pytest.raises(ValueError):
        SlidingTotals(size, step)


# -- the ring -----------------------------------------------------------------------------

N = SIZE // STEP  # slots of the ring


class DictWindow:
    """The window as it was before the ring: a dict of buckets (the reference)."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}
        self.current = -1
        self.totals = [0, 0, 0]

    def slide_to(self, now: int) -> list[tuple[int, int]]:
        bucket = now - now % STEP
        seen: list[tuple[int, int]] = []
        if bucket <= self.current:
            return seen
        for b in sorted(b for b in self.buckets if b + SIZE <= bucket):
            self.current = b + SIZE
            for m, value in enumerate(self.buckets.pop(b)):
                self.totals[m] -= value
            seen.append((self.current, self.totals[0]))
        self.current = bucket
        return seen

    def add(self, ts: int, counts: tuple[int, int, int]) -> bool:
        bucket = ts - ts % STEP
        if bucket < self.current - SIZE + STEP:
            return False
        slot = self.buckets.setdefault(bucket, [0, 0, 0])
        for m, value in enumerate(counts):
            slot[m] += value
            self.totals[m] += value
        return True

    def rows(self) -> list[tuple[int, int, int, int]]:
        return [(b, *self.buckets[b]) for b in sorted(self.buckets)]  # type: ignore[misc]


def slide(window: SlidingTotals, now: int) -> list[tuple[int, int]]:
    """Each boundary ``slide_to`` yields, with the window's likes seen there."""
    return [(at, window.likes) for at in window.slide_to(now)]


def window_at(current: int, rows: list[tuple[int, int]]) -> SlidingTotals:
    """A window at stream time ``current`` with ``(ts, likes)`` added."""
    window = SlidingTotals.restore(SIZE, STEP, current - current % STEP, [])
    for ts, likes in rows:
        assert window.add(ts, likes, 0, 0)
    return window


@pytest.mark.parametrize(
    ("current", "rows", "now", "yields", "likes", "start"),
    [
        pytest.param(
            20_000, [(0, 1), (20_000, 2)], 29_999, [], 3, -30_000, id="same-bucket-nothing-moves"
        ),
        pytest.param(20_000, [(0, 1), (20_000, 2)], 59_999, [], 3, 0, id="new-bucket-none-leaves"),
        pytest.param(
            20_000,
            [(0, 1), (20_000, 2)],
            60_000,
            [(60_000, 2)],
            2,
            10_000,
            id="oldest-leaves-exactly-at-start-plus-size",
        ),
        # empty buckets yield nothing
        pytest.param(
            20_000,
            [(0, 1), (20_000, 2)],
            85_000,
            [(60_000, 2), (80_000, 0)],
            0,
            30_000,
            id="both-leave-oldest-first-each-at-its-boundary",
        ),
        # the same two boundaries, then the far bucket
        pytest.param(
            20_000,
            [(0, 1), (20_000, 2)],
            10**15,
            [(60_000, 2), (80_000, 0)],
            0,
            10**15 - 50_000,
            id="jump-far-longer-than-the-window",
        ),
        # every slot leaves, in bucket order across the wrap of slot numbers
        pytest.param(
            95_000,
            [(40_000, 1), (50_000, 2), (60_000, 3), (70_000, 4), (80_000, 5), (90_000, 6)],
            125_000,
            [(100_000, 20), (110_000, 18), (120_000, 15)],
            15,
            70_000,
            id="full-ring-leaves-across-the-wrap",
        ),
        # it leaves with a boundary, as before the ring
        pytest.param(
            20_000,
            [(10_000, 0)],
            70_000,
            [(70_000, 0)],
            0,
            20_000,
            id="bucket-added-zeros-is-a-bucket",
        ),
        # floor division keeps slots right
        pytest.param(
            -20_000,
            [(-70_000, 1), (-25_000, 2)],
            30_000,
            [(-10_000, 2), (30_000, 0)],
            0,
            -20_000,
            id="negative-stream-time",
        ),
    ],
)
def test_slide_to_yields_each_boundary_where_a_bucket_leaves(
    current: int,
    rows: list[tuple[int, int]],
    now: int,
    yields: list[tuple[int, int]],
    likes: int,
    start: int,
) -> None:
    window = window_at(current, rows)
    assert slide(window, now) == yields
    assert (window.likes, window.start_ms, window.end_ms) == (likes, start, start + SIZE)


@pytest.mark.parametrize(
    ("current", "ts", "counted"),
    [
        pytest.param(100_000, 100_000, True, id="current-bucket"),
        pytest.param(100_000, 109_999, True, id="end-of-current-bucket"),
        pytest.param(100_000, 50_000, True, id="oldest-bucket-of-the-window"),
        pytest.param(100_000, 49_999, False, id="bucket-before-the-oldest-expired"),
        pytest.param(100_000, -(10**12), False, id="far-past"),
        pytest.param(100_000, 50_000 - SIZE, False, id="oldest-slot-a-lap-earlier"),
        pytest.param(100_000, 100_000 + SIZE, True, id="oldest-slot-a-lap-later-is-ahead"),
    ],
)
def test_add_counts_unless_the_bucket_expired(current: int, ts: int, counted: bool) -> None:
    window = window_at(current, [(50_000, 7)])
    assert window.add(ts, 5, 1, 2) is counted
    expected = Totals(12, 1, 2) if counted else Totals(7, 0, 0)
    assert window.totals == expected
    assert sum(row[1] for row in window.rows()) == expected.likes


def test_the_ring_wraps_around_and_keeps_the_last_n_buckets() -> None:
    window = SlidingTotals(SIZE, STEP)
    for k in range(3 * N + 2):
        window.advance(k * STEP)
        window.add(k * STEP + 1, k + 1, 1, k)
    first = (2 * N + 2) * STEP
    assert window.rows() == [(first + k * STEP, 2 * N + 3 + k, 1, 2 * N + 2 + k) for k in range(N)]
    assert window.totals == Totals(
        sum(range(2 * N + 3, 3 * N + 3)), N, sum(range(2 * N + 2, 3 * N + 2))
    )


def test_an_event_ahead_of_stream_time_waits_until_the_window_reaches_it() -> None:
    window = window_at(20_000, [(0, 1)])
    assert window.add(100_000, 4, 0, 0)  # ahead: counted, the window does not move
    assert (window.likes, window.current_bucket) == (5, 20_000)
    assert window.rows() == [(0, 1, 0, 0), (100_000, 4, 0, 0)]
    assert slide(window, 100_000) == [(60_000, 4)]
    assert window.rows() == [(100_000, 4, 0, 0)]
    assert window.ahead is None  # in the ring now
    assert slide(window, 200_000) == [(160_000, 0)]


@pytest.mark.parametrize(
    ("first", "more", "typecode"),
    [
        # most buckets: a few hundred likes and coins, 2 bytes a count
        pytest.param(300, 0, "H", id="few-hundred-fits-16-bits"),
        pytest.param(65_535, 0, "H", id="16-bit-max"),
        pytest.param(65_535, 1, "i", id="16-bit-max-plus-one-widens-to-32"),
        pytest.param(60_000, 44_999, "i", id="one-universe-gift-widens-to-32"),
        pytest.param(2**31 - 1, 1, "q", id="32-bit-max-plus-one-widens-to-64"),
        # 1,000,000 coins x 100,000 repeats
        pytest.param(1, 10**11, "q", id="largest-gift-the-contract-allows"),
    ],
)
def test_the_ring_widens_as_a_count_needs(first: int, more: int, typecode: str) -> None:
    window = window_at(0, [(0, first)])
    assert window.add(0, 0, 0, more)  # coins: same slot layout, another third of the ring
    assert window.add(0, more, 0, 0)
    assert window.ring.typecode == typecode
    assert window.rows() == [(0, first + more, 0, more)] if more else [(0, first, 0, 0)]
    assert window == SlidingTotals.restore(SIZE, STEP, 0, window.rows())


def test_a_count_beyond_32_bits_widens_the_ring() -> None:
    window = window_at(0, [(0, 2**31 - 1)])
    assert window.ring.typecode == "i"
    assert window.add(0, 1, 2**40, 2**62)
    assert window.ring.typecode == "q"
    assert window.rows() == [(0, 2**31, 2**40, 2**62)]
    assert window.totals == Totals(2**31, 2**40, 2**62)
    assert slide(window, SIZE) == [(SIZE, 0)]
    assert window.totals == Totals(0, 0, 0)


times = st.integers(-200_000, 400_000)
ops = st.lists(
    st.tuples(
        st.sampled_from(["advance", "add", "add", "add"]),
        times,
        st.tuples(st.integers(0, 20), st.integers(0, 3), st.integers(0, 50)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_the_ring_matches_a_dict_of_buckets(steps: list[Any]) -> None:
    ring, reference = SlidingTotals(SIZE, STEP), DictWindow()
    for op, ts, counts in steps:
        if op == "advance":
            assert slide(ring, ts) == reference.slide_to(ts)
        else:
            assert ring.add(ts, *counts) is reference.add(ts, counts)
        assert ring.current_bucket == reference.current
        assert ring.totals.as_list() == reference.totals
        assert ring.rows() == reference.rows()
    restored = SlidingTotals.restore(SIZE, STEP, ring.current_bucket, ring.rows())
    assert (restored, restored.totals) == (ring, ring.totals)
    assert slide(restored, 10**9) == slide(ring, 10**9)


# -- tumbling windows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adds", "now", "closed", "still_open"),
    [
        pytest.param([], 1_000_000, [], [], id="nothing-open"),
        pytest.param([(5_000, 1)], 60_000 + 9_999, [], [0], id="open-until-end-plus-grace"),
        pytest.param([(5_000, 1)], 60_000 + 10_000, [(0, 1)], [], id="closes-at-end-plus-grace"),
        # the newest as plain ints, an older one within grace in the dict, closed in order
        pytest.param(
            [(5_000, 1), (61_000, 2), (7_000, 3)],
            130_000,
            [(0, 4), (60_000, 2)],
            [],
            id="two-close-in-order",
        ),
        pytest.param(
            [(5_000, 1), (61_000, 2), (7_000, 3)],
            70_000,
            [(0, 4)],
            [60_000],
            id="older-closes-newer-stays",
        ),
        pytest.param(
            [(61_000, 2), (5_000, 1), (125_000, 5)],
            130_000,
            [(0, 1), (60_000, 2)],
            [120_000],
            id="older-window-opened-after-a-newer-one",
        ),
    ],
)
def test_tumbling_windows_close_oldest_first(
    adds: list[tuple[int, int]],
    now: int,
    closed: list[tuple[int, int]],
    still_open: list[int],
) -> None:
    tumbling = TumblingTotals(60_000)
    for ts, likes in adds:
        tumbling.add(ts, likes, 0, likes)
    found = tumbling.close_until(now, 10_000)
    assert [(start, t.likes) for start, t in found] == closed
    assert all(t.coins == t.likes for _, t in found)
    assert [row[0] for row in tumbling.rows()] == still_open
    assert tumbling.first_start == (still_open[0] if still_open else NONE_OPEN)
    assert TumblingTotals.restore(60_000, tumbling.rows()) == tumbling
    rest = tumbling.close_all()
    assert [start for start, _ in rest] == still_open
    assert (tumbling.rows(), tumbling.first_start, tumbling.older) == ([], NONE_OPEN, None)
