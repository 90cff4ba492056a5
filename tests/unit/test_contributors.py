"""Space-Saving summaries of top gifters and likers: exact up to capacity, bounded beyond."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.contributors import Summary, top


@pytest.mark.parametrize(
    ("capacity", "likes", "rows", "exact"),
    [
        pytest.param(
            3,
            [("a", 3), ("b", 1), ("a", 2)],
            [("a", 5), ("b", 1)],
            True,
            id="a-returning-liker-adds-up",
        ),
        pytest.param(2, [("a", 3), ("b", 1)], [("a", 3), ("b", 1)], True, id="exact-at-capacity"),
        # b (the smallest) leaves, c inherits its 1
        pytest.param(
            2,
            [("a", 3), ("b", 1), ("c", 2)],
            [("a", 3), ("c", 3)],
            False,
            id="new-user-at-full-summary-evicts-the-smallest",
        ),
        pytest.param(
            2,
            [("b", 1), ("a", 1), ("c", 5)],
            [("b", 1), ("c", 6)],
            False,
            id="tie-on-value-evicts-the-smallest-user-id",
        ),
        pytest.param(
            1,
            [("a", 2), ("b", 1), ("a", 1)],
            [("a", 4)],
            False,
            id="evicted-user-coming-back-is-new-again",
        ),
    ],
)
def test_likers_are_exact_up_to_capacity_then_evict_the_smallest(
    capacity: int, likes: list[tuple[str, int]], rows: list[tuple[str, int]], exact: bool
) -> None:
    summary = Summary()
    for user, n in likes:
        summary.like(user, n, capacity)
    assert (summary.liker_rows(), summary.exact) == (rows, exact)


@pytest.mark.parametrize(
    ("capacity", "gifts", "rows", "exact"),
    [
        pytest.param(
            2,
            [("a", 10, 1), ("b", 5, 5), ("a", 1, 1)],
            [("a", 11, 2), ("b", 5, 5)],
            True,
            id="a-returning-gifter-adds-coins-and-gifts",
        ),
        # b (5 coins, but 5 gifts) leaves, c inherits its coins and gift count
        pytest.param(
            2,
            [("a", 10, 1), ("b", 5, 5), ("c", 1, 1)],
            [("a", 10, 1), ("c", 6, 6)],
            False,
            id="eviction-by-coins-not-gift-count",
        ),
    ],
)
def test_gifters_rank_by_coins_and_carry_their_gift_counts(
    capacity: int,
    gifts: list[tuple[str, int, int]],
    rows: list[tuple[str, int, int]],
    exact: bool,
) -> None:
    summary = Summary()
    for user, coins, count in gifts:
        summary.gift(user, coins, count, capacity)
    assert (summary.gifter_rows(), summary.exact) == (rows, exact)


def test_top_adds_summaries_up_per_user_and_orders_by_value_then_user() -> None:
    first, second = Summary(), Summary()
    for user, n in [("a", 3), ("b", 1), ("d", 4)]:
        first.like(user, n, 8)
    for user, n in [("a", 1), ("c", 5)]:
        second.like(user, n, 8)
    first.gift("x", 100, 2, 8)
    second.gift("x", 30, 1, 8)
    second.gift("y", 130, 1, 8)
    exact, gifters, likers = top([first, second], 3)
    assert exact
    assert likers == [("c", 5), ("a", 4), ("d", 4)]
    assert gifters == [("x", 130, 3), ("y", 130, 1)]
    second.like("e", 1, 2)  # second is full (a, c): e evicts a
    assert top([first, second], 1)[0] is False
    assert top([], 5) == (True, [], [])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.sampled_from("abcdefghij"), st.integers(1, 50)), max_size=80),
)
def test_space_saving_error_bound(capacity: int, sends: list[tuple[str, int]]) -> None:
    """Every estimate is above the truth by at most N / capacity, and every user whose
    truth exceeds N / capacity is tracked (the README's bound)."""
    summary = Summary()
    truth: dict[str, int] = {}
    for user, n in sends:
        summary.like(user, n, capacity)
        truth[user] = truth.get(user, 0) + n
    total = sum(truth.values())
    tracked = dict(summary.liker_rows())
    assert len(tracked) <= capacity
    for user, estimate in tracked.items():
        assert 0 <= estimate - truth[user] <= total / capacity
    assert {u for u, t in truth.items() if t > total / capacity} <= set(tracked)
    assert summary.exact == (len(truth) <= capacity)
