"""Consumer lag, as the worker measures it."""

from __future__ import annotations

import pytest

from processor.worker.lag import consumer_lag


@pytest.mark.parametrize(
    ("ends", "committed", "earliest", "lag"),
    [
        ({0: 100}, {0: 90}, {0: 0}, {0: 10}),
        ({0: 50}, {0: 50}, {0: 0}, {0: 0}),
        ({0: 7}, {0: None}, {0: 2}, {0: 5}),  # never committed: from the earliest offset
        ({0: 0}, {}, {0: 0}, {0: 0}),
        ({0: 5}, {0: 9}, {0: 0}, {0: 0}),  # never negative
        ({0: 5}, {0: None}, {}, {}),  # nothing known to count from: left out
        ({0: 100, 1: 50, 2: 7}, {0: 90, 1: 50, 2: None}, {2: 2}, {0: 10, 1: 0, 2: 5}),
    ],
)
def test_consumer_lag_is_end_minus_committed(
    ends: dict[int, int],
    committed: dict[int, int | None],
    earliest: dict[int, int],
    lag: dict[int, int],
) -> None:
    assert consumer_lag(ends, committed, earliest) == lag
