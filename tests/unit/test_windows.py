import pytest

from processor.core.windows import SlidingTotals, Totals

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
        ([(0, 5)], 5, -50_000),
        ([(0, 5), (9_999, 1)], 6, -50_000),
        ([(0, 5), (59_999, 1)], 6, 0),
        # at 60_000 the window is [10_000, 70_000): the first bucket left
        ([(0, 5), (60_000, 1)], 1, 10_000),
        ([(0, 5), (30_000, 2), (75_000, 1)], 3, 20_000),
        # far in the future: everything expired
        ([(0, 5), (30_000, 2), (10_000_000, 1)], 1, 9_950_000),
        # out of order within the window: counted in its bucket
        ([(50_000, 5), (20_000, 2)], 7, 0),
        # then expires with its bucket
        ([(50_000, 5), (20_000, 2), (85_000, 0)], 5, 30_000),
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


@pytest.mark.parametrize(("size", "step"), [(0, 1), (10, 0), (15, 10)])
def test_size_must_be_multiple_of_step(size: int, step: int) -> None:
    with pytest.raises(ValueError):
        SlidingTotals(size, step)
