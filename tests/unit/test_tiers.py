"""Tiers by likes: up at once, down with hysteresis (docs/domain.md). One named row a case."""

import pytest

from processor.core.tiers import Tier, TierPolicy

L, M, H = Tier.LOW, Tier.MODERATE, Tier.HIGH


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        pytest.param(0, L, L, id="low-at-zero"),
        pytest.param(999, L, L, id="low-just-below-moderate"),
        pytest.param(1_000, L, M, id="up-to-moderate-at-threshold"),
        pytest.param(9_999, L, M, id="up-to-moderate-just-below-high"),
        pytest.param(10_000, L, H, id="low-jumps-to-high"),
        pytest.param(10_000, M, H, id="up-to-high-at-threshold"),
        # down needs value < threshold * 0.9
        pytest.param(999, M, M, id="moderate-holds-just-below-threshold"),
        pytest.param(900, M, M, id="moderate-holds-at-floor"),
        pytest.param(899, M, L, id="moderate-drops-below-floor"),
        pytest.param(9_000, H, H, id="high-holds-at-floor"),
        pytest.param(8_999, H, M, id="high-drops-below-floor"),
        pytest.param(950, H, M, id="high-to-moderate-when-above-moderate-floor"),
        pytest.param(899, H, L, id="high-drops-two-tiers"),
        pytest.param(0, H, L, id="high-drops-to-low-at-zero"),
        pytest.param(50_000, H, H, id="high-holds-far-above"),
    ],
)
def test_default_policy_with_hysteresis(value: int, current: Tier, expected: Tier) -> None:
    assert TierPolicy("p").classify(value, current) is expected


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        pytest.param(999, M, L, id="moderate-drops-just-below-threshold"),
        pytest.param(1_000, M, M, id="moderate-holds-at-threshold"),
        pytest.param(9_999, H, M, id="high-drops-just-below-threshold"),
        pytest.param(10_000, H, H, id="high-holds-at-threshold"),
    ],
)
def test_no_hysteresis_downgrades_just_below_threshold(
    value: int, current: Tier, expected: Tier
) -> None:
    assert TierPolicy("p", hysteresis=0.0).classify(value, current) is expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"moderate": 10, "high": 10}, "moderate < high", id="moderate-equal-to-high"),
        pytest.param({"moderate": 0}, "moderate < high", id="moderate-zero"),
        pytest.param({"hysteresis": 1.0}, "hysteresis", id="hysteresis-one"),
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierPolicy("p", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tier", "threshold"),
    [
        pytest.param(L, 0, id="low"),
        pytest.param(M, 5, id="moderate"),
        pytest.param(H, 50, id="high"),
    ],
)
def test_threshold_is_entry_value_of_tier(tier: Tier, threshold: int) -> None:
    assert TierPolicy("p", moderate=5, high=50).threshold(tier) == threshold
