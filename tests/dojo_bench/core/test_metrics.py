"""Tests for dojo_bench.core.metrics against hand-computed cases (arithmetic in the comments)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from dojo_bench.core.metrics import (
    BootstrapCI,
    RateSummary,
    bootstrap_ci,
    calibrated_threshold,
    calibration_mae,
    calibration_mae_fitted,
    kendall,
    mmrv,
    pearson,
    spearman,
    success_rate,
    wilson_interval,
)

# z for 95% two-sided is 1.959964; z² = 3.841459. With n = 10: z²/n = 0.3841459, 1 + z²/n = 1.3841459.

# --------------------------------------------------------------------------------------------------------------
# Wilson interval and success rate
# --------------------------------------------------------------------------------------------------------------


def test_wilson_half_successes() -> None:
    # p = 0.5: centre = (0.5 + 0.1920729) / 1.3841459 = 0.5
    # half = 1.959964 / 1.3841459 · sqrt(0.25/10 + 3.841459/400) = 1.416013 · sqrt(0.0346036) = 0.263405
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.236595, abs=1e-5)
    assert high == pytest.approx(0.763405, abs=1e-5)


def test_wilson_zero_successes() -> None:
    # p = 0: centre = 0.1920729 / 1.3841459 = 0.138767; half = 1.416013 · sqrt(3.841459/400) = 0.138767
    # -> (0, 0.277535); the lower bound is exactly 0, not a rounding error below it.
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.277535, abs=1e-5)


def test_wilson_all_successes_mirrors_zero() -> None:
    # By symmetry p = 1 gives (1 − 0.277535, 1).
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.722465, abs=1e-5)
    assert high == 1.0


def test_wilson_wider_at_higher_confidence() -> None:
    low95, high95 = wilson_interval(3, 10, 0.95)
    low99, high99 = wilson_interval(3, 10, 0.99)
    assert low99 < low95 < 0.3 < high95 < high99


@pytest.mark.parametrize(
    ("successes", "n", "confidence", "match"),
    [
        (0, 0, 0.95, "at least one episode"),
        (11, 10, 0.95, r"successes must lie in \[0, n\]"),
        (-1, 10, 0.95, r"successes must lie in \[0, n\]"),
        (5, 10, 1.0, "confidence must lie strictly between 0 and 1"),
        (5, 10, 0.0, "confidence must lie strictly between 0 and 1"),
    ],
)
def test_wilson_rejects_bad_input(successes: int, n: int, confidence: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wilson_interval(successes, n, confidence)


def test_success_rate_summary() -> None:
    summary = success_rate([True, False, True, False, True, False, True, False, True, False])
    assert isinstance(summary, RateSummary)
    assert summary.rate == 0.5
    assert summary.n == 10
    assert (summary.low, summary.high) == pytest.approx((0.236595, 0.763405), abs=1e-5)


def test_success_rate_accepts_zero_one_numbers() -> None:
    assert success_rate(np.array([1, 1, 0, 1])).rate == 0.75


def test_success_rate_is_frozen() -> None:
    summary = success_rate([True])
    with pytest.raises(AttributeError):
        summary.rate = 0.0  # type: ignore[misc]


def test_success_rate_rejects_empty_and_non_binary() -> None:
    with pytest.raises(ValueError, match="at least one episode"):
        success_rate([])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        success_rate([0.2, 0.9])


# --------------------------------------------------------------------------------------------------------------
# Correlations
# --------------------------------------------------------------------------------------------------------------


def test_correlations_one_swap() -> None:
    # x = [1, 2, 3, 4], y = [1, 3, 2, 4]: both are already ranks, so Pearson = Spearman.
    # Spearman: d = [0, −1, 1, 0], Σd² = 2, ρ = 1 − 6·2 / (4·(16 − 1)) = 1 − 12/60 = 0.8.
    # Kendall: 6 pairs, only (2, 3) is discordant -> τ = (5 − 1) / 6 = 2/3.
    x, y = [1, 2, 3, 4], [1, 3, 2, 4]
    assert pearson(x, y) == pytest.approx(0.8)
    assert spearman(x, y) == pytest.approx(0.8)
    assert kendall(x, y) == pytest.approx(2 / 3)


def test_pearson_non_linear_but_monotone() -> None:
    # x = [1, 2, 3], y = [1, 2, 4]: dx = [−1, 0, 1], dy = [−4/3, −1/3, 5/3]
    # Σdx·dy = 4/3 + 0 + 5/3 = 3; Σdx² = 2; Σdy² = (16 + 1 + 25)/9 = 14/3
    # r = 3 / sqrt(2 · 14/3) = 3 / sqrt(28/3) = 0.981981. Ranks agree exactly, so ρ = τ = 1.
    x, y = [1, 2, 3], [1, 2, 4]
    assert pearson(x, y) == pytest.approx(3 / math.sqrt(28 / 3))
    assert spearman(x, y) == pytest.approx(1.0)
    assert kendall(x, y) == pytest.approx(1.0)


def test_kendall_tau_b_with_tie() -> None:
    # x = [1, 1, 2], y = [1, 2, 3]: pairs (0,1) tied in x, (0,2) and (1,2) concordant.
    # τ_b = (C − D) / sqrt((n0 − n1)(n0 − n2)) = 2 / sqrt((3 − 1)(3 − 0)) = 2 / sqrt(6) = 0.816497.
    assert kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_reversed_order_is_minus_one() -> None:
    x, y = [0.1, 0.5, 0.9], [0.8, 0.4, 0.0]
    assert pearson(x, y) == pytest.approx(-1.0)
    assert spearman(x, y) == pytest.approx(-1.0)
    assert kendall(x, y) == pytest.approx(-1.0)


@pytest.mark.parametrize("corr", [pearson, spearman, kendall])
def test_constant_input_gives_nan_without_warning(corr) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (e.g. scipy's ConstantInputWarning) fails the test
        assert math.isnan(corr([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))
        assert math.isnan(corr([0.1, 0.2, 0.3], [1.0, 1.0, 1.0]))


@pytest.mark.parametrize("corr", [pearson, spearman, kendall])
def test_correlations_reject_bad_input(corr) -> None:
    with pytest.raises(ValueError, match="same length"):
        corr([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 paired points"):
        corr([1], [1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        corr([1, float("nan"), 3], [1, 2, 3])


# --------------------------------------------------------------------------------------------------------------
# MMRV
# --------------------------------------------------------------------------------------------------------------


def test_mmrv_perfect_ranking_is_zero() -> None:
    # Same order, different scale: no pair is mis-ordered.
    assert mmrv([0.1, 0.2, 0.3, 0.4], [0.2, 0.5, 0.6, 0.9]) == 0.0


def test_mmrv_is_not_symmetric() -> None:
    # S = [0.1, 0.2], R = [0.5, 0.0]: the single pair is mis-ordered.
    # mmrv(S, R): penalty is the real gap |0.5 − 0.0| = 0.5 for both i -> (0.5 + 0.5) / 2 = 0.5
    # mmrv(R, S): penalty is now |0.1 − 0.2| = 0.1 for both i -> (0.1 + 0.1) / 2 = 0.1
    sim, real = [0.1, 0.2], [0.5, 0.0]
    assert mmrv(sim, real) == pytest.approx(0.5)
    assert mmrv(real, sim) == pytest.approx(0.1)


def test_mmrv_three_policies_max_over_j() -> None:
    # S = [0.9, 0.5, 0.1], R = [0.2, 0.3, 0.8]: S orders them exactly backwards.
    # i=0: j=1 gap 0.1 violated, j=2 gap 0.6 violated -> max 0.6
    # i=1: j=0 gap 0.1 violated, j=2 gap 0.5 violated -> max 0.5
    # i=2: j=0 gap 0.6 violated, j=1 gap 0.5 violated -> max 0.6
    # mmrv = (0.6 + 0.5 + 0.6) / 3 = 1.7 / 3
    assert mmrv([0.9, 0.5, 0.1], [0.2, 0.3, 0.8]) == pytest.approx(1.7 / 3)


def test_mmrv_ties() -> None:
    # S tied, R = [0.2, 0.8]:
    # i=0, j=1: (S0 > S1) = False, (R0 > R1) = False -> agree, 0
    # i=1, j=0: (S1 > S0) = False, (R1 > R0) = True  -> violated, gap 0.6
    # mmrv = (0 + 0.6) / 2 = 0.3. Swapped, R is tied so every real gap is 0 -> 0.
    assert mmrv([0.5, 0.5], [0.2, 0.8]) == pytest.approx(0.3)
    assert mmrv([0.2, 0.8], [0.5, 0.5]) == 0.0


def test_mmrv_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sim and real must have the same length"):
        mmrv([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 2"):
        mmrv([0.1], [0.1])


# --------------------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------------------


def test_calibration_mae() -> None:
    # |0.1 − 0.2| + |0.5 − 0.5| + |0.9 − 0.6| = 0.1 + 0 + 0.3 = 0.4; / 3
    assert calibration_mae([0.1, 0.5, 0.9], [0.2, 0.5, 0.6]) == pytest.approx(0.4 / 3)


def test_calibration_mae_fitted_removes_linear_bias() -> None:
    # Real = 0.5 · pred + 0.1 exactly. Raw MAE on the test set: |0.4 − 0.3| + |0.8 − 0.5| = 0.4; / 2 = 0.2.
    # The fit on train recovers a = 0.5, b = 0.1, so the fitted MAE on test is 0.
    pred_train, pred_test = np.array([0.0, 0.2, 1.0]), np.array([0.4, 0.8])
    real_train, real_test = 0.5 * pred_train + 0.1, 0.5 * pred_test + 0.1
    assert calibration_mae(pred_test, real_test) == pytest.approx(0.2)
    assert calibration_mae_fitted(pred_train, real_train, pred_test, real_test) == pytest.approx(
        0.0, abs=1e-12
    )


def test_calibration_mae_fitted_hand_computed_residual() -> None:
    # Train (0, 0), (1, 1): a = 1, b = 0. Test pred 0.5 -> 0.5 vs real 0.7: |0.5 − 0.7| = 0.2.
    assert calibration_mae_fitted([0.0, 1.0], [0.0, 1.0], [0.5], [0.7]) == pytest.approx(0.2)


def test_calibration_mae_fitted_clips_to_unit_interval() -> None:
    # Train (0, 0), (0.5, 1): a = 2, b = 0. Test pred 0.9 -> 1.8, clipped to 1.0; real 1.0 -> error 0.
    # Without clipping the error is |1.8 − 1.0| = 0.8.
    args = ([0.0, 0.5], [0.0, 1.0], [0.9], [1.0])
    assert calibration_mae_fitted(*args) == pytest.approx(0.0)
    assert calibration_mae_fitted(*args, clip=False) == pytest.approx(0.8)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="pred and real must have the same length"):
        calibration_mae([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="pred_train is constant"):
        calibration_mae_fitted([0.3, 0.3], [0.1, 0.5], [0.2], [0.2])
    with pytest.raises(ValueError, match="at least 2"):
        calibration_mae_fitted([0.3], [0.1], [0.2], [0.2])


# --------------------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------------------


def _make_episodes(rates: list[float], n_episodes: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(n_episodes) < rate for rate in rates]


SIM = _make_episodes([0.1, 0.3, 0.5, 0.7, 0.9], 40, seed=1)
REAL = _make_episodes([0.15, 0.25, 0.55, 0.65, 0.95], 40, seed=2)


def test_bootstrap_point_is_statistic_of_full_data() -> None:
    sim_rates = np.array([episodes.mean() for episodes in SIM])
    real_rates = np.array([episodes.mean() for episodes in REAL])
    result = bootstrap_ci(pearson, SIM, REAL, n_resamples=200)
    assert isinstance(result, BootstrapCI)
    assert result.point == pytest.approx(pearson(sim_rates, real_rates))


def test_bootstrap_is_deterministic_under_seed() -> None:
    first = bootstrap_ci(pearson, SIM, REAL, n_resamples=300, seed=7)
    second = bootstrap_ci(pearson, SIM, REAL, n_resamples=300, seed=7)
    other = bootstrap_ci(pearson, SIM, REAL, n_resamples=300, seed=8)
    assert first == second  # exact equality, not approx
    assert first.point == other.point
    assert (first.low, first.high) != (other.low, other.high)


@pytest.mark.parametrize("stat_fn", [pearson, spearman, kendall, mmrv])
def test_bootstrap_interval_contains_point(stat_fn) -> None:
    point, low, high = bootstrap_ci(stat_fn, SIM, REAL, n_resamples=500)
    assert low <= point <= high
    assert low < high


def test_bootstrap_single_policy_two_episodes() -> None:
    # One policy, episodes [0, 1]: a resample's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4, so with
    # 2000 resamples the 2.5% and 97.5% quantiles are 0 and 1. The point estimate is 0.5.
    result = bootstrap_ci(lambda rates: float(rates[0]), [np.array([0.0, 1.0])], n_resamples=2000)
    assert result == BootstrapCI(point=0.5, low=0.0, high=1.0)


def test_bootstrap_resamples_within_each_policy() -> None:
    # Every policy's episodes are identical, so resampling within a policy cannot change its rate and the
    # interval collapses onto the point: (0.2 + 0.7) / 2 = 0.45 for the mean rate.
    sim = [np.full(5, 0.2), np.full(8, 0.7)]
    result = bootstrap_ci(lambda rates: float(rates.mean()), sim, n_resamples=100)
    assert result.point == pytest.approx(0.45)
    assert result.low == pytest.approx(0.45)
    assert result.high == pytest.approx(0.45)


def test_bootstrap_all_nan_resamples_give_nan_interval() -> None:
    # All sim rates are constant (every episode succeeds), so Pearson is NaN in every resample.
    sim = [np.ones(4), np.ones(4), np.ones(4)]
    point, low, high = bootstrap_ci(pearson, sim, REAL[:3], n_resamples=50)
    assert math.isnan(point) and math.isnan(low) and math.isnan(high)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one group"):
        bootstrap_ci(pearson)
    with pytest.raises(ValueError, match="same policies"):
        bootstrap_ci(pearson, SIM, REAL[:3])
    with pytest.raises(ValueError, match="policy 1 has no episodes"):
        bootstrap_ci(pearson, [np.ones(3), np.array([])], [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="n_resamples must be >= 1"):
        bootstrap_ci(pearson, SIM, REAL, n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(pearson, SIM, REAL, confidence=1.5)


def test_paired_agreement_counts_the_four_cells_by_hand():
    from dojo_bench.core.metrics import paired_agreement

    result = paired_agreement(
        [1, 1, 0, 0, 1], [1, 0, 0, 1, 1], [0.9, 0.95, 0.2, 0.5, 1.0], [1.0, 0.5, 0.2, 0.9, 1.0]
    )
    assert result == {"accuracy": 0.6, "both": 2, "neither": 1, "imagined_only": 1, "real_only": 1,
                      "progress_gap": pytest.approx((0.1 + 0.45 + 0 + 0.4 + 0) / 5), "n": 5}  # fmt: skip
    with pytest.raises(ValueError, match="same length"):
        paired_agreement([1], [1, 0], [0.1], [0.1, 0.2])


def test_sampling_ceiling_matches_the_notes_simulation_and_tightens_with_seeds():
    from dojo_bench.core.metrics import sampling_ceiling

    rates = [0.08, 0.12, 0.20, 0.26, 0.36, 0.40, 0.52, 0.68, 0.72, 0.72, 0.78, 0.86, 0.86, 0.90, 0.96]
    at50, at100 = sampling_ceiling(rates, 50), sampling_ceiling(rates, 100)
    # The feasibility note's simulation of the same rates: r 0.970 and MMRV 0.052 at 50 seeds, MMRV 0.027 at 100.
    assert at50["pearson"] == pytest.approx(0.970, abs=0.01) and at50["mmrv"] == pytest.approx(
        0.052, abs=0.01
    )
    assert at100["mmrv"] == pytest.approx(0.027, abs=0.006) and at100["pearson"] > at50["pearson"]
    assert at50["mmrv_low"] <= at50["mmrv"] <= at50["mmrv_high"]
    # Rates all equal: any ordering is noise, r counts 0.
    assert sampling_ceiling([0.5, 0.5], 10)["pearson"] < 0.5
    with pytest.raises(ValueError, match="two rates"):
        sampling_ceiling([0.5], 10)


def test_calibrated_threshold_matches_the_real_success_rate():
    imagined = np.array([0.9, 0.3, 0.7, 0.5, 0.2])
    real = np.array([True, False, True, True, False])  # 3 of 5
    tau = calibrated_threshold(imagined, real)
    assert tau == pytest.approx(0.4)  # halfway between the 3rd (0.5) and 4th (0.3) highest
    assert (imagined >= tau).sum() == real.sum()
    assert calibrated_threshold(imagined, np.ones(5, bool)) == pytest.approx(0.2)
    assert 0.9 < calibrated_threshold(imagined, np.zeros(5, bool)) <= 1.0
    with pytest.raises(ValueError, match="as many outcomes"):
        calibrated_threshold(imagined, real[:3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibrated_threshold(imagined * 2, real)
