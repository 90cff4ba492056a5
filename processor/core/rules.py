"""The domain rules for likes and gifts (docs/domain.md)."""

from __future__ import annotations


def gift_value(
    coins: int, repeat_count: int, streakable: bool, repeat_end: bool
) -> tuple[int, int]:
    """(gifts, coins) a gift event contributes.

    A streakable gift is re-sent at every combo step with a growing ``repeat_count``;
    only the final ``repeat_end`` event counts, so a combo is never counted twice.
    Gifts are counted as items: a combo of 10 Roses is 10 gifts worth ``10 * coins``.
    """
    if streakable and not repeat_end:
        return 0, 0
    return repeat_count, repeat_count * coins


def like_growth(previous_total: int | None, count: int, total: int) -> tuple[int, int]:
    """(likes to count, new high-water total) for a like event.

    Like events are lossy but ``total`` is right, so likes are the growth of ``total``.
    With no earlier total known (the worker joined mid-stream), the event's own ``count``
    is the growth. A ``total`` below the high-water mark (reordered events) adds nothing.
    """
    if previous_total is None:
        return min(count, total), total
    if total <= previous_total:
        return 0, previous_total
    return total - previous_total, total
