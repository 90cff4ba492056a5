import pytest

from processor.core.tiers import Tier, TierPolicy

L, M, H = Tier.LOW, Tier.MODERATE, Tier.HIGH


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        (0, L, L),
        (999, L, L),
        (1_000, L, M),
        (9_999, L, M),
        (10_000, L, H),
        (10_000, M, H),
        # down needs value < threshold * 0.9
        (999, M, M),
        (900, M, M),
        (899, M, L),
        (9_000, H, H),
        (8_999, H, M),
        (950, H, M),
        (899, H, L),
        (0, H, L),
        (50_000, H, H),
    ],
)
def test_default_policy_with_hysteresis(value: int, current: Tier, expected: Tier) -> None:
    assert TierPolicy("p").classify(value, current) is expected


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [(999, M, L), (1_000, M, M), (9_999, H, M), (10_000, H, H)],
)
def test_no_hysteresis_downgrades_just_below_threshold(
    value: int, current: Tier, expected: Tier
) -> None:
    assert TierPolicy("p", hysteresis=0.0).classify(value, current) is expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"moderate": 10, "high": 10}, "moderate < high"),
        ({"moderate": 0}, "moderate < high"),
        ({"hysteresis": 1.0}, "hysteresis"),
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierPolicy("p", **kwargs)  # type: ignore[arg-type]


def test_threshold_is_entry_value_of_tier() -> None:
    policy = TierPolicy("p", moderate=5, high=50)
    assert [policy.threshold(t) for t in (L, M, H)] == [0, 5, 50]
