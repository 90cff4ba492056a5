import pytest

from processor.core.rules import gift_value, like_growth


def gift(coins: int, repeat: int, streakable: bool, end: bool) -> tuple[int, int, bool, bool]:
    return coins, repeat, streakable, end


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (gift(1, 1, True, False), (0, 0)),
        (gift(1, 7, True, False), (0, 0)),
        (gift(1, 7, True, True), (7, 7)),
        (gift(5, 3, True, True), (3, 15)),
        (gift(500, 1, False, True), (1, 500)),
        # a non-streakable gift counts even if a client forgot repeat_end
        (gift(29_999, 1, False, False), (1, 29_999)),
    ],
)
def test_gift_value(event: tuple[int, int, bool, bool], expected: tuple[int, int]) -> None:
    assert gift_value(*event) == expected


@pytest.mark.parametrize(
    ("previous", "count", "total", "expected"),
    [
        (None, 5, 5, (5, 5)),
        (None, 5, 1_000, (5, 1_000)),  # joined mid-stream: only this event's likes
        (0, 5, 12, (12, 12)),  # 7 likes were in dropped events
        (12, 3, 15, (3, 15)),
        (15, 3, 14, (0, 15)),  # reordered: already counted
        (15, 3, 15, (0, 15)),
    ],
)
def test_like_growth(
    previous: int | None, count: int, total: int, expected: tuple[int, int]
) -> None:
    assert like_growth(previous, count, total) == expected
