"""The like and gift rules (docs/domain.md), one named row per case."""

import re
from pathlib import Path

import pytest

from processor.core.rules import gift_value, like_growth


@pytest.mark.parametrize(
    ("coins", "repeat_count", "streakable", "repeat_end", "expected"),
    [
        pytest.param(1, 1, True, False, (0, 0), id="first-combo-step-counts-nothing"),
        pytest.param(1, 7, True, False, (0, 0), id="later-combo-step-counts-nothing"),
        pytest.param(1, 7, True, True, (7, 7), id="combo-end-counts-every-gift-once"),
        pytest.param(5, 3, True, True, (3, 15), id="combo-end-is-worth-coins-times-repeat"),
        pytest.param(500, 1, False, True, (1, 500), id="non-streakable-counts-on-arrival"),
        pytest.param(
            29_999, 1, False, False, (1, 29_999), id="non-streakable-counts-without-repeat-end"
        ),
    ],
)
def test_gift_value(
    coins: int, repeat_count: int, streakable: bool, repeat_end: bool, expected: tuple[int, int]
) -> None:
    assert gift_value(coins, repeat_count, streakable, repeat_end) == expected


@pytest.mark.parametrize(
    ("previous", "count", "total", "expected"),
    [
        pytest.param(None, 5, 5, (5, 5), id="first-event-unknown-total"),
        pytest.param(None, 5, 1_000, (5, 1_000), id="joined-mid-stream-counts-own-count-only"),
        pytest.param(0, 5, 12, (12, 12), id="growth-includes-likes-of-dropped-events"),
        pytest.param(12, 3, 15, (3, 15), id="growth-of-total"),
        pytest.param(15, 3, 14, (0, 15), id="reordered-below-high-water-adds-nothing"),
        pytest.param(15, 3, 15, (0, 15), id="total-equal-to-high-water-adds-nothing"),
    ],
)
def test_like_growth(
    previous: int | None, count: int, total: int, expected: tuple[int, int]
) -> None:
    assert like_growth(previous, count, total) == expected


DOMAIN = Path(__file__).resolve().parents[2] / "docs" / "domain.md"


def domain_table(section: str) -> list[list[str]]:
    """The body rows of the first table under ``## <section>`` of docs/domain.md."""
    text = DOMAIN.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/domain.md has no '## {section}' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def number(cell: str) -> int:
    """The number a cell starts with: ``12 (7 were in dropped events)`` is 12."""
    found = re.match(r"[\d,]+", cell)
    assert found, cell
    return int(found.group().replace(",", ""))


def test_the_domain_pages_like_table_is_what_like_growth_does() -> None:
    rows = domain_table("Likes: running totals, not sums")
    assert len(rows) == 4
    for previous, count, total, likes, high_water in rows:
        known = None if previous.startswith("none") else number(previous)
        assert like_growth(known, number(count), number(total)) == (
            number(likes),
            number(high_water),
        ), (previous, count, total)


def test_the_domain_pages_gift_table_is_what_gift_value_does() -> None:
    rows = domain_table("Gifts: combos count once")
    assert len(rows) == 5
    flags = {"yes": True, "no": False}
    for coins, repeat, streakable, repeat_end, gifts, value in rows:
        counted = gift_value(number(coins), number(repeat), flags[streakable], flags[repeat_end])
        assert counted == (number(gifts), number(value)), (coins, repeat, streakable, repeat_end)
